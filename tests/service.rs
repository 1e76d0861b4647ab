//! Running as a service: socket activation, the sd_notify sequence, syslog,
//! and (as root) chroot, user switch and capabilities. Root-only checks say
//! SKIPPED when not root.

mod common;

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// A child process killed if the test fails before it exits.
struct KillOnDrop(std::process::Child);

impl std::ops::Deref for KillOnDrop {
    type Target = std::process::Child;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Collects notify messages until one contains `needle`.
fn wait_notify(socket: &UnixDatagram, seen: &mut Vec<String>, needle: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 1024];
    while Instant::now() < deadline {
        if let Ok(n) = socket.recv(&mut buf) {
            let message = String::from_utf8_lossy(&buf[..n]).to_string();
            let hit = message.contains(needle);
            seen.push(message);
            if hit {
                return true;
            }
        }
    }
    false
}

#[test]
fn socket_activation_and_notify_sequence() {
    let dir = TestDir::new();
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (tcp_addr, udp_addr) = (tcp.local_addr().unwrap(), udp.local_addr().unwrap());
    let notify = UnixDatagram::bind(dir.path("notify.sock")).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let (tcp_fd, udp_fd) = (tcp.as_raw_fd(), udp.as_raw_fd());
    let mut command = Command::new("sh");
    command
        .args([
            "-c",
            "LISTEN_PID=$$ WATCHDOG_PID=$$ exec \"$0\" \"$@\"",
            BINARY,
            "--log",
            "stderr",
            "-f",
            dir.write("workers.toml", "[listen]\nudp_workers = 2\n")
                .to_str()
                .unwrap(),
        ])
        .env("LISTEN_FDS", "2")
        .env("LISTEN_FDNAMES", "http:udp")
        .env("NOTIFY_SOCKET", dir.path("notify.sock"))
        .env("WATCHDOG_USEC", "400000")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path("stderr.log")).unwrap());
    // SAFETY: only fcntl, dup2 and close, which are async-signal-safe, run
    // between fork and exec. The sockets are first moved above fd 10 so
    // that placing one on 3 or 4 cannot clobber the other.
    unsafe {
        command.pre_exec(move || {
            let high_tcp = libc::fcntl(tcp_fd, libc::F_DUPFD, 10);
            let high_udp = libc::fcntl(udp_fd, libc::F_DUPFD, 10);
            if high_tcp < 0
                || high_udp < 0
                || libc::dup2(high_tcp, 3) < 0
                || libc::dup2(high_udp, 4) < 0
            {
                return Err(std::io::Error::last_os_error());
            }
            libc::close(high_tcp);
            libc::close(high_udp);
            Ok(())
        });
    }
    let mut child = KillOnDrop(command.spawn().unwrap());
    drop((tcp, udp));
    let mut seen = Vec::new();
    let log = || std::fs::read_to_string(dir.path("stderr.log")).unwrap_or_default();
    assert!(
        wait_notify(&notify, &mut seen, "READY=1"),
        "no READY=1: {seen:?}\n{}",
        log()
    );
    assert!(seen.iter().any(|m| m.contains("STATUS=")), "{seen:?}");
    assert!(
        wait_notify(&notify, &mut seen, "WATCHDOG=1"),
        "no WATCHDOG=1: {seen:?}"
    );

    let announce = http(
        tcp_addr,
        &format!("GET {} HTTP/1.0\r\n\r\n", announce_path(&hash(1), 1, "")),
    );
    assert_eq!(announce.status, 200);
    assert_eq!(
        Udp::new(udp_addr).announce(&hash(1), 2, 0, 0, 10).len(),
        20 + 12
    );
    // The workers that answered are idle again: the pings go on.
    seen.clear();
    assert!(
        wait_notify(&notify, &mut seen, "WATCHDOG=1"),
        "no WATCHDOG=1 after UDP workers answered: {seen:?}\n{}",
        log()
    );

    seen.clear();
    assert!(Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    assert!(wait_notify(&notify, &mut seen, "RELOADING=1"), "{seen:?}");
    assert!(seen.last().unwrap().contains("MONOTONIC_USEC="), "{seen:?}");
    assert!(wait_notify(&notify, &mut seen, "READY=1"), "{seen:?}");

    assert!(Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    assert!(wait_notify(&notify, &mut seen, "STOPPING=1"), "{seen:?}");
    let status = wait_exit(&mut child.0, Duration::from_secs(10)).expect("exit after SIGTERM");
    assert_eq!(status.code(), Some(0));
    let log = std::fs::read_to_string(dir.path("stderr.log")).unwrap();
    assert!(log.contains("UDP by 2 threads per socket"), "{log}");
    assert!(
        log.contains("named \"http\"") && log.contains("named \"udp\""),
        "{log}"
    );
    assert!(
        log.contains(&format!("http {tcp_addr}")) && log.contains(&format!("udp {udp_addr}")),
        "{log}"
    );
}

/// Receives one notify message and the descriptor attached to it, if any,
/// or None once nothing more comes.
fn recv_with_fd(socket: &UnixDatagram) -> Option<(String, Option<OwnedFd>)> {
    let mut buf = [0u8; 4096];
    let mut control = [0u64; 8];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: msghdr is plain data; the buffers outlive the call, and the
    // one descriptor read out of an SCM_RIGHTS header is ours to own.
    unsafe {
        let mut header: libc::msghdr = std::mem::zeroed();
        header.msg_iov = &mut iov;
        header.msg_iovlen = 1;
        header.msg_control = control.as_mut_ptr().cast();
        header.msg_controllen = std::mem::size_of_val(&control) as _;
        let n = libc::recvmsg(socket.as_raw_fd(), &mut header, libc::MSG_CMSG_CLOEXEC);
        if n < 0 {
            return None;
        }
        let message = String::from_utf8_lossy(&buf[..n as usize]).to_string();
        let cmsg = libc::CMSG_FIRSTHDR(&header);
        let fd = (!cmsg.is_null() && (*cmsg).cmsg_type == libc::SCM_RIGHTS).then(|| {
            let fd = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::c_int>());
            OwnedFd::from_raw_fd(fd)
        });
        Some((message, fd))
    }
}

