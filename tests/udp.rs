//! BEP 15 over IPv4 and IPv6 against the real binary.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;

#[test]
fn connect_announce_scrape_v4() {
    let tracker = Tracker::start("");
    let udp = Udp::new(tracker.v4());
    let reply = udp.announce(&hash(1), 6881, 0, 2, -1);
    assert_eq!(be32(&reply, 0), 1);
    assert_eq!(be32(&reply, 4), 99);
    assert!((1620..1980).contains(&be32(&reply, 8)));
    assert_eq!(
        (be32(&reply, 12), be32(&reply, 16)),
        (0, 1),
        "leechers, seeders"
    );
    assert_eq!(&reply[20..], &[127, 0, 0, 1, 0x1a, 0xe1]);

    let scrape = udp.scrape(&[hash(1), hash(2)]);
    assert_eq!(scrape.len(), 8 + 24);
    assert_eq!(be32(&scrape, 0), 2);
    assert_eq!(
        (be32(&scrape, 8), be32(&scrape, 12), be32(&scrape, 16)),
        (1, 0, 0)
    );
    assert_eq!(&scrape[20..32], &[0; 12], "unknown torrent answers zeros");
    assert_eq!(udp.scrape(&[]).len(), 8);
}

#[test]
fn v6_reply_carries_only_v6_peers_with_counts_of_both() {
    let tracker = Tracker::start("");
    Udp::new(tracker.v4()).announce(&hash(3), 1000, 0, 0, 50);
    let v6 = Udp::new(tracker.v6());
    let reply = v6.announce(&hash(3), 2000, 5, 0, 50);
    assert_eq!((be32(&reply, 12), be32(&reply, 16)), (1, 1));
    assert_eq!(reply.len(), 20 + 18);
    assert_eq!(&reply[20..36], &std::net::Ipv6Addr::LOCALHOST.octets());
}

#[test]
fn completed_stopped_and_numwant() {
    let tracker = Tracker::start("");
    let udp = Udp::new(tracker.v4());
    for port in 1..=210u16 {
        udp.announce(&hash(4), port, 10, 0, 0);
    }
    assert_eq!(udp.announce(&hash(4), 1, 10, 0, -1).len(), 20 + 200 * 6);
    assert_eq!(udp.announce(&hash(4), 1, 10, 0, 30).len(), 20 + 30 * 6);
    assert_eq!(udp.announce(&hash(4), 1, 10, 0, 0).len(), 20);
    udp.announce(&hash(4), 1, 0, 1, 0);
    let stopped = udp.announce(&hash(4), 2, 10, 3, 50);
    assert_eq!(stopped.len(), 20);
    assert_eq!((be32(&stopped, 12), be32(&stopped, 16)), (208, 1));
    let scrape = udp.scrape(&[hash(4)]);
    assert_eq!(
        (be32(&scrape, 8), be32(&scrape, 12), be32(&scrape, 16)),
        (1, 1, 208)
    );
}

#[test]
fn wrong_connection_id_never_amplifies() {
    let mut tracker = Tracker::start("");
    let udp = Udp::new(tracker.v4());
    let announce = Udp::announce_packet(0xdead_beef, (&hash(5), 1, 0, 0, 50));
    let error = udp
        .exchange(&announce)
        .expect("error reply to a full-size announce");
    assert_eq!(error.len(), 33);
    assert_eq!(be32(&error, 0), 3);
    assert_eq!(&error[8..], b"Connection ID missmatch.\0");
    // A 16-byte scrape with a bad id would provoke 33 bytes: no reply at all.
    let mut scrape = 0xdead_beefu64.to_be_bytes().to_vec();
    scrape.extend_from_slice(&[0, 0, 0, 2, 0, 0, 0, 1]);
    assert_eq!(udp.exchange(&scrape), None);
    // An id from another address's connect is refused too.
    let other = Udp::new(tracker.v6());
    let foreign_id = other.connect();
    assert_eq!(
        udp.exchange(&Udp::announce_packet(foreign_id, (&hash(5), 1, 0, 0, 50)))
            .map(|r| r.len()),
        Some(33)
    );
    assert!(tracker.is_alive());
}

#[test]
fn junk_is_dropped_silently_and_server_survives() {
    let mut tracker = Tracker::start("");
    let udp = Udp::new(tracker.v4());
    let id = udp.connect();
    let mut bad_magic = 0x41727101981u64.to_be_bytes().to_vec();
    bad_magic.extend_from_slice(&[0; 8]);
    let mut unknown_action = id.to_be_bytes().to_vec();
    unknown_action.extend_from_slice(&[0, 0, 0, 5, 0, 0, 0, 1]);
    let short_announce = Udp::announce_packet(id, (&hash(6), 1, 0, 0, 50))[..97].to_vec();
    for junk in [
        vec![],
        vec![0u8; 15],
        bad_magic,
        unknown_action,
        short_announce,
        vec![0xff; 1500],
    ] {
        assert_eq!(udp.exchange(&junk), None, "{junk:?}");
    }
    assert_eq!(udp.announce(&hash(6), 1, 0, 0, 50).len(), 26);
    assert!(tracker.is_alive());
}

