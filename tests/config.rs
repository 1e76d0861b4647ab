//! Configuration: upstream's opentracker.conf unchanged, TOML errors with
//! file:line, --check-config, and upstream's command-line flags.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;

#[test]
fn upstream_conf_runs_unchanged() {
    let dir = TestDir::new();
    let port = free_port();
    let list = dir.write(
        "whitelist.txt",
        &format!(
            "{}\n",
            hash(1)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        ),
    );
    let conf = dir.write(
        "opentracker.conf",
        &format!(
            "# opentracker config file, upstream format\n\
             listen.udp.workers 2\n\
             listen.tcp_udp 127.0.0.1:{port}\n\
             listen.udp [::1]:{port}\n\
             access.whitelist {}\n\
             access.stats 127.0.0.1\n\
             access.stats_path ot-stats\n\
             tracker.redirect_url https://example.org/\n",
            list.display()
        ),
    );
    let notify_path = dir.path("notify.sock");
    let notify = std::os::unix::net::UnixDatagram::bind(&notify_path).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut child = std::process::Command::new(BINARY)
        .args(["-f", conf.to_str().unwrap(), "--log", "stderr"])
        .env("NOTIFY_SOCKET", &notify_path)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut buf = [0u8; 512];
    let n = notify.recv(&mut buf).expect("READY=1");
    assert!(String::from_utf8_lossy(&buf[..n]).contains("READY=1"));
    let v4: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    assert_eq!(
        http(v4, "GET /ot-stats?mode=torr HTTP/1.0\r\n\r\n").status,
        200
    );
    assert_eq!(
        http(v4, "GET / HTTP/1.0\r\n\r\n").header("location"),
        Some("https://example.org/")
    );
    let refused = http(
        v4,
        &format!("GET {} HTTP/1.0\r\n\r\n", announce_path(&hash(2), 1, "")),
    );
    assert!(refused.text().contains("not authorized"));
    let v6 = Udp::new(([0u16, 0, 0, 0, 0, 0, 0, 1], port).into());
    assert_eq!(v6.announce(&hash(1), 1, 0, 0, 10).len(), 20 + 18);
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn check_config_prints_effective_configuration() {
    let dir = TestDir::new();
    let good = dir.write("good.toml", "[tracker]\ninterval = 900\n");
    let (status, stdout, _) =
        run_binary(&["--check-config", "-f", good.to_str().unwrap(), "-p", "8080"]);
    assert!(status.success());
    assert!(stdout.contains("interval = 900"), "{stdout}");
    assert!(stdout.contains("\"[::]:8080\""), "{stdout}");
    let (status, stdout, _) = run_binary(&["--check-config"]);
    assert!(status.success());
    assert!(stdout.contains("\"[::]:6969\""), "{stdout}");
}

#[test]
fn check_config_reads_the_lists_as_the_tracker_would() {
    let dir = TestDir::new();
    let white = dir.write(
        "white.txt",
        &format!("{}\n{}\n", "ab".repeat(20), "cd".repeat(20)),
    );
    dir.write("black.txt", &format!("{}  # taken down\n", "cd".repeat(20)));
    dir.write("blocked.txt", "10.0.0.0/8\n");
    // Relative paths resolve against the root directory, as at start.
    let config = dir.write(
        "opentracker.toml",
        &format!(
            "[tracker]\nrootdir = \"{}\"\n[access]\nwhitelist = \"white.txt\"\n\
             blacklist = \"black.txt\"\nblocked_networks = \"blocked.txt\"\n",
            dir.path("").display()
        ),
    );
    let (status, stdout, stderr) = run_binary(&["--check-config", "-f", config.to_str().unwrap()]);
    assert!(status.success(), "{stderr}");
    assert!(
        stdout.ends_with("\n# lists read: whitelist of 2 and blacklist of 1; 1 blocked networks\n"),
        "{stdout}"
    );
    // A bad line: the file and line are named, and the check fails.
    std::fs::write(&white, "ab\n").unwrap();
    let (status, _, stderr) = run_binary(&["--check-config", "-f", config.to_str().unwrap()]);
    assert_eq!(status.code(), Some(1), "{stderr}");
    // Named as the tracker sees it, with where that is.
    assert!(
        stderr.contains("access list white.txt: line 1: expected 40 or 64 hex digits"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&dir.path("").display().to_string()),
        "{stderr}"
    );
    // A missing list too.
    std::fs::remove_file(&white).unwrap();
    let (status, _, stderr) = run_binary(&["--check-config", "-w", "/nonexistent/list"]);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("/nonexistent/list"), "{stderr}");
    let (status, stdout, _) = run_binary(&["--check-config"]);
    assert!(status.success());
    assert!(
        stdout.contains("\n# lists read: no access list\n"),
        "{stdout}"
    );
}

