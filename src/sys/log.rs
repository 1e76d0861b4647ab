//! Logging through the `log` facade, to syslog or to stderr.
//!
//! The syslog socket is opened here, at start-up, so it keeps working after
//! a chroot has hidden `/dev/log`; when the daemon restarts and makes a new
//! socket, the next line is sent to that one, unless a chroot hides it.
//!
//! Lines are written without waiting, to either: a syslog daemon that
//! stops reading fills its socket's queue, a stalled reader of stderr (a
//! paused terminal, a log driver behind, daemon(8) waiting on syslogd)
//! fills the pipe, and a blocking write would then hold every thread that
//! logs, the event loop too (no answers, no watchdog ping, no clean stop).
//! Lines that find no room are dropped, and counted in a line written once
//! the reader keeps up again.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use log::{LevelFilter, Log, Metadata, Record};

/// Where to send log lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Destination {
    Syslog,
    Stderr,
    /// Syslog unless stderr is a terminal.
    Auto,
}

static ON_STDERR: AtomicBool = AtomicBool::new(false);

/// Whether log lines go to stderr (false before [`init`]).
pub fn is_stderr() -> bool {
    ON_STDERR.load(Ordering::Relaxed)
}

/// What became of a line offered to a reader without waiting.
enum Offered {
    Taken,
    /// The reader is behind: no room for the line now.
    NoRoom,
    /// The reader is gone.
    Failed,
}

/// Somewhere log lines are written without waiting.
trait Sink {
    fn offer(&mut self, level: log::Level, message: &str) -> Offered;
}

/// A sink, and the lines it had no room for since one last went through.
struct Lossy<S> {
    sink: S,
    dropped: u64,
    /// Who did not keep up, as the count line says.
    reader: &'static str,
}

impl<S: Sink> Lossy<S> {
    fn new(sink: S, reader: &'static str) -> Self {
        Lossy {
            sink,
            dropped: 0,
            reader,
        }
    }

    /// Writes a line, or drops it when the reader is behind; false when
    /// the reader is gone.
    fn write(&mut self, level: log::Level, message: &str) -> bool {
        if self.dropped > 0 {
            let note = format!(
                "{} log lines were dropped: {} did not keep up",
                self.dropped, self.reader
            );
            match self.sink.offer(log::Level::Warn, &note) {
                Offered::Taken => self.dropped = 0,
                Offered::NoRoom => {
                    self.dropped += 1;
                    return true;
                }
                Offered::Failed => return false,
            }
        }
        match self.sink.offer(level, message) {
            Offered::Taken => true,
            Offered::NoRoom => {
                self.dropped += 1;
                true
            }
            Offered::Failed => false,
        }
    }
}

/// Standard error, written only when a whole line fits: poll says so for
/// up to `PIPE_BUF` bytes on a pipe, and a write that size is not split.
/// Its descriptor is left blocking: it may be shared with other programs.
struct Stderr;

impl Sink for Stderr {
    fn offer(&mut self, level: log::Level, message: &str) -> Offered {
        let mut line = format!("opentracker: {}: {message}", level.as_str().to_lowercase());
        if line.len() >= libc::PIPE_BUF {
            let mut cut = libc::PIPE_BUF - 1;
            while !line.is_char_boundary(cut) {
                cut -= 1;
            }
            line.truncate(cut);
        }
        line.push('\n');
        let mut stderr = libc::pollfd {
            fd: libc::STDERR_FILENO,
            events: libc::POLLOUT,
            revents: 0,
        };
        // SAFETY: one pollfd, owned here; a zero timeout never waits.
        match unsafe { libc::poll(&mut stderr, 1, 0) } {
            0 => return Offered::NoRoom,
            ready if ready < 0 => {
                return match std::io::Error::last_os_error().kind() {
                    std::io::ErrorKind::Interrupted => Offered::NoRoom,
                    _ => Offered::Failed,
                }
            }
            _ if stderr.revents & libc::POLLOUT == 0 => return Offered::Failed,
            _ => {}
        }
        match std::io::stderr().lock().write_all(line.as_bytes()) {
            Ok(()) => Offered::Taken,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Offered::NoRoom,
            Err(_) => Offered::Failed,
        }
    }
}

struct StderrLogger {
    stderr: Mutex<Lossy<Stderr>>,
}