/// Stops `tracker` and returns the state it handed to the service manager.
fn stop_and_take_stored_state(tracker: &mut Tracker) -> Option<OwnedFd> {
    tracker.signal("TERM");
    wait_exit(&mut tracker.child, Duration::from_secs(10)).expect("exit after SIGTERM");
    let mut stored = None;
    while let Some((message, fd)) = recv_with_fd(&tracker.notify) {
        if message.contains("FDSTORE=1\n") {
            assert!(message.contains("FDNAME=state\n"), "{message:?}");
            stored = Some(fd.expect("FDSTORE=1 without a descriptor"));
        }
    }
    stored
}

#[test]
fn the_swarms_survive_a_restart_in_the_service_managers_descriptor_store() {
    let mut first = Tracker::launch(Launch {
        env: vec![("FDSTORE".into(), "1".into())],
        ..Launch::default()
    });
    first.get(&announce_path(&hash(3), 1, "&left=0&event=completed"));
    first.get(&announce_path(&hash(3), 2, ""));
    let stored = stop_and_take_stored_state(&mut first).expect("no FDSTORE=1 at stop");
    let log = first.stderr();
    assert!(
        log.contains(
            "1 torrents and 2 peers handed to the service manager, which keeps them for a restart"
        ),
        "{log}"
    );

    // The next start gets it back as systemd passes stored descriptors.
    let mut second = Tracker::launch(Launch {
        stored: Some((stored.as_raw_fd(), "state".into())),
        ..Launch::default()
    });
    drop(stored);
    let log = second.stderr();
    assert!(
        log.contains("state kept by the service manager: 1 torrents loaded, 2 peers"),
        "{log}"
    );
    assert_eq!(scrape_counts(&second, 3), Some((1, 1, 1)));
    // Loaded, it is dropped from the store, so a crash does not bring back
    // that moment; and without FDSTORE nothing is handed over at stop.
    assert!(
        second
            .messages
            .iter()
            .any(|m| m.contains("FDSTOREREMOVE=1\nFDNAME=state\n")),
        "{:?}",
        second.messages
    );
    assert!(stop_and_take_stored_state(&mut second).is_none());
}

#[test]
fn a_state_the_service_manager_cannot_take_at_stop_fails_the_stop() {
    let mut tracker = Tracker::launch(Launch {
        env: vec![("FDSTORE".into(), "1".into())],
        ..Launch::default()
    });
    tracker.get(&announce_path(&hash(3), 1, ""));
    // The manager's end goes away: the hand-over at stop cannot be sent
    // (refused or not connected, as the kernel has it by then).
    tracker.notify = UnixDatagram::unbound().unwrap();
    assert_eq!(tracker.stop().code(), Some(111));
    tracker.assert_last_log_line(
        "error: stopped without keeping the swarms: handing the state to the service manager: ",
    );
}

#[test]
fn a_bad_or_unknown_stored_descriptor_is_logged_and_the_tracker_starts() {
    let dir = TestDir::new();
    let path = dir.write("bad", "# opentracker state 1\nnot a line\n");
    let bad = std::fs::File::open(path).unwrap();
    let tracker = Tracker::launch(Launch {
        stored: Some((bad.as_raw_fd(), "state".into())),
        ..Launch::default()
    });
    let log = tracker.stderr();
    assert!(
        log.contains("state kept by the service manager:2: ") && log.contains("nothing loaded"),
        "{log}"
    );
    assert_eq!(tracker.get("/stats?mode=torr").status, 200);
    let other = Tracker::launch(Launch {
        stored: Some((bad.as_raw_fd(), "something-else".into())),
        ..Launch::default()
    });
    assert!(other.stderr().contains(
        "closed a descriptor the service manager stored as \"something-else\": not this tracker's"
    ));
}

