//! Behind a load balancer that speaks the PROXY protocol
//! (`access.proxy_protocol`): the client its header names is the one
//! served, over TCP and UDP; a balancer's connection or datagram without a
//! valid header is refused, and other clients need none.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use common::*;

/// A version 2 header, byte by byte as the specification lays it out, for
/// an IPv4 client relayed over TCP (`0x11`) or UDP (`0x12`).
fn v2_header(client: [u8; 4], client_port: u16, tracker: SocketAddr, udp: bool) -> Vec<u8> {
    let mut header = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    header.push(0x21); // version 2, PROXY
    header.push(if udp { 0x12 } else { 0x11 });
    header.extend_from_slice(&12u16.to_be_bytes());
    header.extend_from_slice(&client);
    header.extend_from_slice(&[127, 0, 0, 1]);
    header.extend_from_slice(&client_port.to_be_bytes());
    header.extend_from_slice(&tracker.port().to_be_bytes());
    header
}

/// A version 2 LOCAL header: the balancer speaking for itself.
fn v2_local() -> Vec<u8> {
    let mut header = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    header.extend_from_slice(&[0x20, 0x00, 0, 0]);
    header
}

fn balancer_tracker() -> Tracker {
    Tracker::start("[access]\nproxy_protocol = [\"127.0.0.1\"]\n")
}

fn metric(tracker: &Tracker, name: &str) -> u64 {
    let metrics = tracker.get_from_v6("/metrics");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no {name}: {metrics}"))
        .parse()
        .unwrap()
}

trait FromV6 {
    fn get_from_v6(&self, target: &str) -> String;
}

impl FromV6 for Tracker {
    /// A request from ::1, which is no balancer: it needs no header.
    fn get_from_v6(&self, target: &str) -> String {
        http(self.v6(), &format!("GET {target} HTTP/1.0\r\n\r\n")).text()
    }
}

#[test]
fn tcp_clients_relayed_by_a_balancer_are_served_as_themselves() {
    let tracker = balancer_tracker();
    let request = |port: u16| {
        format!(
            "GET {} HTTP/1.0\r\n\r\n",
            announce_path(&hash(1), port, "&numwant=10")
        )
    };
    // Version 1, the text line.
    let v1 = format!(
        "PROXY TCP4 192.0.2.7 127.0.0.1 40000 {}\r\n{}",
        tracker.v4().port(),
        request(6881)
    );
    assert_eq!(http(tracker.v4(), &v1).status, 200);
    // Version 2, binary: a second client hears of the first at its own
    // address, not the balancer's.
    let mut v2 = v2_header([198, 51, 100, 9], 40001, tracker.v4(), false);
    v2.extend_from_slice(request(6882).as_bytes());
    let reply = http_bytes(tracker.v4(), &v2).bencode();
    let mut peers: Vec<&[u8]> = reply.bytes("peers").chunks(6).collect();
    peers.sort_unstable();
    assert_eq!(
        peers,
        [
            &[192, 0, 2, 7, 0x1a, 0xe1][..],
            &[198, 51, 100, 9, 0x1a, 0xe2]
        ]
    );
    // A header that arrives in pieces is waited for.
    {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(tracker.v4()).unwrap();
        stream.write_all(b"PROXY TCP4 192.0.2.").unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let rest = format!("70 127.0.0.1 40002 6969\r\n{}", request(6885));
        stream.write_all(rest.as_bytes()).unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).unwrap();
        let (response, _) = parse_response(&raw).expect("a response");
        assert_eq!(response.status, 200);
    }
    // A health check speaks for the balancer itself.
    let mut local = v2_local();
    let scrape = format!(
        "GET /scrape?info_hash={} HTTP/1.0\r\n\r\n",
        urlencode(&hash(1))
    );
    local.extend_from_slice(scrape.as_bytes());
    assert_eq!(http_bytes(tracker.v4(), &local).status, 200);

    // Without a header, the balancer's connection is refused.
    let plain = http(tracker.v4(), &request(6883));
    assert_eq!(plain.status, 400);
    assert_eq!(
        metric(&tracker, "opentracker_proxy_protocol_errors_total"),
        1
    );
    // Clients that are no balancer send none.
    let direct = http(tracker.v6(), &request(6884));
    assert_eq!(direct.status, 200);
    assert_eq!(scrape_counts_v6(&tracker, 1), Some((0, 4, 0)));
}

fn scrape_counts_v6(tracker: &Tracker, n: u8) -> Option<(i64, i64, i64)> {
    let target = format!("/scrape?info_hash={}", urlencode(&hash(n)));
    let reply = http(tracker.v6(), &format!("GET {target} HTTP/1.0\r\n\r\n")).bencode();
    let files = reply.get("files").unwrap().dict();
    files
        .get(hash(n).as_slice())
        .map(|t| (t.int("complete"), t.int("incomplete"), t.int("downloaded")))
}

/// The balancer's socket: datagrams from 127.0.0.1 carry headers.
struct Balancer {
    socket: UdpSocket,
    tracker: SocketAddr,
}

