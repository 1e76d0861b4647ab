//! Peer and torrent expiry, driven by the event loop's timer (short
//! timeouts configured so the test takes seconds).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;

#[test]
fn peers_expire_and_empty_torrents_go() {
    let tracker =
        Tracker::start("[tracker]\npeer_timeout = 2\nsweep_interval = 1\ntorrent_timeout = 4\n");
    tracker.get(&announce_path(&hash(1), 1, ""));
    tracker.get(&announce_path(&hash(2), 1, "&left=0&event=completed"));
    assert_eq!(scrape_counts(&tracker, 1), Some((0, 1, 0)));
    let deadline = Instant::now() + Duration::from_secs(20);
    while scrape_counts(&tracker, 1).is_some() {
        assert!(Instant::now() < deadline, "peer never expired");
        std::thread::sleep(Duration::from_millis(250));
    }
    // The completed torrent outlives its peers, without them.
    assert_eq!(scrape_counts(&tracker, 2), Some((0, 0, 1)));
    assert!(tracker.get("/stats?mode=peer").text().starts_with("0\n0\n"));
    while scrape_counts(&tracker, 2).is_some() {
        assert!(Instant::now() < deadline, "completed torrent never expired");
        std::thread::sleep(Duration::from_millis(250));
    }
    assert_eq!(
        tracker.get("/stats?mode=torr").text(),
        "0\n0\nopentracker serving 0 torrents\nopentracker"
    );
}

/// The interval handed out and the peer timeout, from `/metrics`.
fn pace(tracker: &Tracker) -> (u64, u64) {
    (
        tracker.metric("opentracker_announce_interval_seconds"),
        tracker.metric("opentracker_peer_timeout_seconds"),
    )
}

