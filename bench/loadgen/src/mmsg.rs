//! Batched datagram I/O for many virtual clients on one socket: one
//! `sendmmsg` moves up to a batch of requests, each sent from its client's
//! own loopback address (`IP_PKTINFO`, `IPV6_PKTINFO`), and one `recvmmsg`
//! takes a batch of replies. So the load generator spends little per request
//! and the server, not the generator, is what saturates. The batched floor
//! answers with the same two calls, each reply to its request's source.
//! Either address family works, one per socket.

use std::io;
use std::mem::size_of;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::AsRawFd;

/// Datagrams per system call.
pub const BATCH: usize = 32;
/// Bytes per received datagram; longer replies are truncated (and then
/// still parse: only their first 16 bytes are read).
pub const DATAGRAM_MAX: usize = 2048;

/// Space for one packet-info control message of either family, as
/// `CMSG_SPACE` computes it.
const PKTINFO_SPACE: usize = {
    let align = size_of::<usize>();
    let header = size_of::<libc::cmsghdr>().div_ceil(align) * align;
    let data = size_of::<libc::in6_pktinfo>().div_ceil(align) * align;
    header + data
};

/// A control buffer aligned as a `cmsghdr` must be.
#[repr(C, align(8))]
#[derive(Clone, Copy)]
struct Control([u8; PKTINFO_SPACE]);

/// A socket address as the kernel reads and writes it, either family.
#[derive(Clone, Copy)]
#[repr(C)]
union RawAddr {
    v4: libc::sockaddr_in,
    v6: libc::sockaddr_in6,
}

impl RawAddr {
    fn zeroed() -> Self {
        // SAFETY: all-zero bytes are a valid sockaddr_in6 (and sockaddr_in).
        unsafe { std::mem::zeroed() }
    }

    fn new(addr: SocketAddr) -> Self {
        let mut raw = Self::zeroed();
        match addr {
            SocketAddr::V4(addr) => {
                // SAFETY: writing a Copy field of a zeroed union.
                let v4 = unsafe { &mut raw.v4 };
                v4.sin_family = libc::AF_INET as libc::sa_family_t;
                v4.sin_port = addr.port().to_be();
                v4.sin_addr.s_addr = u32::from(*addr.ip()).to_be();
            }
            SocketAddr::V6(addr) => {
                // SAFETY: as above.
                let v6 = unsafe { &mut raw.v6 };
                v6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
                v6.sin6_port = addr.port().to_be();
                v6.sin6_addr.s6_addr = addr.ip().octets();
            }
        }
        raw
    }

    /// The address the kernel wrote; its family field tells which.
    fn get(&self) -> SocketAddr {
        // SAFETY: the family field sits at the same offset in both, and
        // names which one the kernel wrote.
        unsafe {
            if i32::from(self.v4.sin_family) == libc::AF_INET6 {
                let v6 = &self.v6;
                SocketAddrV6::new(
                    Ipv6Addr::from(v6.sin6_addr.s6_addr),
                    u16::from_be(v6.sin6_port),
                    0,
                    0,
                )
                .into()
            } else {
                let v4 = &self.v4;
                SocketAddrV4::new(
                    Ipv4Addr::from(u32::from_be(v4.sin_addr.s_addr)),
                    u16::from_be(v4.sin_port),
                )
                .into()
            }
        }
    }

    fn len(&self) -> libc::socklen_t {
        // SAFETY: the family field is valid in both.
        let family = i32::from(unsafe { self.v4.sin_family });
        if family == libc::AF_INET6 {
            size_of::<libc::sockaddr_in6>() as libc::socklen_t
        } else {
            size_of::<libc::sockaddr_in>() as libc::socklen_t
        }
    }
}

/// Writes a control message into `message`'s control buffer that sends it
/// from `source`.
///
/// # Safety
/// `message.msg_control` must point to [`PKTINFO_SPACE`] writable bytes,
/// aligned for a `cmsghdr`, and `msg_controllen` say so.
unsafe fn send_from(message: &mut libc::msghdr, source: IpAddr) {
    let cmsg = libc::CMSG_FIRSTHDR(message);
    match source {
        IpAddr::V4(source) => {
            (*cmsg).cmsg_level = libc::IPPROTO_IP;
            (*cmsg).cmsg_type = libc::IP_PKTINFO;
            (*cmsg).cmsg_len = libc::CMSG_LEN(size_of::<libc::in_pktinfo>() as u32) as _;
            let info = libc::CMSG_DATA(cmsg).cast::<libc::in_pktinfo>();
            info.write_unaligned(libc::in_pktinfo {
                ipi_ifindex: 0,
                ipi_spec_dst: libc::in_addr {
                    s_addr: u32::from(source).to_be(),
                },
                ipi_addr: libc::in_addr { s_addr: 0 },
            });
            message.msg_controllen = libc::CMSG_SPACE(size_of::<libc::in_pktinfo>() as u32) as _;
        }
        IpAddr::V6(source) => {
            (*cmsg).cmsg_level = libc::IPPROTO_IPV6;
            (*cmsg).cmsg_type = libc::IPV6_PKTINFO;
            (*cmsg).cmsg_len = libc::CMSG_LEN(size_of::<libc::in6_pktinfo>() as u32) as _;
            let info = libc::CMSG_DATA(cmsg).cast::<libc::in6_pktinfo>();
            info.write_unaligned(libc::in6_pktinfo {
                ipi6_addr: libc::in6_addr {
                    s6_addr: source.octets(),
                },
                ipi6_ifindex: 0,
            });
            message.msg_controllen = libc::CMSG_SPACE(size_of::<libc::in6_pktinfo>() as u32) as _;
        }
    }
}

