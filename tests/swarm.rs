//! Peer and torrent expiry, driven by the event loop's timer (short
//! timeouts configured so the test takes seconds).

mod common;

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
