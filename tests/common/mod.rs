//! Test harness: starts the real `opentracker` binary on free loopback ports,
//! waits for its READY=1 on a notify socket of the test's own (no sleeping),
//! and speaks raw HTTP and UDP to it.
#![allow(dead_code)]

pub mod bencode;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub const BINARY: &str = env!("CARGO_BIN_EXE_opentracker");
const START_TIMEOUT: Duration = Duration::from_secs(15);

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Says loudly that a test did not run, so it never passes silently.
pub fn skip(test: &str, why: &str) {
    eprintln!("SKIPPED {test}: {why}");
}

/// A world-readable scratch directory (the tracker may run as nobody).
pub struct TestDir(pub PathBuf);

impl TestDir {
    pub fn new() -> TestDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "ot-test-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::DirBuilder::new()
            .mode(0o755)
            .create(&path)
            .expect("create test dir");
        TestDir(path)
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        self.write_bytes(name, text.as_bytes())
    }

    /// Writes a file that need not be UTF-8.
    pub fn write_bytes(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, bytes).expect("write test file");
        path
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// Lets a tracker that dropped to `nobody` (started as root) create
    /// files here.
    pub fn writable_by_tracker(&self) {
        if is_root() {
            std::os::unix::fs::chown(&self.0, Some(65534), Some(65534)).expect("chown test dir");
        }
    }

    /// Keeps the tracker from creating files here: as root, whose tracker
    /// runs as `nobody`, by giving the directory to root; otherwise by
    /// taking away write permission.
    pub fn unwritable_by_tracker(&self) {
        if is_root() {
            std::os::unix::fs::chown(&self.0, Some(0), Some(0)).expect("chown test dir");
        } else {
            let read_only = std::fs::Permissions::from_mode(0o555);
            std::fs::set_permissions(&self.0, read_only).expect("chmod test dir");
        }
    }
}