impl Balancer {
    fn new(tracker: &Tracker) -> Balancer {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(700)))
            .unwrap();
        Balancer {
            socket,
            tracker: tracker.v4(),
        }
    }

    /// Relays `payload` for `client` (or sends it bare when `None`) and
    /// returns the reply, if one comes.
    fn relay(&self, client: Option<([u8; 4], u16)>, payload: &[u8]) -> Option<Vec<u8>> {
        let mut datagram = match client {
            Some((ip, port)) => v2_header(ip, port, self.tracker, true),
            None => Vec::new(),
        };
        datagram.extend_from_slice(payload);
        self.socket.send_to(&datagram, self.tracker).unwrap();
        let mut reply = [0u8; 2048];
        let (n, from) = self.socket.recv_from(&mut reply).ok()?;
        assert_eq!(from, self.tracker, "the reply goes to the balancer");
        Some(reply[..n].to_vec())
    }

    fn connect(&self, client: ([u8; 4], u16)) -> u64 {
        let mut connect = 0x41727101980u64.to_be_bytes().to_vec();
        connect.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 7]);
        let reply = self.relay(Some(client), &connect).expect("connect reply");
        u64::from_be_bytes(reply[8..16].try_into().unwrap())
    }
}

#[test]
fn udp_datagrams_relayed_by_a_balancer_are_served_as_their_clients() {
    let tracker = balancer_tracker();
    let balancer = Balancer::new(&tracker);
    let first = ([192, 0, 2, 7], 40000);
    let id = balancer.connect(first);
    let announce = Udp::announce_packet(id, (&hash(2), 6881, 0, 0, 50));
    let reply = balancer
        .relay(Some(first), &announce)
        .expect("announce reply");
    assert_eq!(reply.len(), 20 + 6);
    // The connection id belongs to the relayed client: another one cannot
    // use it.
    let other = ([192, 0, 2, 8], 40000);
    let stolen = balancer.relay(Some(other), &announce);
    assert!(
        stolen.as_ref().is_none_or(|r| be32(r, 0) == 3),
        "{stolen:?}"
    );
    // A second client hears of the first at its own address.
    let second = ([198, 51, 100, 9], 40001);
    let id = balancer.connect(second);
    let announce = Udp::announce_packet(id, (&hash(2), 6882, 0, 0, 50));
    let reply = balancer
        .relay(Some(second), &announce)
        .expect("announce reply");
    let mut peers: Vec<&[u8]> = reply[20..].chunks(6).collect();
    peers.sort_unstable();
    assert_eq!(
        peers,
        [
            &[192, 0, 2, 7, 0x1a, 0xe1][..],
            &[198, 51, 100, 9, 0x1a, 0xe2]
        ]
    );
    // A LOCAL header: the balancer checking on the tracker for itself.
    let mut connect = 0x41727101980u64.to_be_bytes().to_vec();
    connect.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 9]);
    let mut health = v2_local();
    health.extend_from_slice(&connect);
    balancer.socket.send_to(&health, tracker.v4()).unwrap();
    let mut reply = [0u8; 64];
    assert_eq!(balancer.socket.recv(&mut reply).unwrap(), 16);

    // Without a header, the balancer's datagram is dropped.
    assert_eq!(balancer.relay(None, &connect), None);
    assert_eq!(
        metric(&tracker, "opentracker_proxy_protocol_errors_total"),
        1
    );
    // Clients that are no balancer send none.
    let v6 = Udp::new(tracker.v6());
    assert_eq!(v6.announce(&hash(2), 6883, 0, 0, 50).len(), 20 + 18);
}

#[test]
fn a_balancer_naming_an_address_no_peer_has_is_refused() {
    let tracker = balancer_tracker();
    // Served as the balancer instead, it would store the balancer as a
    // peer: such a header is refused as an unreadable one is.
    let request = format!("GET {} HTTP/1.0\r\n\r\n", announce_path(&hash(3), 6881, ""));
    for source in ["TCP6 ::", "TCP6 ff02::1", "TCP4 0.0.0.0", "TCP4 224.0.0.1"] {
        let destination = if source.starts_with("TCP6") {
            "::1"
        } else {
            "127.0.0.1"
        };
        let v1 = format!("PROXY {source} {destination} 40000 6969\r\n{request}");
        assert_eq!(http(tracker.v4(), &v1).status, 400, "{source}");
    }
    let balancer = Balancer::new(&tracker);
    let mut connect = 0x41727101980u64.to_be_bytes().to_vec();
    connect.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 7]);
    for source in [[0, 0, 0, 0], [224, 0, 0, 1], [255, 255, 255, 255]] {
        assert_eq!(
            balancer.relay(Some((source, 40000)), &connect),
            None,
            "{source:?}"
        );
    }
    assert_eq!(
        metric(&tracker, "opentracker_proxy_protocol_errors_total"),
        7
    );
    assert_eq!(scrape_counts_v6(&tracker, 3), None, "nobody was stored");
}