#[test]
fn runs_under_systemd_socket_activate() {
    let Ok(path) = which("systemd-socket-activate") else {
        return skip(
            "runs_under_systemd_socket_activate",
            "systemd-socket-activate is not installed",
        );
    };
    // Listen addresses that cannot all be bound (a port 0 in tcp_udp, both
    // wildcards on one port): unused, as systemd passes the sockets.
    let dir = TestDir::new();
    let unbindable = dir.write(
        "unbindable.toml",
        "[listen]\ntcp_udp = [\"0.0.0.0:30461\", \"[::]:30461\", \"127.0.0.1:0\"]\n",
    );
    let unbindable = unbindable.to_str().unwrap();
    let (status, _, stderr) = run_binary(&["--check-config", "-f", unbindable]);
    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains(
            "has port 0, which would give HTTP and UDP different free ports: name a port, \
             or list it in listen.tcp and listen.udp (the start stops on this unless systemd \
             passes the sockets)"
        ),
        "{stderr}"
    );
    let (status, _, stderr) = run_binary_within(&["-f", unbindable], Duration::from_secs(10));
    assert!(!status.success());
    assert!(
        stderr.contains("unbindable.toml:2: listen.tcp_udp entry 127.0.0.1:0 has port 0"),
        "{stderr}"
    );
    let port = free_port();
    let mut child = KillOnDrop(
        Command::new(path)
            .args([
                "-l",
                &format!("127.0.0.1:{port}"),
                BINARY,
                "-f",
                unbindable,
                "--log",
                "stderr",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    wait_until_serving(addr);
    let response = http(
        addr,
        &format!("GET {} HTTP/1.0\r\n\r\n", announce_path(&hash(2), 1, "")),
    );
    assert_eq!(response.status, 200);
    assert!(Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    assert!(wait_exit(&mut child.0, Duration::from_secs(10)).is_some());
}

#[test]
fn a_passed_socket_it_cannot_serve_on_is_refused_by_name() {
    const TEST: &str = "a_passed_socket_it_cannot_serve_on_is_refused_by_name";
    let Ok(path) = which("systemd-socket-activate") else {
        return skip(TEST, "systemd-socket-activate is not installed");
    };
    // A Unix stream socket, as ListenStream=/run/tracker.sock would pass.
    let dir = TestDir::new();
    let socket = dir.path("tracker.sock");
    let stderr = dir.path("stderr.log");
    let mut child = KillOnDrop(
        Command::new(path)
            .arg("-l")
            .arg(&socket)
            .args([BINARY, "--log", "stderr"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap(),
    );
    // socket-activate starts the tracker at the first connection.
    let started = Instant::now();
    while std::os::unix::net::UnixStream::connect(&socket).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "never listened"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = wait_exit(&mut child.0, Duration::from_secs(10)).expect("exits");
    assert_eq!(status.code(), Some(111));
    let log = std::fs::read_to_string(stderr).unwrap();
    assert!(
        log.contains("socket activation: fd 3 (") && log.contains("): not an IPv4 or IPv6 socket"),
        "{log}"
    );
}

fn which(name: &str) -> Result<std::path::PathBuf, ()> {
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|p| p.join(name))
                .find(|p| p.is_file())
        })
        .ok_or(())
}

#[test]
fn logs_to_syslog_socket() {
    let dir = TestDir::new();
    let log_path = dir.path("log.sock");
    let syslog = UnixDatagram::bind(&log_path).unwrap();
    syslog
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let toml = format!("[log]\ntarget = \"syslog\"\nsyslog_socket = \"{}\"\nrequests = true\nclient_ip = \"truncated\"\n", log_path.display());
    let tracker = Tracker::start_in(dir, toml);
    tracker.get(&announce_path(&hash(3), 1, ""));
    tracker.get("/scrape");
    let udp = Udp::new(tracker.v4());
    udp.announce(&hash(3), 2, 5, 0, 50);
    udp.scrape(&[hash(3)]);
    // A datagram that is no request at all is logged too.
    assert_eq!(udp.exchange(b"not a request"), None);
    let mut lines = Vec::new();
    for line in [
        "127.0.0.0/24 announce",
        "127.0.0.0/24 full scrape",
        "127.0.0.0/24 udp connect",
        "127.0.0.0/24 udp announce",
        "127.0.0.0/24 udp scrape",
        "127.0.0.0/24 udp malformed",
    ] {
        assert!(wait_notify(&syslog, &mut lines, line), "{line}: {lines:?}");
    }
    let startup = lines
        .iter()
        .find(|l| l.contains("serving"))
        .expect("startup line");
    // Facility daemon (3), severity info (6): priority 30.
    assert!(
        startup.starts_with("<30>") && startup.contains("opentracker["),
        "{startup}"
    );
    let requests: Vec<&String> = lines.iter().filter(|l| !l.contains(" serving ")).collect();
    assert!(
        !requests.iter().any(|l| l.contains("127.0.0.1")),
        "the address is truncated in every line about a request: {requests:?}"
    );

    // The syslog daemon restarts and makes its socket anew: lines go there.
    drop(syslog);
    std::fs::remove_file(&log_path).unwrap();
    let restarted = UnixDatagram::bind(&log_path).unwrap();
    // Anyone may write to a syslog socket; the tracker runs as nobody now.
    std::fs::set_permissions(&log_path, std::fs::Permissions::from_mode(0o666)).unwrap();
    restarted
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    tracker.get(&announce_path(&hash(4), 1, ""));
    let mut lines = Vec::new();
    assert!(
        wait_notify(&restarted, &mut lines, "127.0.0.0/24 announce"),
        "{lines:?}"
    );
}

#[test]
fn a_syslog_daemon_that_stops_reading_stalls_nothing() {
    let dir = TestDir::new();
    let log_path = dir.path("log.sock");
    let syslog = UnixDatagram::bind(&log_path).unwrap();
    let toml = format!(
        "[log]\ntarget = \"syslog\"\nsyslog_socket = \"{}\"\nrequests = true\n",
        log_path.display()
    );
    let tracker = Tracker::start_in(dir, toml);
    // A line per request, and no one reading: the socket's queue (512
    // datagrams by default) fills long before the last.
    announce_torrents(&tracker, 2000);
    assert_eq!(tracker.get("/stats?mode=tpbs").status, 200);
    // The daemon reads again: the next line goes out after a count of
    // those dropped.
    syslog.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 1024];
    let mut queued = 0;
    while syslog.recv(&mut buf).is_ok() {
        queued += 1;
    }
    assert!(queued < 2000, "{queued} lines queued: none dropped?");
    syslog.set_nonblocking(false).unwrap();
    syslog
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    tracker.get(&announce_path(&hash(4), 1, ""));
    let mut lines = Vec::new();
    assert!(
        wait_notify(
            &syslog,
            &mut lines,
            "log lines were dropped: the syslog daemon did not keep up"
        ),
        "{lines:?}"
    );
    assert!(wait_notify(&syslog, &mut lines, "announce"), "{lines:?}");
}

#[test]
fn a_stderr_no_one_reads_stalls_nothing() {
    let mut ends = [0; 2];
    // SAFETY: pipe fills both descriptors, each owned once from here on.
    let (reader, writer) = unsafe {
        assert_eq!(libc::pipe(ends.as_mut_ptr()), 0);
        (
            std::fs::File::from_raw_fd(ends[0]),
            OwnedFd::from_raw_fd(ends[1]),
        )
    };
    let tracker = Tracker::launch(Launch {
        toml: "[log]\ntarget = \"stderr\"\nrequests = true\n".into(),
        stderr: Some(writer),
        ..Launch::default()
    });
    // A line per request, and no one reading: the pipe (64 KiB) fills long
    // before the last.
    announce_torrents(&tracker, 2000);
    assert_eq!(tracker.get("/stats?mode=tpbs").status, 200);
    // The reader catches up: the next line comes after a count of those
    // dropped.
    // SAFETY: the read end is this test's own.
    unsafe {
        let flags = libc::fcntl(reader.as_raw_fd(), libc::F_GETFL);
        libc::fcntl(reader.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK);
    }
    let read = |log: &mut String| {
        use std::io::Read;
        let mut buf = [0u8; 65536];
        while let Ok(n @ 1..) = (&reader).read(&mut buf) {
            log.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    };
    let mut queued = String::new();
    read(&mut queued);
    let announces = queued.matches("udp announce").count();
    assert!(
        (1..2000).contains(&announces),
        "{announces} announce lines queued: none dropped?"
    );
    tracker.get(&announce_path(&hash(4), 1, ""));
    let note = "log lines were dropped: the reader of standard error did not keep up";
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut after = String::new();
    while !after
        .split_once(note)
        .is_some_and(|(_, rest)| rest.contains(" announce"))
    {
        assert!(Instant::now() < deadline, "{after}");
        std::thread::sleep(Duration::from_millis(20));
        read(&mut after);
    }
}

fn status_field(pid: u32, field: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("{field} missing"))
        .trim()
        .to_string()
}

fn privileged_port() -> u16 {
    (600..1000)
        .find(|&p| {
            TcpListener::bind(("127.0.0.1", p)).is_ok() && UdpSocket::bind(("127.0.0.1", p)).is_ok()
        })
        .expect("a free privileged port")
}

#[test]
fn root_drops_into_chroot_as_nobody_without_capabilities() {
    if !is_root() {
        return skip(
            "root_drops_into_chroot_as_nobody_without_capabilities",
            "needs root",
        );
    }
    let dir = TestDir::new();
    let root = dir.path("jail");
    std::fs::create_dir(&root).unwrap();
    let allowed: String = hash(7).iter().map(|b| format!("{b:02x}")).collect();
    std::fs::write(root.join("whitelist.txt"), format!("{allowed}\n")).unwrap();
    let port = privileged_port();
    let toml = format!(
        "[listen]\ntcp_udp = [\"127.0.0.1:{port}\"]\n[tracker]\nuser = \"nobody\"\nrootdir = \"{}\"\n[access]\nwhitelist = \"whitelist.txt\"\n",
        root.display()
    );
    let mut tracker = Tracker::launch_in(
        dir,
        Launch {
            toml,
            own_listeners: true,
            ..Launch::default()
        },
    );
    let pid = tracker.child.id();
    assert_eq!(status_field(pid, "Uid"), "65534\t65534\t65534\t65534");
    assert_eq!(status_field(pid, "Gid"), "65534\t65534\t65534\t65534");
    assert_eq!(status_field(pid, "Groups"), "");
    for cap in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert_eq!(status_field(pid, cap), "0000000000000000", "{cap}");
    }
    assert_eq!(status_field(pid, "NoNewPrivs"), "1");
    assert_eq!(
        std::fs::read_link(format!("/proc/{pid}/root")).unwrap(),
        root
    );

    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let allowed_reply = http(
        addr,
        &format!("GET {} HTTP/1.0\r\n\r\n", announce_path(&hash(7), 1, "")),
    );
    assert!(
        !allowed_reply.text().contains("failure"),
        "{allowed_reply:?}"
    );
    assert_eq!(Udp::new(addr).announce(&hash(7), 1, 0, 0, 5).len(), 26);
    let refused = http(
        addr,
        &format!("GET {} HTTP/1.0\r\n\r\n", announce_path(&hash(8), 1, "")),
    );
    assert!(refused.text().contains("not authorized"));
    // /proc is out of sight in the chroot; the files read for memory and
    // connection tracking were opened before.
    let metrics = http(addr, "GET /metrics HTTP/1.0\r\n\r\n").text();
    assert!(
        metrics.contains("\nprocess_resident_memory_bytes "),
        "{metrics}"
    );
    assert!(
        metrics.contains("\nprocess_virtual_memory_bytes "),
        "{metrics}"
    );
    if std::path::Path::new("/proc/sys/net/netfilter/nf_conntrack_count").exists() {
        assert!(
            metrics.contains("\nopentracker_conntrack_entries "),
            "{metrics}"
        );
    }

    // The list is read inside the chroot on reload.
    let more: String = hash(8).iter().map(|b| format!("{b:02x}")).collect();
    std::fs::write(root.join("whitelist.txt"), format!("{allowed}\n{more}\n")).unwrap();
    tracker.clear_messages();
    tracker.signal("HUP");
    assert!(tracker.wait_for_message("READY=1", Duration::from_secs(10)));
    let now_allowed = http(
        addr,
        &format!("GET {} HTTP/1.0\r\n\r\n", announce_path(&hash(8), 1, "")),
    );
    assert!(!now_allowed.text().contains("failure"), "{now_allowed:?}");
    assert_eq!(tracker.stop().code(), Some(0));
}