impl TestDir {
    /// Keeps the tracker from reading `file`: as root, whose tracker runs
    /// as `nobody`, by giving it to root alone; otherwise by taking away
    /// read permission.
    pub fn unreadable_by_tracker(&self, file: &Path) {
        if is_root() {
            std::os::unix::fs::chown(file, Some(0), Some(0)).expect("chown test file");
        }
        let mode = if is_root() { 0o600 } else { 0o000 };
        std::fs::set_permissions(file, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let writable = std::fs::Permissions::from_mode(0o755);
        let _ = std::fs::set_permissions(&self.0, writable);
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A port free for TCP and UDP on both 127.0.0.1 and ::1 right now.
pub fn free_port() -> u16 {
    for _ in 0..100 {
        let probe = TcpListener::bind("127.0.0.1:0").expect("bind probe");
        let port = probe.local_addr().unwrap().port();
        let free = UdpSocket::bind(("127.0.0.1", port)).is_ok()
            && TcpListener::bind(("::1", port)).is_ok()
            && UdpSocket::bind(("::1", port)).is_ok();
        if free {
            return port;
        }
    }
    panic!("no free port found");
}

/// A running tracker; killed when dropped.
pub struct Tracker {
    pub child: Child,
    pub port: u16,
    pub dir: TestDir,
    pub notify: UnixDatagram,
    /// Notify messages received so far, in order.
    pub messages: Vec<String>,
}

/// How to start a tracker.
#[derive(Default)]
pub struct Launch {
    /// Extra TOML appended after the harness's `[listen]` and `[log]`.
    pub toml: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Write no `[listen]` section (the test passes listeners itself).
    pub own_listeners: bool,
    /// More keys for the harness's `[listen]` section.
    pub listen: String,
    /// (soft, hard) limit on open files to start the tracker with.
    pub open_files: Option<(u64, u64)>,
    /// A descriptor to pass as systemd passes a stored one: as fd 3, with
    /// `LISTEN_FDS`, this name in `LISTEN_FDNAMES` and `LISTEN_PID`.
    pub stored: Option<(std::os::fd::RawFd, String)>,
    /// Where stderr goes instead of `stderr.log` (a pipe, say).
    pub stderr: Option<std::os::fd::OwnedFd>,
}

impl Tracker {
    pub fn start(toml: &str) -> Tracker {
        Self::start_in(TestDir::new(), toml.to_string())
    }

    /// Starts with `toml` in `dir`, where the test put the files it names.
    pub fn start_in(dir: TestDir, toml: String) -> Tracker {
        Self::launch_in(
            dir,
            Launch {
                toml,
                ..Launch::default()
            },
        )
    }

    pub fn launch(launch: Launch) -> Tracker {
        Self::launch_in(TestDir::new(), launch)
    }

    pub fn launch_in(mut dir: TestDir, launch: Launch) -> Tracker {
        for _ in 0..5 {
            let port = free_port();
            let mut config = String::new();
            if !launch.own_listeners {
                config.push_str(&format!(
                    "[listen]\ntcp_udp = [\"127.0.0.1:{port}\", \"[::1]:{port}\"]\n{}\n",
                    launch.listen
                ));
            }
            if !launch.toml.contains("[log]") {
                config.push_str("[log]\ntarget = \"stderr\"\nlevel = \"debug\"\n");
            }
            config.push_str(&launch.toml);
            let config_path = dir.write("opentracker.toml", &config);
            let notify_path = dir.path("notify.sock");
            let _ = std::fs::remove_file(&notify_path);
            let notify = UnixDatagram::bind(&notify_path).expect("bind notify socket");
            notify
                .set_read_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            let stderr = match &launch.stderr {
                Some(fd) => Stdio::from(fd.try_clone().expect("stderr descriptor")),
                None => {
                    Stdio::from(std::fs::File::create(dir.path("stderr.log")).expect("stderr log"))
                }
            };
            let mut command = match &launch.stored {
                // LISTEN_PID must be the tracker's own, known only in the
                // child: a shell sets it and execs.
                Some((fd, name)) => {
                    let mut shell = Command::new("sh");
                    shell
                        .args(["-c", "LISTEN_PID=$$ exec \"$0\" \"$@\"", BINARY])
                        .env("LISTEN_FDS", "1")
                        .env("LISTEN_FDNAMES", name);
                    let fd = *fd;
                    // SAFETY: only fcntl, dup2 and close, which are
                    // async-signal-safe, run between fork and exec.
                    unsafe {
                        use std::os::unix::process::CommandExt;
                        shell.pre_exec(move || {
                            let high = libc::fcntl(fd, libc::F_DUPFD, 10);
                            if high < 0 || libc::dup2(high, 3) < 0 {
                                return Err(std::io::Error::last_os_error());
                            }
                            libc::close(high);
                            Ok(())
                        });
                    }
                    shell
                }
                None => {
                    let mut direct = Command::new(BINARY);
                    direct.env_remove("LISTEN_FDS").env_remove("LISTEN_PID");
                    direct
                }
            };
            command
                .arg("-f")
                .arg(&config_path)
                .args(&launch.args)
                .env("NOTIFY_SOCKET", &notify_path)
                .env_remove("GLIBC_TUNABLES")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(stderr);
            for (key, value) in &launch.env {
                command.env(key, value);
            }
            if let Some((soft, hard)) = launch.open_files {
                use std::os::unix::process::CommandExt;
                // rlim_t is u64 on Linux, i64 on FreeBSD.
                let limit = libc::rlimit {
                    rlim_cur: soft as libc::rlim_t,
                    rlim_max: hard as libc::rlim_t,
                };
                // SAFETY: setrlimit is async-signal-safe and reads a copy.
                unsafe {
                    command.pre_exec(move || {
                        if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                            Ok(())
                        } else {
                            Err(std::io::Error::last_os_error())
                        }
                    });
                }
            }
            let child = command.spawn().expect("spawn opentracker");
            let mut tracker = Tracker {
                child,
                port,
                dir,
                notify,
                messages: Vec::new(),
            };
            if tracker.wait_for_message("READY=1", START_TIMEOUT) {
                return tracker;
            }
            let log = tracker.stderr();
            if !log.contains("Address already in use") {
                panic!("tracker did not become ready; stderr:\n{log}");
            }
            // Lost a race for the port: try another.
            let _ = tracker.child.kill();
            let _ = tracker.child.wait();
            dir = std::mem::replace(&mut tracker.dir, TestDir(PathBuf::new()));
        }
        panic!("could not start a tracker");
    }

    /// Waits until a notify message containing `needle` arrives (or was seen).
    pub fn wait_for_message(&mut self, needle: &str, timeout: Duration) -> bool {
        if self.messages.iter().any(|m| m.contains(needle)) {
            return true;
        }
        let start = Instant::now();
        let mut buf = [0u8; 4096];
        while start.elapsed() < timeout {
            match self.notify.recv(&mut buf) {
                Ok(n) => {
                    let message = String::from_utf8_lossy(&buf[..n]).to_string();
                    let hit = message.contains(needle);
                    self.messages.push(message);
                    if hit {
                        return true;
                    }
                }
                Err(_) => {
                    if let Ok(Some(_)) = self.child.try_wait() {
                        return false;
                    }
                }
            }
        }
        false
    }

    /// SIGHUP, then waits for the reload to start and end (RELOADING=1,
    /// READY=1); the messages from then on are in `messages`. Returns the
    /// READY=1 message, whose STATUS= is the status line after the reload
    /// (others may be status lines sent before it, still queued).
    pub fn reload(&mut self) -> String {
        self.clear_messages();
        self.signal("HUP");
        assert!(
            self.wait_for_message("RELOADING=1", Duration::from_secs(10)),
            "no RELOADING=1"
        );
        assert!(
            self.wait_for_message("READY=1", Duration::from_secs(10)),
            "no READY=1 after reload"
        );
        self.messages.last().cloned().unwrap_or_default()
    }

    /// Forgets notify messages seen so far.
    pub fn clear_messages(&mut self) {
        self.messages.clear();
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path("stderr.log")).unwrap_or_default()
    }

    /// Waits (bounded) until the log has `needle`.
    pub fn wait_for_log(&self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.stderr().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "no {needle:?} in:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Asserts the log's last line has `expected`: what an operator reads
    /// first after a failure.
    pub fn assert_last_log_line(&self, expected: &str) {
        let log = self.stderr();
        let last = log.lines().last().unwrap_or_default();
        assert!(last.contains(expected), "last line {last:?} in:\n{log}");
    }

    pub fn v4(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn v6(&self) -> SocketAddr {
        SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, self.port))
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// SIGTERM, then the exit status (bounded wait).
    pub fn stop(&mut self) -> ExitStatus {
        self.signal("TERM");
        wait_exit(&mut self.child, Duration::from_secs(10))
            .expect("tracker did not exit after SIGTERM")
    }

    pub fn get(&self, target: &str) -> Response {
        http(self.v4(), &format!("GET {target} HTTP/1.0\r\n\r\n"))
    }

    /// The value of a `/metrics` sample without labels.
    pub fn metric(&self, name: &str) -> u64 {
        metric_in(&self.get("/metrics").text(), name)
    }

    pub fn is_alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn wait_exit(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// Runs the binary to completion with `args`; returns (status, stdout, stderr).
pub fn run_binary(args: &[&str]) -> (ExitStatus, String, String) {
    let output = Command::new(BINARY)
        .args(args)
        .env_remove("NOTIFY_SOCKET")
        .env_remove("LISTEN_FDS")
        .stdin(Stdio::null())
        .output()
        .expect("run opentracker");
    (
        output.status,
        String::from_utf8_lossy(&output.stdout).to_string(),
        String::from_utf8_lossy(&output.stderr).to_string(),
    )
}

/// As [`run_binary`], for a run that might hang: panics once it has run
/// for `limit` (the process is killed first).
pub fn run_binary_within(args: &[&str], limit: Duration) -> (ExitStatus, String, String) {
    let mut child = Command::new(BINARY)
        .args(args)
        .env_remove("NOTIFY_SOCKET")
        .env_remove("LISTEN_FDS")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run opentracker");
    // Read meanwhile, so that a full pipe cannot hold the process up.
    let read_all = |mut from: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = from.read_to_string(&mut text);
            text
        })
    };
    let stdout = read_all(Box::new(child.stdout.take().unwrap()));
    let stderr = read_all(Box::new(child.stderr.take().unwrap()));
    let Some(status) = wait_exit(&mut child, limit) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "opentracker {args:?} still ran after {limit:?}; stderr:\n{}",
            stderr.join().unwrap()
        );
    };
    (status, stdout.join().unwrap(), stderr.join().unwrap())
}