#[test]
fn bad_files_name_file_and_line() {
    let dir = TestDir::new();
    let cases = [
        (
            "unknown.toml",
            "[tracker]\ninterval = 900\nintervall = 5\n",
            ":3: tracker: unknown field `intervall`",
        ),
        // The setting is named, and the type in TOML's terms.
        (
            "numwant.toml",
            "tracker.numwant = -1\n",
            ":1: tracker.numwant: invalid value: integer `-1`, expected a whole number from 0 to 4294967295",
        ),
        (
            "value.toml",
            "[listen]\ntcp = [\"127.0.0.1:99999\"]\n",
            ":2: ",
        ),
        (
            "element.toml",
            "[access]\nproxy = [\n  \"10.0.0.0/8\",\n  \"bogus\",\n]\n",
            ":4: access.proxy: \"bogus\" is not an address or network",
        ),
        (
            "type.toml",
            "[http]\nkeep_alive = \"yes\"\n",
            ":2: http.keep_alive: invalid type: string \"yes\", expected a boolean",
        ),
        (
            "cluster.toml",
            "[cluster]\nlisten = \"127.0.0.1:7000\"\nkey_file = \"k\"\n\
             peers = [\"127.0.0.2:7000\", \"127.0.0.2:7000\"]\n",
            ":4: cluster.peers entry 127.0.0.2:7000 is listed twice or has port 0",
        ),
        (
            "cluster-host.toml",
            "[cluster]\nlisten = \"127.0.0.1:7000\"\nkey_file = \"k\"\n\
             peers = [\n  \"127.0.0.2:7000\",\n  \"tracker-b:7000\",\n]\n",
            ":6: cluster.peers: \"tracker-b:7000\" is not an address and port (expected \
             ip:port or [ipv6]:port; host names are not looked up)",
        ),
        (
            "legacy.conf",
            "listen.tcp_udp 127.0.0.1\naccess.whitelst /x\n",
            ":2: unknown key \"access.whitelst\"",
        ),
        // Settings that do not go together name the line of one of them,
        // in the file's own terms.
        (
            "workers.toml",
            "[listen]\nudp_workers = 300\n",
            ":2: listen.udp_workers (300) must be at most 256",
        ),
        (
            "pace.toml",
            "[tracker]\nmax_announce_rate = 1000\nmax_interval = 900\n",
            ":3: tracker.max_interval (900) is below tracker.interval (1800)",
        ),
        (
            "sweep.toml",
            "[tracker]\n# only the timeout was changed\npeer_timeout = 5\n",
            ":3: tracker.sweep_interval (60) must be under 6 times tracker.peer_timeout (5)",
        ),
        (
            "workers.conf",
            "listen.udp.workers 300\nlisten.udp 127.0.0.1:0\n",
            ":1: listen.udp.workers (300) must be at most 256",
        ),
        // A statistics path upstream's routing never reaches.
        (
            "stats.toml",
            "[access]\nstats_path = \"admin\"\n",
            ":2: access.stats_path \"admin\" would never be reached: paths starting with \"a\" are announces",
        ),
        (
            "stats.conf",
            "access.stats_path /st=ts\n",
            ":1: access.stats_path \"st=ts\" would never be reached: a path holding '&', '=' or '@' is not found",
        ),
        (
            "fifo.conf",
            "# no list\n\naccess.fifo_add /run/add.fifo\n",
            ":3: access.fifo_add and access.fifo_delete change an access list",
        ),
    ];
    for (name, text, expected) in cases {
        let path = dir.write(name, text);
        let (status, _, stderr) = run_binary(&["--check-config", "-f", path.to_str().unwrap()]);
        assert_eq!(status.code(), Some(1), "{name}");
        assert!(
            stderr.contains(&format!("{}{expected}", path.display()))
                || (!expected.starts_with(':') && stderr.contains(expected)),
            "{name}: {stderr}"
        );
        // The same file never starts a tracker.
        let (status, _, _) = run_binary(&["-f", path.to_str().unwrap()]);
        assert_eq!(status.code(), Some(1), "{name}");
    }
    let (status, _, stderr) = run_binary(&["-f", dir.path("missing.toml").to_str().unwrap()]);
    assert_eq!(status.code(), Some(1));
    assert!(stderr.contains("cannot read"), "{stderr}");
}