/// Waits, at most 15 s, until a tracker started without the harness
/// accepts connections at `addr`.
/// A configuration in `dir` serving 127.0.0.1:`port` and logging to
/// standard error, with `more` after it.
fn logging_to_stderr(dir: &TestDir, port: u16, more: &str) -> std::path::PathBuf {
    dir.write(
        "opentracker.toml",
        &format!("[listen]\ntcp_udp = [\"127.0.0.1:{port}\"]\n[log]\ntarget = \"stderr\"\n{more}"),
    )
}

/// Starts `command`, the tracker or a wrapper that runs it, on `config`,
/// with no service manager around it and its standard error to `stderr`.
fn start_outside_the_harness(
    command: &mut Command,
    config: &std::path::Path,
    stderr: Stdio,
) -> std::process::Child {
    command
        .arg("-f")
        .arg(config)
        .env_remove("NOTIFY_SOCKET")
        .env_remove("LISTEN_FDS")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("start the tracker")
}

fn wait_until_serving(addr: SocketAddr) {
    let started = Instant::now();
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "never served at {addr}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn an_unreachable_notify_socket_is_logged_and_the_tracker_serves() {
    let dir = TestDir::new();
    let port = free_port();
    let config = logging_to_stderr(&dir, port, "");
    let stderr = dir.path("stderr.log");
    let missing = dir.path("gone/notify.sock");
    let mut child = Command::new(BINARY)
        .arg("-f")
        .arg(&config)
        .env("NOTIFY_SOCKET", &missing)
        .env_remove("LISTEN_FDS")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .expect("spawn opentracker");
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    wait_until_serving(addr);
    assert_eq!(Udp::new(addr).announce(&hash(7), 1, 0, 0, 5).len(), 26);
    let _ = child.kill();
    let _ = child.wait();
    let log = std::fs::read_to_string(stderr).unwrap();
    assert!(
        log.contains(&format!(
            "warn: sd_notify: NOTIFY_SOCKET {missing:?}: No such file"
        )) && log.contains("the service manager will hear nothing from the tracker"),
        "{log}"
    );
}

