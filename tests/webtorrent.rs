//! WebTorrent over the wire: browsers' WebSocket connections to the real
//! binary, announcing, passing WebRTC offers and answers, scraping, and the
//! limits and refusals.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};
use tungstenite::{Message, WebSocket};

const ENABLED: &str = "[webtorrent]\nenabled = true\n";

/// A browser's tracker connection.
struct Browser {
    socket: WebSocket<TcpStream>,
    /// The code of the Close frame the tracker sent, once it did.
    close_code: Option<u16>,
}

impl Browser {
    fn connect(addr: SocketAddr) -> Browser {
        Browser::open(TcpStream::connect(addr).expect("connect"), addr)
    }

    /// A browser at another loopback address than 127.0.0.1.
    fn connect_from(source: IpAddr, addr: SocketAddr) -> Browser {
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("socket");
        socket
            .bind(&SocketAddr::new(source, 0).into())
            .expect("bind");
        socket.connect(&addr.into()).expect("connect");
        Browser::open(socket.into(), addr)
    }

    fn open(stream: TcpStream, addr: SocketAddr) -> Browser {
        Browser::open_path(stream, addr, "/announce")
    }

    /// A browser whose announce URL has `path` (a passkey in it).
    fn open_path(stream: TcpStream, addr: SocketAddr, path: &str) -> Browser {
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let url = format!("ws://{addr}{path}");
        let (socket, response) = tungstenite::client(url, stream).expect("WebSocket handshake");
        assert_eq!(response.status(), 101);
        Browser {
            socket,
            close_code: None,
        }
    }

    fn send(&mut self, message: Value) {
        self.send_text(message.to_string());
    }

    fn send_text(&mut self, text: String) {
        self.socket.send(Message::Text(text.into())).expect("send");
    }

