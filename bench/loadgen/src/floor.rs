//! The floor: a stateless server that answers every request with a fixed
//! reply, BEP 15 from one blocking `recv_from`/`send_to` loop and HTTP from
//! one blocking accept/read/write/close loop. No tracker that moves one
//! datagram per system call does less work per response than this, so the
//! figures of real trackers are read against it. With `--batched` it moves
//! UDP in batches (`recvmmsg`/`sendmmsg`, as trackers that batch do): what
//! the network stack alone costs per response, the least any tracker can.
//! Over IPv6 its announce replies carry 18-byte peers, as BEP 15 asks.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};

use crate::args::Args;
use crate::mmsg::{Inbox, Outbox};
use crate::udp_wire::{ACTION_ANNOUNCE, ACTION_CONNECT, ACTION_SCRAPE};

/// Peers in every announce reply, as many as the load asks for by default.
const PEERS: usize = 30;
/// The receive buffer trackers use (ours asks for 4 MiB too), so bursts are
/// absorbed alike.
const RECV_BUFFER: usize = 4 << 20;

fn bind(listen: SocketAddr) -> std::io::Result<UdpSocket> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(listen),
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )?;
    socket.set_recv_buffer_size(RECV_BUFFER)?;
    socket.bind(&listen.into())?;
    Ok(socket.into())
}

pub fn run(raw: &[String]) -> Result<(), String> {
    let args = Args::parse(raw, &["listen"], &["batched"])?;
    let listen: SocketAddr = args.require("listen")?;
    let socket = bind(listen).map_err(|e| format!("bind {listen}: {e}"))?;
    let listener = TcpListener::bind(listen).map_err(|e| format!("bind {listen}: {e}"))?;
    std::thread::spawn(move || serve_http(listener));
    let batched = args.flag("batched");
    eprintln!(
        "floor: serving BEP 15{} and HTTP statelessly on {listen}",
        if batched { " in batches" } else { "" }
    );
    let peer = Peer::of(listen);
    if batched {
        return serve_batches(&socket, peer);
    }
    let mut packet = [0u8; 2048];
    let mut reply = Vec::with_capacity(20 + 18 * PEERS);
    loop {
        let (len, source) = match socket.recv_from(&mut packet) {
            Ok(received) => received,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("receive: {e}")),
        };
        if answer(&packet[..len], peer, &mut reply) {
            // A full buffer drops the reply, as a tracker would; clients retry.
            let _ = socket.send_to(&reply, source);
        }
    }
}

/// Answers up to a batch of datagrams per `recvmmsg`, with one `sendmmsg`.
fn serve_batches(socket: &UdpSocket, peer: Peer) -> Result<(), String> {
    let mut inbox = Inbox::default();
    let mut outbox = Outbox::replies();
    let mut reply = Vec::with_capacity(20 + 18 * PEERS);
    loop {
        let count = match inbox.wait_receive(socket) {
            Ok(count) => count,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("receive: {e}")),
        };
        for i in 0..count {
            if answer(inbox.get(i), peer, &mut reply) {
                outbox.push_to(&reply, inbox.source(i));
            }
        }
        outbox.flush(socket);
    }
}

