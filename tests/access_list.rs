//! White- and blacklists, SIGHUP reload, and bad list files.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;

fn hex(bytes: &[u8; 20]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn http_allowed(tracker: &Tracker, n: u8) -> bool {
    let text = tracker.get(&announce_path(&hash(n), 1, "")).text();
    if text.contains("failure reason") {
        assert_eq!(
            text,
            "d14:failure reason63:Requested download is not authorized for use with this tracker.e"
        );
        false
    } else {
        true
    }
}

fn udp_allowed(tracker: &Tracker, n: u8) -> bool {
    let reply = Udp::new(tracker.v4()).announce(&hash(n), 1, 0, 0, 10);
    reply.len() != 8
}

/// Asserts that the log names the bad line of a reload and the list kept.
fn assert_reload_kept_the_old_list(tracker: &Tracker, error: &str, kept: &str) {
    let log = tracker.stderr();
    assert!(log.contains(error), "{log}");
    assert!(log.contains(kept), "{log}");
}

/// A tracker whose whitelist, in `dir`, holds `contents`; and the list's path.
fn with_whitelist(dir: TestDir, contents: impl AsRef<[u8]>) -> (Tracker, std::path::PathBuf) {
    let list = dir.write_bytes("whitelist.txt", contents.as_ref());
    let toml = format!("[access]\nwhitelist = \"{}\"\n", list.display());
    let launch = Launch {
        toml,
        ..Launch::default()
    };
    (Tracker::launch_in(dir, launch), list)
}

#[test]
fn whitelist_reloads_on_sighup_and_keeps_old_list_on_errors() {
    let dir = TestDir::new();
    let (mut tracker, list) =
        with_whitelist(dir, format!("# allowed torrents\n{}\n", hex(&hash(1))));
    assert!(http_allowed(&tracker, 1));
    assert!(!http_allowed(&tracker, 2));
    assert!(!udp_allowed(&tracker, 2));
    // A refused torrent is never created, so scrapes don't show it.
    assert_eq!(
        tracker
            .get(&format!("/scrape?info_hash={}", urlencode(&hash(2))))
            .body,
        b"d5:filesdee"
    );

    std::fs::write(
        &list,
        format!("{}\n{}  # added later\n", hex(&hash(1)), hex(&hash(2))),
    )
    .unwrap();
    tracker.reload();
    assert!(http_allowed(&tracker, 2));
    assert!(udp_allowed(&tracker, 2));

    // A malformed file: error naming file and line, old list kept.
    std::fs::write(&list, format!("{}\nnot-a-hash\n", hex(&hash(3)))).unwrap();
    tracker.reload();
    assert!(http_allowed(&tracker, 2));
    assert!(!http_allowed(&tracker, 3));
    assert_reload_kept_the_old_list(
        &tracker,
        &format!(
            "access list {}: line 2: expected 40 or 64 hex digits",
            list.display()
        ),
        "keeping the previous whitelist of 2",
    );
    // The service manager's status says so too, until a reload succeeds.
    const KEPT: &str = "the last reload failed and kept the previous access (the log says why)";
    assert!(
        tracker.wait_for_message(KEPT, Duration::from_secs(1)),
        "{:?}",
        tracker.messages
    );
    // And /metrics, for alerts that fire while it lasts.
    let failing = |tracker: &Tracker| list_metric(tracker, "list_reload_failing", "access");
    assert_eq!(failing(&tracker), Some(1));

    // An unreadable (here: missing) file: same.
    std::fs::remove_file(&list).unwrap();
    tracker.reload();
    assert!(http_allowed(&tracker, 2));
    assert!(tracker.stderr().contains("No such file"));
    assert!(tracker.is_alive());
    assert!(tracker.wait_for_message(KEPT, Duration::from_secs(1)));

    std::fs::write(&list, format!("{}\n", hex(&hash(3)))).unwrap();
    let ready = tracker.reload();
    assert!(http_allowed(&tracker, 3));
    assert!(
        ready.contains("STATUS=") && !ready.contains(KEPT),
        "{ready}"
    );
    assert_eq!(failing(&tracker), Some(0));
}

#[test]
fn a_whitelist_replaced_by_a_fifo_is_refused_at_reload_not_waited_for() {
    let dir = TestDir::new();
    let (mut tracker, list) = with_whitelist(dir, format!("{}\n", hex(&hash(1))));
    std::fs::remove_file(&list).unwrap();
    make_fifo(&list);
    // Bounded: READY=1 comes, where opening the FIFO waited for a writer.
    tracker.reload();
    assert_reload_kept_the_old_list(
        &tracker,
        &format!(
            "access list {}: not a regular file (a FIFO)",
            list.display()
        ),
        "keeping the previous whitelist of 1",
    );
    assert!(http_allowed(&tracker, 1));
    // The next reload is not stuck behind it.
    std::fs::remove_file(&list).unwrap();
    std::fs::write(&list, format!("{}\n", hex(&hash(2)))).unwrap();
    tracker.reload();
    assert!(http_allowed(&tracker, 2));
    assert!(!http_allowed(&tracker, 1));
}

#[test]
fn a_fifo_for_a_list_or_the_configuration_fails_at_once() {
    const AT_ONCE: Duration = Duration::from_secs(10);
    let dir = TestDir::new();
    let fifo = dir.path("whitelist.fifo");
    make_fifo(&fifo);
    let config = dir.write(
        "c.toml",
        &format!(
            "[listen]\ntcp_udp = [\"127.0.0.1:{}\"]\n[access]\nwhitelist = \"{}\"\n\
             [log]\ntarget = \"stderr\"\n",
            free_port(),
            fifo.display()
        ),
    );
    let expected = format!(
        "access list {}: not a regular file (a FIFO)",
        fifo.display()
    );
    let (status, _, stderr) = run_binary_within(&["-f", config.to_str().unwrap()], AT_ONCE);
    assert_eq!(status.code(), Some(111), "{stderr}");
    assert!(stderr.contains(&expected), "{stderr}");
    let (status, stdout, stderr) =
        run_binary_within(&["--check-config", "-f", config.to_str().unwrap()], AT_ONCE);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&expected) && stdout.is_empty(), "{stderr}");
    // The configuration file itself, which is read from a pipe (in
    // tests/config.rs) but not from a named FIFO no one writes to.
    let (status, _, stderr) = run_binary_within(&["-f", fifo.to_str().unwrap()], AT_ONCE);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{}: cannot read: a named FIFO, which would wait for a writer: pipe it in instead \
             (as /dev/stdin)",
            fifo.display()
        )),
        "{stderr}"
    );
}

