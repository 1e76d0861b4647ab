//! The state file (`-l`, `tracker.state_file`): loaded before the tracker
//! is ready and, with `tracker.save_state`, written when it stops and every
//! `tracker.save_interval` seconds, so a restart keeps the swarms and a
//! crash loses little. Under a service manager with a descriptor store,
//! the same state is also handed over in a memory file at stop and loaded
//! from it at the next start, so a restart keeps the swarms with no state
//! file at all. The format is in [`crate::state`].

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError, TryRecvError};
use std::thread;
use std::time::{Duration, Instant};

use super::Context;
use crate::config::Config;
use crate::proto::InfoHash;
use crate::state::{self, Line};
use crate::sys::notify::{self, Notifier};
use crate::tracker::SavedPeer;

/// The name the state is stored under in the service manager.
pub const STORED_NAME: &str = "state";

/// Where a state is loaded from.
#[derive(Clone, Copy)]
enum Source<'a> {
    File(&'a Path),
    /// The memory file the service manager kept across a restart.
    Stored(&'a File),
}

impl<'a> Source<'a> {
    fn name(self) -> String {
        match self {
            Source::File(path) => format!("state file {}", path.display()),
            Source::Stored(_) => "state kept by the service manager".into(),
        }
    }

    fn open(self) -> io::Result<Box<dyn Read + 'a>> {
        Ok(match self {
            Source::File(path) => Box::new(File::open(path)?),
            Source::Stored(mut file) => {
                file.rewind()?;
                Box::new(file)
            }
        })
    }
}

/// Why a state could not be loaded.
#[derive(Debug)]
enum Unloadable {
    /// There is no such file.
    Missing(String),
    /// It could not be opened or read, so what it holds is unknown.
    Unreadable(String),
    /// It holds a line that is no state line.
    Bad(String),
}

impl Unloadable {
    fn message(&self) -> &str {
        match self {
            Unloadable::Missing(e) | Unloadable::Unreadable(e) | Unloadable::Bad(e) => e,
        }
    }
}

/// The error that stops a start at a state file it cannot read: unlike a
/// bad one, it may well hold the swarms, and is not for a save to replace.
fn unreadable(e: &str) -> String {
    format!(
        "{e}; the tracker does not start without reading it, as it may hold the only copy \
         of the swarms: let the tracker's user read it, or move it away"
    )
}

/// The longest line read: state lines take under 100 bytes (a peer's
/// holds an IPv6 address and three numbers), comments little more, so a
/// longer one is no state line; and a file without newlines is not read
/// whole into memory to find that out.
const LONGEST_LINE: usize = 4096;

/// Calls `visit` with each line of `source` and its number; errors name
/// the source, and the line when there is one.
fn for_each_line(
    source: Source,
    mut visit: impl FnMut(&str) -> Result<(), String>,
) -> Result<(), Unloadable> {
    let name = source.name();
    let file = source.open().map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => Unloadable::Missing(format!("{name}: {e}")),
        _ => Unloadable::Unreadable(format!("{name}: {e}")),
    })?;
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let mut line = Vec::new();
    for number in 1.. {
        line.clear();
        let at = |e: &dyn std::fmt::Display| format!("{name}:{number}: {e}");
        // Room for the longest line and its CRLF: a line that fills it
        // without ending is longer.
        let mut bounded = (&mut reader).take(LONGEST_LINE as u64 + 2);
        match bounded.read_until(b'\n', &mut line) {
            Ok(0) => break,
            // Bytes, so that text in another encoding is a bad line, not
            // a failed read.
            Ok(_) => std::str::from_utf8(&line)
                .map_err(|_| "not UTF-8 text".to_string())
                .map(|text| text.trim_end_matches(['\n', '\r']))
                .and_then(|text| match text.len() {
                    ..=LONGEST_LINE => visit(text),
                    _ => Err(format!("longer than {LONGEST_LINE} bytes")),
                })
                .map_err(|e| Unloadable::Bad(at(&e)))?,
            Err(e) => return Err(Unloadable::Unreadable(at(&e))),
        }
    }
    Ok(())
}

