//! sd_notify: readiness, status, reload, stop and watchdog messages to the
//! service manager, and its file descriptor store: a descriptor handed over
//! with `FDSTORE=1` comes back at the next start among the passed ones
//! (see [`super::activation`]), so state kept in a memory file survives a
//! restart without touching disk.
//!
//! The socket named by `NOTIFY_SOCKET` is connected once, at start-up, and
//! kept: after a chroot its path would no longer resolve. Without the
//! variable (or off Linux) every call does nothing, so the daemon can always
//! call it and the unit can always say `Type=notify`.

use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::time::Duration;

pub struct Notifier {
    #[cfg(target_os = "linux")]
    socket: Option<std::os::unix::net::UnixDatagram>,
    watchdog: Option<Duration>,
    /// How many descriptors the manager keeps for this service (`FDSTORE`).
    fd_store: usize,
}

#[cfg(target_os = "linux")]
fn connect(path: &std::ffi::OsStr) -> io::Result<std::os::unix::net::UnixDatagram> {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::net::{SocketAddr, UnixDatagram};

    let socket = UnixDatagram::unbound()?;
    match path.as_bytes().strip_prefix(b"@") {
        Some(name) => socket.connect_addr(&SocketAddr::from_abstract_name(name)?)?,
        None => socket.connect(path)?,
    }
    Ok(socket)
}

/// `WATCHDOG_USEC`, when meant for this process: systemd's rule is that an
/// absent `WATCHDOG_PID` means "yes" (sd-notify's helper insists on it).
#[cfg(target_os = "linux")]
fn watchdog_timeout() -> Option<Duration> {
    let usec = std::env::var("WATCHDOG_USEC")
        .ok()?
        .parse::<u64>()
        .ok()
        .filter(|&u| u > 0);
    let for_us =
        std::env::var("WATCHDOG_PID").map_or(true, |pid| pid.parse() == Ok(std::process::id()));
    std::env::remove_var("WATCHDOG_USEC");
    std::env::remove_var("WATCHDOG_PID");
    usec.filter(|_| for_us).map(Duration::from_micros)
}

/// `FDSTORE`: systemd 254 and later set it to the unit's
/// `FileDescriptorStoreMax=`; a unit for an older one sets it itself.
#[cfg(target_os = "linux")]
fn fd_store_size() -> usize {
    let size = std::env::var("FDSTORE").ok().and_then(|n| n.parse().ok());
    std::env::remove_var("FDSTORE");
    size.unwrap_or(0)
}

/// Sends `message` with `fd` attached (SCM_RIGHTS).
#[cfg(target_os = "linux")]
fn send_with_fd(
    socket: &std::os::unix::net::UnixDatagram,
    message: &[u8],
    fd: std::os::fd::BorrowedFd<'_>,
) -> io::Result<()> {
    use std::os::fd::AsRawFd;

    let fd = fd.as_raw_fd();
    let fd_len = std::mem::size_of_val(&fd) as libc::c_uint;
    // SAFETY: CMSG_SPACE only computes a size.
    let space = unsafe { libc::CMSG_SPACE(fd_len) } as usize;
    let mut control = vec![0u64; space.div_ceil(8)];
    let mut iov = libc::iovec {
        iov_base: message.as_ptr() as *mut libc::c_void,
        iov_len: message.len(),
    };
    // SAFETY: msghdr is plain data; zeroed is a valid empty header.
    let mut header: libc::msghdr = unsafe { std::mem::zeroed() };
    header.msg_iov = &mut iov;
    header.msg_iovlen = 1;
    header.msg_control = control.as_mut_ptr().cast();
    header.msg_controllen = space as _;
    // SAFETY: the control buffer is CMSG_SPACE bytes, aligned, and holds
    // exactly the one header written here; sendmsg only reads the buffers.
    let sent = unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&header);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(fd_len) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::c_int>(), fd);
        libc::sendmsg(socket.as_raw_fd(), &header, libc::MSG_NOSIGNAL)
    };
    match sent {
        n if n < 0 => Err(io::Error::last_os_error()),
        n if n as usize != message.len() => Err(io::ErrorKind::WriteZero.into()),
        _ => Ok(()),
    }
}

/// A file in memory, not on any file system, to hand to the manager.
#[cfg(target_os = "linux")]
pub fn memory_file(name: &str) -> io::Result<File> {
    use std::os::fd::FromRawFd;

    let name = std::ffi::CString::new(name).map_err(io::Error::other)?;
    // SAFETY: memfd_create reads the NUL-terminated name and returns a new
    // descriptor that nothing else owns.
    match unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) } {
        -1 => Err(io::Error::last_os_error()),
        fd => Ok(unsafe { File::from_raw_fd(fd) }),
    }
}