#[test]
fn upstream_flags() {
    let (status, stdout, _) = run_binary(&["-h"]);
    assert!(status.success() && stdout.contains("-P port"));
    let (status, _, stderr) = run_binary(&["-v"]);
    assert!(status.success(), "{stderr}");
    let (status, _, stderr) = run_binary(&["-Z"]);
    assert_eq!(status.code(), Some(1));
    assert!(stderr.contains("Usage:"));
    let (status, stdout, _) = run_binary(&[
        "--check-config",
        "-i",
        "127.0.0.1",
        "-p",
        "81",
        "-P",
        "82",
        "-r",
        "http://cli/",
        "-A",
        "10.0.0.0/8",
    ]);
    assert!(status.success());
    assert!(
        stdout.contains("tcp = [\"127.0.0.1:81\"]") && stdout.contains("udp = [\"127.0.0.1:82\"]"),
        "{stdout}"
    );
    assert!(
        stdout.contains("redirect_url = \"http://cli/\""),
        "{stdout}"
    );
}

#[test]
fn cli_overrides_file() {
    let tracker = Tracker::launch(Launch {
        toml: "[tracker]\nredirect_url = \"http://file/\"\n".into(),
        args: vec!["-r".into(), "http://cli/".into()],
        ..Launch::default()
    });
    assert_eq!(tracker.get("/").header("location"), Some("http://cli/"));
}

#[test]
fn port_in_use_is_a_clear_fatal_error() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    let (status, _, stderr) = run_binary(&[
        "-i",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "--log",
        "stderr",
    ]);
    assert_eq!(status.code(), Some(111));
    assert!(
        stderr.contains(&format!(
            "bind TCP 127.0.0.1:{port}: Address already in use"
        )),
        "{stderr}"
    );
    assert_eq!(
        stderr.lines().filter(|l| l.contains("error")).count(),
        1,
        "one line: {stderr}"
    );
}

#[test]
fn several_upstream_files_add_up_and_a_failed_check_prints_no_configuration() {
    let dir = TestDir::new();
    let port = free_port();
    let first = dir.write(
        "a.conf",
        &format!("listen.tcp_udp 127.0.0.1:{port} # main\ntracker.user daemon\n"),
    );
    let second = dir.write("b.conf", &format!("listen.udp [::1]:{port}\n"));
    let (first, second) = (first.to_str().unwrap(), second.to_str().unwrap());
    let (status, stdout, stderr) = run_binary(&["--check-config", "-f", first, "-f", second]);
    assert!(status.success(), "{stderr}");
    assert!(stdout.contains(&format!("127.0.0.1:{port}")), "{stdout}");
    assert!(stdout.contains(&format!("[::1]:{port}")), "{stdout}");
    assert!(stdout.contains("user = \"daemon\""), "{stdout}");
    // A file of comments alone, as upstream's sample is, adds nothing.
    let comments = dir.write("sample.conf", "# listen.tcp_udp 0.0.0.0\n\n");
    let comments = comments.to_str().unwrap();
    let (status, again, stderr) =
        run_binary(&["--check-config", "-f", first, "-f", comments, "-f", second]);
    assert!(status.success(), "{stderr}");
    assert_eq!(again, stdout);

    // An error that the files make together names the line that set it.
    let fifo = dir.write("fifo.conf", "access.fifo_delete /run/delete.fifo\n");
    let fifo = fifo.to_str().unwrap();
    let (status, _, stderr) = run_binary(&["--check-config", "-f", fifo, "-f", second]);
    assert_eq!(status.code(), Some(1));
    assert!(
        stderr.contains(&format!("{fifo}:1: access.fifo_add and access.fifo_delete")),
        "{stderr}"
    );

    let toml = dir.write("c.toml", "[tracker]\ninterval = 900\n");
    let (status, _, stderr) = run_binary(&["-f", first, "-f", toml.to_str().unwrap()]);
    assert_eq!(status.code(), Some(1));
    assert!(
        stderr.contains("a TOML configuration comes alone"),
        "{stderr}"
    );

    let (status, stdout, stderr) = run_binary(&["--check-config", "-w", "/nonexistent/list"]);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert_eq!(
        stdout, "",
        "a failed check leaves nothing to redirect into a file"
    );
}