/// Checks every line of `source`: how many torrents and peers it holds,
/// or the first bad line.
fn count_lines(source: Source, unix_now: u64) -> Result<(u64, u64), Unloadable> {
    let (mut torrents, mut peers) = (0, 0);
    for_each_line(source, |line| {
        match state::parse_line(line, unix_now)? {
            Line::Torrent(..) => torrents += 1,
            Line::Peer(_) if torrents == 0 => {
                return Err("a peer line before any torrent line".into())
            }
            Line::Peer(_) => peers += 1,
            Line::Comment => {}
        }
        Ok(())
    })?;
    Ok((torrents, peers))
}

/// What a start would find of `tracker.state_file`, for `--check-config`:
/// an error where the start would fail (a save that cannot be written),
/// else a line on what it would load, which starts `warning:` when that is
/// nothing because the file is bad.
pub fn check(config: &Config) -> Result<Option<String>, String> {
    check_usable(config)?;
    let Some(path) = &config.tracker.state_file else {
        return Ok(None);
    };
    let name = Source::File(path).name();
    let save_state = config.tracker.save_state;
    let unix_now = super::context::unix_seconds();
    Ok(Some(match count_lines(Source::File(path), unix_now) {
        Ok((torrents, peers)) => {
            format!("{name}: {torrents} torrents and {peers} peers, loaded at start")
        }
        Err(Unloadable::Missing(_)) if save_state => {
            format!("{name}: none yet; the tracker starts empty")
        }
        Err(Unloadable::Unreadable(e)) => return Err(unreadable(&e)),
        Err(Unloadable::Bad(e)) if save_state => format!(
            "warning: {e}; the tracker would load nothing from it, and move it to {} \
             so that its saves do not replace it",
            aside_path(path, unix_now).display()
        ),
        Err(e) => format!(
            "warning: {}; the tracker would load nothing from it",
            e.message()
        ),
    }))
}

/// What a load did, for its log line.
#[derive(Default)]
struct Loaded {
    torrents: u64,
    peers: u64,
    /// Torrents without live peers that have expired or never had a
    /// download.
    expired: u64,
    /// Peers that timed out while the tracker was down.
    timed_out: u64,
    /// Torrents and peers the access list or a memory limit refused, or
    /// that were there already.
    refused: u64,
}

impl Loaded {
    /// Restores one torrent and its peers as of tracker second `now`.
    fn add(
        &mut self,
        ctx: &Context,
        config: &Config,
        (hash, minute, downloaded): (InfoHash, u64, u32),
        mut peers: Vec<SavedPeer>,
        (now, unix_now): (u32, u64),
    ) {
        let total = peers.len() as u64;
        // Paced, a peer may have been told a longer interval; the pace set
        // once all are loaded decides which of those are kept.
        let timeout = config.tracker.pace().longest_peer_timeout();
        peers.retain(|p| p.age <= timeout);
        self.timed_out += total - peers.len() as u64;
        let idle = unix_now.saturating_sub(minute.saturating_mul(60));
        // The minute rounds down: the last announce was at least as recent
        // as the youngest peer's.
        let idle = peers.iter().map(|p| u64::from(p.age)).fold(idle, u64::min);
        if peers.is_empty() && (downloaded == 0 || idle >= config.tracker.torrent_timeout.into()) {
            self.expired += 1;
            return;
        }
        if !ctx.tracker.restore(&hash, downloaded, idle as u32, now) {
            self.refused += 1 + peers.len() as u64;
            return;
        }
        self.torrents += 1;
        // Oldest first, so the torrent's last announce ends as the newest.
        peers.sort_by_key(|p| std::cmp::Reverse(p.age));
        for peer in &peers {
            if ctx.tracker.restore_peer(&hash, peer, now) {
                self.peers += 1;
            } else {
                self.refused += 1;
            }
        }
    }
}

