//! End to end: two real BitTorrent clients (libtorrent, through
//! tests/e2e/transfer.py) that can only find each other through the tracker
//! move a file over an HTTP and a UDP tracker URL, on 127.0.0.1 and on ::1.
//! Afterwards a scrape must show both peers seeding and one download.
//!
//! Needs Debian's python3-libtorrent for /usr/bin/python3. Without it the
//! test reports a skip, except as root, where the README's test command has
//! installed it and a missing module is an error.

use std::fs::{self, File};
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The system Python: the Debian package is built for it, not for whatever
/// `python3` comes first on PATH.
const PYTHON: &str = "/usr/bin/python3";
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/transfer.py");
const V4: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const V6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);
/// The script gives up after 60 s; this only catches a hung interpreter.
const TRANSFER_LIMIT: Duration = Duration::from_secs(120);
const READY_LIMIT: Duration = Duration::from_secs(30);
const PORT_ATTEMPTS: usize = 10;

/// A private scratch directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir =
            std::env::temp_dir().join(format!("opentracker-e2e-{}-{nanos}", std::process::id()));
        fs::create_dir(&dir).expect("create scratch dir");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// The running tracker; killed on drop, also when the test panics, and then
/// its log is shown.
struct Tracker {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Drop for Tracker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = fs::read_to_string(&self.log).unwrap_or_default();
            eprintln!("--- tracker log ---\n{log}--- end of tracker log ---");
        }
    }
}

fn is_root() -> bool {
    // /proc/self belongs to the effective uid; std has no geteuid.
    fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn libtorrent_available() -> bool {
    Command::new(PYTHON)
        .args(["-c", "import libtorrent"])
        .env_remove("PYTHONPATH")
        .env_remove("PYTHONHOME")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A port that is free right now for TCP and UDP on both loopbacks, which is
/// what the tracker binds. Another process may still take it before the
/// tracker does; `start_tracker` retries then.
fn free_port() -> u16 {
    for _ in 0..100 {
        let first = TcpListener::bind((V4, 0)).expect("bind an ephemeral port");
        let port = first.local_addr().expect("local addr").port();
        let others_free = TcpListener::bind((V6, port)).is_ok()
            && UdpSocket::bind((V4, port)).is_ok()
            && UdpSocket::bind((V6, port)).is_ok();
        if others_free {
            return port;
        }
    }
    panic!("no port free for TCP and UDP on 127.0.0.1 and ::1 in 100 tries");
}

/// Waits for `READY=1` on the notify socket. Returns false if the tracker
/// exited first (a lost bind race) and panics on any other failure.
fn wait_ready(tracker: &mut Tracker, notify: &UnixDatagram) -> bool {
    let deadline = Instant::now() + READY_LIMIT;
    let mut buf = [0u8; 1024];
    loop {
        if let Some(status) = tracker.child.try_wait().expect("poll tracker") {
            let log = fs::read_to_string(&tracker.log).unwrap_or_default();
            eprintln!("tracker on port {} exited ({status}): {log}", tracker.port);
            return false;
        }
        assert!(
            Instant::now() < deadline,
            "tracker sent no READY=1 within {READY_LIMIT:?}"
        );
        match notify.recv(&mut buf) {
            Ok(n) if buf[..n].split(|&b| b == b'\n').any(|l| l == b"READY=1") => return true,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => panic!("notify socket: {e}"),
        }
    }
}

fn start_tracker(scratch: &Path) -> Tracker {
    let binary = env!("CARGO_BIN_EXE_opentracker");
    for attempt in 0..PORT_ATTEMPTS {
        let port = free_port();
        let config = scratch.join(format!("tracker-{attempt}.toml"));
        fs::write(
            &config,
            format!(
                "[listen]\ntcp_udp = [\"127.0.0.1:{port}\", \"[::1]:{port}\"]\n\
                 [log]\ntarget = \"stderr\"\nlevel = \"debug\"\n"
            ),
        )
        .expect("write config");
        let notify_path = scratch.join(format!("notify-{attempt}.sock"));
        let notify = UnixDatagram::bind(&notify_path).expect("bind notify socket");
        notify
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("notify timeout");
        let log = scratch.join(format!("tracker-{attempt}.log"));
        let child = Command::new(binary)
            .arg("-f")
            .arg(&config)
            .env("NOTIFY_SOCKET", &notify_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&log).expect("create tracker log"))
            .spawn()
            .expect("spawn the tracker");
        let mut tracker = Tracker { child, port, log };
        if wait_ready(&mut tracker, &notify) {
            return tracker;
        }
    }
    panic!("the tracker failed to start {PORT_ATTEMPTS} times");
}

/// The string value of `"key": "..."` in the script's JSON line (flat, no
/// escapes in the values we read).
fn json_str<'a>(json: &'a str, key: &str) -> Option<&'a str> {
    let start = json.find(&format!("\"{key}\": \""))? + key.len() + 5;
    let len = json[start..].find('"')?;
    Some(&json[start..start + len])
}

/// The integer value of `"key": n`.
fn json_int(json: &str, key: &str) -> Option<i64> {
    let start = json.find(&format!("\"{key}\": "))? + key.len() + 4;
    let rest = &json[start..];
    let len = rest
        .find(|c: char| c != '-' && !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..len].parse().ok()
}