/// Makes a FIFO at `path`.
pub fn make_fifo(path: &Path) {
    let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a NUL-terminated path.
    assert_eq!(
        unsafe { libc::mkfifo(c_path.as_ptr(), 0o644) },
        0,
        "mkfifo {path:?}"
    );
}

/// The value of the sample without labels `name` in `/metrics` text.
pub fn metric_in(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no {name} in {metrics}"))
        .parse()
        .unwrap()
}

/// An HTTP response as read off the wire.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub status_line: String,
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked when the response was chunked.
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).to_string()
    }

    pub fn bencode(&self) -> bencode::Value {
        bencode::decode(&self.body).unwrap_or_else(|| panic!("not bencode: {:?}", self.text()))
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(line_end) = data.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let len = usize::from_str_radix(std::str::from_utf8(&data[..line_end]).unwrap().trim(), 16)
            .unwrap();
        if len == 0 {
            return out;
        }
        out.extend_from_slice(&data[line_end + 2..line_end + 2 + len]);
        data = &data[line_end + 4 + len..];
    }
}

/// Parses one response from the front of `raw`; returns it and its length.
pub fn parse_response(raw: &[u8]) -> Option<(Response, usize)> {
    let head_end = raw.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&raw[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?.to_string();
    let status = status_line.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let find = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let (body, used) = if find("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        let rest = &raw[head_end..];
        let end = rest.windows(5).position(|w| w == b"0\r\n\r\n")? + 5;
        (dechunk(&rest[..end]), head_end + end)
    } else if let Some(len) = find("content-length") {
        let len: usize = len.parse().ok()?;
        if raw.len() < head_end + len {
            return None;
        }
        (raw[head_end..head_end + len].to_vec(), head_end + len)
    } else {
        (raw[head_end..].to_vec(), raw.len())
    };
    Some((
        Response {
            status,
            status_line,
            headers,
            body,
        },
        used,
    ))
}

/// Sends `request` on a fresh connection and reads until the server closes.
pub fn http(addr: SocketAddr, request: &str) -> Response {
    http_bytes(addr, request.as_bytes())
}

pub fn http_bytes(addr: SocketAddr, request: &[u8]) -> Response {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(request).expect("send request");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read response");
    parse_response(&raw)
        .map(|(response, _)| response)
        .unwrap_or_else(|| panic!("bad response: {:?}", String::from_utf8_lossy(&raw)))
}

/// The `/metrics` sample of HTTP error answers labelled `error`, for
/// [`Tracker::metric`].
pub fn http_errors(error: &str) -> String {
    format!("opentracker_http_errors_total{{error=\"{error}\"}}")
}

/// Percent-encodes every byte.
pub fn urlencode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("%{b:02x}")).collect()
}