#[test]
fn blacklist_and_v2_hashes() {
    let dir = TestDir::new();
    let mut v2 = hash(5).to_vec();
    v2.extend_from_slice(&[0xee; 12]);
    let v2_hex: String = v2.iter().map(|b| format!("{b:02X}")).collect();
    let list = dir.write("blacklist.txt", &format!("{v2_hex}\n"));
    let tracker = Tracker::launch_in(
        dir,
        Launch {
            toml: format!("[access]\nblacklist = \"{}\"\n", list.display()),
            ..Launch::default()
        },
    );
    assert!(
        !http_allowed(&tracker, 5),
        "a 64-hex v2 entry blocks its 20-byte truncation"
    );
    assert!(http_allowed(&tracker, 6));
    assert!(!udp_allowed(&tracker, 5));
}

/// The value of the sample `name` (with its labels) in `/metrics`.
fn metric(tracker: &Tracker, name: &str) -> Option<u64> {
    let text = tracker.get("/metrics").text();
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// The sample of metric family `family` labelled with `list`.
fn list_metric(tracker: &Tracker, family: &str, list: &str) -> Option<u64> {
    metric(tracker, &format!("opentracker_{family}{{list=\"{list}\"}}"))
}

#[test]
fn whitelist_and_blacklist_together_with_their_metrics() {
    let dir = TestDir::new();
    dir.writable_by_tracker();
    let white = dir.write(
        "whitelist.txt",
        &format!("{}\n{}\n{}\n", hex(&hash(1)), hex(&hash(2)), hex(&hash(3))),
    );
    let black = dir.write(
        "blacklist.txt",
        &format!("{}  # taken down\n", hex(&hash(2))),
    );
    let add = dir.path("add");
    let toml = format!(
        "[access]\nwhitelist = \"{}\"\nblacklist = \"{}\"\nfifo_add = \"{}\"\n",
        white.display(),
        black.display(),
        add.display()
    );
    let mut tracker = Tracker::start_in(dir, toml);
    assert!(tracker
        .stderr()
        .contains("; whitelist of 3 and blacklist of 1"));
    assert!(http_allowed(&tracker, 1), "listed, not taken down");
    assert!(!http_allowed(&tracker, 2), "taken down");
    assert!(!udp_allowed(&tracker, 2), "taken down");
    assert!(!http_allowed(&tracker, 4), "not listed");
    assert!(udp_allowed(&tracker, 3));
    assert_eq!(
        (
            list_metric(&tracker, "list_entries", "whitelist"),
            list_metric(&tracker, "list_entries", "blacklist")
        ),
        (Some(3), Some(1))
    );
    assert_eq!(
        list_metric(&tracker, "list_entries", "blocked_networks"),
        None,
        "not set"
    );
    assert_eq!(
        metric(&tracker, "opentracker_announces_not_authorized_total"),
        Some(3)
    );
    let loaded = metric(
        &tracker,
        "opentracker_list_loaded_timestamp_seconds{list=\"access\"}",
    );
    assert!(loaded.unwrap() > 1_700_000_000, "{loaded:?}");

    // A changeset edits the whitelist; the blacklist still wins.
    write_fifo(&add, &format!("{}\n{}\n", hex(&hash(4)), hex(&hash(2))));
    tracker.wait_for_log("1 hashes added (1 already so); whitelist of 4 and blacklist of 1");
    assert!(http_allowed(&tracker, 4));
    assert!(!http_allowed(&tracker, 2));

    // Lifting the takedown: reload, and the whitelist's file is read again too.
    std::fs::write(&black, "# nothing taken down\n").unwrap();
    tracker.reload();
    assert!(http_allowed(&tracker, 2));
    assert!(!http_allowed(&tracker, 4), "the changeset is gone");
    assert_eq!(
        (
            list_metric(&tracker, "list_entries", "whitelist"),
            list_metric(&tracker, "list_entries", "blacklist")
        ),
        (Some(3), Some(0))
    );
    assert_eq!(
        (
            list_metric(&tracker, "list_reloads_total", "access"),
            list_metric(&tracker, "list_reload_failures_total", "access")
        ),
        (Some(1), Some(0))
    );

    // A bad blacklist keeps both old lists, and is counted.
    std::fs::write(&black, format!("{}\n{}0\n", hex(&hash(1)), hex(&hash(3)))).unwrap();
    tracker.reload();
    assert_reload_kept_the_old_list(
        &tracker,
        &format!("access list {}: line 2", black.display()),
        "keeping the previous whitelist of 3 and blacklist of 0",
    );
    assert!(http_allowed(&tracker, 1));
    assert_eq!(
        (
            list_metric(&tracker, "list_reloads_total", "access"),
            list_metric(&tracker, "list_reload_failures_total", "access")
        ),
        (Some(1), Some(1))
    );
}

#[test]
fn bad_list_at_start_is_fatal() {
    let dir = TestDir::new();
    let list = dir.write("whitelist.txt", "0123\n");
    let config = dir.write("c.toml", &format!("[listen]\ntcp_udp = [\"127.0.0.1:{}\"]\n[access]\nwhitelist = \"{}\"\n[log]\ntarget = \"stderr\"\n", free_port(), list.display()));
    let (status, _, stderr) = run_binary(&["-f", config.to_str().unwrap()]);
    assert!(!status.success());
    assert!(stderr.contains("whitelist.txt: line 1"), "{stderr}");
    let missing = dir.write("c2.toml", &format!("[listen]\ntcp_udp = [\"127.0.0.1:{}\"]\n[access]\nwhitelist = \"{}\"\n[log]\ntarget = \"stderr\"\n", free_port(), dir.path("absent").display()));
    let (status, _, stderr) = run_binary(&["-f", missing.to_str().unwrap()]);
    assert!(!status.success());
    assert!(stderr.contains("absent: No such file"), "{stderr}");

    // Unreadable: as root the tracker drops to nobody before reading, so a
    // root-only file cannot be opened.
    if is_root() {
        use std::os::unix::fs::PermissionsExt;
        let secret = dir.write("secret.txt", "");
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
        let config = dir.write("c3.toml", &format!("[listen]\ntcp_udp = [\"127.0.0.1:{}\"]\n[access]\nwhitelist = \"{}\"\n[log]\ntarget = \"stderr\"\n", free_port(), secret.display()));
        let (status, _, stderr) = run_binary(&["-f", config.to_str().unwrap()]);
        assert!(!status.success());
        assert!(stderr.contains("secret.txt: Permission denied"), "{stderr}");
    } else {
        skip(
            "bad_list_at_start_is_fatal (unreadable file)",
            "needs root to drop to nobody",
        );
    }
}

#[test]
fn a_windows_whitelist_with_latin1_names_is_read() {
    let file = [
        b"\xEF\xBB\xBF# Torrents de l'\xe9t\xe9\r\n".as_slice(),
        hex(&hash(1)).as_bytes(),
        b" Caf\xe9\r\n",
        hex(&hash(2)).as_bytes(),
        b"\r\n",
    ]
    .concat();
    let (tracker, _) = with_whitelist(TestDir::new(), file);
    assert!(http_allowed(&tracker, 1), "{}", tracker.stderr());
    assert!(http_allowed(&tracker, 2) && udp_allowed(&tracker, 2));
    assert!(!http_allowed(&tracker, 3));
}

#[test]
fn two_hashes_on_one_line_are_an_error() {
    let dir = TestDir::new();
    let two_on_line_2 = format!("{}\n{} {}\n", hex(&hash(1)), hex(&hash(2)), hex(&hash(3)));
    let list = dir.write("whitelist.txt", &two_on_line_2);
    let config = dir.write(
        "c.toml",
        &format!("[access]\nwhitelist = \"{}\"\n", list.display()),
    );
    let (status, _, stderr) = run_binary(&["--check-config", "-f", config.to_str().unwrap()]);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("whitelist.txt: line 2: expected one hash a line (two hashes on one line)"),
        "{stderr}"
    );
}