/// Loads the state the service manager kept across a restart, when it
/// passed one back, or else `tracker.state_file`: a state dump (download
/// counts and last announces) or a saved state (peers too). Torrents and
/// peers that would have expired by now, or that the access list refuses,
/// are skipped. A file with a bad line is logged and nothing is loaded:
/// the tracker starts empty, and the file stays as it was; with
/// `tracker.save_state` it is first moved aside (see [`aside_path`]), so
/// the next save does not replace it. The error is a state file that could
/// not be read, or a bad one that could not be moved aside.
pub fn load(config: &Config, ctx: &Context, stored: Option<&File>) -> Result<(), String> {
    match (stored, &config.tracker.state_file) {
        (Some(file), _) => load_from(Source::Stored(file), config, ctx),
        (None, Some(path)) => load_from(Source::File(path), config, ctx),
        (None, None) => Ok(()),
    }
}

/// Where a state file that failed to load is moved, at Unix second
/// `unix_now`: beside it, named for the time, so none replaces another.
fn aside_path(path: &Path, unix_now: u64) -> PathBuf {
    let mut aside = path.as_os_str().to_owned();
    aside.push(format!(".unloaded-{unix_now}"));
    aside.into()
}

fn load_from(source: Source, config: &Config, ctx: &Context) -> Result<(), String> {
    let started = Instant::now();
    let clock = ctx.clock();
    // A first pass checks every line, so that a bad file loads nothing.
    if let Err(unloadable) = count_lines(source, clock.1) {
        match (source, unloadable) {
            (Source::File(path), Unloadable::Missing(_)) if config.tracker.save_state => {
                log::info!("state file {}: none yet; starting empty", path.display())
            }
            (Source::File(_), Unloadable::Unreadable(e)) => return Err(unreadable(&e)),
            (Source::File(path), Unloadable::Bad(e)) if config.tracker.save_state => {
                // The operator's only copy of the swarms, maybe: keep it.
                let aside = aside_path(path, clock.1);
                std::fs::rename(path, &aside).map_err(|moving| {
                    format!(
                        "{e}; and it could not be moved to {} so that saves do not replace \
                         it: {moving}",
                        aside.display()
                    )
                })?;
                log::warn!(
                    "{e}; nothing loaded, and the file moved to {} so that saves do not \
                     replace it",
                    aside.display()
                )
            }
            // Never fatal for the service manager's copy: it stays stored
            // until a start gets past it, so every restart would fail.
            (_, e) => log::warn!("{}; nothing loaded", e.message()),
        }
        return Ok(());
    }
    let mut loaded = Loaded::default();
    let mut torrent = None;
    let mut peers = Vec::new();
    let read = for_each_line(source, |line| {
        match state::parse_line(line, clock.1)? {
            Line::Torrent(hash, minute, downloaded) => {
                if let Some(previous) = torrent.replace((hash, minute, downloaded)) {
                    loaded.add(ctx, config, previous, std::mem::take(&mut peers), clock);
                }
            }
            Line::Peer(peer) => peers.push(peer),
            Line::Comment => {}
        }
        Ok(())
    });
    if let Some(last) = torrent {
        loaded.add(ctx, config, last, peers, clock);
    }
    if let Err(e) = read {
        log::warn!("{}; loaded up to there", e.message());
    }
    let Loaded {
        torrents,
        peers,
        expired,
        timed_out,
        refused,
    } = loaded;
    log::info!(
        "{}: {torrents} torrents loaded, {peers} peers, in {} ms; {expired} torrents \
         expired or never downloaded, {timed_out} peers timed out, {refused} refused by the \
         access list or a limit, or repeated",
        source.name(),
        started.elapsed().as_millis()
    );
    Ok(())
}