pub fn hash(n: u8) -> [u8; 20] {
    let mut h = [0u8; 20];
    h[0] = 0xa5;
    h[19] = n;
    h
}

/// (complete, incomplete, downloaded) of torrent `hash(n)` in a scrape,
/// or `None` when the tracker does not know it.
pub fn scrape_counts(tracker: &Tracker, n: u8) -> Option<(i64, i64, i64)> {
    let reply = tracker
        .get(&format!("/scrape?info_hash={}", urlencode(&hash(n))))
        .bencode();
    let files = reply.get("files").unwrap().dict();
    files
        .get(hash(n).as_slice())
        .map(|t| (t.int("complete"), t.int("incomplete"), t.int("downloaded")))
}

pub fn announce_path(info_hash: &[u8; 20], port: u16, extra: &str) -> String {
    format!(
        "/announce?info_hash={}&peer_id={}&port={port}&left=100{extra}",
        urlencode(info_hash),
        urlencode(&[b'P'; 20])
    )
}

/// Announces `count` torrents (a multiple of 100) with a peer each over
/// UDP, in bursts of 100, and checks that nearly all were answered.
pub fn announce_torrents(tracker: &Tracker, count: u32) {
    let udp = Udp::new(tracker.v4());
    let id = udp.connect();
    // A lost reply costs a short wait, not the harness's 1.5 s.
    (udp.socket)
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut answered = 0;
    let mut reply = [0u8; 2048];
    for burst in 0..count / 100 {
        for n in 0..100u32 {
            let mut info_hash = [7u8; 20];
            info_hash[..4].copy_from_slice(&(burst * 100 + n).to_be_bytes());
            let packet = Udp::announce_packet(id, (&info_hash, 6881, 0, 2, 0));
            udp.socket.send_to(&packet, udp.to).unwrap();
        }
        for _ in 0..100 {
            if udp.socket.recv_from(&mut reply).is_err() {
                break;
            }
            answered += 1;
        }
    }
    assert!(
        answered > count * 4 / 5,
        "only {answered} of {count} announces answered"
    );
}

/// What a test announce says: info hash, port, left, event, numwant.
pub type AnnounceFields<'a> = (&'a [u8; 20], u16, u64, u32, i32);

/// A BEP 15 client bound to a loopback address of the tracker's family.
pub struct Udp {
    pub socket: UdpSocket,
    pub to: SocketAddr,
}

