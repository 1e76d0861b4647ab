//! Cluster sync: two trackers pass each other their announces, so either
//! hands out the peers of both; datagrams without the cluster's key are
//! refused, and a weak key does not start.

mod common;

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use common::*;

/// A free UDP port on 127.0.0.1 for a cluster socket.
fn cluster_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_member(dir: &TestDir, own: u16, other: u16) -> Tracker {
    start_member_with(dir, own, other, "")
}

/// A member with `access` as its `[access]` section.
fn start_member_with(dir: &TestDir, own: u16, other: u16, access: &str) -> Tracker {
    let key = dir.write("cluster.key", "a secret that the two trackers share\n");
    Tracker::start(&format!(
        "[cluster]\nlisten = \"127.0.0.1:{own}\"\npeers = [\"127.0.0.1:{other}\"]\nkey_file = \"{}\"\n[access]\n{access}",
        key.display()
    ))
}

/// Waits (bounded) until `tracker`'s scrape of torrent `n` is `counts`.
fn wait_for_counts(tracker: &Tracker, n: u8, counts: Option<(i64, i64, i64)>) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while scrape_counts(tracker, n) != counts {
        assert!(
            Instant::now() < deadline,
            "counts {:?}, not {counts:?}",
            scrape_counts(tracker, n)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn two_trackers_hand_out_each_others_peers() {
    let dir = TestDir::new();
    let (port_a, port_b) = (cluster_port(), cluster_port());
    let a = start_member(&dir, port_a, port_b);
    let b = start_member(&dir, port_b, port_a);
    assert!(a.stderr().contains(&format!(
        "cluster sync on 127.0.0.1:{port_a} with 1 trackers"
    )));
    // A seeder that completed at A, over HTTP, and a leecher at B over UDP.
    a.get(&announce_path(&hash(1), 6881, "&left=0&event=completed"));
    wait_for_counts(&b, 1, Some((1, 0, 1)));
    let reply = Udp::new(b.v4()).announce(&hash(1), 6882, 5, 0, 50);
    let mut ports: Vec<u16> = reply[20..]
        .chunks(6)
        .map(|p| u16::from_be_bytes([p[4], p[5]]))
        .collect();
    ports.sort_unstable();
    assert_eq!(ports, [6881, 6882], "B hands out A's peer");
    wait_for_counts(&a, 1, Some((1, 1, 1)));
    // A stop at A takes the peer off B too.
    a.get(&announce_path(&hash(1), 6881, "&left=0&event=stopped"));
    wait_for_counts(&b, 1, Some((0, 1, 1)));
    assert!(a.metric("opentracker_cluster_datagrams_sent_total") >= 2);
    assert_eq!(b.metric("opentracker_cluster_announces_received_total"), 2);
    // Upstream's live-sync counters show them too.
    assert!(b.get("/stats?mode=syncs").text().starts_with("2\n0\n"));
    let everything = b.get("/stats?mode=everything").text();
    assert!(everything.contains("<livesync>\n      <count>2</count>"));
    assert_eq!(b.metric("opentracker_cluster_datagrams_refused_total"), 0);
    assert_eq!(a.metric("opentracker_cluster_announces_dropped_total"), 0);
    // Announces from the cluster are not passed on again: A received only
    // B's own one.
    assert_eq!(a.metric("opentracker_cluster_announces_received_total"), 1);
}

#[test]
fn a_stopping_tracker_passes_on_its_last_announces() {
    let dir = TestDir::new();
    let (port_a, port_b) = (cluster_port(), cluster_port());
    let mut a = start_member(&dir, port_a, port_b);
    let b = start_member(&dir, port_b, port_a);
    // Sent at the next whole second, or at the stop, whichever comes first.
    a.get(&announce_path(&hash(7), 6881, "&left=0"));
    assert_eq!(a.stop().code(), Some(0));
    wait_for_counts(&b, 7, Some((1, 0, 0)));
}

#[test]
fn announces_the_access_list_refuses_are_not_counted_as_applied() {
    let dir = TestDir::new();
    let hex: String = hash(6).iter().map(|b| format!("{b:02x}")).collect();
    let list = dir.write("whitelist", &format!("{hex}\n"));
    let (port_a, port_b) = (cluster_port(), cluster_port());
    let a = start_member(&dir, port_a, port_b);
    let only_6 = format!("whitelist = \"{}\"\n", list.display());
    let b = start_member_with(&dir, port_b, port_a, &only_6);
    a.get(&announce_path(&hash(5), 6881, "&left=0"));
    a.get(&announce_path(&hash(6), 6881, "&left=0"));
    wait_for_counts(&b, 6, Some((1, 0, 0)));
    assert_eq!(scrape_counts(&b, 5), None);
    assert_eq!(b.metric("opentracker_cluster_announces_received_total"), 1);
    assert_eq!(b.metric("opentracker_cluster_datagrams_dropped_total"), 0);
}

#[test]
fn a_hybrid_torrents_v2_announces_reach_its_v1_swarm_across_the_cluster() {
    let dir = TestDir::new();
    let hex = |h: [u8; 20]| h.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let pairs = dir.write("hybrids", &format!("{} {}\n", hex(hash(1)), hex(hash(2))));
    let (port_a, port_b) = (cluster_port(), cluster_port());
    let linking = format!("hybrids = \"{}\"\n", pairs.display());
    let a = start_member_with(&dir, port_a, port_b, &linking);
    let b = start_member(&dir, port_b, port_a);
    // A v2 announce at A is passed on by its v1 hash.
    a.get(&announce_path(&hash(2), 6881, "&left=0"));
    wait_for_counts(&b, 1, Some((1, 0, 0)));
    assert_eq!(scrape_counts(&b, 2), None);
    // B, without the file, passes a v2 announce on as it came; A links it.
    b.get(&announce_path(&hash(2), 6882, "&left=5"));
    wait_for_counts(&a, 1, Some((1, 1, 0)));
}

#[test]
fn datagrams_without_the_key_are_refused() {
    let dir = TestDir::new();
    let (port_a, port_b) = (cluster_port(), cluster_port());
    let b = start_member(&dir, port_b, port_a);
    // A look-alike datagram with a made-up tag, claiming a peer for torrent 3.
    let mut forged = b"OTC2".to_vec();
    forged.extend_from_slice(&7u64.to_be_bytes());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    forged.extend_from_slice(&now.to_be_bytes());
    forged.extend_from_slice(&0u64.to_be_bytes());
    forged.push(0);
    forged.extend_from_slice(&hash(3));
    forged.extend_from_slice(&[10, 0, 0, 1, 0x1a, 0xe1]);
    forged.extend_from_slice(&[0u8; 16]);
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    sender.send_to(&forged, ("127.0.0.1", port_b)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while b.metric("opentracker_cluster_datagrams_refused_total") == 0 {
        assert!(
            Instant::now() < deadline,
            "the forged datagram was not refused"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(scrape_counts(&b, 3), None);
}

/// Waits (bounded) until `tracker`'s `metric` reads `value`.
fn wait_for_metric(tracker: &Tracker, metric: &str, value: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while tracker.metric(metric) != value {
        assert!(
            Instant::now() < deadline,
            "{metric} is {}, not {value}",
            tracker.metric(metric)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_datagram_heard_again_is_refused_and_a_download_counts_once() {
    let dir = TestDir::new();
    // A's "other member" is this test, which records what A sends.
    let recorder = UdpSocket::bind("127.0.0.1:0").unwrap();
    recorder
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let (port_a, port_b) = (cluster_port(), cluster_port());
    let a = start_member(&dir, port_a, recorder.local_addr().unwrap().port());
    let b = start_member(&dir, port_b, port_a);
    a.get(&announce_path(&hash(4), 6881, "&left=0&event=completed"));
    let mut datagram = [0u8; 2048];
    let (len, _) = recorder.recv_from(&mut datagram).expect("A's datagram");
    let datagram = &datagram[..len];
    // Delivered to B once, then replayed as someone on the path could.
    recorder.send_to(datagram, ("127.0.0.1", port_b)).unwrap();
    wait_for_counts(&b, 4, Some((1, 0, 1)));
    recorder.send_to(datagram, ("127.0.0.1", port_b)).unwrap();
    wait_for_metric(&b, "opentracker_cluster_datagrams_refused_total", 1);
    assert_eq!(scrape_counts(&b, 4), Some((1, 0, 1)), "one download");
    assert_eq!(b.metric("opentracker_cluster_announces_received_total"), 1);
    // Stopped, then the earlier announce replayed: the peer stays gone.
    a.get(&announce_path(&hash(4), 6881, "&left=0&event=stopped"));
    let mut stop = [0u8; 2048];
    let (len, _) = recorder.recv_from(&mut stop).expect("A's stop");
    recorder
        .send_to(&stop[..len], ("127.0.0.1", port_b))
        .unwrap();
    wait_for_counts(&b, 4, Some((0, 0, 1)));
    recorder.send_to(datagram, ("127.0.0.1", port_b)).unwrap();
    wait_for_metric(&b, "opentracker_cluster_datagrams_refused_total", 2);
    assert_eq!(scrape_counts(&b, 4), Some((0, 0, 1)));
}

#[test]
fn a_short_key_or_a_partial_section_does_not_start() {
    let dir = TestDir::new();
    let key = dir.write("cluster.key", "short\n");
    let port = cluster_port();
    let config = dir.write(
        "opentracker.toml",
        &format!(
            "[listen]\ntcp_udp = [\"127.0.0.1:{}\"]\n[cluster]\nlisten = \"127.0.0.1:{port}\"\n\
             peers = [\"127.0.0.1:1\"]\nkey_file = \"{}\"\n",
            free_port(),
            key.display()
        ),
    );
    let (status, _, stderr) = run_binary(&["-f", config.to_str().unwrap(), "--log", "stderr"]);
    assert_eq!(status.code(), Some(111), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "cluster.key_file {}: the key has 5 bytes; it needs at least 16",
            key.display()
        )),
        "{stderr}"
    );
    // A FIFO is refused, not waited for.
    std::fs::remove_file(&key).unwrap();
    make_fifo(&key);
    let (status, _, stderr) = run_binary_within(
        &["-f", config.to_str().unwrap(), "--log", "stderr"],
        Duration::from_secs(10),
    );
    assert_eq!(status.code(), Some(111), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "cluster.key_file {}: not a regular file (a FIFO)",
            key.display()
        )),
        "{stderr}"
    );
    let partial = dir.write(
        "partial.toml",
        &format!("[cluster]\nlisten = \"127.0.0.1:{port}\"\n"),
    );
    let (status, _, stderr) = run_binary(&["-f", partial.to_str().unwrap()]);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cluster needs all of listen, peers and key_file"),
        "{stderr}"
    );
}
