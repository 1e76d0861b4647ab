//! Peer and torrent expiry, driven by the event loop's timer (short
//! timeouts configured so the test takes seconds).

mod common;

use std::time::{Duration, Instant};

use common::*;

fn scrape_counts(tracker: &Tracker, n: u8) -> Option<(i64, i64, i64)> {
    let reply = tracker
        .get(&format!("/scrape?info_hash={}", urlencode(&hash(n))))
        .bencode();
    let files = reply.get("files").unwrap().dict();
    files
        .get(hash(n).as_slice())
        .map(|t| (t.int("complete"), t.int("incomplete"), t.int("downloaded")))
}

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
