//! Batched datagram I/O for many virtual clients on one socket: one
//! `sendmmsg` moves up to a batch of requests, each sent from its client's
//! own loopback address (`IP_PKTINFO`), and one `recvmmsg` takes a batch of
//! replies. So the load generator spends little per request and the server,
//! not the generator, is what saturates. The batched floor answers with the
//! same two calls, each reply to its request's source.

use std::io;
use std::mem::size_of;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::AsRawFd;

/// Datagrams per system call.
pub const BATCH: usize = 32;
/// Bytes per received datagram; longer replies are truncated (and then
/// still parse: only their first 16 bytes are read).
pub const DATAGRAM_MAX: usize = 2048;

/// Space for one `IP_PKTINFO` control message, as `CMSG_SPACE` computes it.
const PKTINFO_SPACE: usize = {
    let align = size_of::<usize>();
    let header = size_of::<libc::cmsghdr>().div_ceil(align) * align;
    let data = size_of::<libc::in_pktinfo>().div_ceil(align) * align;
    header + data
};

/// A control buffer aligned as a `cmsghdr` must be.
#[repr(C, align(8))]
#[derive(Clone, Copy)]
struct Control([u8; PKTINFO_SPACE]);

fn sockaddr(addr: SocketAddrV4) -> libc::sockaddr_in {
    // SAFETY: an all-zero sockaddr_in is valid.
    let mut raw: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    raw.sin_family = libc::AF_INET as libc::sa_family_t;
    raw.sin_port = addr.port().to_be();
    raw.sin_addr.s_addr = u32::from(*addr.ip()).to_be();
    raw
}

/// Datagrams waiting to go out: requests to one target, each from its
/// client's address, or replies, each to its own destination.
pub struct Outbox {
    target: libc::sockaddr_in,
    bytes: Vec<u8>,
    /// (end offset in `bytes`, destination, source address if chosen) of
    /// each datagram.
    queued: Vec<(usize, libc::sockaddr_in, Option<Ipv4Addr>)>,
}

impl Outbox {
    /// An outbox whose [`Outbox::push`] sends to `target`.
    pub fn new(target: SocketAddrV4) -> Self {
        Outbox {
            target: sockaddr(target),
            bytes: Vec::with_capacity(BATCH * 256),
            queued: Vec::with_capacity(BATCH),
        }
    }

    /// An outbox for replies, which name their destinations
    /// ([`Outbox::push_to`]).
    pub fn replies() -> Self {
        Self::new(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))
    }

    /// Queues a datagram to the target, sent from `from`.
    pub fn push(&mut self, datagram: &[u8], from: Ipv4Addr) {
        self.bytes.extend_from_slice(datagram);
        self.queued
            .push((self.bytes.len(), self.target, Some(from)));
    }

    /// Queues a datagram to `to`, sent from the socket's own address.
    pub fn push_to(&mut self, datagram: &[u8], to: SocketAddrV4) {
        self.bytes.extend_from_slice(datagram);
        self.queued.push((self.bytes.len(), sockaddr(to), None));
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
                message.msg_name = (destination as *mut libc::sockaddr_in).cast();
                message.msg_namelen = size_of::<libc::sockaddr_in>() as libc::socklen_t;
                message.msg_iov = &mut iovecs[i];
                message.msg_iovlen = 1;
                let Some(source) = source else {
                    return header;
                };
                message.msg_control = controls[i].0.as_mut_ptr().cast();
                message.msg_controllen = PKTINFO_SPACE as _;
                let cmsg = libc::CMSG_FIRSTHDR(message);
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
    sources: [libc::sockaddr_in; BATCH],
}

impl Default for Inbox {
    fn default() -> Self {
        Inbox {
            buffers: vec![[0; DATAGRAM_MAX]; BATCH],
            lengths: [0; BATCH],
            // SAFETY: an all-zero sockaddr_in is valid.
            sources: unsafe { std::mem::zeroed() },
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
            header.msg_hdr.msg_name = (&mut self.sources[i] as *mut libc::sockaddr_in).cast();
            header.msg_hdr.msg_namelen = size_of::<libc::sockaddr_in>() as libc::socklen_t;
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

    /// Where the `index`th datagram of the last receive came from (an IPv4
    /// socket's peer).
    pub fn source(&self, index: usize) -> SocketAddrV4 {
        let raw = &self.sources[index];
        SocketAddrV4::new(
            Ipv4Addr::from(u32::from_be(raw.sin_addr.s_addr)),
            u16::from_be(raw.sin_port),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;

    #[test]
    fn sends_from_each_source_and_receives_batches() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let std::net::SocketAddr::V4(target) = server.local_addr().unwrap() else {
            unreachable!()
        };
        let client = UdpSocket::bind("0.0.0.0:0").unwrap();
        let mut outbox = Outbox::new(target);
        for i in 0..40u8 {
            outbox.push(&[i; 3], Ipv4Addr::new(127, 77, 0, 1 + i % 2));
        }
        outbox.flush(&client);
        assert!(outbox.is_empty());
        let mut buf = [0u8; 16];
        for i in 0..40u8 {
            let (len, from) = server.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..len], &[i; 3]);
            assert_eq!(from.ip(), Ipv4Addr::new(127, 77, 0, 1 + i % 2));
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
            seen.extend((0..n).map(|i| inbox.get(i)[0]));
        }
        assert_eq!(seen, (0..40).collect::<Vec<u8>>());
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
                let std::net::SocketAddr::V4(client) =
                    clients[usize::from(inbox.get(i)[0])].local_addr().unwrap()
                else {
                    unreachable!()
                };
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
