//! systemd socket activation: adopt the sockets passed as fds 3, 4, … when
//! `LISTEN_PID` is this process, tell TCP from UDP by `SO_TYPE` (refusing
//! sockets that are not IPv4 or IPv6, or streams not listening), log the
//! names from `LISTEN_FDNAMES`, and unset the variables so no child
//! inherits them. Descriptors that are not sockets come back from the
//! manager's file descriptor store ([`super::notify`]) and are kept by
//! name. Off Linux nothing is ever passed.

use std::fs::File;
use std::net::{TcpListener, UdpSocket};

/// Sockets and stored files handed over by the service manager.
#[derive(Debug, Default)]
pub struct Passed {
    pub tcp: Vec<TcpListener>,
    pub udp: Vec<UdpSocket>,
    /// Files from the descriptor store, with their names.
    pub stored: Vec<(String, File)>,
}

impl Passed {
    /// No sockets were passed (stored files may have been).
    pub fn is_empty(&self) -> bool {
        self.tcp.is_empty() && self.udp.is_empty()
    }

    /// Takes the stored file named `name`, if it came back.
    pub fn take_stored(&mut self, name: &str) -> Option<File> {
        let at = self.stored.iter().position(|(n, _)| n == name)?;
        Some(self.stored.remove(at).1)
    }
}

/// An integer socket option of `fd` at level SOL_SOCKET.
#[cfg(target_os = "linux")]
fn socket_option(fd: std::os::fd::RawFd, option: libc::c_int) -> std::io::Result<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `value`.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            option,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc == 0 {
        Ok(value)
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// What a passed socket must be to serve: an IPv4 or IPv6 one, and when a
/// stream, one listening; else why not.
#[cfg(target_os = "linux")]
fn unusable(fd: std::os::fd::RawFd, kind: libc::c_int) -> std::io::Result<Option<&'static str>> {
    let domain = socket_option(fd, libc::SO_DOMAIN)?;
    Ok(if domain != libc::AF_INET && domain != libc::AF_INET6 {
        Some("not an IPv4 or IPv6 socket (ListenStream= and ListenDatagram= take an address or a port)")
    } else if kind == libc::SOCK_STREAM && socket_option(fd, libc::SO_ACCEPTCONN)? == 0 {
        Some("a stream socket that is not listening")
    } else if kind != libc::SOCK_STREAM && kind != libc::SOCK_DGRAM {
        Some("neither a stream nor a datagram socket")
    } else {
        None
    })
}

/// Takes the passed sockets, if any.
#[cfg(target_os = "linux")]
pub fn take() -> Result<Passed, String> {
    use std::os::fd::FromRawFd;

    let counted = std::env::var("LISTEN_FDS").unwrap_or_default();
    let fds = sd_notify::listen_fds_with_names(true)
        .map_err(|e| format!("socket activation (LISTEN_FDS={counted:?}): {e}"))?;
    let mut passed = Passed::default();
    for (fd, name) in fds {
        let kind = match socket_option(fd, libc::SO_TYPE) {
            Ok(kind) => kind,
            Err(e) if e.raw_os_error() == Some(libc::ENOTSOCK) => {
                log::info!("fd {fd} named {name:?} came back from the descriptor store");
                // SAFETY: systemd passed us this fd for our exclusive use.
                passed.stored.push((name, unsafe { File::from_raw_fd(fd) }));
                continue;
            }
            Err(e) => return Err(format!("socket activation: fd {fd} ({name}): {e}")),
        };
        let failed =
            |why: &dyn std::fmt::Display| format!("socket activation: fd {fd} ({name}): {why}");
        if let Some(why) = unusable(fd, kind).map_err(|e| failed(&e))? {
            return Err(failed(&why));
        }
        // SAFETY: systemd passed us this fd for our exclusive use; it is a
        // socket of the kind just checked, and nothing else owns it.
        if kind == libc::SOCK_STREAM {
            passed.tcp.push(unsafe { TcpListener::from_raw_fd(fd) });
        } else {
            passed.udp.push(unsafe { UdpSocket::from_raw_fd(fd) });
        }
        log::info!(
            "adopted {} socket fd {fd} named {name:?}",
            if kind == libc::SOCK_STREAM {
                "TCP"
            } else {
                "UDP"
            }
        );
    }
    Ok(passed)
}

#[cfg(not(target_os = "linux"))]
pub fn take() -> Result<Passed, String> {
    Ok(Passed::default())
}