/// Answers each connection's first request head with one fixed announce
/// reply and closes it.
fn serve_http(listener: TcpListener) {
    let body = http_body();
    let mut response = format!(
        "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    response.extend_from_slice(&body);
    let mut head = [0u8; 8192];
    // A failed accept (a client gone before it was taken) is skipped.
    for stream in listener.incoming().flatten() {
        answer_http(stream, &mut head, &response);
    }
}

fn answer_http(mut stream: TcpStream, head: &mut [u8], response: &[u8]) {
    let mut filled = 0;
    while filled < head.len() {
        match stream.read(&mut head[filled..]) {
            Ok(0) | Err(_) => return,
            Ok(n) => filled += n,
        }
        if head[..filled].windows(4).any(|w| w == b"\r\n\r\n") {
            let _ = stream.write_all(response);
            return;
        }
    }
}

/// A compact announce reply with [`PEERS`] made-up peers.
fn http_body() -> Vec<u8> {
    let mut body = format!(
        "d8:completei1e10:incompletei{PEERS}e8:intervali1800e5:peers{}:",
        6 * PEERS
    )
    .into_bytes();
    for peer in 0..PEERS as u16 {
        body.extend_from_slice(&[127, 0, 0, 1]);
        body.extend_from_slice(&(6881 + peer).to_be_bytes());
    }
    body.push(b'e');
    body
}

/// The made-up peer every UDP announce reply lists, compact as the
/// listening address's family has it: 127.0.0.1 or ::1, and a port.
#[derive(Clone, Copy)]
struct Peer(&'static [u8]);

impl Peer {
    fn of(listen: SocketAddr) -> Self {
        const V4: [u8; 4] = [127, 0, 0, 1];
        const V6: [u8; 16] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        Peer(if listen.is_ipv6() { &V6 } else { &V4 })
    }
}

/// Writes the fixed reply to `request` into `reply`; false for junk.
fn answer(request: &[u8], peer: Peer, reply: &mut Vec<u8>) -> bool {
    if request.len() < 16 {
        return false;
    }
    let action = u32::from_be_bytes([request[8], request[9], request[10], request[11]]);
    reply.clear();
    reply.extend_from_slice(&action.to_be_bytes());
    reply.extend_from_slice(&request[12..16]);
    match action {
        ACTION_CONNECT => reply.extend_from_slice(&request[..8]),
        ACTION_ANNOUNCE if request.len() >= 98 => {
            // interval, leechers, seeders, then PEERS made-up peers.
            for word in [1800u32, 1, PEERS as u32] {
                reply.extend_from_slice(&word.to_be_bytes());
            }
            for port in 6881..6881 + PEERS as u16 {
                reply.extend_from_slice(peer.0);
                reply.extend_from_slice(&port.to_be_bytes());
            }
        }
        ACTION_SCRAPE => {
            for _ in request[16..].chunks_exact(20) {
                reply.extend_from_slice(&[0; 12]);
            }
        }
        _ => return false,
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::udp_wire::{parse_reply, Reply};

    #[test]
    fn answers_each_action_with_its_layout() {
        let mut request = Vec::new();
        crate::udp_wire::connect_request(&mut request, 7);
        let mut reply = Vec::new();
        let v4 = Peer::of("127.0.0.1:1".parse().unwrap());
        assert!(answer(&request, v4, &mut reply));
        assert!(matches!(
            parse_reply(&reply),
            Some((7, Reply::Connected(_)))
        ));

        let mut announce = vec![0u8; 98];
        announce[8..12].copy_from_slice(&ACTION_ANNOUNCE.to_be_bytes());
        announce[12..16].copy_from_slice(&9u32.to_be_bytes());
        assert!(answer(&announce, v4, &mut reply));
        assert_eq!(reply.len(), 20 + 6 * PEERS);
        assert_eq!(parse_reply(&reply), Some((9, Reply::Announced)));
        let v6 = Peer::of("[::1]:1".parse().unwrap());
        assert!(answer(&announce, v6, &mut reply));
        assert_eq!(reply.len(), 20 + 18 * PEERS);
        assert_eq!(reply[20..38], [&[0; 15][..], &[1, 0x1a, 0xe1]].concat());

        crate::udp_wire::scrape_request(&mut request, 1, 3, &[0; 20]);
        assert!(answer(&request, v4, &mut reply));
        assert_eq!(parse_reply(&reply), Some((3, Reply::Scraped)));
        assert_eq!(reply.len(), 8 + 12);

        assert!(!answer(&[0; 15], v4, &mut reply));
        announce[11] = 9;
        assert!(!answer(&announce, v4, &mut reply));
    }

    #[test]
    fn http_reply_is_a_bencoded_announce() {
        let body = http_body();
        assert!(body.starts_with(b"d8:complete"));
        assert!(body.ends_with(b"e"));
        assert_eq!(body.len(), 59 + 6 * PEERS);
    }
}
