//! Logging through the `log` facade, to syslog or to stderr.
//!
//! The syslog socket is opened here, at start-up, so it keeps working after
//! a chroot has hidden `/dev/log`.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

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
        let formatter = syslog::Formatter3164 {
            facility: syslog::Facility::LOG_DAEMON,
            hostname: None,
            process: "opentracker".into(),
            pid: std::process::id(),
        };
        match syslog::unix_custom(formatter, syslog_socket) {
            Ok(writer) => Box::new(syslog::BasicLogger::new(writer)),
            Err(e) if destination == Destination::Syslog => {
                return Err(format!("syslog socket {}: {e}", syslog_socket.display()))
            }
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
