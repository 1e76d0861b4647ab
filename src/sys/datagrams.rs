//! Datagram I/O in batches: on Linux one `recvmmsg` takes up to [`BATCH`]
//! datagrams and one `sendmmsg` sends all replies, so the per-packet system
//! call cost is paid once per batch. Elsewhere the same interface loops over
//! `recv_from`/`send_to`.
//!
//! On Linux a socket bound to a wildcard address can also report where each
//! datagram was sent ([`reply_from_destination`]); the reply then leaves
//! from that address rather than the one routing would pick.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use mio::net::UdpSocket;

/// Datagrams per system call.
pub const BATCH: usize = 32;
/// Larger datagrams are truncated; no tracker request comes near this.
pub const DATAGRAM_MAX: usize = 2048;

/// The local address a datagram was sent to, in the form its socket
/// reports it: IPv4 sockets say `IP_PKTINFO`, IPv6 ones (dual stack
/// included, with v4-mapped addresses) `IPV6_PKTINFO` with the interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Local {
    V4(Ipv4Addr),
    V6(Ipv6Addr, u32),
}

/// Room for one control message of either kind, aligned as `cmsghdr` is.
#[cfg(target_os = "linux")]
type Control = [u64; 8];

/// A reply waiting for [`Datagrams::send_queued`].
struct Queued {
    /// Where the reply ends in `outgoing`.
    end: usize,
    to: SocketAddr,
    /// Always `None` where the system does not report destinations.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    from: Option<Local>,
}

pub struct Datagrams {
    buffers: Vec<[u8; DATAGRAM_MAX]>,
    lengths: [usize; BATCH],
    sources: Vec<SocketAddr>,
    destinations: Vec<Option<Local>>,
    count: usize,
    outgoing: Vec<u8>,
    queued: Vec<Queued>,
    #[cfg(target_os = "linux")]
    controls: Vec<Control>,
}

impl Default for Datagrams {
    fn default() -> Self {
        Datagrams {
            buffers: vec![[0u8; DATAGRAM_MAX]; BATCH],
            lengths: [0; BATCH],
            sources: Vec::with_capacity(BATCH),
            destinations: Vec::with_capacity(BATCH),
            count: 0,
            outgoing: Vec::with_capacity(BATCH * 1300),
            queued: Vec::with_capacity(BATCH),
            #[cfg(target_os = "linux")]
            controls: vec![[0; 8]; BATCH],
        }
    }
}

impl Datagrams {
    /// Datagrams received by the last [`Datagrams::receive`].
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The `index`th datagram and its sender.
    pub fn get(&self, index: usize) -> (&[u8], SocketAddr) {
        (
            &self.buffers[index][..self.lengths[index]],
            self.sources[index],
        )
    }

    /// Queues `data` for [`Datagrams::send_queued`] as the reply to the
    /// `index`th datagram: to its sender, from the address it was sent to
    /// where the socket reports that.
    pub fn queue_reply(&mut self, index: usize, data: &[u8]) {
        self.outgoing.extend_from_slice(data);
        self.queued.push(Queued {
            end: self.outgoing.len(),
            to: self.sources[index],
            from: self.destinations[index],
        });
    }

    /// Receives up to [`BATCH`] datagrams; `WouldBlock` when none waits.
    #[cfg(target_os = "linux")]
    pub fn receive(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        self.receive_with(socket, libc::MSG_DONTWAIT)
    }

    /// On a blocking socket: waits for a datagram, then takes up to
    /// [`BATCH`] of those already queued.
    #[cfg(target_os = "linux")]
    pub fn receive_waiting(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        self.receive_with(socket, libc::MSG_WAITFORONE)
    }