    /// The next message, as JSON.
    fn receive(&mut self) -> Value {
        loop {
            match self.socket.read().expect("a message from the tracker") {
                Message::Text(text) => return serde_json::from_str(&text).expect("JSON"),
                Message::Ping(_) | Message::Pong(_) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    /// Whether the tracker closed the connection within a few seconds.
    fn is_closed_by_tracker(&mut self) -> bool {
        loop {
            match self.socket.read() {
                Ok(Message::Close(frame)) => self.close_code = frame.map(|f| f.code.into()),
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return false
                }
                Err(_) => return true,
            }
        }
    }
}

/// A WebTorrent binary string: one character per byte.
fn binary(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

fn peer_id(n: u8) -> String {
    binary(&[b"-WW0208-".as_slice(), &[n; 12]].concat())
}

fn announce(hash: u8, peer: u8, left: u64) -> Value {
    json!({
        "action": "announce",
        "info_hash": binary(&common::hash(hash)),
        "peer_id": peer_id(peer),
        "numwant": 5,
        "uploaded": 0,
        "downloaded": 0,
        "left": left,
        "event": "started",
    })
}

fn offer(n: u8) -> Value {
    json!({
        "offer": { "type": "offer", "sdp": format!("v=0\r\no=- {n} 2 IN IP4 127.0.0.1\r\na=\"quoted\"") },
        "offer_id": binary(&[n; 20]),
    })
}

fn webtorrent_metric(tracker: &Tracker, sample: &str) -> u64 {
    let metrics = tracker.get("/metrics").text();
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&format!("opentracker_webtorrent_{sample} ")))
        .unwrap_or_else(|| panic!("no {sample} in {metrics}"))
        .parse()
        .unwrap()
}

#[test]
fn browsers_meet_through_relayed_offers_and_answers() {
    let mut tracker = Tracker::start(ENABLED);
    assert!(tracker
        .stderr()
        .contains("; WebTorrent on the http listeners; "));
    let hash = binary(&common::hash(1));
    let mut leecher = Browser::connect(tracker.v4());
    leecher.send(announce(1, 1, 1000));
    let reply = leecher.receive();
    assert_eq!(reply["action"], "announce");
    assert_eq!(reply["info_hash"], hash.as_str());
    assert_eq!(
        (reply["complete"].as_u64(), reply["incomplete"].as_u64()),
        (Some(0), Some(1))
    );
    assert_eq!(reply["interval"], 120);

    // A seeder over IPv6 with two offers: the one leecher gets one.
    let mut seeder = Browser::connect(tracker.v6());
    let mut message = announce(1, 2, 0);
    message["offers"] = json!([offer(7), offer(8)]);
    seeder.send(message);
    let reply = seeder.receive();
    assert_eq!(
        (reply["complete"].as_u64(), reply["incomplete"].as_u64()),
        (Some(1), Some(1))
    );
    let relayed = leecher.receive();
    assert_eq!(relayed["action"], "announce");
    assert_eq!(relayed["info_hash"], hash.as_str());
    assert_eq!(relayed["peer_id"], peer_id(2).as_str());
    let (offer_id, sdp) = (relayed["offer_id"].clone(), relayed["offer"].clone());
    assert!([offer(7), offer(8)]
        .iter()
        .any(|o| o["offer_id"] == offer_id && o["offer"] == sdp));

    // The leecher answers; the seeder gets it, the leecher nothing back.
    leecher.send(json!({
        "action": "announce",
        "info_hash": hash,
        "peer_id": peer_id(1),
        "to_peer_id": peer_id(2),
        "offer_id": offer_id,
        "answer": { "type": "answer", "sdp": "v=0\r\na=answer" },
    }));
    let answer = seeder.receive();
    assert_eq!(answer["peer_id"], peer_id(1).as_str());
    assert_eq!(answer["offer_id"], offer_id);
    assert_eq!(answer["answer"]["sdp"], "v=0\r\na=answer");
    leecher.send(json!({ "action": "scrape", "info_hash": [hash, binary(&common::hash(2))] }));
    let scrape = leecher.receive();
    assert_eq!(
        scrape["action"], "scrape",
        "the answer got no reply: {scrape}"
    );
    let files = &scrape["files"];
    assert_eq!(files[&hash]["complete"], 1);
    assert_eq!(files[&hash]["incomplete"], 1);
    assert_eq!(files[binary(&common::hash(2))]["complete"], 0);

    assert_eq!(webtorrent_metric(&tracker, "connections"), 2);
    assert_eq!(webtorrent_metric(&tracker, "peers"), 2);
    assert_eq!(webtorrent_metric(&tracker, "seeders"), 1);
    let metrics = tracker.get("/metrics").text();
    for sample in [
        "webtorrent_messages_total{kind=\"announce\"} 3",
        "webtorrent_messages_total{kind=\"offer_relayed\"} 1",
        "webtorrent_messages_total{kind=\"answer_relayed\"} 1",
        "webtorrent_messages_total{kind=\"scrape\"} 1",
        "announces_by_client_total{client=\"WebTorrent\",version=\"0208\"} 3",
    ] {
        assert!(
            metrics.contains(&format!("\nopentracker_{sample}\n")),
            "{sample} in {metrics}"
        );
    }

    // A browser that goes away, even without a closing handshake, leaves
    // its swarms at once; that is no misbehaviour.
    drop(seeder);
    let deadline = Instant::now() + Duration::from_secs(5);
    while webtorrent_metric(&tracker, "connections") != 1 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    leecher.send(json!({ "action": "scrape", "info_hash": hash }));
    let scrape = leecher.receive();
    assert_eq!(scrape["files"][&hash]["complete"], 0);
    assert_eq!(scrape["files"][&hash]["incomplete"], 1);
    // Stopping leaves too; the BitTorrent swarms never saw any of it.
    let mut stopped = announce(1, 1, 1000);
    stopped["event"] = json!("stopped");
    leecher.send(stopped);
    assert_eq!(leecher.receive()["incomplete"], 0);
    assert_eq!(webtorrent_metric(&tracker, "peers"), 0);
    assert_eq!(tracker.metric("opentracker_peers"), 0);
    assert_eq!(webtorrent_metric(&tracker, "connections_dropped_total"), 0);
    // The status line every 10 s says what WebTorrent holds.
    assert!(
        tracker.wait_for_message(
            "WebTorrent 0 peers on 1 connections",
            Duration::from_secs(15)
        ),
        "{:?}",
        tracker.messages
    );
    let json = tracker.get("/stats?mode=json").text();
    let stats: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(stats["webtorrent"]["connections"], 1);
    assert_eq!(stats["webtorrent"]["messages"]["announce"], 4);
}

#[test]
fn a_peer_id_is_not_taken_over_from_another_address() {
    let tracker = Tracker::start(ENABLED);
    let hash = binary(&common::hash(3));
    let mut victim = Browser::connect(tracker.v4());
    victim.send(announce(3, 1, 1000));
    assert_eq!(victim.receive()["incomplete"], 1);

    // Another address announces with the victim's id, as read from a
    // relayed offer, then stops it: both are refused.
    let thief_address = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
    let mut thief = Browser::connect_from(thief_address, tracker.v4());
    for event in ["started", "stopped"] {
        let mut message = announce(3, 1, 1000);
        message["event"] = json!(event);
        thief.send(message);
        let reply = thief.receive();
        let reason = reply["failure reason"].as_str().unwrap_or_default();
        assert!(reason.contains("in use on another connection"), "{reply}");
    }

    // The victim is still in the swarm, and answers for it still reach it.
    let mut other = Browser::connect(tracker.v4());
    other.send(json!({ "action": "scrape", "info_hash": hash }));
    assert_eq!(other.receive()["files"][&hash]["incomplete"], 1);
    let answer_to_first = json!({
        "action": "announce",
        "info_hash": hash,
        "peer_id": peer_id(2),
        "to_peer_id": peer_id(1),
        "offer_id": binary(&[5; 20]),
        "answer": { "type": "answer", "sdp": "v=0\r\na=answer" },
    });
    other.send(answer_to_first.clone());
    assert_eq!(victim.receive()["peer_id"], peer_id(2).as_str());

    // The victim's browser reconnecting from its own address takes its id
    // over while the old connection is still open.
    let mut reconnected = Browser::connect(tracker.v4());
    reconnected.send(announce(3, 1, 1000));
    // Two leechers: the victim's id once, and the answering peer.
    assert_eq!(reconnected.receive()["incomplete"], 2);
    other.send(answer_to_first);
    assert_eq!(reconnected.receive()["peer_id"], peer_id(2).as_str());
    assert_eq!(webtorrent_metric(&tracker, "peers"), 2);
}

#[test]
fn bad_messages_get_a_reason_and_limits_hold() {
    let dir = TestDir::new();
    let hex: String = common::hash(9).iter().map(|b| format!("{b:02x}")).collect();
    let list = dir.write("blacklist.txt", &format!("{hex}\n"));
    let toml = format!(
        "[webtorrent]\nenabled = true\nmax_torrents_per_connection = 2\nmax_message_size = 4096\n\
         [access]\nblacklist = \"{}\"\n",
        list.display()
    );
    let tracker = Tracker::start_in(dir, toml);
    let mut browser = Browser::connect(tracker.v4());
    browser.send_text("{not json".into());
    assert!(browser.receive()["failure reason"].is_string());
    let mut bad = announce(1, 1, 0);
    bad["info_hash"] = json!("too short");
    browser.send(bad);
    let reply = browser.receive();
    assert!(
        reply["failure reason"]
            .as_str()
            .unwrap()
            .contains("info_hash"),
        "{reply}"
    );
    // A refused scrape is answered as a scrape: a client hands each reply
    // to the request of its action.
    for (scrape, reason) in [
        (json!({ "action": "scrape" }), "full scrape"),
        (
            json!({ "action": "scrape", "info_hash": "short" }),
            "info_hash",
        ),
        (
            json!({ "action": "scrape", "info_hash": vec![binary(&[b'a'; 20]); 76] }),
            "hashes",
        ),
    ] {
        browser.send(scrape);
        let reply = browser.receive();
        assert_eq!(reply["action"], "scrape", "{reply}");
        let said = reply["failure reason"].as_str().unwrap();
        assert!(said.contains(reason), "{reply}");
    }

    // The blacklisted torrent is refused; two others fill the connection.
    browser.send(announce(9, 1, 0));
    let reply = browser.receive();
    assert!(
        reply["failure reason"]
            .as_str()
            .unwrap()
            .contains("not authorized"),
        "{reply}"
    );
    browser.send(announce(1, 1, 0));
    assert_eq!(browser.receive()["complete"], 1);
    browser.send(announce(2, 1, 0));
    assert_eq!(browser.receive()["complete"], 1);
    browser.send(announce(3, 1, 0));
    let reply = browser.receive();
    assert!(
        reply["failure reason"]
            .as_str()
            .unwrap()
            .contains("as many torrents"),
        "{reply}"
    );
    // Re-announcing a torrent already held is fine.
    browser.send(announce(2, 1, 0));
    assert_eq!(browser.receive()["complete"], 1);
    assert_eq!(webtorrent_metric(&tracker, "torrents"), 2);
    let metrics = tracker.get("/metrics").text();
    assert!(
        metrics.contains("\nopentracker_webtorrent_messages_total{kind=\"refused\"} 7\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("\nopentracker_announces_not_authorized_total 1\n"),
        "{metrics}"
    );

    // A message over the size limit ends the connection, and its peers leave.
    browser.send_text(format!(
        "{{\"action\":\"announce\",\"pad\":\"{}\"}}",
        "x".repeat(5000)
    ));
    assert!(browser.is_closed_by_tracker());
    assert_eq!(
        browser.close_code,
        Some(1009),
        "the reason: message too big"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while webtorrent_metric(&tracker, "peers") != 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(webtorrent_metric(&tracker, "peers"), 0);
    assert_eq!(webtorrent_metric(&tracker, "connections_dropped_total"), 1);
    // The tracker serves on.
    let mut again = Browser::connect(tracker.v4());
    again.send(announce(1, 3, 5));
    assert_eq!(again.receive()["incomplete"], 1);
}

#[test]
fn the_tracker_limits_bound_webtorrent_swarms_too() {
    let tracker = Tracker::start("[tracker]\nmax_torrents = 3\n[webtorrent]\nenabled = true\n");
    let mut browser = Browser::connect(tracker.v4());
    // Completed and stopped at once: each swarm stays for its download, and
    // the connection holds none of them, so its own limit never bites.
    for hash in 1..=10 {
        let mut completed = announce(hash, 1, 0);
        completed["event"] = json!("completed");
        browser.send(completed);
        let reply = browser.receive();
        let stored = hash <= 3;
        assert_eq!(
            reply["complete"],
            json!(u8::from(stored)),
            "{hash}: {reply}"
        );
        let mut stopped = announce(hash, 1, 0);
        stopped["event"] = json!("stopped");
        browser.send(stopped);
        browser.receive();
    }
    assert_eq!(webtorrent_metric(&tracker, "torrents"), 3);
    assert_eq!(webtorrent_metric(&tracker, "announces_unstored_total"), 7);
    // Counted apart: BitTorrent torrents have a limit of their own.
    let udp = Udp::new(tracker.v4());
    udp.announce(&common::hash(1), 1, 5, 0, 0);
    assert_eq!(tracker.metric("opentracker_torrents"), 1);
    assert_eq!(tracker.metric("opentracker_announces_unstored_total"), 0);
}

#[test]
fn silent_connections_are_closed() {
    let tracker = Tracker::start("[webtorrent]\nenabled = true\ninterval = 1\nidle_timeout = 2\n");
    let mut browser = Browser::connect(tracker.v4());
    browser.send(announce(1, 1, 0));
    assert_eq!(browser.receive()["interval"], 1);
    let started = Instant::now();
    let mut closed = false;
    while !closed && started.elapsed() < Duration::from_secs(10) {
        closed = browser.is_closed_by_tracker();
    }
    assert!(closed, "still open after {:?}", started.elapsed());
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(browser.close_code, Some(1001), "the reason: going away");
    assert_eq!(webtorrent_metric(&tracker, "peers"), 0);
}

#[test]
fn pings_keep_a_connection_open_and_forgotten_peers_free_its_torrents() {
    let tracker = Tracker::start(
        "[tracker]\nsweep_interval = 1\n[webtorrent]\nenabled = true\ninterval = 1\n\
         idle_timeout = 2\nmax_torrents_per_connection = 1\n",
    );
    let mut browser = Browser::connect(tracker.v4());
    browser.send(announce(1, 1, 0));
    assert_eq!(browser.receive()["complete"], 1);
    // Pings alone, past the idle timeout: the connection stays, while its
    // peer, which has not announced, is forgotten.
    let started = Instant::now();
    while webtorrent_metric(&tracker, "peers") > 0 || started.elapsed() < Duration::from_secs(3) {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "peer never forgotten"
        );
        browser
            .socket
            .send(Message::Ping(Vec::new().into()))
            .expect("ping");
        std::thread::sleep(Duration::from_millis(400));
    }
    // Its torrent no longer counts against the connection's one.
    browser.send(announce(2, 1, 0));
    let reply = browser.receive();
    assert_eq!(reply["complete"], 1, "{reply}");
}

#[test]
fn a_reload_that_revokes_a_passkey_or_blocks_a_network_ends_its_websockets() {
    let dir = TestDir::new();
    let keys = dir.write("passkeys", "goodkey1\nother2\n");
    let blocked = dir.write("blocked", "192.0.2.0/24\n");
    let toml = format!(
        "[access]\npasskeys = \"{}\"\nblocked_networks = \"{}\"\n{ENABLED}",
        keys.display(),
        blocked.display()
    );
    let launch = Launch {
        toml,
        ..Launch::default()
    };
    let mut tracker = Tracker::launch_in(dir, launch);
    let connect = |path: &str| {
        let addr = tracker.v4();
        Browser::open_path(TcpStream::connect(addr).expect("connect"), addr, path)
    };
    let mut revoked = connect("/goodkey1/announce");
    let mut kept = connect("/other2/announce");
    revoked.send(announce(1, 1, 0));
    assert_eq!(revoked.receive()["complete"], 1);
    kept.send(announce(2, 2, 0));
    assert_eq!(kept.receive()["complete"], 1);
    let reload = |tracker: &mut Tracker| {
        tracker.clear_messages();
        tracker.signal("HUP");
        assert!(tracker.wait_for_message("READY=1", Duration::from_secs(10)));
    };

    std::fs::write(&keys, "other2\n").unwrap();
    reload(&mut tracker);
    assert!(revoked.is_closed_by_tracker());
    assert_eq!(revoked.close_code, Some(1008), "policy: no longer allowed");
    assert_eq!(webtorrent_metric(&tracker, "peers"), 1, "its peer left");
    kept.send(announce(2, 2, 0));
    assert_eq!(kept.receive()["complete"], 1);

    std::fs::write(&blocked, "127.0.0.0/8\n").unwrap();
    reload(&mut tracker);
    assert!(kept.is_closed_by_tracker());
    assert_eq!(kept.close_code, Some(1008));
    assert!(tracker
        .stderr()
        .contains("reload: 1 WebSocket connections ended: their network is blocked now"));
}

#[test]
fn upgrades_are_plain_http_unless_enabled() {
    let upgrade = |version: u8| {
        format!(
            "GET /announce HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
             Sec-WebSocket-Version: {version}\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        )
    };
    // Off, as upstream: an announce path without a query is a bad request.
    let tracker = Tracker::start("");
    assert_eq!(http(tracker.v4(), &upgrade(13)).status, 400);
    assert_eq!(
        http(tracker.v4(), "GET /announce HTTP/1.0\r\n\r\n").status,
        400
    );
    // With a query it announces, as upstream, which never reads `Upgrade`.
    let with_query = upgrade(13)
        .replacen("/announce", &announce_path(&[7; 20], 6881, ""), 1)
        .replace("Connection: Upgrade", "Connection: Upgrade, close");
    let announced = http(tracker.v4(), &with_query);
    assert_eq!(announced.status, 200, "{announced:?}");
    assert!(announced.text().contains("8:intervali"), "{announced:?}");
    assert!(tracker
        .get("/metrics")
        .text()
        .lines()
        .all(|l| !l.contains("webtorrent")));
    // On: another protocol version gets RFC 6455's 426 and the version
    // spoken; a version 13 handshake without a usable key, 400.
    let tracker = Tracker::start(ENABLED);
    let old = http(tracker.v4(), &upgrade(8));
    assert_eq!(old.status, 426, "{old:?}");
    assert_eq!(old.header("sec-websocket-version"), Some("13"), "{old:?}");
    // Counted as what was sent, not as a bad parameter.
    assert_eq!(tracker.metric(&http_errors("426 Upgrade Required")), 1);
    assert_eq!(tracker.metric(&http_errors("400 Invalid Parameter")), 0);
    let keyless = upgrade(13).replace("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", "");
    assert_eq!(http(tracker.v4(), &keyless).status, 400);
    let mut stream = TcpStream::connect(tracker.v4()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    std::io::Write::write_all(&mut stream, upgrade(13).as_bytes()).unwrap();
    let mut head = [0u8; 256];
    let n = std::io::Read::read(&mut stream, &mut head).unwrap();
    let head = String::from_utf8_lossy(&head[..n]);
    assert!(
        head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
        "{head}"
    );
    assert!(
        head.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
        "{head}"
    );
    // Plain HTTP on the same listener is unchanged.
    let reply = tracker.get(&announce_path(&common::hash(1), 6881, ""));
    assert_eq!(reply.status, 200);
}

#[test]
fn logs_name_each_message_and_each_completed_download() {
    let tracker = Tracker::start(
        "[webtorrent]\nenabled = true\n[log]\ntarget = \"stderr\"\nrequests = true\nclient_ip = \"full\"\ncompleted = true\n",
    );
    let mut browser = Browser::connect(tracker.v4());
    browser.send(announce(1, 1, 1000));
    browser.receive();
    browser.send_text("[]".into());
    browser.receive();
    // The download finishes: counted once, however often it is said.
    let mut completed = announce(1, 1, 0);
    completed["event"] = json!("completed");
    for _ in 0..2 {
        browser.send(completed.clone());
        assert_eq!(browser.receive()["complete"], 1);
    }
    let hex = |bytes: &[u8]| -> String { bytes.iter().map(|b| format!("{b:02X}")).collect() };
    let completed_line = format!(
        "completed info_hash={} peer_id={} ip=127.0.0.1",
        hex(&common::hash(1)),
        hex(&[b"-WW0208-".as_slice(), &[1; 12]].concat())
    );
    let wanted = [
        "127.0.0.1 websocket",
        "127.0.0.1 webtorrent announce",
        "127.0.0.1 webtorrent refused",
        completed_line.as_str(),
    ];
    let deadline = Instant::now() + Duration::from_secs(5);
    while !wanted.iter().all(|line| tracker.stderr().contains(line)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let log = tracker.stderr();
    for line in wanted {
        assert!(log.contains(line), "{line:?} in {log}");
    }
    assert_eq!(log.matches("completed info_hash=").count(), 1, "{log}");
    assert_eq!(webtorrent_metric(&tracker, "completed_total"), 1);
    // The BitTorrent swarms' downloads are counted apart.
    assert_eq!(tracker.metric("opentracker_completed_total"), 0);
    let stats: Value = serde_json::from_str(&tracker.get("/stats?mode=json").text()).unwrap();
    assert_eq!(stats["webtorrent"]["completed"], 1);
}

#[test]
fn a_browser_sending_without_pause_does_not_hold_up_other_clients() {
    let tracker = Tracker::start(ENABLED);
    let browser = Browser::connect(tracker.v4());
    let mut stream = browser.socket.get_ref().try_clone().unwrap();
    let mut pongs = stream.try_clone().unwrap();
    let reading = std::thread::spawn(move || {
        let mut buffer = vec![0u8; 1 << 16];
        while matches!(std::io::Read::read(&mut pongs, &mut buffer), Ok(1..)) {}
    });
    // Masked, empty pings, as many as fill a few writes: the tracker never
    // finds the socket empty while they keep coming.
    let pings: Vec<u8> = [0x89, 0x80, 1, 2, 3, 4].repeat(2000);
    let flood_for = Duration::from_secs(3);
    let ((), answered_meanwhile) = udp_answered_between(
        tracker.v4(),
        || (),
        |()| {
            let started = Instant::now();
            while started.elapsed() < flood_for {
                std::io::Write::write_all(&mut stream, &pings).expect("the tracker reads on");
            }
        },
    );
    // Before, the loop read this one socket until it ran dry: nothing else
    // was answered until the flood stopped.
    assert!(
        answered_meanwhile >= 5,
        "{answered_meanwhile} UDP requests answered during the flood"
    );
    stream.shutdown(std::net::Shutdown::Both).unwrap();
    reading.join().unwrap();
    let mut again = Browser::connect(tracker.v4());
    again.send(announce(1, 3, 5));
    assert_eq!(again.receive()["incomplete"], 1);
}
