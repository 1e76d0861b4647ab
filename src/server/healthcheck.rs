//! `opentracker --healthcheck`: a tiny client that asks a running tracker
//! for a UDP connection id and an HTTP answer, for container health checks.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

use crate::proto::udp;

const TIMEOUT: Duration = Duration::from_secs(3);

/// Probes `addr`; `Err` says what did not answer.
pub fn probe(addr: SocketAddr) -> Result<(), String> {
    probe_udp(addr).map_err(|e| format!("UDP {addr}: {e}"))?;
    probe_http(addr).map_err(|e| format!("HTTP {addr}: {e}"))
}

fn probe_udp(addr: SocketAddr) -> Result<(), String> {
    let local: SocketAddr = if addr.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    }
    .parse()
    .map_err(|_| "bad address")?;
    let socket = UdpSocket::bind(local).map_err(|e| e.to_string())?;
    socket
        .set_read_timeout(Some(TIMEOUT))
        .map_err(|e| e.to_string())?;
    // Connected, so a closed port fails at once (ECONNREFUSED) instead of
    // waiting out the timeout.
    socket.connect(addr).map_err(|e| e.to_string())?;
    let transaction_id = fastrand::u32(..);
    let mut request = udp::PROTOCOL_ID.to_be_bytes().to_vec();
    request.extend_from_slice(&0u32.to_be_bytes());
    request.extend_from_slice(&transaction_id.to_be_bytes());
    socket.send(&request).map_err(|e| e.to_string())?;
    let mut reply = [0u8; 64];
    let len = socket.recv(&mut reply).map_err(|e| e.to_string())?;
    if len == 16 && reply[..4] == [0; 4] && reply[4..8] == transaction_id.to_be_bytes() {
        Ok(())
    } else {
        Err(format!("unexpected {len}-byte reply to connect"))
    }
}

fn probe_http(addr: SocketAddr) -> Result<(), String> {
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(TIMEOUT))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(b"GET / HTTP/1.0\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).map_err(|e| e.to_string())?;
    if head.starts_with(b"HTTP/1.") {
        Ok(())
    } else {
        Err("not an HTTP answer".into())
    }
}