    #[cfg(target_os = "linux")]
    fn receive_with(&mut self, socket: &UdpSocket, flags: libc::c_int) -> io::Result<usize> {
        use std::os::fd::AsRawFd;

        // SAFETY: zeroed sockaddr_storage, iovec and mmsghdr are valid
        // values; every pointer set below stays valid for the call.
        let mut names: [libc::sockaddr_storage; BATCH] = unsafe { std::mem::zeroed() };
        let mut iovecs: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
        let mut headers: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        for i in 0..BATCH {
            iovecs[i].iov_base = self.buffers[i].as_mut_ptr().cast();
            iovecs[i].iov_len = DATAGRAM_MAX;
            headers[i].msg_hdr.msg_name = (&mut names[i] as *mut libc::sockaddr_storage).cast();
            headers[i].msg_hdr.msg_namelen =
                std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            headers[i].msg_hdr.msg_iov = &mut iovecs[i];
            headers[i].msg_hdr.msg_iovlen = 1;
            headers[i].msg_hdr.msg_control = self.controls[i].as_mut_ptr().cast();
            headers[i].msg_hdr.msg_controllen = std::mem::size_of::<Control>();
        }
        // SAFETY: `headers` describes BATCH valid buffers, names and
        // control buffers.
        let received = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                headers.as_mut_ptr(),
                BATCH as libc::c_uint,
                flags,
                std::ptr::null_mut(),
            )
        };
        if received < 0 {
            self.count = 0;
            return Err(io::Error::last_os_error());
        }
        self.sources.clear();
        self.destinations.clear();
        let mut kept = 0;
        for (i, header) in headers.iter().enumerate().take(received as usize) {
            // SAFETY: the kernel wrote a socket address of msg_namelen bytes.
            let name = unsafe { socket2::SockAddr::new(names[i], header.msg_hdr.msg_namelen) };
            if let Some(source) = name.as_socket() {
                // Swapping a buffer with itself would still copy it thrice.
                if kept != i {
                    self.buffers.swap(kept, i);
                }
                self.lengths[kept] = (header.msg_len as usize).min(DATAGRAM_MAX);
                self.sources.push(source);
                self.destinations.push(local_address(&header.msg_hdr));
                kept += 1;
            }
        }
        self.count = kept;
        Ok(kept)
    }

    #[cfg(not(target_os = "linux"))]
    pub fn receive(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        self.sources.clear();
        self.destinations.clear();
        self.count = 0;
        while self.count < BATCH {
            match socket.recv_from(&mut self.buffers[self.count]) {
                Ok((len, source)) => {
                    self.lengths[self.count] = len;
                    self.sources.push(source);
                    self.destinations.push(None);
                    self.count += 1;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // What came before an error is answered; the error, if it
                // lasts, shows on the next call.
                Err(_) if self.count > 0 => break,
                Err(e) => return Err(e),
            }
        }
        Ok(self.count)
    }

    /// On a blocking socket: waits for one datagram. Without `recvmmsg`'s
    /// wait-for-one, waiting for more would hold up the ones already here.
    #[cfg(not(target_os = "linux"))]
    pub fn receive_waiting(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        let (len, source) = socket.recv_from(&mut self.buffers[0])?;
        self.lengths[0] = len;
        self.sources.clear();
        self.sources.push(source);
        self.destinations.clear();
        self.destinations.push(None);
        self.count = 1;
        Ok(1)
    }

    /// Sends every queued datagram. One that the socket refuses (a full
    /// buffer, an unreachable address, a firewall rule) is dropped, as UDP
    /// clients retry; returns how many were.
    #[cfg(target_os = "linux")]
    pub fn send_queued(&mut self, socket: &UdpSocket) -> u64 {
        use std::os::fd::AsRawFd;

        let count = self.queued.len();
        let mut names = Vec::with_capacity(count);
        let mut iovecs = Vec::with_capacity(count);
        let mut controls: Vec<Control> = Vec::new();
        let mut start = 0;
        for queued in &self.queued {
            names.push(socket2::SockAddr::from(queued.to));
            iovecs.push(libc::iovec {
                iov_base: self.outgoing[start..queued.end].as_ptr() as *mut libc::c_void,
                iov_len: queued.end - start,
            });
            start = queued.end;
        }
        if self.queued.iter().any(|queued| queued.from.is_some()) {
            controls.resize(count, [0; 8]);
        }
        // SAFETY: a zeroed mmsghdr is valid; the pointers set below point
        // into `names`, `iovecs` and `controls`, which outlive the call.
        let mut headers: Vec<libc::mmsghdr> =
            (0..count).map(|_| unsafe { std::mem::zeroed() }).collect();
        for (i, header) in headers.iter_mut().enumerate() {
            header.msg_hdr.msg_name = names[i].as_ptr() as *mut libc::c_void;
            header.msg_hdr.msg_namelen = names[i].len();
            header.msg_hdr.msg_iov = &mut iovecs[i];
            header.msg_hdr.msg_iovlen = 1;
            if let Some(from) = self.queued[i].from {
                set_source(&mut header.msg_hdr, &mut controls[i], from);
            }
        }
        let mut sent = 0;
        let mut unsent = 0;
        while sent < headers.len() {
            let remaining = &mut headers[sent..];
            // SAFETY: `remaining` holds valid headers as built above.
            let n = unsafe {
                libc::sendmmsg(
                    socket.as_raw_fd(),
                    remaining.as_mut_ptr(),
                    remaining.len() as libc::c_uint,
                    libc::MSG_DONTWAIT,
                )
            };
            if n <= 0 {
                let error = io::Error::last_os_error();
                if error.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                if error.kind() != io::ErrorKind::WouldBlock {
                    log::debug!("udp send: {error}");
                }
                // Skip the datagram that failed and go on with the rest.
                sent += 1;
                unsent += 1;
                continue;
            }
            sent += n as usize;
        }
        self.outgoing.clear();
        self.queued.clear();
        unsent
    }

    #[cfg(not(target_os = "linux"))]
    pub fn send_queued(&mut self, socket: &UdpSocket) -> u64 {
        let mut start = 0;
        let mut unsent = 0;
        for queued in &self.queued {
            let data = &self.outgoing[start..queued.end];
            if let Err(e) = socket.send_to(data, queued.to) {
                log::debug!("udp send to {}: {e}", queued.to);
                unsent += 1;
            }
            start = queued.end;
        }
        self.outgoing.clear();
        self.queued.clear();
        unsent
    }
}