/// What an HTTP announce for torrent 9 from `address` (forwarded by the
/// trusted proxy the test tracker has) gets: true when served, false when
/// refused with the failure reason `refusal`.
fn forwarded_announce_served(tracker: &Tracker, address: &str, refusal: &str) -> bool {
    let request = format!(
        "GET {} HTTP/1.0\r\nX-Forwarded-For: {address}\r\n\r\n",
        announce_path(&hash(9), 6881, "")
    );
    let text = http(tracker.v4(), &request).text();
    if text.contains("failure reason") {
        assert_eq!(
            text,
            format!("d14:failure reason{}:{refusal}e", refusal.len())
        );
        false
    } else {
        true
    }
}

const NETWORK_BLOCKED: &str = "Your network is not allowed on this tracker.";
const RATE_LIMITED: &str = "Too many requests from your network; try again later.";

fn network_allowed(tracker: &Tracker, address: &str) -> bool {
    forwarded_announce_served(tracker, address, NETWORK_BLOCKED)
}

/// Whether a UDP connect sent from `local` (a loopback address) is answered.
fn udp_answered_from(tracker: &Tracker, local: &str) -> bool {
    udp_answers_from(tracker, local, 1) == 1
}

#[test]
fn blocked_networks_are_refused_and_reload_on_sighup() {
    let dir = TestDir::new();
    let list = dir.write(
        "blocked-networks",
        "# abusive ranges\n10.1.0.0/16\n2001:db8:bad::/48  # a site\n127.0.0.2\n",
    );
    let toml = format!(
        "[access]\nproxy = [\"127.0.0.1\"]\nblocked_networks = \"{}\"\n",
        list.display()
    );
    let mut tracker = Tracker::start_in(dir, toml);
    assert!(tracker.stderr().contains("; 3 blocked networks"));
    assert!(!network_allowed(&tracker, "10.1.2.3"));
    assert!(!network_allowed(&tracker, "2001:db8:bad:1::9"));
    assert!(network_allowed(&tracker, "10.2.0.1"));
    assert!(network_allowed(&tracker, "2001:db8:beef::9"));
    let scrape = format!(
        "GET /scrape?info_hash={} HTTP/1.0\r\nX-Forwarded-For: 10.1.9.9\r\n\r\n",
        urlencode(&hash(9))
    );
    assert!(http(tracker.v4(), &scrape)
        .text()
        .contains("Your network is not allowed"));
    // Over UDP a blocked source gets no answer at all.
    assert!(!udp_answered_from(&tracker, "127.0.0.2"));
    assert!(udp_answered_from(&tracker, "127.0.0.3"));
    // The refused peers were never stored: two peers announced.
    assert_eq!(scrape_counts(&tracker, 9), Some((0, 2, 0)));
    let metrics = tracker.get("/metrics").text();
    assert!(
        metrics
            .lines()
            .any(|l| l == "opentracker_blocked_network_requests_total 4"),
        "{metrics}"
    );

    std::fs::write(&list, "10.2.0.0/16\n").unwrap();
    tracker.reload();
    assert!(tracker
        .stderr()
        .contains("blocked networks reloaded: 1 entries"));
    assert!(network_allowed(&tracker, "10.1.2.3"));
    assert!(!network_allowed(&tracker, "10.2.0.1"));
    assert!(udp_answered_from(&tracker, "127.0.0.2"));

    // A malformed file: error naming file and line, old list kept.
    std::fs::write(&list, "10.3.0.0/16\n10.4.0.0/33\n").unwrap();
    tracker.reload();
    assert_reload_kept_the_old_list(
        &tracker,
        &format!(
            "blocked networks {}: line 2: expected an address or a network",
            list.display()
        ),
        "keeping the previous 1 blocked networks",
    );
    assert!(!network_allowed(&tracker, "10.2.0.1"));
    assert!(network_allowed(&tracker, "10.3.0.1"));
    assert!(tracker.is_alive());
}

#[test]
fn a_bad_blocked_networks_file_at_start_is_fatal() {
    let dir = TestDir::new();
    let list = dir.write("blocked", "192.0.2.0/24\nexample.org\n");
    let config = dir.write(
        "c.toml",
        &format!(
            "[listen]\ntcp_udp = [\"127.0.0.1:{}\"]\n[access]\nblocked_networks = \"{}\"\n[log]\ntarget = \"stderr\"\n",
            free_port(),
            list.display()
        ),
    );
    let (status, _, stderr) = run_binary(&["-f", config.to_str().unwrap()]);
    assert!(!status.success());
    assert!(
        stderr.contains("blocked: line 2: expected an address or a network"),
        "{stderr}"
    );
}

