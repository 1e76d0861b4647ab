//! Datagram I/O in batches: on Linux one `recvmmsg` takes up to [`BATCH`]
//! datagrams and one `sendmmsg` sends all replies, so the per-packet system
//! call cost is paid once per batch. Elsewhere the same interface loops over
//! `recv_from`/`send_to`.

use std::io;
use std::net::SocketAddr;

use mio::net::UdpSocket;

/// Datagrams per system call.
pub const BATCH: usize = 32;
/// Larger datagrams are truncated; no tracker request comes near this.
pub const DATAGRAM_MAX: usize = 2048;

pub struct Datagrams {
    buffers: Vec<[u8; DATAGRAM_MAX]>,
    lengths: [usize; BATCH],
    sources: Vec<SocketAddr>,
    count: usize,
    outgoing: Vec<u8>,
    /// (end offset in `outgoing`, destination) of each queued datagram.
    queued: Vec<(usize, SocketAddr)>,
}

impl Default for Datagrams {
    fn default() -> Self {
        Datagrams {
            buffers: vec![[0u8; DATAGRAM_MAX]; BATCH],
            lengths: [0; BATCH],
            sources: Vec::with_capacity(BATCH),
            count: 0,
            outgoing: Vec::with_capacity(BATCH * 1300),
            queued: Vec::with_capacity(BATCH),
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

    /// Queues a datagram for [`Datagrams::send_queued`].
    pub fn queue(&mut self, data: &[u8], to: SocketAddr) {
        self.outgoing.extend_from_slice(data);
        self.queued.push((self.outgoing.len(), to));
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
        }
        // SAFETY: `headers` describes BATCH valid buffers and names.
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
                kept += 1;
            }
        }
        self.count = kept;
        Ok(kept)
    }

    #[cfg(not(target_os = "linux"))]
    pub fn receive(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        self.sources.clear();
        self.count = 0;
        while self.count < BATCH {
            match socket.recv_from(&mut self.buffers[self.count]) {
                Ok((len, source)) => {
                    self.lengths[self.count] = len;
                    self.sources.push(source);
                    self.count += 1;
                }
                Err(e) if self.count > 0 && e.kind() == io::ErrorKind::WouldBlock => break,
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
        self.count = 1;
        Ok(1)
    }

    /// Sends every queued datagram. One that the socket refuses (a full
    /// buffer, an unreachable address) is dropped: UDP clients retry.
    #[cfg(target_os = "linux")]
    pub fn send_queued(&mut self, socket: &UdpSocket) {
        use std::os::fd::AsRawFd;

        let mut start = 0;
        let mut names = Vec::with_capacity(self.queued.len());
        let mut iovecs = Vec::with_capacity(self.queued.len());
        for &(end, to) in &self.queued {
            names.push(socket2::SockAddr::from(to));
            iovecs.push(libc::iovec {
                iov_base: self.outgoing[start..end].as_ptr() as *mut libc::c_void,
                iov_len: end - start,
            });
            start = end;
        }
        // SAFETY: a zeroed mmsghdr is valid; the pointers set below point
        // into `names` and `iovecs`, which outlive the call.
        let mut headers: Vec<libc::mmsghdr> = (0..self.queued.len())
            .map(|_| unsafe { std::mem::zeroed() })
            .collect();
        for (i, header) in headers.iter_mut().enumerate() {
            header.msg_hdr.msg_name = names[i].as_ptr() as *mut libc::c_void;
            header.msg_hdr.msg_namelen = names[i].len();
            header.msg_hdr.msg_iov = &mut iovecs[i];
            header.msg_hdr.msg_iovlen = 1;
        }
        let mut sent = 0;
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
                continue;
            }
            sent += n as usize;
        }
        self.outgoing.clear();
        self.queued.clear();
    }

    #[cfg(not(target_os = "linux"))]
    pub fn send_queued(&mut self, socket: &UdpSocket) {
        let mut start = 0;
        for &(end, to) in &self.queued {
            if let Err(e) = socket.send_to(&self.outgoing[start..end], to) {
                log::debug!("udp send to {to}: {e}");
            }
            start = end;
        }
        self.outgoing.clear();
        self.queued.clear();
    }
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