/// Polls until the pace is `expected` (the pacer runs at each sweep).
fn wait_for_pace(tracker: &Tracker, expected: (u64, u64)) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while pace(tracker) != expected {
        assert!(Instant::now() < deadline, "pace stayed {:?}", pace(tracker));
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_paced_interval_grows_with_the_peers_and_keeps_them_as_long() {
    // Ten peers at one announce a second need a 10 s interval; the longest
    // allowed is 8 s, and the timeout follows in the configured ratio.
    let mut tracker = Tracker::start(
        "[tracker]\ninterval = 2\npeer_timeout = 3\nsweep_interval = 1\n\
         max_announce_rate = 1\nmax_interval = 8\n",
    );
    assert_eq!(pace(&tracker), (2, 3));
    for port in 1..=10 {
        tracker.get(&announce_path(&hash(1), port, ""));
    }
    wait_for_pace(&tracker, (8, 12));
    let reply = tracker.get(&announce_path(&hash(1), 1, "")).bencode();
    assert_eq!((reply.int("interval"), reply.int("min interval")), (8, 4));
    let reply = Udp::new(tracker.v4()).announce(&hash(1), 11, 1, 0, 50);
    assert_eq!(be32(&reply, 8), 8);
    let log = tracker.stderr();
    assert!(
        log.contains("announce interval now 8 s, peers kept 12 s without announcing: ")
            && log.contains(" peers at tracker.max_announce_rate 1 announces/s\n"),
        "{log}"
    );
    // Past the configured peer timeout, the peers told 8 s are still there.
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(scrape_counts(&tracker, 1), Some((0, 11, 0)));
    assert!(
        tracker.wait_for_message("requests/s, interval 8 s", Duration::from_secs(15)),
        "no interval in the status line: {:?}",
        tracker.messages
    );
    // Once they leave, the interval shortens at once, and the longer
    // timeout stays for as long as itself for peers told the longer one.
    for port in 1..=11 {
        tracker.get(&announce_path(&hash(1), port, "&event=stopped"));
    }
    wait_for_pace(&tracker, (2, 12));
    assert!(tracker
        .stderr()
        .contains("(a longer timeout, kept for the peers told a longer interval)"));
    let reply = tracker.get(&announce_path(&hash(2), 1, "")).bencode();
    assert_eq!(reply.int("interval"), 2);
    wait_for_pace(&tracker, (2, 3));
}

#[test]
fn a_full_tracker_answers_newcomers_from_its_swarms_without_storing_them() {
    let mut tracker = Tracker::start("[tracker]\nmax_peers = 2\nmax_torrents = 1\n");
    for port in [1, 2] {
        tracker.get(&announce_path(&hash(1), port, ""));
    }
    // A third peer gets both stored ones over HTTP and UDP, and is not kept.
    let reply = tracker.get(&announce_path(&hash(1), 3, "")).bencode();
    assert_eq!(reply.int("incomplete"), 2);
    assert_eq!(reply.bytes("peers").len(), 12);
    let reply = Udp::new(tracker.v4()).announce(&hash(1), 4, 1, 0, 50);
    assert_eq!((be32(&reply, 12), reply.len()), (2, 20 + 12));
    // A new torrent would pass max_torrents: answered empty, not created.
    let reply = tracker.get(&announce_path(&hash(2), 1, "")).bencode();
    assert_eq!(reply.int("incomplete"), 0);
    assert_eq!(scrape_counts(&tracker, 2), None);
    // A stored peer goes on re-announcing.
    tracker.get(&announce_path(&hash(1), 2, "&left=0"));
    assert_eq!(scrape_counts(&tracker, 1), Some((1, 1, 0)));
    let metrics = tracker.get("/metrics").text();
    assert!(
        metrics
            .lines()
            .any(|l| l == "opentracker_announces_unstored_total 3"),
        "{metrics}"
    );
    assert!(
        tracker.wait_for_message(
            "3 announces answered but not stored in 10 s",
            Duration::from_secs(15)
        ),
        "no status line about a full tracker: {:?}",
        tracker.messages
    );
    let log = tracker.stderr();
    assert!(
        log.contains("the tracker is full (tracker.max_peers = 2, tracker.max_torrents = 1)"),
        "{log}"
    );
}

#[test]
fn with_udp_workers_the_limits_bound_the_whole_tracker_not_each_shard() {
    // Two workers split the swarms into 8 shards; one swarm may still take
    // all of max_peers, and no more.
    let tracker = Tracker::launch(Launch {
        toml: "[tracker]\nmax_peers = 3\n".into(),
        listen: "udp_workers = 2".into(),
        ..Launch::default()
    });
    let udp = Udp::new(tracker.v4());
    for port in 1..=4 {
        udp.announce(&hash(1), port, 1, 0, 50);
    }
    assert_eq!(scrape_counts(&tracker, 1), Some((0, 3, 0)));
    tracker.get(&announce_path(&hash(2), 1, ""));
    assert_eq!(scrape_counts(&tracker, 2), None);
}

#[test]
fn one_address_keeps_at_most_its_share_of_a_torrent() {
    let tracker = Tracker::start("[tracker]\nmax_peers_per_network = 2\n");
    for port in [1, 2] {
        tracker.get(&announce_path(&hash(1), port, ""));
    }
    // A third port of the same address is answered, with the swarm, but
    // not kept; over UDP as over HTTP.
    let reply = tracker.get(&announce_path(&hash(1), 3, "")).bencode();
    assert_eq!(
        (reply.int("incomplete"), reply.bytes("peers").len()),
        (2, 12)
    );
    let reply = Udp::new(tracker.v4()).announce(&hash(1), 4, 1, 0, 50);
    assert_eq!((be32(&reply, 12), reply.len()), (2, 20 + 12));
    // The two stored go on re-announcing, and the address may join
    // another torrent.
    tracker.get(&announce_path(&hash(1), 2, "&left=0"));
    assert_eq!(scrape_counts(&tracker, 1), Some((1, 1, 0)));
    tracker.get(&announce_path(&hash(2), 3, ""));
    assert_eq!(scrape_counts(&tracker, 2), Some((0, 1, 0)));
    assert_eq!(tracker.metric("opentracker_announces_unstored_total"), 2);
    let config = tracker.dir.path("opentracker.toml");
    let (status, out, _) = run_binary(&["--check-config", "-f", config.to_str().unwrap()]);
    assert!(
        status.success() && out.contains("max_peers_per_network = 2"),
        "{out}"
    );
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn a_saved_state_brings_the_swarms_back_after_a_restart() {
    let keep = TestDir::new();
    keep.writable_by_tracker();
    let path = keep.path("state");
    let toml = format!(
        "[tracker]\nstate_file = \"{}\"\nsave_state = true\n",
        path.display()
    );
    let mut first = Tracker::start(&toml);
    assert!(first.stderr().contains("none yet; starting empty"));
    first.get(&announce_path(&hash(1), 1, "&left=0&event=completed"));
    first.get(&announce_path(&hash(1), 2, "&left=5"));
    let v6 = format!(
        "GET {} HTTP/1.0\r\n\r\n",
        announce_path(&hash(2), 3, "&left=0")
    );
    assert_eq!(http(first.v6(), &v6).status, 200);
    first.get(&announce_path(&hash(3), 4, "&left=0&event=completed"));
    first.get(&announce_path(&hash(3), 4, "&event=stopped"));
    // Never downloaded and left: nothing to keep.
    first.get(&announce_path(&hash(4), 5, ""));
    first.get(&announce_path(&hash(4), 5, "&event=stopped"));
    // Left by a save that was cut short, readable by all: the save makes
    // its own file rather than write into this one.
    let left_over = keep.write("state.new", "a save cut short\n");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&left_over, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert!(first.stop().success());
    assert!(
        first.stderr().contains(": 3 torrents and 3 peers saved in"),
        "{}",
        first.stderr()
    );
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("# opentracker state 1"), "{text}");
    let second = unix_now();
    let peer_lines: Vec<String> = lines
        .iter()
        .filter_map(|l| l.strip_prefix('\t'))
        .map(|l| {
            let fields: Vec<&str> = l.split(' ').collect();
            let at: u64 = fields[3].parse().unwrap();
            assert!(second.abs_diff(at) <= 5, "{l}");
            fields[..3].join(" ")
        })
        .collect();
    assert_eq!(
        peer_lines,
        ["127.0.0.1 1 sc", "127.0.0.1 2 l", "::1 3 s"],
        "{text}"
    );
    assert!(!keep.path("state.new").exists());
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "peer addresses are for the owner only");

    let second = Tracker::start(&toml);
    let log = second.stderr();
    assert!(log.contains(": 3 torrents loaded, 3 peers, in "), "{log}");
    assert_eq!(scrape_counts(&second, 1), Some((1, 1, 1)));
    assert_eq!(scrape_counts(&second, 2), Some((1, 0, 0)));
    assert_eq!(scrape_counts(&second, 3), Some((0, 0, 1)));
    assert_eq!(scrape_counts(&second, 4), None);
    // A newcomer gets the peers from before the restart.
    let reply = second
        .get(&announce_path(&hash(1), 9, "&numwant=10"))
        .bencode();
    let mut ports: Vec<u16> = reply
        .bytes("peers")
        .chunks(6)
        .map(|p| u16::from_be_bytes([p[4], p[5]]))
        .collect();
    ports.sort_unstable();
    assert_eq!(ports, [1, 2, 9]);
    // The restored seeder's download was counted before: a repeated
    // completed is not counted again.
    second.get(&announce_path(&hash(1), 1, "&left=0&event=completed"));
    assert_eq!(scrape_counts(&second, 1), Some((1, 2, 1)));
}