/// Datagrams waiting to go out: requests to one target, each from its
/// client's address, or replies, each to its own destination.
pub struct Outbox {
    target: RawAddr,
    bytes: Vec<u8>,
    /// (end offset in `bytes`, destination, source address if chosen) of
    /// each datagram.
    queued: Vec<(usize, RawAddr, Option<IpAddr>)>,
}

impl Outbox {
    /// An outbox whose [`Outbox::push`] sends to `target`.
    pub fn new(target: SocketAddr) -> Self {
        Outbox {
            target: RawAddr::new(target),
            bytes: Vec::with_capacity(BATCH * 256),
            queued: Vec::with_capacity(BATCH),
        }
    }

    /// An outbox for replies, which name their destinations
    /// ([`Outbox::push_to`]).
    pub fn replies() -> Self {
        Self::new(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)))
    }

    /// Queues a datagram to the target, sent from `from` (of the target's
    /// family).
    pub fn push(&mut self, datagram: &[u8], from: IpAddr) {
        self.bytes.extend_from_slice(datagram);
        self.queued
            .push((self.bytes.len(), self.target, Some(from)));
    }

    /// Queues a datagram to `to`, sent from the socket's own address.
    pub fn push_to(&mut self, datagram: &[u8], to: SocketAddr) {
        self.bytes.extend_from_slice(datagram);
        self.queued.push((self.bytes.len(), RawAddr::new(to), None));
    }

    pub fn len(&self) -> usize {
        self.queued.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queued.is_empty()
    }

    /// Sends everything queued. Datagrams the socket refuses are dropped:
    /// the requests they carried time out, as lost ones would.
    pub fn flush(&mut self, socket: &impl AsRawFd) {
        let count = self.queued.len();
        let mut iovecs = Vec::with_capacity(count);
        let mut controls = vec![Control([0; PKTINFO_SPACE]); count];
        let mut start = 0;
        for &(end, ..) in &self.queued {
            iovecs.push(libc::iovec {
                iov_base: self.bytes[start..end].as_ptr() as *mut libc::c_void,
                iov_len: end - start,
            });
            start = end;
        }
        // SAFETY: a zeroed mmsghdr is valid; every pointer set here names
        // `self.queued`, `iovecs` or `controls`, which outlive the calls, and
        // each control buffer has room for the one message written into it.
        let mut headers: Vec<libc::mmsghdr> = (0..count)
            .map(|i| unsafe {
                let mut header: libc::mmsghdr = std::mem::zeroed();
                let message = &mut header.msg_hdr;
                let (_, ref mut destination, source) = self.queued[i];
                message.msg_namelen = destination.len();
                message.msg_name = (destination as *mut RawAddr).cast();
                message.msg_iov = &mut iovecs[i];
                message.msg_iovlen = 1;
                if let Some(source) = source {
                    message.msg_control = controls[i].0.as_mut_ptr().cast();
                    message.msg_controllen = PKTINFO_SPACE as _;
                    send_from(message, source);
                }
                header
            })
            .collect();
        let mut sent = 0;
        while sent < headers.len() {
            let rest = &mut headers[sent..];
            // SAFETY: `rest` holds headers built above.
            let n = unsafe {
                libc::sendmmsg(socket.as_raw_fd(), rest.as_mut_ptr(), rest.len() as u32, 0)
            };
            if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            // On an error skip the datagram that caused it.
            sent += n.max(1) as usize;
        }
        self.bytes.clear();
        self.queued.clear();
    }
}

/// Buffers for a batch of received datagrams and their sources.
pub struct Inbox {
    buffers: Vec<[u8; DATAGRAM_MAX]>,
    lengths: [usize; BATCH],
    sources: [RawAddr; BATCH],
}

impl Default for Inbox {
    fn default() -> Self {
        Inbox {
            buffers: vec![[0; DATAGRAM_MAX]; BATCH],
            lengths: [0; BATCH],
            sources: [RawAddr::zeroed(); BATCH],
        }
    }
}

impl Inbox {
    /// Receives up to [`BATCH`] datagrams without waiting; `WouldBlock` when
    /// none is there.
    pub fn receive(&mut self, socket: &impl AsRawFd) -> io::Result<usize> {
        self.receive_with(socket, libc::MSG_DONTWAIT)
    }