#[test]
fn udp_worker_threads_follow_a_reloaded_network_list() {
    let dir = TestDir::new();
    let list = dir.write("blocked", "127.0.0.2\n");
    let toml = format!("[access]\nblocked_networks = \"{}\"\n", list.display());
    let mut tracker = Tracker::launch_in(
        dir,
        Launch {
            toml,
            listen: "udp_workers = 2".into(),
            ..Launch::default()
        },
    );
    assert!(!udp_answered_from(&tracker, "127.0.0.2"));
    assert!(udp_answered_from(&tracker, "127.0.0.4"));
    std::fs::write(&list, "127.0.0.4\n").unwrap();
    tracker.reload();
    // Each worker picks the new list up at its next batch.
    assert!(udp_answered_from(&tracker, "127.0.0.2"));
    assert!(!udp_answered_from(&tracker, "127.0.0.4"));
}

/// How many of `n` UDP connects sent at once from `local` are answered.
/// How many of `n` scrapes sent at once from `local` are answered. The
/// connect before them is not counted by the rate limit: its source is not
/// proven, and a forged one would use up another network's allowance.
fn udp_answers_from(tracker: &Tracker, local: &str, n: usize) -> usize {
    let socket = std::net::UdpSocket::bind((local, 0)).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(700)))
        .unwrap();
    let mut connect = 0x41727101980u64.to_be_bytes().to_vec();
    connect.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 7]);
    socket.send_to(&connect, tracker.v4()).unwrap();
    let mut reply = [0u8; 64];
    let Ok(16) = socket.recv(&mut reply) else {
        return 0;
    };
    let mut scrape = reply[8..16].to_vec();
    scrape.extend_from_slice(&[0, 0, 0, 2, 0, 0, 0, 8]);
    scrape.extend_from_slice(&hash(1));
    for _ in 0..n {
        socket.send_to(&scrape, tracker.v4()).unwrap();
    }
    (0..n)
        .take_while(|_| socket.recv(&mut reply).is_ok())
        .count()
}

#[test]
fn a_network_over_the_rate_limit_is_refused_and_others_are_not() {
    let mut tracker =
        Tracker::start("[access]\nrate_limit = 1\nrate_limit_burst = 3\nproxy = [\"127.0.0.1\"]\n");
    // A burst of 3, and at most one more for the second that may pass.
    let answered = udp_answers_from(&tracker, "127.0.5.1", 10);
    assert!((3..=4).contains(&answered), "{answered} answered");
    // Its /24 shares the allowance; another /24 has its own.
    assert_eq!(udp_answers_from(&tracker, "127.0.5.2", 1), 0);
    // Datagrams whose source is not proven, as a forger's would be, use up
    // nothing: junk, connects, and requests with a made-up connection id.
    let forger = std::net::UdpSocket::bind(("127.0.6.9", 0)).unwrap();
    let mut connect = 0x41727101980u64.to_be_bytes().to_vec();
    connect.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 7]);
    let mut made_up = 0xdead_beef_u64.to_be_bytes().to_vec();
    made_up.extend_from_slice(&[0, 0, 0, 2, 0, 0, 0, 8]);
    made_up.extend_from_slice(&hash(1));
    for _ in 0..20 {
        for datagram in [&b"x"[..], &connect, &made_up] {
            forger.send_to(datagram, tracker.v4()).unwrap();
        }
    }
    assert_eq!(udp_answers_from(&tracker, "127.0.6.1", 3), 3);
    // Behind the trusted proxy, the forwarded address is the one counted.
    let served: Vec<bool> = (0..5)
        .map(|_| forwarded_announce_served(&tracker, "10.9.9.1", RATE_LIMITED))
        .collect();
    assert_eq!(served[..3], [true, true, true], "{served:?}");
    assert!(served.contains(&false), "{served:?}");
    assert!(forwarded_announce_served(
        &tracker,
        "10.9.8.1",
        RATE_LIMITED
    ));
    let metrics = tracker.get("/metrics").text();
    let refused: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("opentracker_rate_limited_requests_total "))
        .expect("the counter is exported")
        .parse()
        .unwrap();
    // At least 6 UDP scrapes from 127.0.5.1, the one from 127.0.5.2, and
    // one HTTP announce.
    let least = 6 + 1 + 1;
    assert!(refused >= least, "{refused}");
    assert!(
        tracker.wait_for_message("requests over access.rate_limit", Duration::from_secs(15)),
        "no status line about it: {:?}",
        tracker.messages
    );
    let log = tracker.stderr();
    assert!(
        log.contains("requests over access.rate_limit in 10 s, one from 10.9.9.0/24"),
        "{log}"
    );
}

#[test]
fn udp_worker_threads_share_one_rate_limit() {
    let tracker = Tracker::launch(Launch {
        toml: "[access]\nrate_limit = 1\nrate_limit_burst = 3\n".into(),
        listen: "udp_workers = 2".into(),
        ..Launch::default()
    });
    let answered = udp_answers_from(&tracker, "127.0.7.1", 12);
    assert!((3..=4).contains(&answered), "{answered} answered");
}

/// Waits (bounded) for the tracker to report a reload it did by itself.
fn wait_for_own_reload(tracker: &mut Tracker) {
    tracker.clear_messages();
    assert!(
        tracker.wait_for_message("RELOADING=1", Duration::from_secs(15)),
        "no reload after the file changed: {}",
        tracker.stderr()
    );
    assert!(
        tracker.wait_for_message("READY=1", Duration::from_secs(10)),
        "no READY=1 after reload"
    );
}