#[test]
fn saved_peers_keep_their_age_across_the_downtime() {
    let keep = TestDir::new();
    let now = unix_now();
    let hex: String = hash(6).iter().map(|b| format!("{b:02X}")).collect();
    // Saved a while ago: one peer already past the 30 s timeout, one with
    // 10 s left, one fresh.
    let state = keep.write(
        "state",
        &format!(
            "# opentracker state 1\n{hex}:{}:0\n\t10.0.0.1 1 l {}\n\t10.0.0.2 2 s {}\n\t10.0.0.3 3 l {}\n",
            now / 60,
            now - 40,
            now - 20,
            now
        ),
    );
    let tracker = Tracker::start(&format!(
        "[tracker]\npeer_timeout = 30\nsweep_interval = 1\nstate_file = \"{}\"\n",
        state.display()
    ));
    let log = tracker.stderr();
    assert!(log.contains(": 1 torrents loaded, 2 peers, in "), "{log}");
    assert!(log.contains("1 peers timed out"), "{log}");
    assert_eq!(scrape_counts(&tracker, 6), Some((1, 1, 0)));
    // The seeder times out 30 s after its last announce before the
    // restart, not 30 s after the restart.
    let deadline = Instant::now() + Duration::from_secs(25);
    while scrape_counts(&tracker, 6) != Some((0, 1, 0)) {
        assert!(
            Instant::now() < deadline,
            "the restored seeder never expired"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    // Loaded without save_state, the file is read and left alone.
    drop(tracker);
    assert!(std::fs::read_to_string(&state)
        .unwrap()
        .contains("10.0.0.1 1 l"));
}

/// Pacing that holds ten peers to a 15 s timeout: one announce a second,
/// with the configured 3 s.
const PACED_TO_15_S_FOR_TEN: &str = "interval = 2\npeer_timeout = 3\nsweep_interval = 1\n\
     max_announce_rate = 1\nmax_interval = 40\n";

/// A state file in `keep` with ten leechers of `hash(7)` that last
/// announced `age` seconds ago.
fn state_of_ten_peers_aged(keep: &TestDir, age: u64) -> std::path::PathBuf {
    let now = unix_now();
    let hex: String = hash(7).iter().map(|b| format!("{b:02X}")).collect();
    let peers: String = (1..=10)
        .map(|i| format!("\t10.0.0.{i} {i} l {}\n", now - age))
        .collect();
    keep.write(
        "state",
        &format!("# opentracker state 1\n{hex}:{}:0\n{peers}", now / 60),
    )
}

#[test]
fn a_paced_restart_keeps_the_saved_peers_told_a_longer_interval() {
    let keep = TestDir::new();
    // Last seen 12 s ago: past the configured 3 s timeout, within the 15 s
    // that ten peers are paced to.
    let state = state_of_ten_peers_aged(&keep, 12);
    let tracker = Tracker::start(&format!(
        "[tracker]\n{PACED_TO_15_S_FOR_TEN}state_file = \"{}\"\n",
        state.display()
    ));
    let log = tracker.stderr();
    assert!(log.contains(": 1 torrents loaded, 10 peers, in "), "{log}");
    assert_eq!(pace(&tracker), (10, 15));
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(scrape_counts(&tracker, 7), Some((0, 10, 0)), "swept");
    // And they go once the paced timeout is up.
    let deadline = Instant::now() + Duration::from_secs(15);
    while scrape_counts(&tracker, 7).is_some() {
        assert!(
            Instant::now() < deadline,
            "the restored peers never expired"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn restored_paced_peers_older_than_the_torrent_timeout_keep_their_age() {
    let keep = TestDir::new();
    keep.writable_by_tracker();
    // Last seen 10 s ago, kept by the pace, and older than a torrent
    // timeout of 5 s: they are saved again as 10 s old, not made younger.
    let state = state_of_ten_peers_aged(&keep, 10);
    let mut tracker = Tracker::start(&format!(
        "[tracker]\n{PACED_TO_15_S_FOR_TEN}torrent_timeout = 5\n\
         state_file = \"{}\"\nsave_state = true\n",
        state.display()
    ));
    let log = tracker.stderr();
    assert!(log.contains(": 1 torrents loaded, 10 peers, in "), "{log}");
    assert!(tracker.stop().success());
    let seen_ago: Vec<u64> = (std::fs::read_to_string(&state).unwrap().lines())
        .filter_map(|l| l.strip_prefix('\t'))
        .map(|l| unix_now() - l.split(' ').nth(3).unwrap().parse::<u64>().unwrap())
        .collect();
    assert_eq!(seen_ago.len(), 10, "{:?}", tracker.stderr());
    assert!(
        seen_ago.iter().all(|&age| (10..=12).contains(&age)),
        "{seen_ago:?}"
    );
}

#[test]
fn a_saved_torrent_from_an_impossible_minute_loads_as_active_now() {
    // Hand-edited or damaged, not written by a tracker: a minute past any
    // clock's reach is read as now, not wrapped around.
    let keep = TestDir::new();
    let hex: String = hash(7).iter().map(|b| format!("{b:02X}")).collect();
    let state = keep.write(
        "state",
        &format!("{hex}:{}:3\n\t10.0.0.1 1 s {}\n", u64::MAX, unix_now()),
    );
    let tracker = Tracker::start(&format!(
        "[tracker]\nstate_file = \"{}\"\n",
        state.display()
    ));
    let log = tracker.stderr();
    assert!(log.contains(": 1 torrents loaded, 1 peers, in "), "{log}");
    assert_eq!(scrape_counts(&tracker, 7), Some((1, 0, 3)));
}

#[test]
fn a_bad_saved_state_loads_nothing_and_names_its_line() {
    let keep = TestDir::new();
    keep.writable_by_tracker();
    let hex: String = hash(7).iter().map(|b| format!("{b:02X}")).collect();
    for (text, error) in [
        (
            format!("{hex}:1:0\n\t10.0.0.1 1 x 5\n"),
            "state:2: flags \"x\"",
        ),
        (
            "\t10.0.0.1 1 l 5\n".to_string(),
            "state:1: a peer line before any torrent line",
        ),
        // Written by a later version: its lines may mean something else.
        (
            format!("# opentracker state 2: HASH:MINUTE:DOWNLOADED:MORE\n{hex}:1:0:7\n"),
            "state:1: state format 2 is not supported by this version of opentracker \
             (it reads format 1)",
        ),
        // No newline for megabytes: not a line to read whole.
        (
            format!("{hex}:1:0\n{}", "#".repeat(3 << 20)),
            "state:2: longer than 4096 bytes",
        ),
    ] {
        let state = keep.write("state", &text);
        let mut tracker = Tracker::start(&format!(
            "[tracker]\nstate_file = \"{}\"\nsave_state = true\n",
            state.display()
        ));
        let log = tracker.stderr();
        assert!(log.contains(error), "{log}");
        assert!(
            log.contains("; nothing loaded, and the file moved to "),
            "{log}"
        );
        assert_eq!(scrape_counts(&tracker, 7), None);
        // Moved aside whole, so the save at stop does not replace it.
        let aside = moved_aside(&keep);
        assert_eq!(std::fs::read_to_string(&aside).unwrap(), text);
        assert!(
            log.contains(&format!("moved to {}", aside.display())),
            "{log}"
        );
        assert!(tracker.stop().success());
        assert!(std::fs::read_to_string(&state)
            .unwrap()
            .starts_with("# opentracker state"));
        assert_eq!(std::fs::read_to_string(&aside).unwrap(), text);
        std::fs::remove_file(aside).unwrap();
    }
    // Without save_state nothing replaces it: it stays where it is.
    let text = format!("{hex}:1:0\n\t10.0.0.1 1 x 5\n");
    let state = keep.write("state", &text);
    let mut tracker = Tracker::start(&format!(
        "[tracker]\nstate_file = \"{}\"\n",
        state.display()
    ));
    assert!(tracker.stop().success());
    assert!(tracker.stderr().contains("state:2: flags \"x\""));
    assert_eq!(std::fs::read_to_string(&state).unwrap(), text);
    assert!(!moved_aside_exists(&keep));
}

/// The state file a failed load moved aside, in `keep`.
fn moved_aside(keep: &TestDir) -> std::path::PathBuf {
    let mut found = std::fs::read_dir(keep.path(""))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.to_string_lossy().contains("/state.unloaded-"));
    let aside = found.next().expect("a file moved aside");
    assert!(found.next().is_none());
    aside
}

fn moved_aside_exists(keep: &TestDir) -> bool {
    std::fs::read_dir(keep.path("")).unwrap().any(|entry| {
        entry
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("state.unloaded-")
    })
}

#[test]
fn an_unreadable_state_file_is_fatal_at_start_and_left_alone() {
    let keep = TestDir::new();
    keep.writable_by_tracker();
    let hex: String = hash(9).iter().map(|b| format!("{b:02X}")).collect();
    let text = format!("{hex}:{}:4\n", unix_now() / 60);
    let state = keep.write("state", &text);
    keep.unreadable_by_tracker(&state);
    // Not a bad file to skip: it may hold the swarms, whatever they are.
    let expected = format!(
        "state file {}: Permission denied (os error 13); the tracker does not start without \
         reading it",
        state.display()
    );
    for save_state in [true, false] {
        assert_state_file_fatal(&keep, &state, save_state, &expected);
    }
    assert!(!moved_aside_exists(&keep));
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(std::fs::read_to_string(&state).unwrap(), text);
}

/// Asserts that a tracker with `state` as its state file (`save_state`
/// as given) fails to start, and so does `--check-config`, saying
/// `expected`.
fn assert_state_file_fatal(keep: &TestDir, state: &Path, save_state: bool, expected: &str) {
    let config = keep.write(
        "opentracker.toml",
        &format!(
            "[listen]\ntcp_udp = [\"127.0.0.1:{}\"]\n[tracker]\nstate_file = \"{}\"\n\
             save_state = {save_state}\n",
            free_port(),
            state.display()
        ),
    );
    for check in [&[][..], &["--check-config"]] {
        let mut args = vec!["-f", config.to_str().unwrap(), "--log", "stderr"];
        args.extend_from_slice(check);
        let (status, _, stderr) = run_binary(&args);
        let code = if check.is_empty() { 111 } else { 1 };
        assert_eq!(status.code(), Some(code), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(!stderr.contains("event loop"), "{args:?}: {stderr}");
    }
}

#[test]
fn a_state_file_that_is_no_file_is_fatal_at_start() {
    let keep = TestDir::new();
    let state = keep.path("state");
    std::fs::create_dir(&state).unwrap();
    let expected = format!(
        "state file {}: a directory; it must be a file, or not exist yet when \
         tracker.save_state is on",
        state.display()
    );
    for save_state in [true, false] {
        assert_state_file_fatal(&keep, &state, save_state, &expected);
    }
}

#[test]
fn a_state_file_a_save_could_not_replace_is_fatal_at_start() {
    if !is_root() {
        return skip(
            "a_state_file_a_save_could_not_replace_is_fatal_at_start",
            "needs root for a file the tracker's user does not own",
        );
    }
    // As /tmp: anyone may create a file, only owners replace one. The
    // tracker runs as nobody; the file and directory are root's.
    let keep = TestDir::new();
    std::fs::set_permissions(&keep.0, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let state = keep.write("state", "# opentracker state 1\n");
    assert_state_file_fatal(
        &keep,
        &state,
        true,
        &format!(
            "state file {}: a save could not replace it: its directory {} is sticky (mode \
             1777) and neither the file (uid 0) nor the directory (uid 0) belongs to the \
             tracker's user (uid 65534)",
            state.display(),
            keep.0.display()
        ),
    );
}

#[test]
fn a_state_that_cannot_be_saved_at_stop_fails_the_stop_and_the_old_one_stays() {
    let keep = TestDir::new();
    keep.writable_by_tracker();
    let hex: String = hash(8).iter().map(|b| format!("{b:02X}")).collect();
    let old = format!("{hex}:{}:3\n", unix_now() / 60);
    let state = keep.write("state", &old);
    let mut tracker = Tracker::start(&format!(
        "[tracker]\nstate_file = \"{}\"\nsave_state = true\n",
        state.display()
    ));
    assert_eq!(scrape_counts(&tracker, 8), Some((0, 0, 3)));
    tracker.get(&announce_path(&hash(8), 1, "&left=0&event=completed"));
    // The directory was writable at start; now it is not.
    keep.unwritable_by_tracker();
    // Not a clean stop: a service manager must see the swarms were lost.
    assert_eq!(tracker.stop().code(), Some(111));
    tracker.assert_last_log_line(&format!(
        "stopped without keeping the swarms: state file {}: writing {}.new: \
         Permission denied (os error 13); not saved",
        state.display(),
        state.display()
    ));
    assert_eq!(std::fs::read_to_string(&state).unwrap(), old);
    assert!(!keep.path("state.new").exists());
}

#[test]
fn a_failing_state_save_shows_in_the_status_and_metrics_until_one_completes() {
    let keep = TestDir::new();
    keep.writable_by_tracker();
    let mut tracker = Tracker::start(&format!(
        "[tracker]\nstate_file = \"{}\"\nsave_state = true\nsave_interval = 1\n",
        keep.path("state").display()
    ));
    const FAILING: &str = "; the last save of tracker.state_file failed";
    let failing = "opentracker_state_save_failing";
    // Waits for the saver thread to report `saved` (each second).
    let wait_for = |tracker: &Tracker, saved: u64| {
        let deadline = Instant::now() + Duration::from_secs(15);
        while tracker.metric(failing) != saved {
            assert!(Instant::now() < deadline, "{failing} never {saved}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    keep.unwritable_by_tracker();
    wait_for(&tracker, 1);
    // A reload's READY=1 carries the status line at once.
    let ready = tracker.reload();
    assert!(ready.contains(FAILING), "{ready}");
    keep.writable_by_tracker();
    wait_for(&tracker, 0);
    let ready = tracker.reload();
    assert!(
        ready.contains("STATUS=") && !ready.contains(FAILING),
        "{ready}"
    );
}

#[test]
fn an_unwritable_state_directory_is_fatal_at_start() {
    let keep = TestDir::new();
    let state = keep.path("state");
    let config = keep.write(
        "opentracker.toml",
        &format!(
            "[listen]\ntcp_udp = [\"127.0.0.1:{}\"]\n[tracker]\nstate_file = \"{}\"\nsave_state = true\n",
            free_port(),
            state.display()
        ),
    );
    keep.unwritable_by_tracker();
    let (status, _, stderr) = run_binary(&["-f", config.to_str().unwrap(), "--log", "stderr"]);
    assert_eq!(status.code(), Some(111), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "state file {}: cannot create a file in its directory ({}.check-",
            state.display(),
            state.display()
        )) && stderr.contains(
            ": Permission denied (os error 13)); with tracker.save_state the directory must \
             be writable by the tracker's user"
        ),
        "{stderr}"
    );
}

#[test]
fn periodic_saves_bring_the_swarms_back_after_a_crash() {
    let keep = TestDir::new();
    keep.writable_by_tracker();
    let path = keep.path("state");
    let toml = format!(
        "[tracker]\nstate_file = \"{}\"\nsave_state = true\nsave_interval = 1\n",
        path.display()
    );
    let mut first = Tracker::start(&toml);
    first.get(&announce_path(&hash(5), 1, "&left=0&event=completed"));
    first.get(&announce_path(&hash(5), 2, "&left=7"));
    let value = |metrics: &str, name: &str| -> u64 {
        let line = metrics.lines().find(|l| l.starts_with(name)).unwrap();
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    // The saver counts a save after renaming the file into place: wait for
    // both, or the metrics may be read in between.
    let deadline = Instant::now() + Duration::from_secs(15);
    let metrics = loop {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let metrics = first.get("/metrics").text();
        if text.contains("\t127.0.0.1 1 sc ")
            && text.contains("\t127.0.0.1 2 l ")
            && value(&metrics, "opentracker_state_saves_total ") >= 1
        {
            break metrics;
        }
        assert!(
            Instant::now() < deadline,
            "never saved: {text:?}\n{metrics}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let value = |name: &str| value(&metrics, name);
    assert!(
        unix_now().abs_diff(value("opentracker_state_last_save_timestamp_seconds ")) <= 5,
        "{metrics}"
    );
    assert_eq!(value("opentracker_state_save_failures_total "), 0);
    // A crash: no save on the way out.
    first.signal("KILL");
    wait_exit(&mut first.child, Duration::from_secs(10)).expect("killed tracker exits");

    let second = Tracker::start(&toml);
    let log = second.stderr();
    assert!(log.contains(": 1 torrents loaded, 2 peers, in "), "{log}");
    assert_eq!(scrape_counts(&second, 5), Some((1, 1, 1)));
}

/// The requests/s of a status line.
fn requests_per_sec(message: &str) -> Option<u64> {
    let (before, _) = message.split_once(" requests/s")?;
    before.rsplit(' ').next()?.parse().ok()
}

#[test]
fn a_reload_keeps_the_requests_per_second_last_measured() {
    let mut tracker = Tracker::start("");
    tracker.clear_messages();
    announce_torrents(&tracker, 300);
    // The first status line, 10 s after the start (not READY=1).
    assert!(
        tracker.wait_for_message("requests/s", Duration::from_secs(25)),
        "no status line: {:?}",
        tracker.messages
    );
    let measured = tracker.messages.last().and_then(|m| requests_per_sec(m));
    assert!(measured > Some(0), "{:?}", tracker.messages);
    let ready = tracker.reload();
    // Another status line may have come between; the reload's says what
    // the last one said rather than 0.
    let last = (tracker.messages.iter().rev())
        .find(|m| !m.contains("READY=1") && m.contains("requests/s"))
        .map_or(measured, |m| requests_per_sec(m));
    assert_eq!(requests_per_sec(&ready), last, "{ready}");
}

/// A log at level info with swarms that expire within a second or two.
const EXPIRING: &str = "[log]\ntarget = \"stderr\"\nlevel = \"info\"\n\
     [tracker]\npeer_timeout = 1\nsweep_interval = 1\ntorrent_timeout = 1\n";

#[test]
fn memory_freed_by_expired_swarms_goes_back_to_the_system() {
    let tracker = Tracker::start(EXPIRING);
    announce_torrents(&tracker, 25_000);
    // They expire within seconds; once a sweep has dropped them, the heap
    // they took is handed back.
    tracker.wait_for_log(" to 0: ");
    let log = tracker.stderr();
    let line = log.lines().find(|l| l.contains(" to 0: ")).unwrap();
    assert!(
        line.contains("torrents and peers fell from ")
            && line.contains("handed the heap's free pages back to the system (resident "),
        "{line}"
    );
}

#[test]
fn an_operator_can_keep_the_heap_from_being_walked() {
    let tracker = Tracker::start(&format!("{EXPIRING}give_back_memory = false\n"));
    announce_torrents(&tracker, 25_000);
    let deadline = Instant::now() + Duration::from_secs(10);
    while tracker.metric("opentracker_torrents") > 0 {
        assert!(Instant::now() < deadline, "the torrents never expired");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Two more sweep intervals: the pass that emptied the swarms has ended.
    std::thread::sleep(Duration::from_secs(2));
    let log = tracker.stderr();
    assert!(!log.contains("fell from"), "{log}");
}
