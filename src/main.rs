//! The `opentracker` binary: start-up in one straight line.

use std::io::Write;
use std::process::ExitCode;

use opentracker::config::cli::{self, Command};
use opentracker::config::{Config, LogLevel, LogTarget};
use opentracker::server::{self, listeners, Server};
use opentracker::sys::{self, notify::Notifier, signals::Signals};

/// Upstream's exit status for fatal start-up errors; also a stop that
/// could not keep the swarms, so a service manager does not take it for a
/// clean one.
const EXIT_FATAL: u8 = 111;

/// Writes `text` to stdout, as the answer to a command. A reader gone
/// early (`| head`) or a full disk is no reason for a panic: the first
/// ends the program quietly, the second with a line on stderr.
fn answer(text: &str) -> ExitCode {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::FAILURE,
        Err(e) => {
            complain(&format!("standard output: {e}"));
            ExitCode::FAILURE
        }
    }
}

/// Writes a line to stderr, prefixed with the program's name; when stderr
/// is gone there is no one left to tell.
fn complain(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "opentracker: {line}");
}

/// `--check-config`: the configuration as the start would take it, on
/// stdout, once its files have been read as the start reads them.
fn check_config(config: &Config) -> ExitCode {
    for warning in &config.warnings {
        complain(&format!("warning: {warning}"));
    }
    // A warning, not an error: under systemd's socket activation these
    // addresses are not bound, and a check cannot know whether it will be.
    if let Some(unbindable) = &config.unbindable {
        complain(&format!(
            "warning: {unbindable} (the start stops on this unless systemd passes the sockets)"
        ));
    }
    // The lists too: a reload with a bad one keeps the old one.
    // Nothing goes to stdout unless all is well, so that
    // `--check-config > new.toml` leaves no half-checked file.
    let destination = log_destination(config.log.target);
    let found = sys::log::check(destination, config.log.syslog_socket())
        .and_then(|log| Ok(format!("{log}\n{}", server::check_files(config)?)));
    match found {
        Ok(found) => {
            let mut checked = config.to_toml();
            for line in found.lines() {
                match line.strip_prefix("warning: ") {
                    Some(_) => complain(line),
                    // A comment, so the output stays a configuration file.
                    None => checked += &format!("# {line}\n"),
                }
            }
            answer(&checked)
        }
        Err(e) => {
            complain(&e);
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let config = match cli::parse(std::env::args_os().skip(1)) {
        Ok(Command::Run(config)) => {
            // Nothing is open yet: this may start the program again.
            sys::heap::use_huge_pages();
            config
        }
        Ok(Command::CheckConfig(config)) => return check_config(&config),
        Ok(Command::Healthcheck(at)) => {
            return match server::healthcheck::check(&at) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    complain(&e);
                    ExitCode::FAILURE
                }
            };
        }
        Ok(Command::Help) => return answer(&format!("{}\n{}\n", cli::USAGE, cli::HELP)),
        Ok(Command::Version) => return answer(opentracker::stats::VERSION),
        Err(e) => {
            // Usage helps with a mistyped flag, not with a bad file.
            if e.file.is_some() {
                complain(&e.to_string());
            } else {
                complain(&format!("{e}\n{}", cli::USAGE));
            }
            return ExitCode::FAILURE;
        }
    };
    match run(*config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{e}");
            // Say it on stderr too unless the log already went there.
            if !sys::log::is_stderr() {
                complain(&e);
            }
            ExitCode::from(EXIT_FATAL)
        }
    }
}

/// Descriptors held besides HTTP connections: listeners, epoll, signals,
/// log and notify sockets, an access list being read, with room to spare.
const DESCRIPTORS_BESIDES_CONNECTIONS: u64 = 64;

/// Makes room for `http.max_connections` connections at once, and says so
/// when the limits do not allow it: past the limit, clients wait unanswered
/// in the kernel's accept queue.
fn raise_open_files_limit(config: &Config, listeners: &listeners::Listeners) {
    // Each UDP worker holds its own descriptor for its socket.
    let worker_copies = (listeners.udp.len() * config.listen.udp_workers as usize) as u64;
    let besides = DESCRIPTORS_BESIDES_CONNECTIONS + worker_copies;
    let wanted = u64::from(config.http.max_connections) + besides;
    match sys::limits::raise_open_files(wanted) {
        Ok(limits) if limits.soft < wanted => log::warn!(
            "open files are limited to {} (hard limit {}; ulimit -n, systemd's LimitNOFILE=): \
             about {} HTTP connections at once rather than http.max_connections = {}; \
             clients beyond that wait to be accepted",
            limits.soft,
            limits.hard,
            limits.soft.saturating_sub(besides),
            config.http.max_connections
        ),
        Ok(limits) => log::debug!("open files limit: {} (hard {})", limits.soft, limits.hard),
        Err(e) => log::warn!("open files limit: {e}"),
    }
}

fn log_destination(target: LogTarget) -> sys::log::Destination {
    match target {
        LogTarget::Auto => sys::log::Destination::Auto,
        LogTarget::Syslog => sys::log::Destination::Syslog,
        LogTarget::Stderr => sys::log::Destination::Stderr,
    }
}

fn run(config: Config) -> Result<(), String> {
    let destination = log_destination(config.log.target);
    let level = match config.log.level {
        LogLevel::Error => log::LevelFilter::Error,
        LogLevel::Warn => log::LevelFilter::Warn,
        LogLevel::Info => log::LevelFilter::Info,
        LogLevel::Debug => log::LevelFilter::Debug,
    };
    sys::log::init(destination, level, config.log.syslog_socket())?;
    for warning in &config.warnings {
        log::warn!("{warning}");
    }
    let notifier = Notifier::from_env();

    let mut passed = sys::activation::take()?;
    let stored_state = passed.take_stored(server::STORED_STATE);
    for (name, _) in passed.stored.drain(..) {
        log::warn!(
            "closed a descriptor the service manager stored as {name:?}: not this tracker's"
        );
    }
    let listeners = if passed.is_empty() {
        if let Some(unbindable) = &config.unbindable {
            return Err(unbindable.clone());
        }
        listeners::bind(&config.listen.effective())?
    } else {
        if !config.listen.is_default() {
            log::info!("using the sockets passed by systemd; configured listeners are not bound");
        }
        listeners::adopt(passed)?
    };
    let cluster = server::cluster::bind(&config)?;
    let signals = Signals::install().map_err(|e| format!("signal handlers: {e}"))?;
    raise_open_files_limit(&config, &listeners);

    // After bind, before serving: the point where privileges go, and with
    // a chroot /proc.
    sys::keep_proc_files();
    let outcome =
        sys::privileges::drop_privileges(&config.tracker.user, config.tracker.rootdir.as_deref())
            .map_err(server::privilege_error)?;
    let lists =
        server::load_lists(&config).map_err(|e| server::after_drop(e, &config, &outcome))?;
    server::check_state_file(&config).map_err(|e| server::after_drop(e, &config, &outcome))?;

    server::log_start(&config, &listeners, &lists, cluster.as_ref(), &outcome);
    Server::new(
        config,
        listeners,
        lists,
        cluster,
        signals,
        notifier,
        stored_state,
    )?
    .run()
}
