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
    defer_accept(&socket)?;
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
            log::warn!("no IPv6 on this host: serving {what} on {v4} instead of {addr}");
            bind(v4).map_err(|e| format!("bind {what} {v4}: {e}"))
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
            .and_then(|()| defer_accept(&socket))
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