#[test]
fn started_unprivileged_with_a_capability_it_clears_it_once_bound() {
    const TEST: &str = "started_unprivileged_with_a_capability_it_clears_it_once_bound";
    if !is_root() {
        return skip(
            TEST,
            "needs root to start the tracker as nobody with a capability",
        );
    }
    if Command::new("setpriv").arg("--version").output().is_err() {
        return skip(TEST, "needs setpriv (util-linux)");
    }
    let dir = TestDir::new();
    let port = privileged_port();
    let config = logging_to_stderr(&dir, port, "");
    // As a unit with User= and AmbientCapabilities=CAP_NET_BIND_SERVICE.
    let mut setpriv = Command::new("setpriv");
    setpriv
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .args([
            "--inh-caps=+net_bind_service",
            "--ambient-caps=+net_bind_service",
        ])
        .arg(BINARY);
    let mut child = start_outside_the_harness(&mut setpriv, &config, Stdio::null());
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    wait_until_serving(addr);
    // Serving: bound on the low port, then every capability let go.
    let pid = child.id();
    assert_eq!(status_field(pid, "Uid"), "65534\t65534\t65534\t65534");
    for cap in ["CapInh", "CapPrm", "CapEff", "CapAmb"] {
        assert_eq!(status_field(pid, cap), "0000000000000000", "{cap}");
    }
    assert_eq!(status_field(pid, "NoNewPrivs"), "1");
    assert_eq!(Udp::new(addr).announce(&hash(7), 1, 0, 0, 5).len(), 26);
    let _ = child.kill();
    let _ = child.wait();
}