    /// Waits for a datagram, then takes it and up to [`BATCH`] - 1 more of
    /// those already queued.
    pub fn wait_receive(&mut self, socket: &impl AsRawFd) -> io::Result<usize> {
        self.receive_with(socket, libc::MSG_WAITFORONE)
    }

    fn receive_with(&mut self, socket: &impl AsRawFd, flags: libc::c_int) -> io::Result<usize> {
        // SAFETY: zeroed iovec and mmsghdr values are valid; the pointers set
        // below stay valid for the call.
        let mut iovecs: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
        let mut headers: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        for (i, (iovec, header)) in iovecs.iter_mut().zip(headers.iter_mut()).enumerate() {
            iovec.iov_base = self.buffers[i].as_mut_ptr().cast();
            iovec.iov_len = DATAGRAM_MAX;
            header.msg_hdr.msg_iov = iovec;
            header.msg_hdr.msg_iovlen = 1;
            header.msg_hdr.msg_name = (&mut self.sources[i] as *mut RawAddr).cast();
            header.msg_hdr.msg_namelen = size_of::<RawAddr>() as libc::socklen_t;
        }
        // SAFETY: `headers` describes BATCH valid buffers and source slots.
        let n = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                headers.as_mut_ptr(),
                BATCH as u32,
                flags,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        for (length, header) in self.lengths.iter_mut().zip(&headers[..n as usize]) {
            *length = (header.msg_len as usize).min(DATAGRAM_MAX);
        }
        Ok(n as usize)
    }

    /// The `index`th datagram of the last receive.
    pub fn get(&self, index: usize) -> &[u8] {
        &self.buffers[index][..self.lengths[index]]
    }

    /// Where the `index`th datagram of the last receive came from.
    pub fn source(&self, index: usize) -> SocketAddr {
        self.sources[index].get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;

    /// Sends 40 datagrams to a server on `server_ip`, alternating between
    /// two source addresses, and gets them back in batches.
    fn round_trip(server_ip: IpAddr, any: IpAddr, sources: [IpAddr; 2]) {
        let server = UdpSocket::bind((server_ip, 0)).unwrap();
        let client = UdpSocket::bind((any, 0)).unwrap();
        let mut outbox = Outbox::new(server.local_addr().unwrap());
        for i in 0..40u8 {
            outbox.push(&[i; 3], sources[usize::from(i % 2)]);
        }
        outbox.flush(&client);
        assert!(outbox.is_empty());
        let mut buf = [0u8; 16];
        for i in 0..40u8 {
            let (len, from) = server.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..len], &[i; 3]);
            assert_eq!(from.ip(), sources[usize::from(i % 2)]);
            server.send_to(&buf[..len], from).unwrap();
        }
        client
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let mut inbox = Inbox::default();
        let mut seen = Vec::new();
        while seen.len() < 40 {
            // Wait until something is there, without consuming it.
            client.peek(&mut buf).unwrap();
            let n = inbox.receive(&client).unwrap();
            for i in 0..n {
                seen.push(inbox.get(i)[0]);
                assert_eq!(inbox.source(i), server.local_addr().unwrap());
            }
        }
        assert_eq!(seen, (0..40).collect::<Vec<u8>>());
    }

    #[test]
    fn sends_from_each_source_and_receives_batches() {
        let sources = [1, 2].map(|host| IpAddr::from([127, 77, 0, host]));
        round_trip(IpAddr::from([127, 0, 0, 1]), IpAddr::from([0; 4]), sources);
    }

    #[test]
    fn sends_and_receives_over_ipv6() {
        // ::1 is the one IPv6 loopback address that needs no set-up.
        let sources = [Ipv6Addr::LOCALHOST.into(); 2];
        round_trip(
            Ipv6Addr::LOCALHOST.into(),
            Ipv6Addr::UNSPECIFIED.into(),
            sources,
        );
    }

    #[test]
    fn replies_go_back_to_each_source() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let clients: Vec<UdpSocket> = (0..3)
            .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
            .collect();
        for (i, client) in clients.iter().enumerate() {
            client
                .send_to(&[i as u8; 5], server.local_addr().unwrap())
                .unwrap();
            client
                .set_read_timeout(Some(std::time::Duration::from_secs(5)))
                .unwrap();
        }
        let mut inbox = Inbox::default();
        let mut outbox = Outbox::replies();
        let mut answered = 0;
        while answered < clients.len() {
            let n = inbox.wait_receive(&server).unwrap();
            for i in 0..n {
                let client = clients[usize::from(inbox.get(i)[0])].local_addr().unwrap();
                assert_eq!(inbox.source(i), client);
                outbox.push_to(inbox.get(i), inbox.source(i));
            }
            outbox.flush(&server);
            answered += n;
        }
        let mut buf = [0u8; 16];
        for (i, client) in clients.iter().enumerate() {
            let (len, from) = client.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..len], &[i as u8; 5]);
            assert_eq!(from, server.local_addr().unwrap());
        }
    }
}