#[test]
fn lists_reload_by_themselves_when_their_files_change() {
    let dir = TestDir::new();
    dir.writable_by_tracker();
    // Torrent 9 is the one network_allowed announces.
    let list = dir.write("whitelist.txt", &format!("{}\n", hex(&hash(9))));
    let blocked = dir.write("blocked", "10.1.0.0/16\n");
    let add = dir.path("add");
    let toml = format!(
        "[access]\nwhitelist = \"{}\"\nblocked_networks = \"{}\"\nreload_on_change = true\n\
         fifo_add = \"{}\"\nproxy = [\"127.0.0.1\"]\n",
        list.display(),
        blocked.display(),
        add.display()
    );
    let mut tracker = Tracker::start_in(dir, toml);
    assert!(!http_allowed(&tracker, 2));
    // Replaced by a rename, as deploy tools and ConfigMaps do.
    let next = list.with_extension("new");
    std::fs::write(&next, format!("{}\n{}\n", hex(&hash(9)), hex(&hash(2)))).unwrap();
    std::fs::rename(&next, &list).unwrap();
    wait_for_own_reload(&mut tracker);
    assert!(http_allowed(&tracker, 2));
    assert!(tracker
        .stderr()
        .contains("a list file changed; reloading access"));
    write_fifo(&add, &format!("{}\n", hex(&hash(5))));
    tracker.wait_for_log("whitelist of 3 until the next reload");
    // Rewritten in place: only that list is read again, so the change
    // made through the FIFO stays.
    assert!(!network_allowed(&tracker, "10.1.0.1"));
    std::fs::write(&blocked, "10.2.0.0/16\n").unwrap();
    wait_for_own_reload(&mut tracker);
    assert!(network_allowed(&tracker, "10.1.0.1"));
    assert!(!network_allowed(&tracker, "10.2.0.1"));
    assert!(tracker
        .stderr()
        .contains("a list file changed; reloading blocked_networks\n"));
    assert!(http_allowed(&tracker, 5), "the FIFO's change is kept");
    // A bad version keeps the old list, as with SIGHUP.
    std::fs::write(&list, "not a hash\n").unwrap();
    wait_for_own_reload(&mut tracker);
    assert!(http_allowed(&tracker, 2));
    assert!(
        tracker
            .stderr()
            .contains("keeping the previous whitelist of 3"),
        "{}",
        tracker.stderr()
    );
    // A good one ends the FIFO's change, as SIGHUP does.
    std::fs::write(&list, format!("{}\n{}\n", hex(&hash(9)), hex(&hash(2)))).unwrap();
    wait_for_own_reload(&mut tracker);
    assert!(http_allowed(&tracker, 2));
    assert!(!http_allowed(&tracker, 5));
}

/// Writes `text` into the FIFO at `path`, as `echo … > path` would.
fn write_fifo(path: &std::path::Path, text: &str) {
    use std::io::Write;
    let mut fifo = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    fifo.write_all(text.as_bytes()).unwrap();
}

/// A whitelist with both changeset FIFOs.
fn changeset_config(list: &Path, add: &Path, delete: &Path) -> String {
    format!(
        "[access]\nwhitelist = \"{}\"\nfifo_add = \"{}\"\nfifo_delete = \"{}\"\n",
        list.display(),
        add.display(),
        delete.display()
    )
}

#[test]
fn fifo_changesets_add_and_delete_until_the_next_reload() {
    let dir = TestDir::new();
    dir.writable_by_tracker();
    let list = dir.write("whitelist.txt", &format!("{}\n", hex(&hash(1))));
    let (add, delete) = (dir.path("add"), dir.path("delete"));
    let toml = changeset_config(&list, &add, &delete);
    let mut tracker = Tracker::start_in(dir, toml);
    use std::os::unix::fs::FileTypeExt;
    assert!(
        std::fs::metadata(&add).unwrap().file_type().is_fifo(),
        "made at start"
    );
    assert!(!http_allowed(&tracker, 2));
    // Two writers, one line split between writes, and a bad line.
    write_fifo(
        &add,
        &format!(
            "{}\nnot a hash\n{} {}\n{}",
            hex(&hash(2)),
            hex(&hash(6)),
            hex(&hash(7)),
            &hex(&hash(3))[..10]
        ),
    );
    write_fifo(&add, &format!("{}\n", &hex(&hash(3))[10..]));
    // Read in one go or two, depending on timing.
    tracker.wait_for_log("(0 already so); whitelist of 3 until the next reload");
    assert!(http_allowed(&tracker, 2));
    assert!(udp_allowed(&tracker, 3));
    assert!(tracker
        .stderr()
        .contains("access.fifo_add: \"not a hash\" ignored: expected 40 or 64 hex digits"));
    assert!(tracker
        .stderr()
        .contains("ignored: expected one hash a line (two hashes on one line)"));
    assert!(
        !http_allowed(&tracker, 6),
        "neither of two hashes on a line is taken"
    );
    write_fifo(&delete, &format!("{}\n", hex(&hash(1))));
    tracker.wait_for_log("access.fifo_delete: 1 hashes deleted (0 already so); whitelist of 2");
    assert!(!http_allowed(&tracker, 1));
    // A reload goes back to the file.
    tracker.reload();
    assert!(http_allowed(&tracker, 1));
    assert!(!http_allowed(&tracker, 4));
    assert!(!http_allowed(&tracker, 2), "the changes are gone");
}

#[test]
fn a_changeset_path_that_is_no_fifo_is_fatal() {
    let dir = TestDir::new();
    let list = dir.write("whitelist.txt", "");
    let add = dir.write("add", "a regular file\n");
    let config = dir.write(
        "opentracker.toml",
        &format!(
            "[listen]\ntcp_udp = [\"127.0.0.1:{}\"]\n[access]\nwhitelist = \"{}\"\nfifo_add = \"{}\"\n",
            free_port(),
            list.display(),
            add.display()
        ),
    );
    let (status, _, stderr) = run_binary(&["-f", config.to_str().unwrap(), "--log", "stderr"]);
    assert_eq!(status.code(), Some(111), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "access.fifo_add {}: exists and is not a FIFO",
            add.display()
        )),
        "{stderr}"
    );
}

const PASSKEY_MISSING: &str = "This tracker needs your passkey in its announce URL.";
const PASSKEY_UNKNOWN: &str = "Your passkey is not valid on this tracker.";

/// The failure reason of an HTTP reply, or `None` when it has none.
fn failure(tracker: &Tracker, path: &str) -> Option<String> {
    let text = tracker.get(path).text();
    let start = text.find("failure reason")?;
    let rest = &text[start + "failure reason".len()..];
    let (len, rest) = rest.split_once(':').unwrap();
    Some(rest[..len.parse::<usize>().unwrap()].to_string())
}

/// A UDP announce for `hash(1)` whose BEP 41 URL data says `url` (split
/// over two options, after a NOP), and the reply's action and message.
fn udp_announce_with_url(tracker: &Tracker, url: Option<&str>) -> (u32, String) {
    let udp = Udp::new(tracker.v4());
    let mut packet = Udp::announce_packet(udp.connect(), (&hash(1), 1, 0, 0, 10));
    if let Some(url) = url {
        let (first, second) = url.split_at(url.len() / 2);
        packet.push(1);
        for piece in [first, second] {
            packet.extend_from_slice(&[2, piece.len() as u8]);
            packet.extend_from_slice(piece.as_bytes());
        }
        packet.push(0);
    }
    let reply = udp.exchange(&packet).expect("a reply");
    (
        be32(&reply, 0),
        String::from_utf8_lossy(&reply[8..]).into_owned(),
    )
}

