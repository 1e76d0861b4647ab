//! The sockets the server serves: bound from the configuration, or adopted
//! from systemd socket activation. Either way the server receives them
//! already bound, so tests, `-p`/`-P` and activation all come in by one door.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use mio::net::{TcpListener, UdpSocket};
use socket2::{Domain, Protocol, Socket, Type};

use crate::config::Listeners as Addresses;
use crate::sys::activation::Passed;

/// Bound, non-blocking sockets ready for the event loop.
#[derive(Debug, Default)]
pub struct Listeners {
    pub tcp: Vec<TcpListener>,
    pub udp: Vec<UdpSocket>,
}

/// A large receive buffer absorbs bursts while the loop is busy elsewhere.
const UDP_RECV_BUFFER: usize = 4 << 20;
/// Seconds a connection may stay silent before it is accepted anyway.
#[cfg(target_os = "linux")]
const DEFER_ACCEPT_SECS: libc::c_int = 5;

/// Has the kernel hold a connection back from `accept` until its first
/// bytes arrive, so the first read finds the request: no read that would
/// block and no event registration for the usual one-packet request.
#[cfg(target_os = "linux")]
fn defer_accept(listener: &impl std::os::fd::AsRawFd) -> io::Result<()> {
    // SAFETY: a c_int option value of the size passed.
    let result = unsafe {
        libc::setsockopt(
            listener.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_DEFER_ACCEPT,
            (&DEFER_ACCEPT_SECS as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Elsewhere connections are accepted as they come; reads that would block
/// simply wait for readiness.
#[cfg(not(target_os = "linux"))]
fn defer_accept<T>(_listener: &T) -> io::Result<()> {
    Ok(())
}

/// Sets what the connections accepted from `listener` inherit: no Nagle
/// delay (Linux and FreeBSD copy TCP_NODELAY to them), so a small answer
/// written while an earlier one is unacknowledged (pipelined requests, a
/// stream's last chunk) goes out at once instead of after the client's
/// delayed ACK; and, on Linux, deferred accepts.
fn prepare_tcp_listener<S: std::os::fd::AsRawFd + std::os::fd::AsFd>(
    listener: &S,
) -> io::Result<()> {
    socket2::SockRef::from(listener).set_nodelay(true)?;
    defer_accept(listener)
}

fn socket_for(addr: SocketAddr, kind: Type, protocol: Protocol) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), kind, Some(protocol))?;
    if addr.is_ipv6() {
        // Dual stack: IPv4 clients arrive as v4-mapped addresses.
        socket.set_only_v6(false)?;
    }
    socket.set_nonblocking(true)?;
    Ok(socket)
}

fn bind_tcp(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = socket_for(addr, Type::STREAM, Protocol::TCP)?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(libc::SOMAXCONN)?;
    prepare_tcp_listener(&socket)?;
    Ok(TcpListener::from_std(socket.into()))
}

fn bind_udp(addr: SocketAddr) -> io::Result<UdpSocket> {
    let socket = udp_socket_with_large_buffer(addr)?;
    socket.bind(&addr.into())?;
    Ok(answering_from_destination(UdpSocket::from_std(
        socket.into(),
    )))
}

/// A UDP socket for `addr`, not yet bound, with a receive buffer that
/// absorbs bursts (as large as the system allows; said when capped).
pub(super) fn udp_socket_with_large_buffer(addr: SocketAddr) -> io::Result<Socket> {
    let socket = socket_for(addr, Type::DGRAM, Protocol::UDP)?;
    let _ = socket.set_recv_buffer_size(UDP_RECV_BUFFER);
    // Linux reports twice what it grants, for its bookkeeping.
    let reported_per_granted = if cfg!(target_os = "linux") { 2 } else { 1 };
    let granted = socket.recv_buffer_size()? / reported_per_granted;
    if granted < UDP_RECV_BUFFER {
        log::info!(
            "udp {addr}: receive buffer {} KiB, not the {} KiB asked for: the system caps it \
             (net.core.rmem_max on Linux, kern.ipc.maxsockbuf on FreeBSD), so shorter bursts \
             fill it and are dropped",
            granted >> 10,
            UDP_RECV_BUFFER >> 10
        );
    }
    Ok(socket)
}

/// A wildcard socket's replies leave from the address each request was
/// sent to, where the system can say which (Linux).
fn answering_from_destination(socket: UdpSocket) -> UdpSocket {
    let addr = socket
        .local_addr()
        .map_or_else(|_| "?".to_string(), |addr| addr.to_string());
    match crate::sys::datagrams::reply_from_destination(&socket) {
        Ok(true) => {
            log::debug!("udp {addr}: replies leave from the address each request was sent to")
        }
        Ok(false) => {}
        Err(e) => log::warn!(
            "udp {addr}: replies leave from the address routing picks, which on a host \
             with several addresses may not be the one a client wrote to: {e}"
        ),
    }
    socket
}

/// Binds `addr`; the IPv6 wildcard falls back to the IPv4 wildcard on hosts
/// without IPv6.
fn bind_with_fallback<T>(
    addr: SocketAddr,
    bind: fn(SocketAddr) -> io::Result<T>,
    what: &str,
) -> Result<T, String> {
    match bind(addr) {
        Ok(socket) => Ok(socket),
        Err(e)
            if addr.ip() == IpAddr::from([0u16; 8])
                && e.raw_os_error() == Some(libc::EAFNOSUPPORT) =>
        {
            let v4 = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), addr.port());
            match bind(v4) {
                Ok(socket) => {
                    log::warn!("no IPv6 on this host: serving {what} on {v4} instead of {addr}");
                    Ok(socket)
                }
                // Neither family: not a host without IPv6 but a process
                // kept from the network, as by systemd's
                // RestrictAddressFamilies= when the socket unit passed none.
                Err(v4_error) if v4_error.raw_os_error() == Some(libc::EAFNOSUPPORT) => {
                    Err(format!(
                        "bind {what} {addr}: {e}, and {v4} too: this process may not open \
                         network sockets (a sandbox such as systemd's RestrictAddressFamilies=; \
                         under the shipped unit, opentracker.socket passes them: is it running?)"
                    ))
                }
                Err(v4_error) => Err(format!("bind {what} {v4}: {v4_error}")),
            }
        }
        Err(e) => Err(format!("bind {what} {addr}: {e}")),
    }
}

