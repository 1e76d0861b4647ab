//! `opentracker --healthcheck`: a tiny client that asks a running tracker
//! for a UDP connection id and an HTTP answer, for container health checks.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

use crate::config::cli::HealthcheckAt;
use crate::config::Listeners;
use crate::proto::udp;

const TIMEOUT: Duration = Duration::from_secs(3);

/// Where to ask: a UDP connect, an HTTP request, or both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Targets {
    pub udp: Option<SocketAddr>,
    pub http: Option<SocketAddr>,
}

impl Targets {
    /// Both protocols at one address (`--healthcheck ip:port`).
    pub fn at(addr: SocketAddr) -> Targets {
        Targets {
            udp: Some(addr),
            http: Some(addr),
        }
    }

    /// Where to ask, from what the command line says.
    pub fn of_command_line(at: &HealthcheckAt) -> Result<Targets, String> {
        match at {
            HealthcheckAt::Address(addr) => Ok(Targets::at(*addr)),
            HealthcheckAt::Listeners(listeners) => Targets::of(listeners),
        }
    }

    /// Where a tracker serving `listeners` answers: its first UDP and its
    /// first TCP listener, a protocol it does not serve left out. Wildcards
    /// are asked on 127.0.0.1, which `[::]` serves too: it is bound dual
    /// stack, or as 0.0.0.0 on a host without IPv6.
    pub fn of(listeners: &Listeners) -> Result<Targets, String> {
        let reachable = |addr: Option<&SocketAddr>| match addr {
            Some(addr) if addr.port() == 0 => Err(format!(
                "listener {addr}: its port is chosen when the tracker starts, so it cannot \
                 be known here; give --healthcheck the address"
            )),
            Some(addr) if addr.ip().is_unspecified() => Ok(Some(SocketAddr::new(
                Ipv4Addr::LOCALHOST.into(),
                addr.port(),
            ))),
            Some(addr) => Ok(Some(*addr)),
            None => Ok(None),
        };
        let targets = Targets {
            udp: reachable(listeners.udp.first())?,
            http: reachable(listeners.tcp.first())?,
        };
        if targets.udp.is_none() && targets.http.is_none() {
            return Err("the configuration has no TCP or UDP listener to ask".into());
        }
        Ok(targets)
    }
}

/// `--healthcheck`: asks where the command line says a tracker is; `Err`
/// says why it is not known where, or what did not answer.
pub fn check(at: &HealthcheckAt) -> Result<(), String> {
    let targets = Targets::of_command_line(at).map_err(|e| format!("--healthcheck: {e}"))?;
    probe(&targets).map_err(|e| format!("unhealthy: {e}"))
}

/// Asks each target in turn; `Err` says what did not answer.
pub fn probe(targets: &Targets) -> Result<(), String> {
    if let Some(addr) = targets.udp {
        probe_udp(addr).map_err(|e| format!("UDP {addr}: {e}"))?;
    }
    if let Some(addr) = targets.http {
        probe_http(addr).map_err(|e| format!("HTTP {addr}: {e}"))?;
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn listeners(tcp: &[&str], udp: &[&str]) -> Listeners {
        let parse = |list: &[&str]| list.iter().map(|a| a.parse().unwrap()).collect();
        Listeners {
            tcp: parse(tcp),
            udp: parse(udp),
        }
    }

    fn addr(text: &str) -> Option<SocketAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn wildcards_are_asked_on_the_ipv4_loopback_and_addresses_as_they_are() {
        let both = Targets::of(&listeners(&["[::]:23071"], &["0.0.0.0:23072"])).unwrap();
        assert_eq!(
            both,
            Targets {
                udp: addr("127.0.0.1:23072"),
                http: addr("127.0.0.1:23071"),
            }
        );
        let named = Targets::of(&listeners(&["[::1]:80", "[::]:81"], &["10.1.2.3:6969"]));
        assert_eq!(
            named.unwrap(),
            Targets {
                udp: addr("10.1.2.3:6969"),
                http: addr("[::1]:80"),
            },
            "the first listener of each protocol"
        );
    }

    #[test]
    fn an_address_given_is_asked_for_both_protocols_as_it_is() {
        let given = HealthcheckAt::Address("[::]:7000".parse().unwrap());
        assert_eq!(
            Targets::of_command_line(&given).unwrap(),
            Targets {
                udp: addr("[::]:7000"),
                http: addr("[::]:7000"),
            }
        );
        let config = HealthcheckAt::Listeners(listeners(&["[::]:7001"], &[]));
        assert_eq!(
            Targets::of_command_line(&config).unwrap(),
            Targets {
                udp: None,
                http: addr("127.0.0.1:7001"),
            }
        );
    }

    #[test]
    fn a_protocol_not_served_is_not_asked() {
        let udp_only = Targets::of(&listeners(&[], &["[::]:7000"])).unwrap();
        assert_eq!(
            (udp_only.udp, udp_only.http),
            (addr("127.0.0.1:7000"), None)
        );
        let tcp_only = Targets::of(&listeners(&["127.0.0.2:7001"], &[])).unwrap();
        assert_eq!(
            (tcp_only.udp, tcp_only.http),
            (None, addr("127.0.0.2:7001"))
        );
        let none = Targets::of(&listeners(&[], &[])).unwrap_err();
        assert!(none.contains("no TCP or UDP listener"), "{none}");
        let ephemeral = Targets::of(&listeners(&["127.0.0.1:0"], &[])).unwrap_err();
        assert!(ephemeral.contains("127.0.0.1:0"), "{ephemeral}");
    }
}