#[test]
fn stats_count_udp() {
    let tracker = Tracker::start("");
    let udp = Udp::new(tracker.v4());
    udp.announce(&hash(7), 1, 0, 0, 50);
    udp.scrape(&[hash(7)]);
    let text = tracker.get("/stats?mode=udp4").text();
    assert!(text.starts_with("4\n3\n"), "{text}");
    let everything = tracker.get("/stats?mode=everything").text();
    assert!(
        everything.contains("<connect>2</connect>") && everything.contains("<scrape>1</scrape>"),
        "{everything}"
    );
}

/// A connect request, the cheapest datagram to send by the thousand.
fn flood_packet() -> Vec<u8> {
    let mut connect = 0x41727101980u64.to_be_bytes().to_vec();
    connect.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 9]);
    connect
}

/// More datagrams than one burst serves, twice: while its queue stays full
/// the server takes the socket out of its poll, and it must put it back once
/// the queue runs dry, or the next quiet request would go unanswered.
#[test]
fn floods_are_answered_and_quiet_requests_after_them_too() {
    const FLOOD: usize = 3000;
    let mut tracker = Tracker::start("");
    let udp = Udp::new(tracker.v4());
    let connect = flood_packet();
    for round in 0u8..2 {
        let receiver = udp.socket.try_clone().unwrap();
        receiver
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let counting = std::thread::spawn(move || {
            let mut buf = [0u8; 64];
            let mut answered = 0;
            // Bounded: every read waits at most 500 ms, and there are at
            // most FLOOD replies.
            while answered < FLOOD && receiver.recv_from(&mut buf).is_ok() {
                answered += 1;
            }
            answered
        });
        for _ in 0..FLOOD {
            udp.socket.send_to(&connect, udp.to).unwrap();
        }
        let answered = counting.join().unwrap();
        // The client's own receive buffer may overflow; the server must
        // still have answered far more than one burst.
        assert!(
            answered > 300,
            "round {round}: {answered} of {FLOOD} answered"
        );
        let reply = udp.announce(&hash(round + 20), 6881, 0, 0, 5);
        assert_eq!(
            be32(&reply, 0),
            1,
            "round {round}: announce after the flood"
        );
    }
    assert!(tracker.is_alive());
}

#[test]
fn datagrams_the_kernel_drops_are_reported_to_the_operator() {
    let mut tracker = Tracker::start("");
    let udp = Udp::new(tracker.v4());
    // A stopped tracker reads nothing, so its queue fills and overflows:
    // 50 000 datagrams are well past any receive buffer it asks for.
    tracker.signal("STOP");
    let connect = flood_packet();
    for _ in 0..50_000 {
        let _ = udp.socket.send_to(&connect, udp.to);
    }
    tracker.signal("CONT");
    // STATUS= is refreshed every 10 s.
    let reported = tracker.wait_for_message(
        "UDP datagrams dropped by the kernel in 10 s",
        Duration::from_secs(25),
    );
    assert!(reported, "notify messages: {:?}", tracker.messages);
    let log = tracker.stderr();
    assert!(
        log.contains("UDP datagrams dropped by the kernel in 10 s: the receive queue was full"),
        "log: {log}"
    );
    // A fresh client: the first one's queue is full of flood replies.
    let reply = Udp::new(tracker.v4()).announce(&hash(30), 6881, 0, 0, 5);
    assert_eq!(be32(&reply, 0), 1, "announce after the overflow");
    assert!(tracker.is_alive());
}

/// Names of the tracker's threads that serve UDP on their own.
fn udp_worker_threads(tracker: &Tracker) -> Vec<String> {
    let tasks = std::fs::read_dir(format!("/proc/{}/task", tracker.child.id())).unwrap();
    let mut names: Vec<String> = tasks
        .map(|task| std::fs::read_to_string(task.unwrap().path().join("comm")).unwrap())
        .map(|name| name.trim().to_string())
        .filter(|name| name.contains("worker"))
        .collect();
    names.sort();
    names
}