/// Runs one transfer and returns the torrent's info hash (40 hex digits).
/// libtorrent 2.0.8 (bookworm) now and then crashes right after a client
/// connects to its own address, which a tracker hands back as upstream
/// does (the requester is in its own peer list): a client killed by a
/// signal is given one more transfer, of a new random file, and the test
/// says so.
fn transfer(url: &str, scratch: &Path, run: usize) -> String {
    match transfer_once(url, scratch, &format!("{run}")) {
        Ok(hash) => hash,
        Err(signal) => {
            eprintln!(
                "{url}: the libtorrent client was killed by signal {signal} (a crash of \
                 libtorrent's, not the tracker's); one more transfer"
            );
            transfer_once(url, scratch, &format!("{run}-again"))
                .unwrap_or_else(|signal| panic!("{url}: killed by signal {signal} again"))
        }
    }
}

/// One transfer: the info hash, or the signal that killed the client
/// (anything else fails the test).
fn transfer_once(url: &str, scratch: &Path, run: &str) -> Result<String, i32> {
    let out_path = scratch.join(format!("transfer-{run}.out"));
    let err_path = scratch.join(format!("transfer-{run}.err"));
    let started = Instant::now();
    let mut child = Command::new(PYTHON)
        .arg(SCRIPT)
        .arg(url)
        .arg("--verbose")
        .env_remove("PYTHONPATH")
        .env_remove("PYTHONHOME")
        .stdin(Stdio::null())
        .stdout(File::create(&out_path).expect("create script stdout"))
        .stderr(File::create(&err_path).expect("create script stderr"))
        .spawn()
        .expect("spawn transfer.py");
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll transfer.py") {
            break status;
        }
        if started.elapsed() > TRANSFER_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{url}: transfer.py still running after {TRANSFER_LIMIT:?}; its log:\n{}",
                fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    if let Some(signal) = std::os::unix::process::ExitStatusExt::signal(&status) {
        return Err(signal);
    }
    let report = fs::read_to_string(&out_path).unwrap_or_default();
    let report = report.trim();
    let fail = |why: &str| -> ! {
        panic!(
            "{url}: {why}\nexit: {status}\nreport: {report}\nlog:\n{}",
            fs::read_to_string(&err_path).unwrap_or_default()
        )
    };
    if !status.success() || json_str(report, "result") != Some("ok") {
        fail("the transfer failed");
    }
    let source = json_str(report, "source_sha256").unwrap_or_else(|| fail("no source hash"));
    let copy = json_str(report, "copy_sha256").unwrap_or_else(|| fail("no copy hash"));
    if source.len() != 64 || source != copy {
        fail("the copy's SHA-256 differs from the source's");
    }
    // The reply to the leecher's `completed` announce already counts both.
    if json_int(report, "tracker_complete") != Some(2)
        || json_int(report, "tracker_incomplete") != Some(0)
    {
        fail("the completed announce's reply did not count two seeders and no leecher");
    }
    let info_hash = json_str(report, "info_hash").unwrap_or_else(|| fail("no info hash"));
    if info_hash.len() != 40 || !info_hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        fail("malformed info hash");
    }
    eprintln!(
        "{url}: ok in {:.2?} (script timings: {})",
        started.elapsed(),
        report
            .find("\"seconds\"")
            .map_or("?", |at| report[at..].trim_end_matches('}'))
    );
    Ok(info_hash.to_string())
}

fn hex_to_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex digit"))
        .collect()
}

/// One scrape over plain HTTP/1.0; returns the body.
fn scrape(addr: SocketAddr, hash: &[u8]) -> Vec<u8> {
    let query: String = hash.iter().map(|b| format!("%{b:02x}")).collect();
    let mut stream =
        TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect for scrape");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    write!(
        stream,
        "GET /scrape?info_hash={query} HTTP/1.0\r\nHost: {addr}\r\n\r\n"
    )
    .expect("send scrape");
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).expect("read scrape reply");
    let text = String::from_utf8_lossy(&reply);
    let status_line = text.lines().next().unwrap_or_default();
    assert!(
        status_line.starts_with("HTTP/1.") && status_line.contains(" 200 "),
        "scrape at {addr}: unexpected reply {text:?}"
    );
    let body_at = reply
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("reply has a head")
        + 4;
    reply.split_off(body_at)
}

#[test]
fn two_clients_transfer_through_the_tracker() {
    if !libtorrent_available() {
        assert!(
            !is_root(),
            "python3-libtorrent is missing for {PYTHON}; as root the test expects it \
             (apt-get install -y python3-libtorrent)"
        );
        eprintln!("SKIPPED: python3-libtorrent not installed");
        return;
    }
    let scratch = Scratch::new();
    let tracker = start_tracker(&scratch.0);
    let port = tracker.port;

    let mut swarms = Vec::new();
    for (run, (scheme, ip)) in [("http", V4), ("udp", V4), ("http", V6), ("udp", V6)]
        .into_iter()
        .enumerate()
    {
        let url = format!("{scheme}://{}/announce", SocketAddr::new(ip, port));
        let hash = transfer(&url, &scratch.0, run);
        swarms.push((url, SocketAddr::new(ip, port), hash));
    }

    // The script exits without event=stopped, so both peers are still in
    // each swarm as seeders, and exactly the leecher completed a download.
    for (url, addr, hash) in &swarms {
        let hash = hex_to_bytes(hash);
        let mut expected = b"d5:filesd20:".to_vec();
        expected.extend_from_slice(&hash);
        expected.extend_from_slice(b"d8:completei2e10:downloadedi1e10:incompletei0eeee");
        let body = scrape(*addr, &hash);
        assert_eq!(
            String::from_utf8_lossy(&body),
            String::from_utf8_lossy(&expected),
            "scrape after the transfer via {url}"
        );
    }
    drop(tracker);
}