/// Makes sure the state file is one: a regular file or none yet (a
/// directory cannot be loaded nor replaced by a save, and reading a FIFO
/// or a device would hold up the start). With `tracker.save_state`, also
/// that it can be written, so that a directory the tracker's user cannot
/// write, or a state file it may not replace, is found at start, not when
/// the swarms are about to be lost.
pub fn check_usable(config: &Config) -> Result<(), String> {
    let Some(path) = &config.tracker.state_file else {
        return Ok(());
    };
    if let Ok(found) = std::fs::metadata(path) {
        if found.is_file() {
            // Here, so that the start says who failed to read it.
            File::open(path)
                .map_err(|e| unreadable(&format!("state file {}: {e}", path.display())))?;
        } else {
            let kind = if found.is_dir() {
                "a directory"
            } else {
                "not a regular file"
            };
            return Err(format!(
                "state file {}: {kind}; it must be a file, or not exist yet when \
                 tracker.save_state is on",
                path.display()
            ));
        }
    }
    if !config.tracker.save_state {
        return Ok(());
    }
    // Not the save's own temporary file: a running tracker may be writing
    // it while `--check-config` looks, and truncating or removing it would
    // spoil that save. A process id names a file no other process uses.
    let mut probe = path.as_os_str().to_owned();
    probe.push(format!(".check-{}", std::process::id()));
    let probe = PathBuf::from(probe);
    open_new(&probe)
        .and_then(|_| std::fs::remove_file(&probe))
        .map_err(|e| {
            // SAFETY: geteuid has no preconditions.
            let uid = unsafe { libc::geteuid() };
            format!(
                "state file {}: cannot create a file in its directory ({}: {e}); with \
                 tracker.save_state the directory must be writable by the tracker's user, \
                 uid {uid}",
                path.display(),
                probe.display()
            )
        })?;
    check_replaceable(path)
}

/// The sticky bit of a directory's mode (as /tmp's 1777).
const STICKY: u32 = 0o1000;

/// Makes sure a save can rename over the state file there is: in a sticky
/// directory anyone may create a file, so the probe passes, but only the
/// owner of the file or of the directory may replace one (root too: the
/// tracker gives up CAP_FOWNER with every other capability), so every save
/// would fail at the rename.
fn check_replaceable(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    // Not followed: a save replaces a symbolic link itself.
    let (Ok(file), Ok(directory)) = (
        std::fs::symlink_metadata(path),
        std::fs::metadata(directory_of(path)),
    ) else {
        return Ok(());
    };
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    if directory.mode() & STICKY == 0 || uid == file.uid() || uid == directory.uid() {
        return Ok(());
    }
    Err(format!(
        "state file {}: a save could not replace it: its directory {} is sticky (mode {:o}) \
         and neither the file (uid {}) nor the directory (uid {}) belongs to the tracker's \
         user (uid {uid}); give the file to that user, or keep the state in a directory of \
         its own",
        path.display(),
        directory_of(path).display(),
        directory.mode() & 0o7777,
        file.uid(),
        directory.uid()
    ))
}

/// The directory `path` is in, "." for a bare name.
fn directory_of(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// Where a save is written before it is renamed over `path`.
fn temporary_path(path: &Path) -> PathBuf {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".new");
    temporary.into()
}

fn open_new(path: &Path) -> io::Result<File> {
    // Made afresh: a file left there (by a save that was cut short, or
    // planted) keeps its mode and owner when opened, and a symbolic link
    // would send the write elsewhere; O_EXCL follows neither.
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    // Peers' addresses are personal data: the owner alone may read them.
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

/// Torrents written per lock of a shard: a save running beside the
/// requests holds up an announce for at most this many torrents' lines.
const SAVE_SLICE: usize = 1024;

/// With `tracker.save_state`, writes every torrent and live peer to
/// `tracker.state_file`: on stop, after the [`Saver`] has stopped. The
/// error says why nothing was saved, for the stop to end with it.
pub fn save(config: &Config, ctx: &mut Context) -> Result<(), String> {
    match (config.tracker.save_state, &config.tracker.state_file) {
        (true, Some(path)) => save_logged(path, ctx, &|| false),
        _ => Ok(()),
    }
}

/// Saves `tracker.state_file` every `tracker.save_interval` seconds on a
/// thread of its own, so the event loop never waits for the disk and a
/// crash loses at most one interval.
pub struct Saver {
    /// Dropped to stop the thread.
    stop: mpsc::Sender<()>,
    thread: thread::JoinHandle<()>,
}

impl Saver {
    /// Starts the thread when periodic saves are configured.
    pub fn start(config: &Config, ctx: &Context) -> io::Result<Option<Saver>> {
        let t = &config.tracker;
        let (true, Some(path), 1..) = (t.save_state, &t.state_file, t.save_interval) else {
            return Ok(None);
        };
        let (path, every) = (path.clone(), Duration::from_secs(t.save_interval.into()));
        let mut ctx = ctx.for_worker();
        let (stop, stopped) = mpsc::channel();
        let thread = thread::Builder::new()
            .name("state-saver".into())
            .spawn(move || {
                let stopping = || !matches!(stopped.try_recv(), Err(TryRecvError::Empty));
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                    ctx.begin_turn();
                    // The next save may do better; the one at stop says
                    // so in the exit status.
                    if let Err(e) = save_logged(&path, &mut ctx, &stopping) {
                        log::error!("{e}");
                    }
                    ctx.publish_counters();
                }
            })
            .map_err(|e| super::thread_start_error("starting the state saver thread", e))?;
        Ok(Some(Saver { stop, thread }))
    }

    /// Stops the thread, abandoning a save in progress: the save on stop
    /// follows.
    pub fn stop(self) {
        drop(self.stop);
        let _ = self.thread.join();
    }
}