impl Log for StderrLogger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record) {
        if self.enabled(record.metadata()) {
            // Nothing to do about a stderr that is gone.
            lock(&self.stderr).write(record.level(), &record.args().to_string());
        }
    }

    fn flush(&self) {}
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Syslog over the socket connected at start.
struct SyslogLogger {
    syslog: Mutex<Lossy<Syslog>>,
    /// Connected again when a send fails: a restarted syslog daemon (not
    /// journald, whose socket systemd holds) makes a new socket there.
    path: PathBuf,
}

/// The socket connected to the syslog daemon, in non-blocking mode.
struct Syslog(SyslogWriter);

impl Sink for Syslog {
    fn offer(&mut self, level: log::Level, message: &str) -> Offered {
        let sent = match level {
            log::Level::Error => self.0.err(message),
            log::Level::Warn => self.0.warning(message),
            log::Level::Info => self.0.info(message),
            log::Level::Debug | log::Level::Trace => self.0.debug(message),
        };
        match sent {
            Ok(()) => Offered::Taken,
            Err(syslog::Error::Io(e) | syslog::Error::Write(e))
                if e.kind() == std::io::ErrorKind::WouldBlock =>
            {
                Offered::NoRoom
            }
            Err(_) => Offered::Failed,
        }
    }
}

impl Log for SyslogLogger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let message = record.args().to_string();
        let mut syslog = lock(&self.syslog);
        if !syslog.write(record.level(), &message) {
            if let Ok(fresh) = connect(&self.path) {
                syslog.sink = Syslog(fresh);
                syslog.write(record.level(), &message);
            }
        }
    }

    fn flush(&self) {}
}

/// Installs the logger. Fails when syslog was asked for explicitly and the
/// socket cannot be connected; `Auto` falls back to stderr in that case.
pub fn init(
    destination: Destination,
    level: LevelFilter,
    syslog_socket: &Path,
) -> Result<(), String> {
    let use_syslog = match destination {
        Destination::Syslog => true,
        Destination::Stderr => false,
        Destination::Auto => !std::io::stderr().is_terminal(),
    };
    let logger: Box<dyn Log> = if use_syslog {
        match connect(syslog_socket) {
            Ok(writer) => Box::new(SyslogLogger {
                syslog: Mutex::new(Lossy::new(Syslog(writer), "the syslog daemon")),
                path: syslog_socket.to_path_buf(),
            }),
            Err(e) if destination == Destination::Syslog => return Err(e),
            Err(_) => stderr_logger(),
        }
    } else {
        stderr_logger()
    };
    log::set_boxed_logger(logger).map_err(|e| format!("logger: {e}"))?;
    log::set_max_level(level);
    Ok(())
}

fn stderr_logger() -> Box<dyn Log> {
    ON_STDERR.store(true, Ordering::Relaxed);
    Box::new(StderrLogger {
        stderr: Mutex::new(Lossy::new(Stderr, "the reader of standard error")),
    })
}

type SyslogWriter = syslog::Logger<syslog::LoggerBackend, syslog::Formatter3164>;

fn connect(syslog_socket: &Path) -> Result<SyslogWriter, String> {
    let formatter = syslog::Formatter3164 {
        facility: syslog::Facility::LOG_DAEMON,
        hostname: None,
        process: "opentracker".into(),
        pid: std::process::id(),
    };
    let writer = syslog::unix_custom(formatter, syslog_socket)
        .map_err(|e| format!("syslog socket {}: {e}", syslog_socket.display()))?;
    let nonblocking = match &writer.backend {
        syslog::LoggerBackend::Unix(socket) => socket.set_nonblocking(true),
        syslog::LoggerBackend::UnixStream(socket) => socket.get_ref().set_nonblocking(true),
        _ => Ok(()),
    };
    nonblocking.map_err(|e| format!("syslog socket {}: {e}", syslog_socket.display()))?;
    Ok(writer)
}

/// Where [`init`] would send log lines, found without logging anything;
/// an error where `init` would fail. Whether `Auto` finds a terminal
/// depends on how the tracker is started, so both cases are told.
pub fn check(destination: Destination, syslog_socket: &Path) -> Result<String, String> {
    let socket = syslog_socket.display();
    match (destination, connect(syslog_socket)) {
        (Destination::Stderr, _) => Ok("log: to standard error".into()),
        (Destination::Syslog, Ok(_)) => Ok(format!("log: to syslog socket {socket}")),
        (Destination::Syslog, Err(e)) => Err(e),
        (Destination::Auto, Ok(_)) => Ok(format!(
            "log: to syslog socket {socket}, or to standard error when it is a terminal"
        )),
        (Destination::Auto, Err(e)) => Ok(format!("log: to standard error ({e})")),
    }
}