/// A user and a directory given to a tracker not started as root: it
/// cannot change user or chroot, and says so rather than claim a root.
#[test]
fn a_user_given_without_root_is_warned_of_and_no_chroot_is_claimed() {
    let dir = TestDir::new();
    let port = free_port();
    let config = logging_to_stderr(
        &dir,
        port,
        "[tracker]\nuser = \"daemon\"\nrootdir = \"/tmp\"\n",
    );
    let log = dir.path("stderr.log");
    // As root, the test starts it as nobody; otherwise as itself.
    let mut command = if is_root() {
        let mut setpriv = Command::new("setpriv");
        setpriv
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(BINARY);
        setpriv
    } else {
        Command::new(BINARY)
    };
    let stderr = std::fs::File::create(&log).unwrap().into();
    let mut child = start_outside_the_harness(&mut command, &config, stderr);
    let started = Instant::now();
    let text = loop {
        let text = std::fs::read_to_string(&log).unwrap();
        if text.contains(" serving ") || started.elapsed() > Duration::from_secs(15) {
            break text;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        text.contains(
            "warn: tracker.user (daemon) is not taken: only a start as root changes user"
        ),
        "{text}"
    );
    assert!(
        text.contains("(not started as root); working directory /tmp (no chroot);"),
        "{text}"
    );
}

#[test]
fn privilege_errors_are_fatal_with_one_clear_line() {
    if !is_root() {
        return skip(
            "privilege_errors_are_fatal_with_one_clear_line",
            "needs root",
        );
    }
    let dir = TestDir::new();
    let file = dir.write("not-a-dir", "");
    let cases = [
        (
            vec!["-u", "no-such-user-xyz"],
            "tracker.user (-u): user \"no-such-user-xyz\": no such user".to_string(),
        ),
        (
            vec!["-d", "/nonexistent/jail"],
            "tracker.rootdir (-d): chroot /nonexistent/jail: No such file or directory".to_string(),
        ),
        (
            vec!["-d", file.to_str().unwrap()],
            format!(
                "tracker.rootdir (-d): chroot {}: Not a directory",
                file.display()
            ),
        ),
    ];
    for (args, expected) in cases {
        let port = free_port().to_string();
        let mut all = vec!["-i", "127.0.0.1", "-p", &port, "--log", "stderr"];
        all.extend(args);
        let (status, _, stderr) = run_binary(&all);
        assert_eq!(status.code(), Some(111), "{all:?}: {stderr}");
        assert!(stderr.contains(&expected), "{all:?}: {stderr}");
        assert_eq!(
            stderr.lines().filter(|l| l.contains("error")).count(),
            1,
            "{stderr}"
        );
    }
}

/// The environment a process started with, one variable per line. glibc
/// cuts `GLIBC_TUNABLES` at each `:` in place while reading it, so a list
/// of tunables shows as several lines.
fn environment_of(pid: u32) -> String {
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    String::from_utf8_lossy(&environ).replace('\0', "\n")
}

#[test]
fn heap_asks_for_huge_pages_unless_the_operator_said_otherwise() {
    const TEST: &str = "heap_asks_for_huge_pages_unless_the_operator_said_otherwise";
    let thp = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled");
    if !thp.as_deref().is_ok_and(|mode| mode.contains("[madvise]")) {
        skip(TEST, "transparent huge pages are not in madvise mode here");
        return;
    }
    // (GLIBC_TUNABLES given, lines expected in the running tracker's environment)
    let cases: [(Option<&str>, &[&str]); 3] = [
        (None, &["GLIBC_TUNABLES=glibc.malloc.hugetlb=1"]),
        (
            Some("glibc.malloc.arena_max=2"),
            &[
                "GLIBC_TUNABLES=glibc.malloc.arena_max=2",
                "glibc.malloc.hugetlb=1",
            ],
        ),
        (
            Some("glibc.malloc.hugetlb=0"),
            &["GLIBC_TUNABLES=glibc.malloc.hugetlb=0"],
        ),
    ];
    for (given, expected) in cases {
        let mut launch = Launch::default();
        if let Some(value) = given {
            launch.env.push(("GLIBC_TUNABLES".into(), value.into()));
        }
        let mut tracker = Tracker::launch(launch);
        // Ready means it re-executed already, in the same process.
        let environment = environment_of(tracker.child.id());
        let lines: Vec<&str> = environment.lines().collect();
        for line in expected {
            assert!(lines.contains(line), "{given:?}: no {line} in {lines:?}");
        }
        let asked = lines.contains(&"glibc.malloc.hugetlb=1")
            || lines.contains(&"GLIBC_TUNABLES=glibc.malloc.hugetlb=1");
        assert_eq!(asked, given != Some("glibc.malloc.hugetlb=0"), "{given:?}");
        // Started again or not, it goes by its own name: `killall -HUP
        // opentracker` and `pgrep` find it.
        let name = std::fs::read_to_string(format!("/proc/{}/comm", tracker.child.id()));
        assert_eq!(name.unwrap().trim_end(), "opentracker", "{given:?}");
        let reply = Udp::new(tracker.v4()).announce(&hash(1), 6881, 0, 0, 5);
        assert_eq!(be32(&reply, 0), 1, "announce with {given:?}");
        assert!(tracker.stop().success());
    }
}

/// The soft and hard "Max open files" of a process.
fn open_files_limits(pid: u32) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("Max open files");
    let fields: Vec<&str> = line.split_whitespace().collect();
    (fields[3].to_string(), fields[4].to_string())
}