/// Writes the state to `path` and logs a save done or given up; the error
/// is the caller's to log. `give_up` is asked between slices; a save it
/// ends leaves the previous file as it was.
fn save_logged(path: &Path, ctx: &mut Context, give_up: &dyn Fn() -> bool) -> Result<(), String> {
    let started = Instant::now();
    let temporary = temporary_path(path);
    match write(&temporary, path, ctx, give_up) {
        Ok(Some((torrents, peers))) => {
            ctx.counters.state_save_ended(true, ctx.clock().1);
            log::info!(
                "state file {}: {torrents} torrents and {peers} peers saved in {} ms",
                path.display(),
                started.elapsed().as_millis()
            )
        }
        Ok(None) => {
            let _ = std::fs::remove_file(&temporary);
            log::debug!(
                "state file {}: save given up, the tracker is stopping",
                path.display()
            );
        }
        Err(e) => {
            let _ = std::fs::remove_file(&temporary);
            ctx.counters.state_save_ended(false, ctx.clock().1);
            return Err(format!("state file {}: {e}; not saved", path.display()));
        }
    }
    Ok(())
}

/// Writes the state to `temporary`, syncs it and renames it over `path`,
/// so a crash midway leaves the previous state whole. The counts of
/// torrents and peers written, or `None` when `give_up` said so.
fn write(
    temporary: &Path,
    path: &Path,
    ctx: &Context,
    give_up: &dyn Fn() -> bool,
) -> io::Result<Option<(u64, u64)>> {
    let named = |what: &str, e: io::Error| io::Error::new(e.kind(), format!("{what}: {e}"));
    let writing = |e| named(&format!("writing {}", temporary.display()), e);
    let mut out = BufWriter::with_capacity(1 << 16, open_new(temporary).map_err(writing)?);
    let Some(counts) = write_lines(&mut out, ctx, give_up).map_err(writing)? else {
        return Ok(None);
    };
    (out.into_inner().map_err(|e| e.into_error()))
        .and_then(|file| file.sync_all())
        .map_err(writing)?;
    std::fs::rename(temporary, path)
        .map_err(|e| named(&format!("renaming {} over it", temporary.display()), e))?;
    // The rename is an entry in the directory: synced too, so a power cut
    // does not bring back the previous file, or none.
    let directory = directory_of(path);
    File::open(directory)
        .and_then(|dir| dir.sync_all())
        .map_err(|e| named(&format!("syncing directory {}", directory.display()), e))?;
    Ok(Some(counts))
}