#[test]
fn passkeys_gate_announces_and_scrapes_over_http_and_udp() {
    let dir = TestDir::new();
    let keys = dir.write(
        "passkeys",
        "# imported from the site's users table\n0123456789abcdef0123456789abcdef  # alice\nabc.key-2  # bob, whose key starts with a as announce does\n",
    );
    let mut tracker = Tracker::launch_in(
        dir,
        Launch {
            toml: format!("[access]\npasskeys = \"{}\"\n", keys.display()),
            ..Launch::default()
        },
    );
    let query = &announce_path(&hash(1), 1, "")["/announce".len()..];
    let alice = "0123456789abcdef0123456789abcdef";
    // Both places a key goes in the path, as the sites that hand them out do.
    assert_eq!(
        failure(&tracker, &format!("/{alice}/announce{query}")),
        None
    );
    assert_eq!(
        failure(&tracker, &format!("/announce/abc.key-2{query}")),
        None
    );
    assert_eq!(
        failure(&tracker, &format!("/announce{query}")).as_deref(),
        Some(PASSKEY_MISSING)
    );
    assert_eq!(
        failure(&tracker, &format!("/nobody/announce{query}")).as_deref(),
        Some(PASSKEY_UNKNOWN)
    );
    // A key that cannot be one (too long, percent-encoded) is not valid
    // either, rather than missing; a trailing slash is no part of a key.
    for bad in ["k".repeat(65), "%7Ealice".to_string()] {
        assert_eq!(
            failure(&tracker, &format!("/{bad}/announce{query}")).as_deref(),
            Some(PASSKEY_UNKNOWN),
            "{bad}"
        );
    }
    assert_eq!(
        failure(&tracker, &format!("/announce/{alice}/{query}")),
        None
    );
    let scrape = format!("?info_hash={}", urlencode(&hash(1)));
    let counts = tracker.get(&format!("/{alice}/scrape{scrape}")).text();
    assert!(counts.starts_with("d5:filesd20:"), "{counts}");
    assert_eq!(
        failure(&tracker, &format!("/scrape{scrape}")).as_deref(),
        Some(PASSKEY_MISSING)
    );

    // UDP: the key travels in BEP 41 URL data; connects need none.
    let (action, _) = udp_announce_with_url(&tracker, Some(&format!("/{alice}/announce")));
    assert_eq!(action, 1, "announced");
    let (action, _) = udp_announce_with_url(&tracker, Some("/announce/abc.key-2?x=1"));
    assert_eq!(action, 1, "announced");
    assert_eq!(
        udp_announce_with_url(&tracker, None),
        (3, PASSKEY_MISSING.to_string())
    );
    assert_eq!(
        udp_announce_with_url(&tracker, Some("/announce/mallory")),
        (3, PASSKEY_UNKNOWN.to_string())
    );
    let reply = Udp::new(tracker.v4()).scrape(&[hash(1)]);
    assert_eq!(be32(&reply, 0), 3, "a UDP scrape has no room for a key");
    let refusals = metric(&tracker, "opentracker_passkey_refusals_total");
    assert_eq!(refusals, Some(8));
    assert_eq!(list_metric(&tracker, "list_entries", "passkeys"), Some(2));

    // Revoking bob and adding carol takes a reload; a bad line keeps the
    // old keys.
    std::fs::write(&keys, format!("{alice}\ncarol\n")).unwrap();
    tracker.reload();
    assert_eq!(failure(&tracker, &format!("/carol/announce{query}")), None);
    assert_eq!(
        failure(&tracker, &format!("/abc.key-2/announce{query}")).as_deref(),
        Some(PASSKEY_UNKNOWN)
    );
    std::fs::write(&keys, "dave\nnot a key\n").unwrap();
    tracker.reload();
    assert_reload_kept_the_old_list(
        &tracker,
        &format!("passkeys {}: line 2: expected a passkey", keys.display()),
        "keeping the previous 2 passkeys",
    );
    assert_eq!(failure(&tracker, &format!("/carol/announce{query}")), None);
    assert_eq!(
        list_metric(&tracker, "list_reload_failures_total", "passkeys"),
        Some(1)
    );
    assert!(
        !tracker.stderr().contains(alice),
        "keys stay out of the log"
    );
    assert!(
        !tracker.stderr().contains("not a key"),
        "nor does a bad line, which may be a key"
    );
    assert!(tracker.stderr().contains("; no access list; 2 passkeys"));

    // Every key revoked: the tracker now refuses everyone, and says so.
    const EMPTY: &str = "the passkeys file holds no key: every announce and scrape is refused";
    assert!(!tracker.stderr().contains(EMPTY));
    std::fs::write(&keys, "# all revoked\n").unwrap();
    let config = tracker.dir.write(
        "check.toml",
        &format!("[access]\npasskeys = \"{}\"\n", keys.display()),
    );
    let (status, _, stderr) = run_binary(&["--check-config", "-f", config.to_str().unwrap()]);
    assert!(status.success() && stderr.contains(EMPTY), "{stderr}");
    tracker.reload();
    tracker.wait_for_log(EMPTY);
    assert_eq!(
        failure(&tracker, &format!("/carol/announce{query}")).as_deref(),
        Some(PASSKEY_UNKNOWN)
    );
}

#[test]
fn a_bad_passkeys_file_at_start_is_fatal() {
    let dir = TestDir::new();
    let keys = dir.write("passkeys", "good\nbad key\n");
    let config = dir.write(
        "c.toml",
        &format!(
            "[listen]\ntcp_udp = [\"127.0.0.1:{}\"]\n[access]\npasskeys = \"{}\"\n",
            free_port(),
            keys.display()
        ),
    );
    let (status, _, stderr) = run_binary(&["-f", config.to_str().unwrap(), "--log", "stderr"]);
    assert_eq!(status.code(), Some(111), "{stderr}");
    assert!(
        stderr.contains(&format!("passkeys {}: line 2", keys.display())),
        "{stderr}"
    );
    let (status, _, stderr) = run_binary(&["--check-config", "-f", config.to_str().unwrap()]);
    assert_eq!(status.code(), Some(1), "{stderr}");
}

/// (seeders, leechers) and the peers' ports, in order, in a UDP announce
/// reply.
fn udp_swarm(reply: &[u8]) -> ((u32, u32), Vec<u16>) {
    let mut ports: Vec<u16> = reply[20..]
        .chunks_exact(6)
        .map(|peer| u16::from_be_bytes([peer[4], peer[5]]))
        .collect();
    ports.sort_unstable();
    ((be32(reply, 16), be32(reply, 12)), ports)
}