/// Binds every configured address.
pub fn bind(addresses: &Addresses) -> Result<Listeners, String> {
    let mut listeners = Listeners::default();
    for &addr in &addresses.tcp {
        listeners
            .tcp
            .push(bind_with_fallback(addr, bind_tcp, "TCP")?);
    }
    for &addr in &addresses.udp {
        listeners
            .udp
            .push(bind_with_fallback(addr, bind_udp, "UDP")?);
    }
    Ok(listeners)
}

/// Takes over sockets passed by systemd.
pub fn adopt(passed: Passed) -> Result<Listeners, String> {
    let mut listeners = Listeners::default();
    for socket in passed.tcp {
        socket
            .set_nonblocking(true)
            .and_then(|()| prepare_tcp_listener(&socket))
            .map_err(|e| format!("passed TCP socket: {e}"))?;
        listeners.tcp.push(TcpListener::from_std(socket));
    }
    for socket in passed.udp {
        socket
            .set_nonblocking(true)
            .map_err(|e| format!("passed UDP socket: {e}"))?;
        let socket = UdpSocket::from_std(socket);
        listeners.udp.push(answering_from_destination(socket));
    }
    Ok(listeners)
}

impl Listeners {
    /// The local addresses, for the start-up log line.
    pub fn describe(&self) -> String {
        let name = |proto: &str, addr: io::Result<SocketAddr>| match addr {
            Ok(addr) => format!("{proto} {addr}"),
            Err(_) => format!("{proto} ?"),
        };
        let tcp = self.tcp.iter().map(|s| name("http", s.local_addr()));
        let udp = self.udp.iter().map(|s| name("udp", s.local_addr()));
        tcp.chain(udp).collect::<Vec<_>>().join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::time::{Duration, Instant};

    /// Accepts one connection from `listener`, after a client connected
    /// and sent a byte (deferred accepts wait for it).
    fn accept_one(listener: &TcpListener) -> mio::net::TcpStream {
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        client.write_all(b"G").unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match listener.accept() {
                Ok((stream, _)) => return stream,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                Err(e) => panic!("accept: {e}"),
            }
        }
    }

    #[test]
    fn accepted_connections_answer_without_nagle_delay() {
        let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
        let bound = bind_tcp(loopback).unwrap();
        assert!(accept_one(&bound).nodelay().unwrap(), "bound listener");

        // As systemd passes it: a plain listening socket.
        let passed = Passed {
            tcp: vec![std::net::TcpListener::bind(loopback).unwrap()],
            udp: Vec::new(),
            stored: Vec::new(),
        };
        let adopted = adopt(passed).unwrap();
        assert!(
            accept_one(&adopted.tcp[0]).nodelay().unwrap(),
            "passed listener"
        );
    }

    fn no_family(_: SocketAddr) -> io::Result<SocketAddr> {
        Err(io::Error::from_raw_os_error(libc::EAFNOSUPPORT))
    }

    fn ipv4_only(addr: SocketAddr) -> io::Result<SocketAddr> {
        match addr {
            SocketAddr::V4(_) => Ok(addr),
            SocketAddr::V6(_) => no_family(addr),
        }
    }

    #[test]
    fn the_ipv6_wildcard_falls_back_to_ipv4_only_on_hosts_without_ipv6() {
        let wildcard = SocketAddr::from(([0u16; 8], 6969));
        assert_eq!(
            bind_with_fallback(wildcard, ipv4_only, "UDP"),
            Ok(SocketAddr::from(([0, 0, 0, 0], 6969)))
        );
        // Neither family: a sandbox, not a host without IPv6.
        let error = bind_with_fallback(wildcard, no_family, "TCP").unwrap_err();
        assert!(error.starts_with("bind TCP [::]:6969: "), "{error}");
        assert!(
            error.contains("and 0.0.0.0:6969 too: this process may not open network sockets"),
            "{error}"
        );
        assert!(error.contains("opentracker.socket"), "{error}");
        // A named address never changes family.
        let named = SocketAddr::from(([0xfd00, 0, 0, 0, 0, 0, 0, 1], 6969));
        assert!(bind_with_fallback(named, ipv4_only, "TCP").is_err());
    }
}
