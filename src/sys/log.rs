//! Logging through the `log` facade, to syslog or to stderr.
//!
//! The syslog socket is opened here, at start-up, so it keeps working after
//! a chroot has hidden `/dev/log`; when the daemon restarts and makes a new
//! socket, the next line is sent to that one, unless a chroot hides it.

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
    writer: Mutex<SyslogWriter>,
    /// Connected again when a send fails: a restarted syslog daemon (not
    /// journald, whose socket systemd holds) makes a new socket there.
    path: PathBuf,
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
        let mut writer = self
            .writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if send(&mut writer, record.level(), &message).is_err() {
            if let Ok(fresh) = connect(&self.path) {
                *writer = fresh;
                let _ = send(&mut writer, record.level(), &message);
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
                writer: Mutex::new(writer),
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
    syslog::unix_custom(formatter, syslog_socket)
        .map_err(|e| format!("syslog socket {}: {e}", syslog_socket.display()))
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