impl Udp {
    pub fn new(to: SocketAddr) -> Udp {
        let local: SocketAddr = if to.is_ipv4() {
            "127.0.0.1:0"
        } else {
            "[::1]:0"
        }
        .parse()
        .unwrap();
        let socket = UdpSocket::bind(local).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(1500)))
            .unwrap();
        Udp { socket, to }
    }

    /// Sends a datagram and returns the reply, or None after a timeout.
    pub fn exchange(&self, packet: &[u8]) -> Option<Vec<u8>> {
        self.exchange_from(packet).map(|(reply, _)| reply)
    }

    /// Sends a datagram and returns the reply with the address it came from.
    pub fn exchange_from(&self, packet: &[u8]) -> Option<(Vec<u8>, SocketAddr)> {
        self.socket.send_to(packet, self.to).unwrap();
        let mut buf = [0u8; 4096];
        match self.socket.recv_from(&mut buf) {
            Ok((n, from)) => Some((buf[..n].to_vec(), from)),
            Err(_) => None,
        }
    }

    pub fn connect(&self) -> u64 {
        let mut packet = 0x41727101980u64.to_be_bytes().to_vec();
        packet.extend_from_slice(&0u32.to_be_bytes());
        packet.extend_from_slice(&7u32.to_be_bytes());
        let reply = self.exchange(&packet).expect("connect reply");
        assert_eq!(reply.len(), 16);
        assert_eq!(&reply[..8], &[0, 0, 0, 0, 0, 0, 0, 7]);
        u64::from_be_bytes(reply[8..16].try_into().unwrap())
    }

    pub fn announce_packet(
        connection_id: u64,
        (info_hash, port, left, event, numwant): AnnounceFields,
    ) -> Vec<u8> {
        let mut p = Vec::with_capacity(98);
        p.extend_from_slice(&connection_id.to_be_bytes());
        p.extend_from_slice(&1u32.to_be_bytes());
        p.extend_from_slice(&99u32.to_be_bytes());
        p.extend_from_slice(info_hash);
        p.extend_from_slice(&[b'U'; 20]);
        p.extend_from_slice(&0u64.to_be_bytes());
        p.extend_from_slice(&left.to_be_bytes());
        p.extend_from_slice(&0u64.to_be_bytes());
        p.extend_from_slice(&event.to_be_bytes());
        p.extend_from_slice(&0u32.to_be_bytes());
        p.extend_from_slice(&0u32.to_be_bytes());
        p.extend_from_slice(&numwant.to_be_bytes());
        p.extend_from_slice(&port.to_be_bytes());
        p
    }

    pub fn announce(
        &self,
        info_hash: &[u8; 20],
        port: u16,
        left: u64,
        event: u32,
        numwant: i32,
    ) -> Vec<u8> {
        let id = self.connect();
        self.exchange(&Self::announce_packet(
            id,
            (info_hash, port, left, event, numwant),
        ))
        .expect("announce reply")
    }

    pub fn scrape(&self, hashes: &[[u8; 20]]) -> Vec<u8> {
        let id = self.connect();
        let mut p = id.to_be_bytes().to_vec();
        p.extend_from_slice(&2u32.to_be_bytes());
        p.extend_from_slice(&5u32.to_be_bytes());
        for h in hashes {
            p.extend_from_slice(h);
        }
        self.exchange(&p).expect("scrape reply")
    }
}

pub fn be32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap())
}

pub fn path_exists(path: &Path) -> bool {
    path.exists()
}

/// Runs `start`, then `finish` with what it returned, while one UDP client
/// asks the tracker at `to` again as soon as it is answered. Returns what
/// `finish` returned and how many UDP requests were answered between the
/// end of `start` and the end of `finish`: how a test sees that some long
/// piece of work left the event loop free for others.
pub fn udp_answered_between<T, R>(
    to: SocketAddr,
    start: impl FnOnce() -> T,
    finish: impl FnOnce(T) -> R,
) -> (R, u32) {
    use std::sync::atomic::{AtomicU8, Ordering::SeqCst};
    const WARMING: u8 = 0;
    const WAITING: u8 = 1;
    const DONE: u8 = 2;
    let phase = std::sync::Arc::new(AtomicU8::new(WARMING));
    let (ready, asking_runs) = std::sync::mpsc::channel();
    let asking = std::thread::spawn({
        let phase = phase.clone();
        let udp = Udp::new(to);
        move || {
            let mut connect = 0x41727101980u64.to_be_bytes().to_vec();
            connect.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 9]);
            let mut answered_meanwhile = 0;
            while phase.load(SeqCst) != DONE {
                let asked_in = phase.load(SeqCst);
                let answered = udp.exchange(&connect).is_some();
                if answered && asked_in == WARMING {
                    let _ = ready.send(());
                }
                if answered && asked_in == WAITING && phase.load(SeqCst) == WAITING {
                    answered_meanwhile += 1;
                }
            }
            answered_meanwhile
        }
    });
    asking_runs.recv().unwrap();
    let started = start();
    phase.store(WAITING, SeqCst);
    let finished = finish(started);
    phase.store(DONE, SeqCst);
    (finished, asking.join().unwrap())
}