/// The destination address of a received datagram, from its control
/// messages; `None` when the socket does not report it.
#[cfg(target_os = "linux")]
fn local_address(header: &libc::msghdr) -> Option<Local> {
    // SAFETY: the kernel wrote `msg_controllen` bytes of well-formed control
    // messages; the CMSG macros stay within them, and each payload is read
    // only when its length covers the type read.
    unsafe {
        let mut message = libc::CMSG_FIRSTHDR(header);
        while !message.is_null() {
            let (level, kind, len) = (
                (*message).cmsg_level,
                (*message).cmsg_type,
                (*message).cmsg_len as usize,
            );
            let data = libc::CMSG_DATA(message);
            let fits = |size: usize| len >= libc::CMSG_LEN(size as u32) as usize;
            if level == libc::IPPROTO_IP
                && kind == libc::IP_PKTINFO
                && fits(std::mem::size_of::<libc::in_pktinfo>())
            {
                let info: libc::in_pktinfo = std::ptr::read_unaligned(data.cast());
                let ip = Ipv4Addr::from(u32::from_be(info.ipi_addr.s_addr));
                return usable_source(ip).then_some(Local::V4(ip));
            }
            if level == libc::IPPROTO_IPV6
                && kind == libc::IPV6_PKTINFO
                && fits(std::mem::size_of::<libc::in6_pktinfo>())
            {
                let info: libc::in6_pktinfo = std::ptr::read_unaligned(data.cast());
                let ip = Ipv6Addr::from(info.ipi6_addr.s6_addr);
                let usable = match ip.to_ipv4_mapped() {
                    Some(v4) => usable_source(v4),
                    None => !ip.is_multicast(),
                };
                return usable.then_some(Local::V6(ip, info.ipi6_ifindex));
            }
            message = libc::CMSG_NXTHDR(header, message);
        }
    }
    None
}

/// A datagram sent to a multicast or broadcast address is answered from
/// the address routing picks: neither can be a source.
#[cfg(target_os = "linux")]
fn usable_source(ip: Ipv4Addr) -> bool {
    !ip.is_multicast() && !ip.is_broadcast()
}