#[test]
fn a_hybrid_torrents_v1_and_v2_hashes_share_one_swarm() {
    let dir = TestDir::new();
    let (v1, v2) = (hash(1), hash(2));
    let mut v2_whole = v2.to_vec();
    v2_whole.extend_from_slice(b"v2 hash tail");
    let pair = format!("{} {}", hex(&v1), hex(&v2) + &hex(&[0xee; 20])[..24]);
    let list = dir.write(
        "hybrids.txt",
        &format!("# hybrid torrents\n{pair}  # one\n"),
    );
    let toml = format!("[access]\nhybrids = \"{}\"\n", list.display());
    let mut tracker = Tracker::start_in(dir, toml);

    // A v1-only client over HTTP and a v2-only one over UDP meet.
    let seeder = tracker.get(&announce_path(&v1, 1001, "&left=0"));
    assert_eq!(seeder.status, 200);
    let udp = Udp::new(tracker.v4());
    let reply = udp.announce(&v2, 2002, 5, 0, 10);
    assert_eq!(udp_swarm(&reply), ((1, 1), vec![1001, 2002]));
    // A client announcing both hashes is one peer.
    let both = udp.announce(&v1, 2002, 5, 0, 10);
    assert_eq!(udp_swarm(&both).0, (1, 1));

    // Scrapes of either hash, whole or truncated, count the one swarm, and
    // name the hash as it was sent.
    let scraped = tracker.get(&format!(
        "/scrape?info_hash={}&info_hash={}",
        urlencode(&v1),
        urlencode(&v2_whole)
    ));
    let files = scraped.bencode();
    let files = files.get("files").unwrap().dict();
    for sent in [v2_whole.as_slice(), v1.as_slice()] {
        let counts = files.get(sent).expect("scraped");
        assert_eq!((counts.int("complete"), counts.int("incomplete")), (1, 1));
    }
    let udp_scrape = udp.scrape(&[v2]);
    assert_eq!((be32(&udp_scrape, 8), be32(&udp_scrape, 16)), (1, 1));
    // The full scrape and the counts know one torrent, the v1 hash.
    let full = tracker.get("/scrape").bencode();
    let full = full.get("files").unwrap().dict();
    assert_eq!(full.keys().collect::<Vec<_>>(), vec![&v1.to_vec()]);
    assert_eq!(tracker.metric("opentracker_torrents"), 1);
    assert_eq!(list_metric(&tracker, "list_entries", "hybrids"), Some(1));
    assert!(tracker
        .stderr()
        .contains("; no access list; 1 hybrid torrents"));
    let json = tracker.get("/stats?mode=json").text();
    assert!(json.contains("\"hybrids\":1"), "{json}");

    // A bad file keeps the pairs in force.
    std::fs::write(&list, format!("{pair}\n{}\n", hex(&v1))).unwrap();
    tracker.reload();
    assert_reload_kept_the_old_list(
        &tracker,
        &format!(
            "hybrids {}: line 2: expected a v1 hash (40 hex digits), then a v2 hash",
            list.display()
        ),
        "keeping the previous 1 hybrids",
    );
    assert_eq!(udp_swarm(&udp.announce(&v2, 2003, 5, 0, 10)).0, (1, 2));
    assert_eq!(
        list_metric(&tracker, "list_reload_failures_total", "hybrids"),
        Some(1)
    );

    // Unlinked, the v2 hash is a swarm of its own again.
    std::fs::write(&list, "# none\n").unwrap();
    tracker.reload();
    assert_eq!(
        udp_swarm(&udp.announce(&v2, 2004, 5, 0, 10)),
        ((0, 1), vec![2004])
    );
    assert_eq!(list_metric(&tracker, "list_entries", "hybrids"), Some(0));
    assert!(tracker.is_alive());
}

/// A tracker with hash(1) and hash(2) paired as a hybrid torrent's v1 and
/// v2 hashes, and `list` (`whitelist` or `blacklist`) naming `listed`, the
/// v2 hash whole.
fn hybrid_with_list(list: &str, listed: &[u8; 20]) -> Tracker {
    let dir = TestDir::new();
    let whole = |hash: &[u8; 20]| hex(hash) + &hex(&[0xee; 20])[..24];
    let (v1, v2) = (hash(1), hash(2));
    let hybrids = dir.write("hybrids.txt", &format!("{} {}\n", hex(&v1), whole(&v2)));
    let named = if listed == &v2 {
        whole(&v2)
    } else {
        hex(listed)
    };
    let file = dir.write("list.txt", &format!("{named}\n"));
    let toml = format!(
        "[access]\nhybrids = \"{}\"\n{list} = \"{}\"\n",
        hybrids.display(),
        file.display()
    );
    Tracker::start_in(dir, toml)
}

#[test]
fn a_blacklist_naming_either_hash_of_a_hybrid_refuses_both() {
    for listed in [hash(1), hash(2)] {
        let tracker = hybrid_with_list("blacklist", &listed);
        let which = hex(&listed);
        assert!(!http_allowed(&tracker, 1), "v1, with {which} blacklisted");
        assert!(!http_allowed(&tracker, 2), "v2, with {which} blacklisted");
        let udp = Udp::new(tracker.v4());
        for hash in [hash(1), hash(2)] {
            let reply = udp.announce(&hash, 2002, 5, 0, 10);
            assert_eq!(reply.len(), 8, "upstream's refusal, a bare header");
            // Its scrape is a blacklisted torrent's: nothing.
            let udp_scrape = udp.scrape(&[hash]);
            assert_eq!((be32(&udp_scrape, 8), be32(&udp_scrape, 16)), (0, 0));
        }
        assert_eq!(tracker.metric("opentracker_torrents"), 0);
    }
}

#[test]
fn a_whitelist_naming_either_hash_of_a_hybrid_admits_both_into_one_swarm() {
    for listed in [hash(1), hash(2)] {
        let tracker = hybrid_with_list("whitelist", &listed);
        let which = hex(&listed);
        assert!(http_allowed(&tracker, 1), "v1, with {which} whitelisted");
        let udp = Udp::new(tracker.v4());
        let reply = udp.announce(&hash(2), 2002, 5, 0, 10);
        assert_eq!(udp_swarm(&reply), ((0, 2), vec![1, 2002]), "{which}");
        // The one torrent is kept under the hash the whitelist names.
        let full = tracker.get("/scrape").bencode();
        let full = full.get("files").unwrap().dict();
        assert_eq!(full.keys().collect::<Vec<_>>(), vec![&listed.to_vec()]);
        assert!(!http_allowed(&tracker, 3), "an unlisted hash is refused");
    }
}