#[test]
fn check_config_as_root_reads_the_lists_as_the_tracker_user() {
    const TEST: &str = "check_config_as_root_reads_the_lists_as_the_tracker_user";
    if !is_root() {
        skip(TEST, "needs root to drop to the tracker's user");
        return;
    }
    let dir = TestDir::new();
    dir.writable_by_tracker();
    let list = dir.write("white.txt", &format!("{}:a name\n", "ab".repeat(20)));
    let path = list.to_str().unwrap();
    let (status, stdout, stderr) = run_binary(&["--check-config", "-w", path]);
    assert!(status.success(), "{stderr}");
    assert!(
        stdout.ends_with("# lists read: whitelist of 1\n"),
        "{stdout}"
    );
    // Readable by root alone: the tracker, as nobody, could not start.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&list, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (status, _, stderr) = run_binary(&["--check-config", "-w", path]);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("Permission denied"), "{stderr}");
    assert!(stderr.contains("read as user nobody"), "{stderr}");
}

#[test]
fn check_config_opens_the_fifos_and_reads_the_state_file_as_the_start_would() {
    let dir = TestDir::new();
    dir.writable_by_tracker();
    let white = dir.write("white.txt", &format!("{}\n", "ab".repeat(20)));
    let (fifo, missing) = (dir.path("add.fifo"), dir.path("delete.fifo"));
    let made = Command::new("mkfifo")
        .args(["-m", "666"])
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(made.success());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let state = dir.write(
        "state",
        &format!(
            "# opentracker state 1\n{}:{}:3\n\t127.0.0.1 6881 s {now}\n",
            "AB".repeat(20),
            now / 60
        ),
    );
    let config = dir.write(
        "opentracker.toml",
        &format!(
            "[tracker]\nstate_file = \"{}\"\nsave_state = true\n[access]\nwhitelist = \"{}\"\n\
             fifo_add = \"{}\"\nfifo_delete = \"{}\"\n",
            state.display(),
            white.display(),
            fifo.display(),
            missing.display()
        ),
    );
    // A save the running tracker is writing: the check must not touch it.
    let in_progress = dir.write("state.new", "a save being written\n");
    let check = || run_binary(&["--check-config", "-f", config.to_str().unwrap()]);
    let (status, stdout, stderr) = check();
    assert!(status.success(), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(&in_progress).unwrap(),
        "a save being written\n",
        "a save in progress is left alone"
    );
    std::fs::remove_file(&in_progress).unwrap();
    for said in [
        format!(
            "\n# access.fifo_add {}: a FIFO, opened for reading\n",
            fifo.display()
        ),
        format!(
            "\n# access.fifo_delete {}: missing; made at start\n",
            missing.display()
        ),
        format!(
            "\n# state file {}: 1 torrents and 1 peers, loaded at start\n",
            state.display()
        ),
    ] {
        assert!(stdout.contains(&said), "{said:?} in {stdout}");
    }
    assert!(!missing.exists(), "a check makes no FIFO");
    let left: Vec<_> = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.starts_with("state."))
        .collect();
    assert!(left.is_empty(), "nor leaves a file behind: {left:?}");

    // A bad state file: the start would load nothing from it and carry on,
    // so the check warns and passes.
    std::fs::write(&state, "not a state\n").unwrap();
    let (status, stdout, stderr) = check();
    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("warning: state file {}:1: ", state.display()))
            && stderr.contains(&format!(
                "; the tracker would load nothing from it, and move it to {}.unloaded-",
                state.display()
            )),
        "{stderr}"
    );
    assert!(state.exists(), "a check moves nothing");
    assert!(!stdout.contains("# state file"), "{stdout}");

    // Something else where a FIFO goes fails the start, and so the check.
    std::fs::write(&missing, "").unwrap();
    let (status, stdout, stderr) = check();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "access.fifo_delete {}: exists and is not a FIFO",
            missing.display()
        )),
        "{stderr}"
    );
    assert_eq!(stdout, "");
    std::fs::remove_file(&missing).unwrap();

    // So do a FIFO that cannot be made and a state that cannot be saved.
    let without_fifos = dir.write(
        "saves.toml",
        &format!(
            "[tracker]\nstate_file = \"{}\"\nsave_state = true\n",
            state.display()
        ),
    );
    dir.unwritable_by_tracker();
    let (status, _, stderr) = check();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "access.fifo_delete {}: missing, and cannot be made in {}: Permission denied",
            missing.display(),
            dir.0.display()
        )),
        "{stderr}"
    );
    let (status, _, stderr) =
        run_binary(&["--check-config", "-f", without_fifos.to_str().unwrap()]);
    assert_eq!(status.code(), Some(1), "{stderr}");
    // The user the check ran as: nobody when started as root.
    let uid = if is_root() {
        65534
    } else {
        // SAFETY: geteuid has no preconditions.
        unsafe { libc::geteuid() }
    };
    assert!(
        stderr.contains(&format!(
            "with tracker.save_state the directory must be writable by the tracker's \
             user, uid {uid}"
        )),
        "{stderr}"
    );
}