/// At stop, under a service manager with a descriptor store, hands it the
/// state in a memory file, for the next start to load. The error says why
/// it was not handed over, for the stop to end with it.
pub fn hand_over(ctx: &Context, notifier: &Notifier) -> Result<(), String> {
    if !notifier.has_fd_store() {
        return Ok(());
    }
    let started = Instant::now();
    let handed = notify::memory_file("opentracker-state").and_then(|file| {
        let mut out = BufWriter::with_capacity(1 << 16, &file);
        let counts = write_lines(&mut out, ctx, &|| false)?;
        out.flush()?;
        drop(out);
        notifier.store(STORED_NAME, &file)?;
        Ok((counts.unwrap_or_default(), file.metadata()?.len()))
    });
    match handed {
        Ok(((torrents, peers), bytes)) => log::info!(
            "{torrents} torrents and {peers} peers handed to the service manager, which keeps \
             them for a restart, not past a stop ({bytes} bytes in memory, {} ms)",
            started.elapsed().as_millis()
        ),
        Err(e) => return Err(format!("handing the state to the service manager: {e}")),
    }
    Ok(())
}

/// Writes the state's lines to `out`: the counts of torrents and peers
/// written, or `None` when `give_up` said so.
fn write_lines(
    out: &mut impl Write,
    ctx: &Context,
    give_up: &dyn Fn() -> bool,
) -> io::Result<Option<(u64, u64)>> {
    writeln!(out, "{}", state::HEADER)?;
    let (now, unix_now) = ctx.clock();
    let (mut torrents, mut peers) = (0, 0);
    let mut lines = Vec::with_capacity(1 << 12);
    let mut cursor = None;
    loop {
        lines.clear();
        let finished = ctx
            .tracker
            .walk_saved(&mut cursor, SAVE_SLICE, now, |saved| {
                if saved.completed == 0 && saved.peers.is_empty() {
                    return;
                }
                let minute = unix_now.saturating_sub(saved.idle.into()) / 60;
                state::torrent_line(&mut lines, saved.hash, minute, saved.completed);
                for peer in saved.peers {
                    state::peer_line(&mut lines, peer, unix_now);
                }
                torrents += 1;
                peers += saved.peers.len() as u64;
            });
        // Written with no shard locked.
        out.write_all(&lines)?;
        if finished {
            break;
        }
        if give_up() {
            return Ok(None);
        }
    }
    Ok(Some((torrents, peers)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the first pass of a load makes of `bytes`, read as a file.
    fn counted(name: &str, bytes: &[u8]) -> Result<(u64, u64), Unloadable> {
        let path = std::env::temp_dir().join(format!("ot-state-{name}-{}", std::process::id()));
        std::fs::write(&path, bytes).unwrap();
        let file = File::open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        count_lines(Source::Stored(&file), 0)
    }

    #[test]
    fn a_failed_read_is_told_from_a_bad_line() {
        let torrent = format!("{}:1:0\n", "AB".repeat(20));
        assert!(matches!(counted("good", torrent.as_bytes()), Ok((1, 0))));
        // Another encoding is what the file holds, not a failed read.
        let latin1 = [torrent.as_bytes(), b"# caf\xe9\n"].concat();
        match counted("latin1", &latin1) {
            Err(Unloadable::Bad(e)) => assert!(e.ends_with(":2: not UTF-8 text"), "{e}"),
            other => panic!("{other:?}"),
        }
        // Read up to the limit, not whole: a file of one long line could
        // otherwise take all memory.
        let endless = [torrent.as_bytes(), &vec![b'#'; 5 << 20]].concat();
        match counted("endless", &endless) {
            Err(Unloadable::Bad(e)) => assert!(e.ends_with(":2: longer than 4096 bytes"), "{e}"),
            other => panic!("{other:?}"),
        }
        let longest = format!("{torrent}#{}\r\n", "x".repeat(LONGEST_LINE - 1));
        assert!(matches!(counted("longest", longest.as_bytes()), Ok((1, 0))));
        let missing = std::env::temp_dir().join(format!("ot-state-none-{}", std::process::id()));
        let read = |path: &Path| count_lines(Source::File(path), 0);
        assert!(matches!(read(&missing), Err(Unloadable::Missing(_))));
        // A directory opens, and fails at the first read.
        match read(&std::env::temp_dir()) {
            Err(Unloadable::Unreadable(e)) => assert!(e.contains(":1: Is a directory"), "{e}"),
            other => panic!("{other:?}"),
        }
    }
}
