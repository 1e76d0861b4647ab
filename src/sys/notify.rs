//! sd_notify: readiness, status, reload, stop and watchdog messages to the
//! service manager.
//!
//! The socket named by `NOTIFY_SOCKET` is connected once, at start-up, and
//! kept: after a chroot its path would no longer resolve. Without the
//! variable (or off Linux) every call does nothing, so the daemon can always
//! call it and the unit can always say `Type=notify`.

use std::io;
use std::time::Duration;

pub struct Notifier {
    #[cfg(target_os = "linux")]
    socket: Option<std::os::unix::net::UnixDatagram>,
    watchdog: Option<Duration>,
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

impl Notifier {
    /// Connects to `NOTIFY_SOCKET` and reads `WATCHDOG_USEC`, then unsets
    /// both so that no child inherits them.
    #[cfg(target_os = "linux")]
    pub fn from_env() -> io::Result<Notifier> {
        let watchdog = watchdog_timeout();
        let socket = match std::env::var_os("NOTIFY_SOCKET") {
            Some(path) => {
                std::env::remove_var("NOTIFY_SOCKET");
                Some(connect(&path).map_err(|e| {
                    io::Error::new(e.kind(), format!("NOTIFY_SOCKET {path:?}: {e}"))
                })?)
            }
            None => None,
        };
        Ok(Notifier { socket, watchdog })
    }

    #[cfg(not(target_os = "linux"))]
    pub fn from_env() -> io::Result<Notifier> {
        Ok(Notifier { watchdog: None })
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