/// What the start opens before it drops privileges, the check opens too:
/// the cluster's key and the syslog socket.
#[test]
fn check_config_reads_the_cluster_key_and_reaches_syslog_as_the_start_would() {
    let dir = TestDir::new();
    let key = dir.write("cluster.key", "abc\n");
    let socket_path = dir.path("log.sock");
    let _syslog = std::os::unix::net::UnixDatagram::bind(&socket_path).unwrap();
    let config = |target: &str, socket: &std::path::Path| {
        dir.write(
            "opentracker.toml",
            &format!(
                "[log]\ntarget = \"{target}\"\nsyslog_socket = \"{}\"\n[cluster]\n\
                 listen = \"127.0.0.1:1\"\npeers = [\"127.0.0.1:2\"]\nkey_file = \"{}\"\n",
                socket.display(),
                key.display()
            ),
        )
    };
    let check =
        |file: std::path::PathBuf| run_binary(&["--check-config", "-f", file.to_str().unwrap()]);

    let (status, stdout, stderr) = check(config("syslog", &socket_path));
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains(&format!(
            "cluster.key_file {}: the key has 3 bytes",
            key.display()
        )),
        "{stderr}"
    );

    std::fs::write(&key, "0123456789abcdef0123456789abcdef\n").unwrap();
    let (status, stdout, stderr) = check(config("syslog", &socket_path));
    assert!(status.success(), "{stderr}");
    assert!(
        stdout.contains(&format!(
            "\n# log: to syslog socket {}\n",
            socket_path.display()
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "\n# cluster.key_file {}: a key of 32 bytes\n",
            key.display()
        )),
        "{stdout}"
    );

    let nowhere = dir.path("no.sock");
    let (status, stdout, stderr) = check(config("syslog", &nowhere));
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains(&format!("syslog socket {}", nowhere.display())),
        "{stderr}"
    );
    // Left to choose, the start falls back to standard error: no error.
    let (status, stdout, stderr) = check(config("auto", &nowhere));
    assert!(status.success(), "{stderr}");
    assert!(stdout.contains("\n# log: to standard error ("), "{stdout}");
}

#[test]
fn answers_to_a_reader_gone_early_or_a_full_disk_end_without_a_panic() {
    // The reader (`true`) is gone before the answer is written, as with
    // `| head` on a longer one.
    for args in ["--help", "--version", "--check-config"] {
        let script = format!("( sleep 0.3; \"$0\" {args}; echo \"status $?\" >&2 ) | true");
        let output = Command::new("sh")
            .args(["-c", &script, BINARY])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("status 1"), "{args}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args}: {stderr}");
    }
    let full = std::fs::File::options()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let output = Command::new(BINARY)
        .arg("--check-config")
        .stdout(full)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("opentracker: standard output: No space left on device"),
        "{stderr}"
    );
}

/// A configuration piped in (`-f /dev/stdin`, as `-f <(…)`) is read to its
/// end; a named FIFO is refused (tests/access_list.rs).
#[test]
fn a_piped_configuration_is_read() {
    use std::io::Write;
    use std::process::Stdio;
    let mut check = Command::new(BINARY)
        .args(["--check-config", "-f", "/dev/stdin"])
        .env_remove("LISTEN_FDS")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    check
        .stdin
        .take()
        .unwrap()
        .write_all(b"[tracker]\ninterval = 1234\n")
        .unwrap();
    let output = check.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("\ninterval = 1234\n"),
        "{stderr}"
    );
}