/// Attaches the control message that makes `header`'s datagram leave from
/// `from`. The interface is left to routing, except for an IPv6 link-local
/// address, which names its interface.
#[cfg(target_os = "linux")]
fn set_source(header: &mut libc::msghdr, control: &mut Control, from: Local) {
    let (level, kind, size) = match from {
        Local::V4(_) => (
            libc::IPPROTO_IP,
            libc::IP_PKTINFO,
            std::mem::size_of::<libc::in_pktinfo>(),
        ),
        Local::V6(..) => (
            libc::IPPROTO_IPV6,
            libc::IPV6_PKTINFO,
            std::mem::size_of::<libc::in6_pktinfo>(),
        ),
    };
    header.msg_control = control.as_mut_ptr().cast();
    // SAFETY: CMSG_SPACE of either payload (32 or 40 bytes) fits the 64
    // bytes of `control`, so the header and payload written stay inside it.
    unsafe {
        header.msg_controllen = libc::CMSG_SPACE(size as u32) as usize;
        let message = libc::CMSG_FIRSTHDR(header);
        (*message).cmsg_level = level;
        (*message).cmsg_type = kind;
        (*message).cmsg_len = libc::CMSG_LEN(size as u32) as usize;
        let data = libc::CMSG_DATA(message);
        match from {
            Local::V4(ip) => {
                let info = libc::in_pktinfo {
                    ipi_ifindex: 0,
                    ipi_spec_dst: libc::in_addr {
                        s_addr: u32::from(ip).to_be(),
                    },
                    ipi_addr: libc::in_addr { s_addr: 0 },
                };
                std::ptr::write_unaligned(data.cast(), info);
            }
            Local::V6(ip, interface) => {
                let link_local = ip.segments()[0] & 0xffc0 == 0xfe80;
                let info = libc::in6_pktinfo {
                    ipi6_addr: libc::in6_addr {
                        s6_addr: ip.octets(),
                    },
                    ipi6_ifindex: if link_local { interface } else { 0 },
                };
                std::ptr::write_unaligned(data.cast(), info);
            }
        }
    }
}

/// On a socket bound to a wildcard address, has the kernel report where
/// each datagram was sent, so that [`Datagrams::send_queued`] answers from
/// that address. Routing would otherwise pick the source of each reply, and
/// on a host with several addresses a client that wrote to one may hear
/// from another, which NAT, firewalls and clients that check the sender
/// drop. Returns whether the socket reports it now.
#[cfg(target_os = "linux")]
pub fn reply_from_destination(socket: &UdpSocket) -> io::Result<bool> {
    use std::os::fd::AsRawFd;

    let local = socket.local_addr()?;
    if !local.ip().is_unspecified() {
        return Ok(false);
    }
    // A dual-stack socket reports IPv4 datagrams by IPV6_PKTINFO too.
    let (level, name) = if local.is_ipv4() {
        (libc::IPPROTO_IP, libc::IP_PKTINFO)
    } else {
        (libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO)
    };
    let on: libc::c_int = 1;
    // SAFETY: a c_int option value of the size passed.
    let status = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if status == 0 {
        Ok(true)
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Elsewhere replies leave from the address routing picks; binding each
/// address on its own avoids the question.
#[cfg(not(target_os = "linux"))]
pub fn reply_from_destination(_socket: &UdpSocket) -> io::Result<bool> {
    Ok(false)
}

/// How many datagrams the kernel has dropped on `socket` so far because its
/// receive queue was full (or a filter refused them): the count behind
/// "RcvbufErrors", for this socket alone. `None` where the system does not
/// tell.
#[cfg(target_os = "linux")]
pub fn dropped(socket: &UdpSocket) -> Option<u32> {
    use std::os::fd::AsRawFd;

    // The kernel fills as many of its counters (9 today) as fit.
    let mut meminfo = [0u32; 16];
    let mut len = std::mem::size_of_val(&meminfo) as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` bytes into `meminfo`.
    let status = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_MEMINFO,
            meminfo.as_mut_ptr().cast(),
            &mut len,
        )
    };
    let drops = libc::SK_MEMINFO_DROPS as usize;
    (status == 0 && len as usize > drops * 4).then(|| meminfo[drops])
}

#[cfg(not(target_os = "linux"))]
pub fn dropped(_socket: &UdpSocket) -> Option<u32> {
    None
}