/// Started with the usual soft limit far below what http.max_connections
/// needs, the tracker raises it (no privilege needed up to the hard limit):
/// connections plus 64 descriptors of its own.
#[test]
fn the_open_files_limit_is_raised_to_what_max_connections_needs() {
    let tracker = Tracker::launch(Launch {
        toml: "[http]\nmax_connections = 100\n".into(),
        open_files: Some((32, 4096)),
        ..Launch::default()
    });
    let limits = open_files_limits(tracker.child.id());
    assert_eq!(limits, ("164".to_string(), "4096".to_string()));
    assert!(!tracker.stderr().contains("open files are limited"));
}

/// When the hard limit is too low for http.max_connections, the operator is
/// told at start; once descriptors run out, failed accepts are counted in
/// the status line rather than logged one by one, the waiting clients are
/// served as descriptors free up, and UDP goes on meanwhile.
#[test]
fn running_out_of_descriptors_is_reported_and_survived() {
    let mut tracker = Tracker::launch(Launch {
        open_files: Some((40, 40)),
        ..Launch::default()
    });
    let log = tracker.stderr();
    assert!(
        log.contains(
            "open files are limited to 40 (hard limit 40; ulimit -n, systemd's LimitNOFILE=): \
             about 0 HTTP connections at once rather than http.max_connections = 16384"
        ),
        "{log}"
    );
    // Half a request each: accepted, then held open awaiting the rest; the
    // last ones find no descriptor left and wait in the kernel's queue.
    let mut held: Vec<std::net::TcpStream> = (0..60)
        .map(|_| {
            let mut stream = std::net::TcpStream::connect(tracker.v4()).unwrap();
            std::io::Write::write_all(&mut stream, b"GET /stats?mode=tpbs HTTP/1.0\r\n").unwrap();
            stream
        })
        .collect();
    Udp::new(tracker.v4()).connect();
    assert!(
        tracker.wait_for_message("accepting HTTP connections failed", Duration::from_secs(15)),
        "no status line about failed accepts: {:?}",
        tracker.messages
    );
    let log = tracker.stderr();
    assert!(log.contains("last with: Too many open files"), "{log}");
    // The last client, still waiting to be accepted, is served once the
    // others leave, without any new connection to wake the listener.
    let mut waiting = held.pop().unwrap();
    drop(held);
    waiting
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    std::io::Write::write_all(&mut waiting, b"\r\n").unwrap();
    let mut reply = String::new();
    std::io::Read::read_to_string(&mut waiting, &mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    let reply = tracker.get("/stats?mode=tpbs");
    assert_eq!(reply.status, 200);
    Udp::new(tracker.v4()).connect();
}

/// Runs `test` on a thread in a network namespace of its own, with
/// loopback up and the nftables `ruleset` loaded; the trackers it starts
/// live there too. Needs root, and Linux (unshare, nftables).
#[cfg(target_os = "linux")]
fn in_own_network_namespace(ruleset: &'static str, test: impl FnOnce() + Send + 'static) {
    // A network namespace belongs to the thread that made it: this one, and
    // the processes it starts, get a new one; the test's other threads keep
    // theirs.
    std::thread::spawn(move || {
        // SAFETY: unshare changes only this thread's namespace.
        let unshared = unsafe { libc::unshare(libc::CLONE_NEWNET) };
        assert_eq!(unshared, 0, "unshare: {}", std::io::Error::last_os_error());
        let status = Command::new("ip")
            .args(["link", "set", "lo", "up"])
            .status()
            .expect("run ip");
        assert!(status.success(), "ip link set lo up");
        let mut nft = Command::new("nft")
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .spawn()
            .expect("run nft (Debian package nftables)");
        use std::io::Write;
        nft.stdin
            .take()
            .unwrap()
            .write_all(ruleset.as_bytes())
            .unwrap();
        assert!(nft.wait().unwrap().success(), "nft ruleset");
        test();
    })
    .join()
    .unwrap();
}

#[test]
#[cfg(target_os = "linux")]
fn connection_tracking_is_reported_and_exported() {
    if !is_root() {
        skip(
            "connection_tracking_is_reported_and_exported",
            "needs root: it tracks connections in a network namespace of its own",
        );
        return;
    }
    // A firewall rule that needs connection state turns tracking on.
    let ruleset = "table inet ot_test {\n chain input {\n  type filter hook input priority 0;\n  \
                   ct state established,related accept\n }\n}\n";
    in_own_network_namespace(ruleset, || {
        let mut tracker = Tracker::start("");
        let metrics = tracker.get("/metrics").text();
        assert!(
            metrics.contains("\nopentracker_conntrack_limit "),
            "{metrics}"
        );
        assert_eq!(tracker.metric("opentracker_conntrack_dropped_total"), 0);
        // Every client address and port is a tracked flow.
        for _ in 0..3 {
            Udp::new(tracker.v4()).connect();
        }
        tracker.clear_messages();
        assert!(
            tracker.wait_for_message("STATUS=", Duration::from_secs(15)),
            "no status line"
        );
        let entries = tracker.metric("opentracker_conntrack_entries");
        assert!(entries >= 3, "{entries}");
        let log = tracker.stderr();
        assert!(
            log.contains("connections are tracked in this network namespace ("),
            "{log}"
        );
        assert!(
            log.contains("exempt the tracker's ports (notrack)"),
            "{log}"
        );
    });
}

#[test]
#[cfg(target_os = "linux")]
fn replies_the_system_refuses_to_send_are_counted_and_reported() {
    if !is_root() {
        skip(
            "replies_the_system_refuses_to_send_are_counted_and_reported",
            "needs root: a firewall rule in a network namespace of its own refuses the replies",
        );
        return;
    }
    // Replies to 127.0.0.9 are dropped on their way out: sendmmsg fails.
    let ruleset =
        "table inet ot_test {\n chain output {\n  type filter hook output priority 0;\n  \
                   ip daddr 127.0.0.9 meta l4proto udp drop\n }\n}\n";
    in_own_network_namespace(ruleset, || {
        let mut tracker = Tracker::start("");
        let client = UdpSocket::bind("127.0.0.9:0").unwrap();
        client
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let mut connect = 0x41727101980u64.to_be_bytes().to_vec();
        connect.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 7]);
        for _ in 0..3 {
            client.send_to(&connect, tracker.v4()).unwrap();
        }
        assert!(
            client.recv(&mut [0u8; 64]).is_err(),
            "the rule drops replies"
        );
        assert_eq!(tracker.metric("opentracker_udp_replies_unsent_total"), 3);
        // Others are answered.
        Udp::new(tracker.v4()).connect();
        assert!(
            tracker.wait_for_message("UDP replies could not be sent", Duration::from_secs(15)),
            "no status line about it: {:?}",
            tracker.messages
        );
        let log = tracker.stderr();
        assert!(
            log.contains("3 UDP replies could not be sent in 10 s: the socket refused them"),
            "{log}"
        );
    });
}

