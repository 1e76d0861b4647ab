//! Logging through the `log` facade, to syslog or to stderr.
//!
//! The syslog socket is opened here, at start-up, so it keeps working after
//! a chroot has hidden `/dev/log`; when the daemon restarts and makes a new
//! socket, the next line is sent to that one, unless a chroot hides it.
//!
//! Lines are sent without waiting: a syslog daemon that stops reading fills
//! its socket's queue, and a blocking send would then hold every thread that
//! logs, the event loop too (no answers, no watchdog ping, no clean stop).
//! Lines that find the queue full are dropped, and counted in a line sent
//! once the daemon reads again.

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

struct StderrLogger;

impl Log for StderrLogger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record) {
        if self.enabled(record.metadata()) {
            let line = format!(
                "opentracker: {}: {}\n",
                record.level().as_str().to_lowercase(),
                record.args()
            );
            let _ = std::io::stderr().lock().write_all(line.as_bytes());
        }
    }

    fn flush(&self) {}
}

/// Syslog over the socket connected at start.
struct SyslogLogger {
    writer: Mutex<Syslog>,
    /// Connected again when a send fails: a restarted syslog daemon (not
    /// journald, whose socket systemd holds) makes a new socket there.
    path: PathBuf,
}

/// The connected socket, and the lines dropped since a send last went
/// through.
struct Syslog {
    writer: SyslogWriter,
    dropped: u64,
}

impl Syslog {
    /// Sends a line, or drops it when the daemon's queue is full; false
    /// when the socket failed otherwise (the daemon went away).
    fn send(&mut self, level: log::Level, message: &str) -> bool {
        if self.dropped > 0 {
            let note = format!(
                "{} log lines were dropped: the syslog daemon did not keep up",
                self.dropped
            );
            match send(&mut self.writer, log::Level::Warn, &note) {
                Ok(()) => self.dropped = 0,
                Err(e) if would_block(&e) => {
                    self.dropped += 1;
                    return true;
                }
                Err(_) => return false,
            }
        }
        match send(&mut self.writer, level, message) {
            Ok(()) => true,
            Err(e) if would_block(&e) => {
                self.dropped += 1;
                true
            }
            Err(_) => false,
        }
    }
}

fn would_block(error: &syslog::Error) -> bool {
    matches!(error, syslog::Error::Io(e) | syslog::Error::Write(e)
        if e.kind() == std::io::ErrorKind::WouldBlock)
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
        let mut syslog = self
            .writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if !syslog.send(record.level(), &message) {
            if let Ok(fresh) = connect(&self.path) {
                syslog.writer = fresh;
                syslog.send(record.level(), &message);
            }
        }
    }

    fn flush(&self) {}
}

fn send(writer: &mut SyslogWriter, level: log::Level, message: &str) -> syslog::Result<()> {
    match level {
        log::Level::Error => writer.err(message),
        log::Level::Warn => writer.warning(message),
        log::Level::Info => writer.info(message),
        log::Level::Debug | log::Level::Trace => writer.debug(message),
    }
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
                writer: Mutex::new(Syslog { writer, dropped: 0 }),
                path: syslog_socket.to_path_buf(),
            }),
            Err(e) if destination == Destination::Syslog => return Err(e),
            Err(_) => {
                ON_STDERR.store(true, Ordering::Relaxed);
                Box::new(StderrLogger)
            }
        }
    } else {
        ON_STDERR.store(true, Ordering::Relaxed);
        Box::new(StderrLogger)
    };
    log::set_boxed_logger(logger).map_err(|e| format!("logger: {e}"))?;
    log::set_max_level(level);
    Ok(())
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