#[cfg(not(target_os = "linux"))]
pub fn memory_file(_name: &str) -> io::Result<File> {
    Err(io::ErrorKind::Unsupported.into())
}

impl Notifier {
    /// Connects to `NOTIFY_SOCKET` and reads `WATCHDOG_USEC` and `FDSTORE`,
    /// then unsets them so that no child inherits them.
    #[cfg(target_os = "linux")]
    /// A socket that cannot be reached is logged, and the tracker runs
    /// without: as libsystemd's clients do, so a variable left over in an
    /// environment does not stop a tracker started by hand.
    pub fn from_env() -> Notifier {
        let watchdog = watchdog_timeout();
        let fd_store = fd_store_size();
        let socket = std::env::var_os("NOTIFY_SOCKET").and_then(|path| {
            std::env::remove_var("NOTIFY_SOCKET");
            connect(&path)
                .map_err(|e| {
                    log::warn!(
                        "sd_notify: NOTIFY_SOCKET {path:?}: {e}; the service manager will hear \
                         nothing from the tracker"
                    )
                })
                .ok()
        });
        Notifier {
            socket,
            watchdog,
            fd_store,
        }
    }

    #[cfg(not(target_os = "linux"))]
    pub fn from_env() -> Notifier {
        Notifier {
            watchdog: None,
            fd_store: 0,
        }
    }

    /// Whether the manager keeps descriptors for this service.
    pub fn has_fd_store(&self) -> bool {
        self.is_active() && self.fd_store > 0
    }

    /// Hands `file` to the manager's store under `name`, replacing one
    /// stored under that name before.
    pub fn store(&self, name: &str, file: &File) -> io::Result<()> {
        #[cfg(target_os = "linux")]
        if let Some(socket) = &self.socket {
            self.forget(name);
            let message = format!("FDSTORE=1\nFDNAME={name}\n");
            return send_with_fd(socket, message.as_bytes(), file.as_fd());
        }
        let _ = (name, file.as_fd());
        Err(io::ErrorKind::Unsupported.into())
    }

    /// Asks the manager to close what it stores under `name`.
    pub fn forget(&self, name: &str) {
        #[cfg(target_os = "linux")]
        self.send(&[
            sd_notify::NotifyState::Custom("FDSTOREREMOVE=1"),
            sd_notify::NotifyState::Custom(&format!("FDNAME={name}")),
        ]);
        let _ = name;
    }

    #[cfg(target_os = "linux")]
    fn send(&self, states: &[sd_notify::NotifyState<'_>]) {
        use std::fmt::Write as _;
        if let Some(socket) = &self.socket {
            let mut message = String::new();
            for state in states {
                let _ = writeln!(message, "{state}");
            }
            if let Err(e) = socket.send(message.as_bytes()) {
                log::debug!("sd_notify: {e}");
            }
        }
    }

    /// Whether a service manager listens at all.
    pub fn is_active(&self) -> bool {
        #[cfg(target_os = "linux")]
        return self.socket.is_some();
        #[cfg(not(target_os = "linux"))]
        return false;
    }

    /// How often to send `WATCHDOG=1`: half the manager's timeout.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog.map(|timeout| timeout / 2)
    }

    pub fn ready(&self, status: &str) {
        #[cfg(target_os = "linux")]
        self.send(&[
            sd_notify::NotifyState::Ready,
            sd_notify::NotifyState::Status(status),
        ]);
        let _ = status;
    }

    pub fn status(&self, status: &str) {
        #[cfg(target_os = "linux")]
        self.send(&[sd_notify::NotifyState::Status(status)]);
        let _ = status;
    }

    /// `RELOADING=1` with the `MONOTONIC_USEC` systemd wants alongside it.
    pub fn reloading(&self) {
        #[cfg(target_os = "linux")]
        match sd_notify::NotifyState::monotonic_usec_now() {
            Ok(now) => self.send(&[sd_notify::NotifyState::Reloading, now]),
            Err(_) => self.send(&[sd_notify::NotifyState::Reloading]),
        }
    }

    pub fn stopping(&self) {
        #[cfg(target_os = "linux")]
        self.send(&[sd_notify::NotifyState::Stopping]);
    }

    pub fn watchdog(&self) {
        #[cfg(target_os = "linux")]
        self.send(&[sd_notify::NotifyState::Watchdog]);
    }
}