#[test]
fn a_bad_hybrids_file_at_start_is_fatal_and_checked() {
    let dir = TestDir::new();
    let config = |name: &str, list: &std::path::Path| {
        let toml = format!(
            "[listen]\ntcp_udp = [\"127.0.0.1:{}\"]\n[access]\nhybrids = \"{}\"\n[log]\ntarget = \"stderr\"\n",
            free_port(),
            list.display()
        );
        dir.write(name, &toml)
    };
    let linked_twice = format!(
        "{0} {1}\n{2} {1}\n",
        hex(&hash(1)),
        hex(&hash(2)),
        hex(&hash(3))
    );
    let bad = config("bad.toml", &dir.write("bad.txt", &linked_twice));
    let (status, _, stderr) = run_binary(&["-f", bad.to_str().unwrap()]);
    assert!(!status.success());
    assert!(
        stderr.contains("bad.txt: line 2: expected hashes in no other pair"),
        "{stderr}"
    );
    let (status, _, stderr) = run_binary(&["--check-config", "-f", bad.to_str().unwrap()]);
    assert!(!status.success() && stderr.contains("line 2"), "{stderr}");

    let good_list = format!("{} {}\n", hex(&hash(1)), hex(&hash(2)));
    let good = config("good.toml", &dir.write("good.txt", &good_list));
    let (status, stdout, stderr) = run_binary(&["--check-config", "-f", good.to_str().unwrap()]);
    assert!(status.success(), "{stderr}");
    assert!(stdout.contains("1 hybrid torrents"), "{stdout}");
}

#[test]
fn udp_is_answered_while_a_big_whitelist_is_reloaded() {
    let dir = TestDir::new();
    // Reading and parsing this many hashes takes a fair share of a second.
    let hashes: String = (0..300_000u64)
        .map(|i| {
            format!(
                "{:040x}\n",
                u128::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c)
            )
        })
        .collect();
    let (mut tracker, list) = with_whitelist(dir, &hashes);
    let to = tracker.v4();
    let reloading = &mut tracker;
    let ((), answered_meanwhile) = udp_answered_between(
        to,
        move || {
            reloading.clear_messages();
            reloading.signal("HUP");
            assert!(
                reloading.wait_for_message("RELOADING=1", Duration::from_secs(10)),
                "no RELOADING=1"
            );
            reloading
        },
        |reloading| {
            assert!(
                reloading.wait_for_message("READY=1", Duration::from_secs(20)),
                "no READY=1 after reload"
            );
        },
    );
    tracker.wait_for_log("access list reloaded: whitelist of 300000");
    // The reload ran beside the event loop (it held the loop before, and
    // no UDP request was answered from RELOADING=1 to READY=1).
    assert!(
        answered_meanwhile >= 5,
        "{answered_meanwhile} UDP requests answered during the reload"
    );

    // Asked again while a reload is under way: the lists end up as the
    // files are now.
    tracker.signal("HUP");
    std::fs::write(&list, format!("{}\n", hex(&hash(1)))).unwrap();
    tracker.signal("HUP");
    tracker.wait_for_log("access list reloaded: whitelist of 1\n");
    assert!(http_allowed(&tracker, 1));
    assert!(!http_allowed(&tracker, 2));
}

#[test]
fn changesets_written_during_a_reload_are_kept_by_it() {
    let dir = TestDir::new();
    dir.writable_by_tracker();
    // Long enough to read that the FIFO's lines arrive before it is done.
    let mut hashes: String = (0..300_000u64)
        .map(|i| {
            format!(
                "{:040x}\n",
                u128::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c)
            )
        })
        .collect();
    hashes.push_str(&format!("{}\n", hex(&hash(1))));
    let list = dir.write("whitelist.txt", &hashes);
    let (add, delete) = (dir.path("add"), dir.path("delete"));
    let toml = changeset_config(&list, &add, &delete);
    let mut tracker = Tracker::start_in(dir, toml);
    write_fifo(&add, &format!("{}\n", hex(&hash(2))));
    tracker.wait_for_log("whitelist of 300002 until the next reload");

    tracker.clear_messages();
    tracker.signal("HUP");
    assert!(
        tracker.wait_for_message("RELOADING=1", Duration::from_secs(10)),
        "no RELOADING=1"
    );
    write_fifo(&add, &format!("{}\n", hex(&hash(3))));
    write_fifo(&delete, &format!("{}\n", hex(&hash(1))));
    assert!(
        tracker.wait_for_message("READY=1", Duration::from_secs(20)),
        "no READY=1 after reload"
    );
    assert!(http_allowed(&tracker, 3), "added during the reload: kept");
    assert!(
        !http_allowed(&tracker, 1),
        "deleted during the reload: kept"
    );
    assert!(
        !http_allowed(&tracker, 2),
        "added before the reload: dropped"
    );
    let log = tracker.stderr();
    let reloaded = log
        .find("access list reloaded: whitelist of 300001\n")
        .expect(&log);
    let applied_again = "reload: 2 changeset hashes written during it applied again to the new \
                         list; whitelist of 300001 until the next reload";
    assert!(log[reloaded..].contains(applied_again), "{log}");
}

#[test]
fn an_empty_whitelist_and_a_reload_with_no_lists_are_said_in_the_log() {
    let (mut tracker, list) = with_whitelist(TestDir::new(), format!("{}\n", hex(&hash(1))));
    std::fs::write(&list, "# nothing listed any more\n").unwrap();
    tracker.reload();
    assert!(!http_allowed(&tracker, 1));
    tracker.wait_for_log("the whitelist is empty: every torrent is refused");

    let mut open = Tracker::start("");
    open.reload();
    open.wait_for_log("reload: no list files are configured, nothing to read");
}

#[test]
fn a_reload_says_when_the_configuration_file_changed_since_the_start() {
    const CHANGED: &str = "changed since the start; only the list files are re-read on \
                           reload, restart to apply the rest";
    let mut tracker = Tracker::start("");
    tracker.reload();
    tracker.wait_for_log("reload: no list files are configured, nothing to read");
    assert!(!tracker.stderr().contains(CHANGED), "{}", tracker.stderr());

    let config = tracker.dir.path("opentracker.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let edited = text.replace("level = \"debug\"", "level = \"info\"");
    assert_ne!(edited, text);
    std::fs::write(&config, edited).unwrap();
    tracker.reload();
    tracker.wait_for_log(&format!(
        "the configuration file {} {CHANGED}",
        config.display()
    ));
}