#[test]
fn healthcheck_with_the_config_asks_where_it_listens() {
    // HTTP and UDP on ports of their own, neither 6969.
    let (http, udp) = (free_port(), free_port());
    let mut tracker = Tracker::launch(Launch {
        own_listeners: true,
        toml: format!("[listen]\ntcp = [\"127.0.0.1:{http}\"]\nudp = [\"127.0.0.1:{udp}\"]\n"),
        ..Launch::default()
    });
    let config = tracker.dir.path("opentracker.toml");
    let config = config.to_str().unwrap();
    for args in [
        ["--healthcheck", "-f", config],
        ["-f", config, "--healthcheck"],
    ] {
        let (status, _, stderr) = run_binary(&args);
        assert!(status.success(), "{args:?}: {stderr}");
        assert_eq!(stderr, "", "{args:?}");
    }
    tracker.stop();
    let (status, _, stderr) = run_binary(&["--healthcheck", "-f", config]);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with(&format!("opentracker: unhealthy: UDP 127.0.0.1:{udp}: ")),
        "{stderr}"
    );
    // With UDP still there but no HTTP, HTTP is what fails.
    let socket = UdpSocket::bind(("127.0.0.1", udp)).unwrap();
    let answer = std::thread::spawn(move || {
        let mut buf = [0u8; 16];
        let (_, from) = socket.recv_from(&mut buf).unwrap();
        let mut reply = [0u8; 16];
        reply[4..8].copy_from_slice(&buf[12..16]);
        socket.send_to(&reply, from).unwrap();
    });
    let (status, _, stderr) = run_binary(&["--healthcheck", "-f", config]);
    answer.join().unwrap();
    assert!(!status.success());
    assert!(
        stderr.starts_with(&format!("opentracker: unhealthy: HTTP 127.0.0.1:{http}: ")),
        "{stderr}"
    );
}
