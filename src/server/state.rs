//! The state file (`-l`, `tracker.state_file`): loaded before the tracker
//! is ready and, with `tracker.save_state`, written when it stops, so a
//! restart keeps the swarms. The format is in [`crate::state`].

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Instant;

use super::Context;
use crate::config::Config;
use crate::proto::InfoHash;
use crate::state::{self, Line};
use crate::tracker::SavedPeer;

/// Calls `visit` with each line of the file at `path` and its number;
/// errors name the file, and the line when there is one.
fn for_each_line(
    path: &Path,
    mut visit: impl FnMut(&str) -> Result<(), String>,
) -> Result<(), String> {
    let file = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let mut line = String::new();
    for number in 1.. {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) => break,
            Ok(_) => visit(line.trim_end_matches(['\n', '\r']))
                .map_err(|e| format!("{}:{number}: {e}", path.display()))?,
            Err(e) => return Err(format!("{}:{number}: {e}", path.display())),
        }
    }
    Ok(())
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
        peers.retain(|p| p.age <= config.tracker.peer_timeout);
        self.timed_out += total - peers.len() as u64;
        let idle = unix_now.saturating_sub(minute * 60);
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

/// Loads `tracker.state_file`: a state dump (download counts and last
/// announces) or a saved state (peers too). Torrents and peers that would
/// have expired by now, or that the access list refuses, are skipped. A
/// file that is unreadable or has a bad line is logged and nothing is
/// loaded: the tracker starts empty, and the file stays as it was.
pub fn load(config: &Config, ctx: &Context) {
    let Some(path) = &config.tracker.state_file else {
        return;
    };
    let started = Instant::now();
    let clock = ctx.clock();
    // A first pass checks every line, so that a bad file loads nothing.
    let mut seen_torrent = false;
    let checked = for_each_line(path, |line| {
        match state::parse_line(line, clock.1)? {
            Line::Torrent(..) => seen_torrent = true,
            Line::Peer(_) if !seen_torrent => {
                return Err("a peer line before any torrent line".into())
            }
            Line::Peer(_) | Line::Comment => {}
        }
        Ok(())
    });
    if let Err(e) = checked {
        let missing = !path.exists();
        if missing && config.tracker.save_state {
            log::info!("state file {}: none yet; starting empty", path.display());
        } else {
            log::warn!("state file {e}; nothing loaded");
        }
        return;
    }
    let mut loaded = Loaded::default();
    let mut torrent = None;
    let mut peers = Vec::new();
    let read = for_each_line(path, |line| {
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
        log::warn!("state file {e}; loaded up to there");
    }
    let Loaded {
        torrents,
        peers,
        expired,
        timed_out,
        refused,
    } = loaded;
    log::info!(
        "state file {}: {torrents} torrents loaded, {peers} peers, in {} ms; {expired} torrents \
         expired or never downloaded, {timed_out} peers timed out, {refused} refused by the \
         access list or a limit, or repeated",
        path.display(),
        started.elapsed().as_millis()
    );
}

/// With `tracker.save_state`, writes every torrent and live peer to
/// `tracker.state_file`: to a `.new` file beside it, synced, then renamed
/// over it, so a crash midway leaves the previous state whole.
pub fn save(config: &Config, ctx: &Context) {
    let (true, Some(path)) = (config.tracker.save_state, &config.tracker.state_file) else {
        return;
    };
    let started = Instant::now();
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".new");
    match write(Path::new(&temporary), path, ctx) {
        Ok((torrents, peers)) => log::info!(
            "state file {}: {torrents} torrents and {peers} peers saved in {} ms",
            path.display(),
            started.elapsed().as_millis()
        ),
        Err(e) => {
            let _ = std::fs::remove_file(&temporary);
            log::error!("state file {}: {e}; not saved", path.display());
        }
    }
}

fn write(temporary: &Path, path: &Path, ctx: &Context) -> io::Result<(u64, u64)> {
    // Peers' addresses are personal data: the owner alone may read them.
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(temporary)?;
    let mut out = BufWriter::with_capacity(1 << 16, file);
    writeln!(out, "{}", state::HEADER)?;
    let (now, unix_now) = ctx.clock();
    let (mut torrents, mut peers) = (0, 0);
    let mut lines = Vec::with_capacity(1 << 12);
    let mut written = Ok(());
    ctx.tracker.visit_saved(now, &mut |saved| {
        if written.is_err() || (saved.completed == 0 && saved.peers.is_empty()) {
            return;
        }
        lines.clear();
        let minute = unix_now.saturating_sub(saved.idle.into()) / 60;
        state::torrent_line(&mut lines, saved.hash, minute, saved.completed);
        for peer in saved.peers {
            state::peer_line(&mut lines, peer, unix_now);
        }
        torrents += 1;
        peers += saved.peers.len() as u64;
        written = out.write_all(&lines);
    });
    written?;
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    std::fs::rename(temporary, path)?;
    Ok((torrents, peers))
}