#[test]
fn worker_threads_serve_udp_and_share_the_swarm_with_http() {
    let mut tracker = Tracker::launch(Launch {
        listen: "udp_workers = 3".into(),
        ..Launch::default()
    });
    // Three threads for each UDP socket, the IPv4 and the IPv6 one. Each
    // names itself once running, which may be just after READY.
    let mut names = udp_worker_threads(&tracker);
    for _ in 0..100 {
        if names.len() == 6 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
        names = udp_worker_threads(&tracker);
    }
    assert_eq!(names.len(), 6, "{names:?}");
    assert_eq!(names[0], "udp0-worker0");

    let udp = Udp::new(tracker.v4());
    // Spread over the hash space, so over every shard of the swarm state.
    let hashes: Vec<[u8; 20]> = (0..32u8).map(|i| [i * 8 + 1; 20]).collect();
    for (n, info_hash) in hashes.iter().enumerate() {
        let reply = udp.announce(info_hash, 1000 + n as u16, 0, 0, 50);
        assert_eq!((be32(&reply, 12), be32(&reply, 16)), (0, 1), "torrent {n}");
    }
    // HTTP is served by the event loop and finds what the workers stored...
    for (n, info_hash) in hashes.iter().enumerate() {
        let reply = tracker.get(&announce_path(info_hash, 2000, "&left=5"));
        let mut expected = vec![127, 0, 0, 1];
        expected.extend_from_slice(&(1000 + n as u16).to_be_bytes());
        let peers = reply.bencode().bytes("peers").to_vec();
        assert!(peers.chunks(6).any(|p| p == expected), "torrent {n}");
    }
    // ...and the workers find the peers HTTP stored.
    let reply = udp.announce(&hashes[5], 1005, 0, 0, 50);
    assert_eq!((be32(&reply, 12), be32(&reply, 16)), (1, 1));
    assert!(reply[20..]
        .chunks(6)
        .any(|p| p == [127, 0, 0, 1, 0x07, 0xd0]));

    // A connection id is good whichever thread answers the announce.
    let id = udp.connect();
    for _ in 0..20 {
        let packet = Udp::announce_packet(id, (&hashes[0], 1000, 0, 0, 50));
        let reply = udp.exchange(&packet).expect("announce reply");
        assert_eq!(be32(&reply, 0), 1, "an announce reply, not an error");
    }
    // Every thread's requests are counted: 32 + 1 connect-announce pairs,
    // one connect and 20 announces.
    let text = tracker.get("/stats?mode=udp4").text();
    assert!(text.starts_with("87\n87\n"), "{text}");
    let peers = tracker.get("/stats?mode=peer").text();
    assert!(peers.starts_with("64\n32\n"), "{peers}");
    // Threads blocked in a receive call do not hold up a stop.
    assert!(tracker.stop().success());
}

#[test]
fn worker_threads_lose_no_announce_from_clients_sending_at_once() {
    let tracker = Tracker::launch(Launch {
        listen: "udp_workers = 4".into(),
        ..Launch::default()
    });
    let server = tracker.v4();
    let clients: Vec<_> = (0..4u16)
        .map(|client| {
            std::thread::spawn(move || {
                let udp = Udp::new(server);
                let id = udp.connect();
                for n in 0..100u16 {
                    let info_hash = [(n * 2 + 1) as u8; 20];
                    let port = client * 1000 + n + 1;
                    let packet = Udp::announce_packet(id, (&info_hash, port, 0, 0, 0));
                    let reply = udp.exchange(&packet).expect("announce reply");
                    assert_eq!(be32(&reply, 0), 1, "an announce reply");
                }
            })
        })
        .collect();
    for client in clients {
        client.join().unwrap();
    }
    // 100 torrents, each with one seeder from every client.
    let peers = tracker.get("/stats?mode=peer").text();
    assert!(peers.starts_with("400\n400\n"), "{peers}");
    let torrents = tracker.get("/stats?mode=torr").text();
    assert!(torrents.starts_with("100\n"), "{torrents}");
}

#[test]
fn without_workers_the_event_loop_serves_udp_alone() {
    let tracker = Tracker::start("");
    assert_eq!(udp_worker_threads(&tracker), Vec::<String>::new());
}

/// On a host with several addresses, a client must hear from the address it
/// wrote to: NAT, stateful firewalls and clients that check the sender drop
/// anything else. A socket bound to a wildcard address answers from each
/// request's destination, here 127.0.0.2 and 127.0.0.3, which routing alone
/// would answer from 127.0.0.1. Both wildcards, event loop and workers.
#[test]
fn a_wildcard_socket_answers_from_the_address_each_request_was_sent_to() {
    for (wildcard, workers) in [("0.0.0.0", 0), ("[::]", 0), ("[::]", 2)] {
        let port = free_port();
        let _tracker = Tracker::launch(Launch {
            own_listeners: true,
            toml: format!(
                "[listen]\nudp = [\"{wildcard}:{port}\"]\ntcp = [\"127.0.0.1:{port}\"]\n\
                 udp_workers = {workers}\n"
            ),
            ..Launch::default()
        });
        let mut addresses: Vec<SocketAddr> = (1..=3)
            .map(|last| SocketAddr::from(([127, 0, 0, last], port)))
            .collect();
        if wildcard == "[::]" {
            addresses.push(SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port)));
        }
        for to in addresses {
            let client = Udp::new(to);
            let connect = [
                &0x41727101980u64.to_be_bytes()[..],
                &[0, 0, 0, 0, 0, 0, 0, 7],
            ]
            .concat();
            let (reply, from) = client.exchange_from(&connect).expect("connect reply");
            assert_eq!(from, to, "connect reply on {wildcard} (workers {workers})");
            let id = u64::from_be_bytes(reply[8..16].try_into().unwrap());
            let announce = Udp::announce_packet(id, (&hash(9), 6881, 0, 2, 50));
            let (reply, from) = client.exchange_from(&announce).expect("announce reply");
            assert_eq!(from, to, "announce reply on {wildcard} (workers {workers})");
            assert_eq!(be32(&reply, 0), 1, "an announce reply");
        }
    }
}
