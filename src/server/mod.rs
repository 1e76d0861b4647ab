//! The only code that serves the tracker's sockets (`sys` lends it batch
//! system calls, and has sockets of its own for syslog and systemd): one
//! mio event loop serving every listener,
//! or every TCP listener when UDP sockets have worker threads of their own
//! ([`udp_workers`]).
//!
//! Data flows one way: socket → `proto` parse → `tracker` → `proto` encode →
//! socket. Timers ride on the poll timeout: the peer sweep (in slices, so a
//! million torrents never stall the loop), connection deadlines, and the
//! STATUS and WATCHDOG messages to systemd. Because the watchdog is sent from
//! the loop itself, a wedged loop gets the service restarted; so does a UDP
//! worker stuck in one batch, as the loop checks their beats before each ping.

pub mod cluster;
mod context;
pub mod healthcheck;
mod http;
pub mod listeners;
mod reload;
mod respond;
mod shrink;
mod sliced;
mod state;
mod udp;
mod udp_workers;
mod ws;

use std::fs::File;
use std::io;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};
use slab::Slab;

use crate::config::network_list::NetworkList;
use crate::config::passkey_list::PasskeyList;
use crate::config::{Config, TrackerSection};
use crate::stats::ListFiles;
use crate::sys;
use crate::sys::conntrack::Conntrack;
use crate::sys::datagrams::{self, Datagrams};
use crate::sys::fifo::Fifo;
use crate::sys::notify::Notifier;
use crate::sys::privileges::{About, DropError, Outcome};
use crate::sys::signals::{Signal, Signals};
use crate::sys::watch::Watch;
use crate::tracker::access_list::{self, AccessList, Kind};
use crate::tracker::hybrids::HybridLinks;
use crate::tracker::pace::Pacer;
use crate::tracker::{ShardedTracker, Timeouts};
use cluster::Cluster;
use context::{Context, Reloadable};
pub use listeners::Listeners;
pub use state::STORED_NAME as STORED_STATE;

const SIGNALS: Token = Token(0);
/// The two changeset FIFOs and the cluster socket, below the TCP
/// listeners' tokens.
const FIRST_CHANGESET: usize = FIRST_TCP - 2;
const CLUSTER: usize = FIRST_CHANGESET - 1;
/// A reload of the list files finished.
const RELOADED: usize = CLUSTER - 1;
const FIRST_UDP: usize = 1;
const FIRST_TCP: usize = 1 << 16;
const FIRST_CONNECTION: usize = 1 << 17;

/// Datagrams or accepts handled per socket before others get a turn.
const BURST: usize = 256;
/// Torrents swept per loop turn.
const SWEEP_SLICE: usize = 8192;
/// How often list files are looked at with `access.reload_on_change`.
const WATCH_EVERY: Duration = Duration::from_secs(2);
/// How often STATUS= is refreshed.
const STATUS_EVERY: Duration = Duration::from_secs(10);
/// How long a stop waits for responses still being written.
const DRAIN_ON_STOP: Duration = Duration::from_secs(2);

/// The lists read at start, after the privilege drop.
pub struct Lists {
    pub access: AccessList,
    pub blocked_networks: NetworkList,
    pub passkeys: PasskeyList,
    pub hybrids: HybridLinks,
    /// `access.fifo_add` and `access.fifo_delete`, opened.
    pub changesets: Vec<Changeset>,
}

/// A FIFO whose lines put hashes on the access list (`adds`) or take them
/// off, until the next reload (upstream's dynamic access lists).
pub struct Changeset {
    fifo: Fifo,
    adds: bool,
    name: &'static str,
}

/// Reads the access list and the blocked networks, and opens the changeset
/// FIFOs, as configured. Errors name the file.
pub fn load_lists(config: &Config) -> Result<Lists, String> {
    let mut changesets = Vec::new();
    for (name, path, adds) in changeset_fifos(config) {
        let fifo = Fifo::open(path).map_err(|e| format!("{name} {}: {e}", path.display()))?;
        changesets.push(Changeset { fifo, adds, name });
    }
    Ok(Lists {
        access: load_access_list(config)?,
        blocked_networks: load_blocked_networks(config)?,
        passkeys: load_passkeys(config)?,
        hybrids: load_hybrids(config)?,
        changesets,
    })
}

/// The configured changeset FIFOs: name, path and whether it adds.
fn changeset_fifos(config: &Config) -> impl Iterator<Item = (&'static str, &Path, bool)> {
    let a = &config.access;
    [
        ("access.fifo_add", &a.fifo_add, true),
        ("access.fifo_delete", &a.fifo_delete, false),
    ]
    .into_iter()
    .filter_map(|(name, path, adds)| Some((name, path.as_deref()?, adds)))
}

/// Reads the configured access lists, if any: both or neither. Relative
/// paths, and all paths after a chroot, resolve against the current (root)
/// directory.
pub fn load_access_list(config: &Config) -> Result<AccessList, String> {
    let mut list = AccessList::open();
    for (kind, path) in [
        (Kind::Whitelist, &config.access.whitelist),
        (Kind::Blacklist, &config.access.blacklist),
    ] {
        if let Some(path) = path {
            list = list.with(kind, read_list("access list", path, access_list::parse)?);
        }
    }
    Ok(list)
}

/// Does what the start does with files, without starting (`--check-config`):
/// reads the list files, opens the FIFOs (not making a missing one), checks
/// that a state save can be written and reads the state file. In a child
/// process that has dropped privileges as the tracker does (chroot, user),
/// so a file its user cannot read, or a relative path that resolves
/// elsewhere, fails here too. Returns a line per finding, the first saying
/// what the lists hold and any that start `warning:` something the start
/// would only log; or the first error, naming file and line.
pub fn check_files(config: &Config) -> Result<String, String> {
    // The start reads the cluster key before dropping privileges.
    let key = match (&config.cluster.key_file, cluster::read_key(config)?) {
        (Some(path), Some(key)) => Some(format!(
            "cluster.key_file {}: a key of {} bytes",
            path.display(),
            key.len()
        )),
        _ => None,
    };
    let rootdir = config.tracker.rootdir.as_deref();
    let found = sys::privileges::check_as_dropped(
        &config.tracker.user,
        rootdir,
        privilege_error,
        |outcome| files_found(config).map_err(|e| after_drop(e, config, outcome)),
    )?;
    Ok(key
        .into_iter()
        .chain([found])
        .collect::<Vec<_>>()
        .join("\n"))
}

fn files_found(config: &Config) -> Result<String, String> {
    let (summary, refuse_all) = read_lists_summary(config)?;
    let mut found = vec![format!("lists read: {summary}")];
    found.extend(
        refuse_all
            .iter()
            .map(|warning| format!("warning: {warning}")),
    );
    for (name, path, _) in changeset_fifos(config) {
        let what = Fifo::check(path).map_err(|e| format!("{name} {}: {e}", path.display()))?;
        found.push(format!("{name} {}: {what}", path.display()));
    }
    found.extend(state::check(config)?);
    Ok(found.join("\n"))
}

/// What the list files hold, and the warnings of lists that refuse everyone.
fn read_lists_summary(config: &Config) -> Result<(String, Vec<&'static str>), String> {
    let access = load_access_list(config)?.sizes();
    let mut refuse_all = Vec::new();
    if access.refuses_everything() {
        refuse_all.push(reload::EMPTY_WHITELIST);
    }
    let mut lists = access.to_string();
    let blocked = load_blocked_networks(config)?;
    if config.access.blocked_networks.is_some() {
        lists += &format!("; {} blocked networks", blocked.len());
    }
    let passkeys = load_passkeys(config)?;
    if config.access.passkeys.is_some() {
        lists += &format!("; {} passkeys", passkeys.len());
        if passkeys.is_empty() {
            refuse_all.push(reload::EMPTY_PASSKEYS);
        }
    }
    let hybrids = load_hybrids(config)?;
    if config.access.hybrids.is_some() {
        lists += &format!("; {} hybrid torrents", hybrids.len());
    }
    Ok((lists, refuse_all))
}

/// A failed privilege drop, naming the setting (and flag) it was about.
pub fn privilege_error(error: DropError) -> String {
    let DropError { about, message } = error;
    match about {
        About::User => format!("tracker.user (-u): {message}"),
        About::Rootdir => format!("tracker.rootdir (-d): {message}"),
        About::System => message,
    }
}

/// `error`, from reading a file after privileges were dropped, with who
/// read it and where paths resolve: a path inside a chroot, or a file only
/// root may read, puzzles without them.
pub fn after_drop(error: String, config: &Config, outcome: &Outcome) -> String {
    let root = config.tracker.rootdir.as_deref().map(Path::display);
    match (outcome, root) {
        (Outcome::Dropped { user, .. }, Some(root)) => {
            format!("{error} (read as user {user} inside the chroot {root}, where paths resolve)")
        }
        (Outcome::Dropped { user, .. }, None) => {
            format!("{error} (read as user {user}; relative paths resolve against /)")
        }
        (Outcome::Unprivileged { .. }, Some(root)) => {
            format!("{error} (relative paths resolve against {root})")
        }
        (Outcome::Unprivileged { .. }, None) => error,
    }
}

/// Logs the one start-up line: what is served, by whom, from where, and
/// with which lists and limits; and a warning if the lists refuse every
/// torrent.
pub fn log_start(
    config: &Config,
    listeners: &Listeners,
    lists: &Lists,
    cluster: Option<&cluster::Cluster>,
    outcome: &Outcome,
) {
    let identity = match outcome {
        Outcome::Dropped { user, uid, gid } => format!("user {user} ({uid}:{gid})"),
        Outcome::Unprivileged { uid } => format!("uid {uid} (not started as root)"),
    };
    // Without root there is no chroot: the directory is only where
    // relative paths resolve.
    let root = match (outcome, &config.tracker.rootdir) {
        (_, None) => "root /".to_string(),
        (Outcome::Dropped { .. }, Some(dir)) => format!("root {}", dir.display()),
        (Outcome::Unprivileged { .. }, Some(dir)) => {
            format!("working directory {} (no chroot)", dir.display())
        }
    };
    let access = lists.access.sizes();
    if access.refuses_everything() {
        log::warn!("{}", reload::EMPTY_WHITELIST);
    }
    if config.access.passkeys.is_some() && lists.passkeys.is_empty() {
        log::warn!("{}", reload::EMPTY_PASSKEYS);
    }
    let user = &config.tracker.user;
    if matches!(outcome, Outcome::Unprivileged { .. }) && *user != TrackerSection::default().user {
        log::warn!("tracker.user ({user}) is not taken: only a start as root changes user");
    }
    let blocked = match config.access.blocked_networks {
        Some(_) => format!("; {} blocked networks", lists.blocked_networks.len()),
        None => String::new(),
    };
    let passkeys = match config.access.passkeys {
        Some(_) => format!("; {} passkeys", lists.passkeys.len()),
        None => String::new(),
    };
    let hybrids = match config.access.hybrids {
        Some(_) => format!("; {} hybrid torrents", lists.hybrids.len()),
        None => String::new(),
    };
    let rate_limit = match config.access.rate() {
        Some(rate) => format!(
            "; at most {}/s per /{} and /{} network (burst {})",
            rate.per_second, rate.prefixes.0, rate.prefixes.1, rate.burst
        ),
        None => String::new(),
    };
    let balancers = match config.access.proxy_protocol.len() {
        0 => String::new(),
        n => format!("; PROXY protocol from {n} balancer networks"),
    };
    let cluster_line = cluster.map_or(String::new(), |c| format!("; {}", c.describe()));
    let udp_threads = match config.listen.udp_workers {
        0 => String::new(),
        n => format!("; UDP by {n} threads per socket"),
    };
    let webtorrent = if config.webtorrent.enabled && !listeners.tcp.is_empty() {
        "; WebTorrent on the http listeners"
    } else {
        ""
    };
    log::info!(
        "opentracker {} serving {}{udp_threads}{webtorrent}; {identity}; {root}; \
         {access}{blocked}{passkeys}{hybrids}{rate_limit}{balancers}{cluster_line}",
        env!("CARGO_PKG_VERSION"),
        listeners.describe()
    );
}
pub use state::check_usable as check_state_file;

/// Reads `access.blocked_networks`, if set, as the access list is read.
pub fn load_blocked_networks(config: &Config) -> Result<NetworkList, String> {
    match &config.access.blocked_networks {
        Some(path) => read_list("blocked networks", path, NetworkList::parse),
        None => Ok(NetworkList::default()),
    }
}

/// Puts a re-read list (blocked networks, passkeys, hybrids) in force for every
/// serving thread, or logs why it could not be read and keeps the old one;
/// whether it was taken.
fn replace_list<T>(
    shared: &Reloadable<T>,
    read: Result<T, String>,
    what: &str,
    len: fn(&T) -> usize,
) -> bool {
    match read {
        Ok(list) => {
            let entries = len(&list);
            shared.replace(list);
            log::info!("{what} reloaded: {entries} entries");
            true
        }
        Err(e) => {
            let kept = len(&shared.current().1);
            log::error!("{e}; keeping the previous {kept} {what}");
            false
        }
    }
}

/// Reads `access.passkeys`, if set, as the access list is read.
pub fn load_passkeys(config: &Config) -> Result<PasskeyList, String> {
    match &config.access.passkeys {
        Some(path) => read_list("passkeys", path, PasskeyList::parse),
        None => Ok(PasskeyList::default()),
    }
}

/// Reads `access.hybrids`, if set, as the access list is read.
pub fn load_hybrids(config: &Config) -> Result<HybridLinks, String> {
    match &config.access.hybrids {
        Some(path) => read_list("hybrids", path, HybridLinks::parse),
        None => Ok(HybridLinks::default()),
    }
}

/// An error of the event loop's own (epoll, its registrations).
fn event_loop(e: io::Error) -> String {
    format!("event loop: {e}")
}

/// Reads and parses a list file; errors name the list and the file.
/// Read as bytes: each parser decides what must be UTF-8 and names the
/// line that is not.
fn read_list<T, E: std::fmt::Display>(
    what: &str,
    path: &Path,
    parse: impl FnOnce(&[u8]) -> Result<T, E>,
) -> Result<T, String> {
    let file =
        sys::read_regular_file(path).map_err(|e| format!("{what} {}: {e}", path.display()))?;
    parse(&file).map_err(|e| format!("{what} {}: {e}", path.display()))
}

/// What is wrong with the connection-tracking `table`, which dropped
/// `newly_dropped` packets in the last `every` seconds, if anything.
fn conntrack_trouble(table: &Conntrack, newly_dropped: u64, every: u64) -> Option<String> {
    let (entries, limit) = (table.entries, table.limit);
    match (newly_dropped, table.nearly_full()) {
        (0, false) => None,
        (0, true) => Some(format!(
            "the conntrack table is nearly full ({entries} of {limit} entries)"
        )),
        (n, _) => Some(format!(
            "{n} packets dropped by connection tracking in {every} s ({entries} of {limit} entries)"
        )),
    }
}

/// Running totals as of the last status line, which reports what changed.
#[derive(Default)]
struct Marks {
    answered: u64,
    /// When `answered` was read (the loop's start, then each status line).
    answered_at: Option<Instant>,
    /// The rate last measured, for status lines sent between (a reload's).
    requests_per_sec: u64,
    /// What the kernel had dropped before this process read its sockets.
    dropped_at_start: u64,
    dropped: u64,
    unstored: u64,
    /// Packets connection tracking had dropped when this process started,
    /// and as of the last status line.
    conntrack_dropped_at_start: u64,
    conntrack_dropped: u64,
    /// Connection tracking was seen on, and said so.
    conntrack_seen: bool,
    rate_limited: u64,
    udp_unsent: u64,
    tcp_refused_full: u64,
}

/// A TCP connection: HTTP, or a WebSocket it became (WebTorrent).
enum Connection {
    Http(http::Connection),
    WebSocket(ws::Connection),
}

impl Connection {
    fn deadline(&self) -> Instant {
        match self {
            Connection::Http(c) => c.deadline,
            Connection::WebSocket(c) => c.deadline,
        }
    }

    /// Whether an HTTP response is still being written (a WebSocket's
    /// messages are not waited for at a stop: browsers reconnect).
    fn is_writing(&self) -> bool {
        matches!(self, Connection::Http(c) if c.is_writing())
    }
}

/// `events` over `elapsed`, rounded down; none in no time.
fn per_second(events: u64, elapsed: Duration) -> u64 {
    let millis = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
    match millis {
        0 => 0,
        _ => (u128::from(events) * 1000 / u128::from(millis)) as u64,
    }
}

/// The event loop and what it owns.
pub struct Server {
    poll: Poll,
    listeners: Listeners,
    connections: Slab<Connection>,
    ctx: Context,
    signals: Signals,
    notifier: Notifier,
    config: Config,
    /// Sockets that still had work when their burst ran out.
    backlog: Vec<Token>,
    datagrams: Datagrams,
    /// UDP sockets taken out of the poll while their queue stays full.
    udp_parked: Vec<bool>,
    /// Failed accepts since the last status line, and the last error.
    accept_failures: u64,
    accept_error: Option<io::Error>,
    /// An accept failed with connections left waiting: the listeners get
    /// no new event for those, so the next close tries again.
    accept_stalled: bool,
    marks: Marks,
    /// Saves the state now and then (`tracker.save_interval`).
    saver: Option<state::Saver>,
    /// The list files, with `access.reload_on_change`.
    watch: Option<Watch<ListFiles>>,
    reloader: reload::Reloader,
    changesets: Vec<Changeset>,
    /// `[cluster]`: the other trackers, and this one's announces for them.
    cluster: Option<Cluster>,
    pacer: Pacer,
    /// One per UDP worker thread (`listen.udp.workers`).
    worker_beats: Vec<Arc<udp_workers::Beat>>,
    /// `[webtorrent]`, when enabled.
    signalling: Option<ws::Signalling>,
    /// Messages for other WebSocket connections than the one being read.
    relays: Vec<ws::Relay>,
    shrinkage: shrink::Shrinkage,
}

impl Server {
    pub fn new(
        config: Config,
        mut listeners: Listeners,
        lists: Lists,
        mut cluster: Option<Cluster>,
        mut signals: Signals,
        notifier: Notifier,
        stored_state: Option<File>,
    ) -> Result<Server, String> {
        let poll = Poll::new().map_err(event_loop)?;
        let registry = poll.registry();
        let udp_count = listeners.udp.len();
        let workers = config.listen.udp_workers as usize;
        signals.register(registry, SIGNALS).map_err(event_loop)?;
        if workers == 0 {
            for (i, socket) in listeners.udp.iter_mut().enumerate() {
                (registry.register(socket, Token(FIRST_UDP + i), Interest::READABLE))
                    .map_err(event_loop)?;
            }
        }
        for (i, listener) in listeners.tcp.iter_mut().enumerate() {
            (registry.register(listener, Token(FIRST_TCP + i), Interest::READABLE))
                .map_err(event_loop)?;
        }
        let pacer = Pacer::new(config.tracker.pace());
        let timeouts = Timeouts {
            peer: config.tracker.peer_timeout,
            peer_longest: config.tracker.pace().longest_peer_timeout(),
            torrent: config.tracker.torrent_timeout,
        };
        let threads = workers * udp_count;
        // Alone, the event loop needs no sharding. With threads, four shards
        // each keep two from wanting the same lock most of the time.
        let shards = if threads == 0 { 1 } else { 4 * threads };
        let tracker = ShardedTracker::new(timeouts, shards, fastrand::u64(..));
        let Lists {
            access,
            blocked_networks,
            passkeys,
            hybrids,
            mut changesets,
        } = lists;
        for (i, changeset) in changesets.iter_mut().enumerate() {
            let token = Token(FIRST_CHANGESET + i);
            (registry.register(&mut changeset.fifo, token, Interest::READABLE))
                .map_err(event_loop)?;
        }
        if let Some(cluster) = &mut cluster {
            cluster
                .register(registry, Token(CLUSTER))
                .map_err(event_loop)?;
        }
        tracker.set_access_list(access);
        tracker.set_limits(config.tracker.limits());
        tracker.set_leechers_only_for_seeders(config.tracker.leechers_only_for_seeders);
        let mut ctx = Context::new(&config, Arc::new(tracker));
        ctx.blocked_networks.replace(blocked_networks);
        ctx.passkeys.replace(passkeys);
        ctx.hybrids.replace(hybrids);
        ctx.begin_turn();
        let read_at = ctx.clock().1;
        for lists in [
            ListFiles::Access,
            ListFiles::BlockedNetworks,
            ListFiles::Passkeys,
            ListFiles::Hybrids,
        ] {
            ctx.counters.list_loaded(lists, read_at);
        }
        state::load(&config, &ctx, stored_state.as_ref())?;
        if stored_state.is_some() {
            // Loaded: a crash from here on must not bring back that moment.
            notifier.forget(state::STORED_NAME);
        }
        let reloader = reload::Reloader::new(registry, Token(RELOADED)).map_err(event_loop)?;
        let mut server = Server {
            reloader,
            poll,
            listeners,
            connections: Slab::new(),
            ctx,
            signals,
            notifier,
            config,
            backlog: Vec::new(),
            datagrams: Datagrams::default(),
            udp_parked: vec![false; udp_count],
            accept_failures: 0,
            accept_error: None,
            accept_stalled: false,
            marks: Marks::default(),
            shrinkage: shrink::Shrinkage::default(),
            saver: None,
            watch: None,
            changesets,
            cluster,
            pacer,
            worker_beats: Vec::new(),
            signalling: None,
            relays: Vec::new(),
        };
        let torrent_timeout = server.config.tracker.torrent_timeout;
        server.signalling = (server.ctx.settings.webtorrent.clone()).map(|settings| {
            ws::Signalling::new(settings, torrent_timeout, server.config.tracker.limits())
        });
        // Peers loaded from a state file may have been told a longer
        // interval than the configured one.
        server.repace();
        let (config, ctx) = (&server.config, &server.ctx);
        server.saver = state::Saver::start(config, ctx).map_err(|e| e.to_string())?;
        server.watch =
            (config.access.reload_on_change).then(|| Watch::new(reload::watched_files(config)));
        for (i, socket) in server.listeners.udp.iter().enumerate() {
            udp_workers::spawn(socket, i, workers, &server.ctx, &mut server.worker_beats)
                .map_err(|e| e.to_string())?;
        }
        Ok(server)
    }

    /// Paces announces to the peer count (`tracker.max_announce_rate`).
    fn repace(&mut self) {
        let peers = self.ctx.tracker.totals().peers;
        let Some(pace) = self.pacer.update(peers, self.ctx.now) else {
            return;
        };
        self.ctx.set_pace(pace);
        let t = &self.config.tracker;
        log::info!(
            "announce interval now {} s, peers kept {} s without announcing: {peers} peers \
             at tracker.max_announce_rate {} announces/s{}",
            pace.interval,
            pace.peer_timeout,
            t.max_announce_rate,
            if self.pacer.holding() {
                " (a longer timeout, kept for the peers told a longer interval)"
            } else {
                ""
            }
        );
    }

    /// A one-line summary for STATUS= and the logs. What is failing (a
    /// list reload, a state save) is said on every line until it succeeds.
    pub fn status_line(&self) -> String {
        let requests_per_sec = self.marks.requests_per_sec;
        let totals = self.ctx.tracker.totals();
        let counters = self.ctx.all_counters();
        let mut failing = String::new();
        let kept: Vec<&str> = counters.lists_kept().collect();
        if !kept.is_empty() {
            failing = format!(
                "; the last reload failed and kept the previous {} (the log says why)",
                kept.join(", ")
            );
        }
        if counters.state_save_failing() {
            failing.push_str(
                "; the last save of tracker.state_file failed, the previous file stays \
                 (the log says why)",
            );
        }
        let interval = self.ctx.pace().interval;
        let paced = if interval == self.config.tracker.interval {
            String::new()
        } else {
            format!(", interval {interval} s")
        };
        let webtorrent = match &self.signalling {
            Some(signalling) => {
                let now = signalling.gauges();
                format!(
                    ", WebTorrent {} peers on {} connections",
                    now.swarms.peers, now.connections
                )
            }
            None => String::new(),
        };
        format!(
            "{} torrents, {} peers ({} seeders), {requests_per_sec} requests/s{paced}{webtorrent}\
             {failing}",
            totals.torrents, totals.peers, totals.seeders
        )
    }

    /// Sends the status line, with what went wrong since the last one
    /// appended (and logged as a warning).
    fn report_status(&mut self) {
        let counters = self.ctx.all_counters();
        let answered = counters.answered();
        let now = Instant::now();
        // A busy loop may come late: divide by the time that really passed.
        let elapsed =
            (self.marks.answered_at).map_or(STATUS_EVERY, |at| now.saturating_duration_since(at));
        self.marks.requests_per_sec = per_second(answered - self.marks.answered, elapsed);
        // What went wrong is counted over the same time, in whole seconds.
        let every = ((elapsed.as_millis() as u64 + 500) / 1000).max(1);
        (self.marks.answered, self.marks.answered_at) = (answered, Some(now));
        let mut status = self.status_line();
        let dropped = self.udp_dropped();
        self.ctx.kernel.udp_dropped = dropped.saturating_sub(self.marks.dropped_at_start);
        let newly_dropped = dropped.saturating_sub(self.marks.dropped);
        self.marks.dropped = dropped;
        if newly_dropped > 0 {
            let what = format!("{newly_dropped} UDP datagrams dropped by the kernel in {every} s");
            log::warn!(
                "{what}: the receive queue was full; a larger net.core.rmem_max \
                 absorbs bursts, a sustained rate needs more CPU"
            );
            status = format!("{status}; {what}");
        }
        if let Some(cluster) = &self.cluster {
            let dropped = cluster.dropped();
            let newly_dropped = dropped.saturating_sub(self.ctx.kernel.cluster_dropped);
            self.ctx.kernel.cluster_dropped = dropped;
            if newly_dropped > 0 {
                let what = format!(
                    "{newly_dropped} cluster sync datagrams dropped by the kernel in {every} s"
                );
                log::warn!(
                    "{what}: announces of other trackers lost; the receive queue was full \
                     (a larger net.core.rmem_max holds a larger burst)"
                );
                status = format!("{status}; {what}");
            }
        }
        let all_unstored = self.ctx.tracker.totals().unstored + counters.webtorrent.unstored;
        let unstored = all_unstored - self.marks.unstored;
        self.marks.unstored = all_unstored;
        if unstored > 0 {
            let t = &self.config.tracker;
            let what = format!("{unstored} announces answered but not stored in {every} s");
            log::warn!(
                "{what}: the tracker is full (tracker.max_peers = {}, tracker.max_torrents = {}) \
                 or a network reached tracker.max_peers_per_network = {} in a torrent",
                t.max_peers,
                t.max_torrents,
                t.max_peers_per_network
            );
            status = format!("{status}; {what}");
        }
        let unsent = counters.udp_unsent - self.marks.udp_unsent;
        self.marks.udp_unsent = counters.udp_unsent;
        if unsent > 0 {
            let what = format!("{unsent} UDP replies could not be sent in {every} s");
            log::warn!(
                "{what}: the socket refused them (a full send buffer, net.core.wmem_max, \
                 or a firewall rule; the log at level debug names the error)"
            );
            status = format!("{status}; {what}");
        }
        let refused = counters.tcp_refused_full - self.marks.tcp_refused_full;
        self.marks.tcp_refused_full = counters.tcp_refused_full;
        if refused > 0 {
            let what = format!(
                "{refused} HTTP connections closed unanswered in {every} s: \
                 http.max_connections ({}) were open",
                self.ctx.settings.max_connections
            );
            log::warn!(
                "{what}; clients holding connections idle (request_timeout, \
                 keep_alive_timeout) or too low a limit"
            );
            status = format!("{status}; {what}");
        }
        let limited = counters.rate_limited - self.marks.rate_limited;
        self.marks.rate_limited = counters.rate_limited;
        if let (1.., Some(network)) = (limited, counters.rate_limited_network) {
            let a = &self.config.access;
            let prefix = match network {
                IpAddr::V4(_) => a.rate_limit_ipv4_prefix,
                IpAddr::V6(_) => a.rate_limit_ipv6_prefix,
            };
            let what = match context::network_label(self.config.log.client_ip, network, prefix) {
                Some(network) => format!(
                    "{limited} requests over access.rate_limit in {every} s, one from {network}"
                ),
                None => format!("{limited} requests over access.rate_limit in {every} s"),
            };
            log::warn!("{what}");
            status = format!("{status}; {what}");
        }
        if let Some(what) = self.check_conntrack(every) {
            status = format!("{status}; {what}");
        }
        let now = self.ctx.instant;
        if let Some((worker, busy)) = udp_workers::stuck(&self.worker_beats, now, STATUS_EVERY) {
            let what = format!("UDP {worker} stuck in one batch for {} s", busy.as_secs());
            log::error!("{what}; the socket's other workers, if any, serve it meanwhile");
            status = format!("{status}; {what}");
        }
        if let Some(error) = self.accept_error.take() {
            let what = format!(
                "accepting HTTP connections failed {} times in {every} s",
                self.accept_failures
            );
            log::warn!("{what}, last with: {error}");
            status = format!("{status}; {what}");
            self.accept_failures = 0;
        }
        self.notifier.status(&status);
    }

    /// Reads the kernel's connection-tracking table for `/metrics`, says
    /// once that connections are tracked, and returns what went wrong since
    /// the last status line: packets dropped, or a table nearly full.
    fn check_conntrack(&mut self, every: u64) -> Option<String> {
        let mut table = sys::conntrack::read()?;
        let total_dropped = table.dropped;
        table.dropped = total_dropped.saturating_sub(self.marks.conntrack_dropped_at_start);
        self.ctx.kernel.conntrack = Some(table);
        if table.entries > 0 && !self.marks.conntrack_seen {
            self.marks.conntrack_seen = true;
            log::info!(
                "connections are tracked in this network namespace ({} of {} conntrack entries \
                 in use): each UDP client takes an entry, and a full table drops new clients' \
                 packets; exempt the tracker's ports (notrack) on a busy tracker",
                table.entries,
                table.limit
            );
        }
        let newly_dropped = total_dropped.saturating_sub(self.marks.conntrack_dropped);
        self.marks.conntrack_dropped = total_dropped;
        let what = conntrack_trouble(&table, newly_dropped, every)?;
        log::warn!(
            "{what}: exempt the tracker's ports from connection tracking (notrack) or raise \
             net.netfilter.nf_conntrack_max"
        );
        Some(what)
    }

    /// Datagrams the kernel has dropped on all UDP sockets so far.
    fn udp_dropped(&self) -> u64 {
        let sockets = self.listeners.udp.iter();
        sockets.filter_map(datagrams::dropped).map(u64::from).sum()
    }

    /// Serves until SIGTERM or SIGINT. The error is a failed event loop, or
    /// a stop that could not save or hand over the swarms as configured.
    pub fn run(mut self) -> Result<(), String> {
        let mut events = Events::with_capacity(1024);
        let sweep_every = Duration::from_secs(self.config.tracker.sweep_interval.into());
        let watchdog_every = self.notifier.watchdog_interval();
        let mut next_sweep = self.ctx.instant + sweep_every;
        let mut sweeping = false;
        let mut next_status = self.ctx.instant + STATUS_EVERY;
        // Passed-in sockets may have dropped datagrams before this process.
        self.marks.dropped_at_start = self.udp_dropped();
        self.marks.dropped = self.marks.dropped_at_start;
        let conntrack_dropped = sys::conntrack::read().map_or(0, |table| table.dropped);
        self.marks.conntrack_dropped_at_start = conntrack_dropped;
        self.marks.conntrack_dropped = conntrack_dropped;
        // Nothing dropped yet: only a nearly full table is told.
        self.check_conntrack(STATUS_EVERY.as_secs());
        let mut next_watchdog = watchdog_every.map(|every| self.ctx.instant + every);
        let mut next_deadline_check = self.ctx.instant + Duration::from_secs(1);
        let mut next_watch = self.ctx.instant + WATCH_EVERY;
        let mut stop_by: Option<Instant> = None;
        let longest_safe_jump = self.ctx.tracker.longest_safe_jump();
        self.marks.answered_at = Some(Instant::now());
        self.notifier.ready(&self.status_line());
        loop {
            let mut wake = next_sweep.min(next_status).min(next_deadline_check);
            if let Some(at) = next_watchdog {
                wake = wake.min(at);
            }
            if let Some(at) = stop_by {
                wake = wake.min(at);
            }
            let timeout = if sweeping || !self.backlog.is_empty() {
                Duration::ZERO
            } else {
                wake.saturating_duration_since(Instant::now())
            };
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(event_loop(e));
                }
            }
            let before = self.ctx.now;
            self.ctx.begin_turn();
            if self.ctx.now - before >= longest_safe_jump {
                self.forget_peers_after_a_stall(self.ctx.now - before);
            }
            let mut work: Vec<(Token, bool, bool)> = events
                .iter()
                .map(|e| {
                    (
                        e.token(),
                        e.is_readable() || e.is_read_closed() || e.is_error(),
                        e.is_writable(),
                    )
                })
                .collect();
            work.extend(self.backlog.drain(..).map(|token| (token, true, false)));
            for (token, readable, writable) in work {
                match token.0 {
                    0 => {
                        let stop_asked = self.handle_signals();
                        if stop_asked {
                            stop_by = Some(self.stop_by(stop_by));
                        }
                    }
                    n if n >= FIRST_CONNECTION => {
                        self.drive_connection(n - FIRST_CONNECTION, readable)
                    }
                    n if n >= FIRST_TCP => self.accept(n - FIRST_TCP),
                    n if n >= FIRST_CHANGESET => self.read_changeset(n - FIRST_CHANGESET),
                    CLUSTER => {
                        if let Some(cluster) = &mut self.cluster {
                            cluster.receive(&mut self.ctx);
                        }
                    }
                    RELOADED => self.reloaded(),
                    n if readable || writable => self.serve_udp(n - FIRST_UDP),
                    _ => {}
                }
            }
            let now = self.ctx.instant;
            if let Some(deadline) = stop_by {
                if now >= deadline || !self.connections.iter().any(|(_, c)| c.is_writing()) {
                    // The last second's announces, stops among them, would
                    // otherwise stay with this tracker.
                    if let Some(cluster) = &mut self.cluster {
                        cluster.send(&mut self.ctx);
                    }
                    if let Some(saver) = self.saver.take() {
                        saver.stop();
                    }
                    // Both, whatever the first did: either may be the
                    // copy the next start loads.
                    let saved = state::save(&self.config, &mut self.ctx);
                    let handed = state::hand_over(&self.ctx, &self.notifier);
                    let lost: Vec<String> = [saved, handed]
                        .into_iter()
                        .filter_map(Result::err)
                        .collect();
                    return match lost.is_empty() {
                        true => Ok(()),
                        // Not a clean stop: a service manager must hear of it.
                        false => Err(format!(
                            "stopped without keeping the swarms: {}",
                            lost.join("; and ")
                        )),
                    };
                }
                continue;
            }
            if now >= next_sweep && !sweeping {
                self.repace();
                if let Some(signalling) = &mut self.signalling {
                    signalling.sweep(self.ctx.now);
                    self.ctx.webtorrent_now = signalling.gauges();
                }
                sweeping = true;
                next_sweep = now + sweep_every;
                self.shrinkage.observe(self.swarm_entries());
            }
            if sweeping {
                sweeping = !self.ctx.tracker.sweep(self.ctx.now, SWEEP_SLICE);
                if !sweeping {
                    self.give_back_memory_if_shrunk();
                }
            }
            if now >= next_deadline_check {
                if let Some(cluster) = &mut self.cluster {
                    cluster.send(&mut self.ctx);
                }
                self.close_expired();
                next_deadline_check = now + Duration::from_secs(1);
            }
            if now >= next_watch {
                let changed = self.watch.as_mut().map(Watch::changed);
                if let Some(changed) = changed.filter(|lists| !lists.is_empty()) {
                    let names: Vec<_> = changed.iter().map(|lists| lists.name()).collect();
                    log::info!("a list file changed; reloading {}", names.join(", "));
                    self.reload(reload::Lists::of(changed));
                }
                next_watch = now + WATCH_EVERY;
            }
            if now >= next_status {
                self.report_status();
                next_status = now + STATUS_EVERY;
            }
            if let (Some(at), Some(every)) = (next_watchdog, watchdog_every) {
                if now >= at {
                    match udp_workers::stuck(&self.worker_beats, now, every) {
                        // No ping: the manager restarts the service.
                        Some((worker, busy)) => log::error!(
                            "UDP {worker} has been answering one batch for {} s: \
                             holding back the watchdog ping",
                            busy.as_secs()
                        ),
                        None => self.notifier.watchdog(),
                    }
                    next_watchdog = Some(now + every);
                }
            }
        }
    }

    /// After the process was stopped (SIGSTOP, a paused container) for
    /// `stalled` seconds, long enough that some peers' stamps would read as
    /// fresh: every peer has expired, so all go before anything is served.
    /// Peers the UDP threads stored since are dropped too; they announce again.
    fn forget_peers_after_a_stall(&mut self, stalled: u32) {
        log::warn!(
            "the clock jumped {stalled} s since the last turn (was the process stopped?); \
             every peer has expired: dropping them"
        );
        self.ctx.tracker.forget_every_peer(self.ctx.now);
    }

    /// Torrents and peers held: what most of the heap is.
    fn swarm_entries(&self) -> u64 {
        let totals = self.ctx.tracker.totals();
        let webtorrent = self.ctx.webtorrent_now.swarms;
        (totals.torrents + webtorrent.torrents + webtorrent.peers) as u64 + totals.peers
    }

    /// After a sweep pass: hands the heap's free pages back to the kernel
    /// when the swarms have shrunk well below their peak (see [`shrink`]).
    fn give_back_memory_if_shrunk(&mut self) {
        if !self.config.tracker.give_back_memory {
            return;
        }
        let entries = self.swarm_entries();
        let Some(peak) = self.shrinkage.shrunk(entries) else {
            return;
        };
        let before = sys::process::resident_bytes();
        let started = Instant::now();
        let Some(gave_back) = sys::heap::give_back_free_pages() else {
            return;
        };
        let took = started.elapsed();
        let after = sys::process::resident_bytes();
        let mb =
            |bytes: Option<u64>| bytes.map_or("?".into(), |b| format!("{:.1}", b as f64 / 1e6));
        log::info!(
            "torrents and peers fell from {peak} to {entries}: {} (resident {} MB before, {} MB after, {} ms)",
            if gave_back {
                "handed the heap's free pages back to the system"
            } else {
                "the heap had no free pages to hand back"
            },
            mb(before),
            mb(after),
            took.as_millis()
        );
    }

    /// Handles pending signals; returns true when asked to stop.
    fn handle_signals(&mut self) -> bool {
        let mut stop = false;
        for signal in self.signals.pending() {
            match signal {
                Signal::Reload => {
                    self.warn_if_configuration_changed();
                    self.reload(reload::Lists::ALL);
                    if let Some(watch) = &mut self.watch {
                        watch.mark_loaded();
                    }
                }
                Signal::Stop => stop = true,
            }
        }
        stop
    }

    /// SIGHUP re-reads the list files only, as upstream's: an edited
    /// configuration file would otherwise seem taken. Read on the event
    /// loop, unlike the lists: a configuration file is a few kilobytes,
    /// read once per SIGHUP, and only if it is a regular file, which does
    /// not block as a FIFO would.
    fn warn_if_configuration_changed(&self) {
        for file in self.config.files.iter().filter(|file| file.changed()) {
            log::warn!(
                "the configuration file {} changed since the start; only the list files are \
                 re-read on reload, restart to apply the rest",
                file.path.display()
            );
        }
    }

    /// SIGHUP, or a list file changed: re-read the files of `lists`, off
    /// the event loop ([`reload`]); a bad file keeps its old list.
    fn reload(&mut self, lists: reload::Lists) {
        if self.reloader.start(&self.config, &self.ctx, lists) {
            self.notifier.reloading();
        }
    }

    /// A reload finished: count it, and tell the service manager.
    fn reloaded(&mut self) {
        let Some(reload::Finished {
            reloaded,
            again,
            reapply,
        }) = self.reloader.finished()
        else {
            return;
        };
        let now = self.ctx.clock().1;
        for (lists, taken) in reloaded {
            self.ctx.counters.list_reloaded(lists, taken, now);
        }
        if !reapply.is_empty() {
            let tracker = &self.ctx.tracker;
            for &(hash, adds) in &reapply {
                tracker.set_listed(hash, adds);
            }
            log::info!(
                "reload: {} changeset hashes written during it applied again to the new list; \
                 {} until the next reload",
                reapply.len(),
                tracker.access_list()
            );
        }
        // Served from the next request on, not the next loop turn.
        self.ctx.begin_turn();
        self.end_websockets_no_longer_admitted();
        self.notifier.ready(&self.status_line());
        if let Some(lists) = again {
            if self.reloader.start_again(&self.config, &self.ctx, lists) {
                self.notifier.reloading();
            }
        }
    }

    /// A reload that blocks a network or revokes a passkey ends the open
    /// WebSocket connections it would now refuse: a browser announces often
    /// enough never to go idle, and its peers would stay in their swarms.
    fn end_websockets_no_longer_admitted(&mut self) {
        let ctx = &self.ctx;
        let refused: Vec<usize> = (self.connections.iter_mut())
            .filter_map(|(key, c)| match c {
                Connection::WebSocket(ws) => (!ws.still_admitted(ctx)).then_some(key),
                Connection::Http(_) => None,
            })
            .collect();
        if !refused.is_empty() {
            log::info!(
                "reload: {} WebSocket connections ended: their network is blocked now, or \
                 their passkey revoked",
                refused.len()
            );
        }
        for key in refused {
            self.close(key);
        }
    }

    /// Applies the lines written to a changeset FIFO: each hash goes on the
    /// access list or off it until the next reload.
    fn read_changeset(&mut self, index: usize) {
        let Some(changeset) = self.changesets.get_mut(index) else {
            return;
        };
        let (adds, name) = (changeset.adds, changeset.name);
        let (tracker, reloader) = (&self.ctx.tracker, &mut self.reloader);
        let (mut changed, mut unchanged) = (0, 0);
        let read = changeset
            .fifo
            .read_lines(|line| match access_list::parse(line.as_bytes()) {
                Ok(hashes) => {
                    for hash in hashes {
                        reloader.access_list_changed((hash, adds));
                        if tracker.set_listed(hash, adds) {
                            changed += 1;
                        } else {
                            unchanged += 1;
                        }
                    }
                }
                Err(e) => log::warn!("{name}: {line:?} ignored: expected {}", e.expected),
            });
        if let Err(e) = read {
            log::error!("{name}: {e}");
        }
        if changed + unchanged > 0 {
            let verb = if adds { "added" } else { "deleted" };
            log::info!(
                "{name}: {changed} hashes {verb} ({unchanged} already so); {} until the next \
                 reload",
                tracker.access_list()
            );
        }
    }

    /// Stops accepting and reading; responses being written get a moment.
    /// Asked to stop: when to, given when the stop already under way, if
    /// any, was to end.
    fn stop_by(&mut self, under_way: Option<Instant>) -> Instant {
        match under_way {
            None => self.begin_stop(),
            // Asked again (a second Ctrl-C): the state is still saved,
            // nothing else waited for.
            Some(_) => {
                log::info!("asked again to stop: responses in flight are cut short");
                self.ctx.instant
            }
        }
    }

    fn begin_stop(&mut self) -> Instant {
        log::info!("stopping");
        self.notifier.stopping();
        self.ctx.stopping = true;
        for listener in &mut self.listeners.tcp {
            let _ = self.poll.registry().deregister(listener);
        }
        for socket in &mut self.listeners.udp {
            let _ = self.poll.registry().deregister(socket);
        }
        let idle: Vec<usize> = self
            .connections
            .iter()
            .filter(|(_, c)| !c.is_writing())
            .map(|(k, _)| k)
            .collect();
        for key in idle {
            self.close(key);
        }
        self.ctx.instant + DRAIN_ON_STOP
    }

    fn serve_udp(&mut self, index: usize) {
        let drained = self.serve_udp_burst(index);
        // While a socket's queue stays full it is served from the backlog,
        // and out of the poll: a registered socket makes every reply sent
        // from it run epoll's wake-up callback in the kernel.
        let parked = self.udp_parked[index];
        if drained == parked && !self.ctx.stopping {
            let socket = &mut self.listeners.udp[index];
            let registry = self.poll.registry();
            let changed = if drained {
                // Re-registering reports data that came in meanwhile.
                registry.register(socket, Token(FIRST_UDP + index), Interest::READABLE)
            } else {
                registry.deregister(socket)
            };
            match changed {
                Ok(()) => self.udp_parked[index] = !drained,
                Err(e) => log::warn!("udp socket poll registration: {e}"),
            }
        }
        if !drained {
            self.backlog.push(Token(FIRST_UDP + index));
        }
    }

    /// Answers up to a burst of datagrams; returns true when the socket's
    /// queue ran dry before the burst did.
    fn serve_udp_burst(&mut self, index: usize) -> bool {
        let Some(socket) = self.listeners.udp.get(index) else {
            return true;
        };
        let batch = &mut self.datagrams;
        let mut reply = Vec::with_capacity(crate::proto::udp::MAX_REPLY);
        for _ in 0..BURST / datagrams::BATCH {
            match batch.receive(socket) {
                Ok(_) => {
                    udp::answer_batch(&mut self.ctx, batch, &mut reply);
                    self.ctx.counters.udp_unsent += batch.send_queued(socket);
                    if batch.len() < datagrams::BATCH {
                        return true;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    log::debug!("udp receive: {e}");
                    return true;
                }
            }
        }
        false
    }

    fn accept(&mut self, index: usize) {
        for _ in 0..BURST {
            let Some(listener) = self.listeners.tcp.get(index) else {
                return;
            };
            match listener.accept() {
                Ok((stream, peer)) => {
                    self.ctx.counters.tcp_accepts += 1;
                    if self.connections.len() >= self.ctx.settings.max_connections {
                        // Over the cap: closing at once is the cheapest
                        // answer; the status line tells the operator.
                        self.ctx.counters.tcp_refused_full += 1;
                        continue;
                    }
                    let deadline = self.ctx.instant
                        + Duration::from_secs(self.ctx.settings.request_timeout.into());
                    let balancer = self.ctx.expects_proxy_header(peer.ip().to_canonical());
                    let mut connection = http::Connection::new(stream, peer, deadline, balancer);
                    // Most requests are already here: answer before paying
                    // for an epoll registration the connection may not need.
                    self.ctx.open_connections = self.connections.len() + 1;
                    let next = connection.drive(&mut self.ctx);
                    if next == http::Next::Close {
                        continue;
                    }
                    let entry = self.connections.vacant_entry();
                    let key = entry.key();
                    let registered = self.poll.registry().register(
                        &mut connection.stream,
                        Token(FIRST_CONNECTION + key),
                        Interest::READABLE | Interest::WRITABLE,
                    );
                    if registered.is_ok() {
                        entry.insert(Connection::Http(connection));
                        match next {
                            http::Next::Upgrade => self.upgrade(key),
                            http::Next::Yield => self.backlog.push(Token(FIRST_CONNECTION + key)),
                            http::Next::Keep | http::Next::Close => {}
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // Out of file descriptors and the like: the connection
                    // waits in the kernel's queue for the next try. Counted
                    // and told in the status line, as a flood of them would
                    // otherwise flood the log too.
                    self.accept_failures += 1;
                    self.accept_error = Some(e);
                    self.accept_stalled = true;
                    return;
                }
            }
        }
        self.backlog.push(Token(FIRST_TCP + index));
    }

    fn drive_connection(&mut self, key: usize, readable: bool) {
        self.ctx.open_connections = self.connections.len();
        let connection = match self.connections.get_mut(key) {
            Some(Connection::Http(connection)) => connection,
            Some(Connection::WebSocket(_)) => return self.drive_websocket(key),
            None => return,
        };
        if readable {
            connection.on_readable();
        }
        match connection.drive(&mut self.ctx) {
            http::Next::Keep => {}
            http::Next::Yield => self.backlog.push(Token(FIRST_CONNECTION + key)),
            http::Next::Close => self.close(key),
            http::Next::Upgrade => self.upgrade(key),
        }
    }

    /// Turns HTTP connection `key`, whose switching response is out, into
    /// a WebSocket, and reads what it has sent already.
    fn upgrade(&mut self, key: usize) {
        let Some(signalling) = &mut self.signalling else {
            return self.close(key);
        };
        let Some(Connection::Http(http)) = self.connections.try_remove(key) else {
            return;
        };
        let (stream, read, via, admission) = http.into_websocket();
        let websocket_client = admission.client;
        let settings = &signalling.settings;
        let mut websocket =
            ws::Connection::new(stream, read, via, admission, settings, self.ctx.instant);
        // The slab hands out the key just freed, so the socket's token
        // stays right; should it not, the socket is told its new one.
        let entry = self.connections.vacant_entry();
        let new_key = entry.key();
        if new_key != key {
            let token = Token(FIRST_CONNECTION + new_key);
            let interest = Interest::READABLE | Interest::WRITABLE;
            if let Err(e) = (self.poll.registry()).reregister(websocket.stream(), token, interest) {
                log::warn!("webtorrent connection poll registration: {e}");
                return;
            }
        }
        entry.insert(Connection::WebSocket(websocket));
        signalling.opened(new_key, websocket_client);
        self.drive_websocket(new_key);
    }

    /// Answers what WebSocket `key` has sent, delivers what that has for
    /// other connections, and writes what the socket takes.
    fn drive_websocket(&mut self, key: usize) {
        let (Some(signalling), Some(Connection::WebSocket(connection))) =
            (&mut self.signalling, self.connections.get_mut(key))
        else {
            return;
        };
        let mut relays = std::mem::take(&mut self.relays);
        let mut alive = true;
        let mut drained = false;
        // A bounded number of frames per turn, as for every socket: one
        // browser sending without a pause must not hold up everyone else.
        for _ in 0..BURST {
            let text = match connection.read() {
                Ok(ws::Read::Text(text)) => text,
                Ok(ws::Read::Frame) => {
                    signalling.heard(&self.ctx, connection);
                    continue;
                }
                Ok(ws::Read::Drained) => {
                    drained = true;
                    break;
                }
                Err(e) => {
                    alive = false;
                    count_ended(&mut self.ctx, e);
                    break;
                }
            };
            let (reply, outcome) =
                signalling.answer(&mut self.ctx, key, connection, &text, &mut relays);
            if let Some(log) = &self.ctx.request_log {
                let client = connection.client();
                log.request(client, client, outcome);
            }
            if let Some(reply) = reply {
                if let Err(e) = connection.send(reply) {
                    alive = false;
                    count_ended(&mut self.ctx, e);
                    break;
                }
            }
        }
        alive = alive && connection.flush().is_ok();
        self.ctx.webtorrent_now = signalling.gauges();
        let mut dead: Vec<usize> = Vec::new();
        if !alive {
            dead.push(key);
        } else if !drained {
            // Edge-triggered: no new event comes for what is left unread.
            self.backlog.push(Token(FIRST_CONNECTION + key));
        }
        for relay in relays.drain(..) {
            if let Some(Connection::WebSocket(to)) = self.connections.get_mut(relay.to) {
                if let Err(e) = to.send(relay.text) {
                    count_ended(&mut self.ctx, e);
                    dead.push(relay.to);
                }
            }
        }
        self.relays = relays;
        for key in dead {
            self.close(key);
        }
    }

    fn close(&mut self, key: usize) {
        // Closing the socket also takes it out of the epoll set.
        if let Some(mut connection) = self.connections.try_remove(key) {
            if let (Connection::WebSocket(websocket), Some(signalling)) =
                (&mut connection, &mut self.signalling)
            {
                websocket.say_goodbye();
                signalling.closed(key, websocket);
                self.ctx.webtorrent_now = signalling.gauges();
            }
            drop(connection);
            if self.accept_stalled && !self.ctx.stopping {
                self.accept_stalled = false;
                let listeners = self.listeners.tcp.len();
                self.backlog
                    .extend((0..listeners).map(|i| Token(FIRST_TCP + i)));
            }
        }
    }

    fn close_expired(&mut self) {
        let now = self.ctx.instant;
        let expired: Vec<usize> = self
            .connections
            .iter()
            .filter(|(_, c)| c.deadline() <= now)
            .map(|(k, _)| k)
            .collect();
        for key in expired {
            match self.connections.get_mut(key) {
                Some(Connection::Http(c)) if c.is_writing() => {
                    // A reset, not a FIN behind what is queued: the kernel
                    // would otherwise keep a stalled client's megabytes of
                    // send buffer until it read them, or gave up.
                    let _ = socket2::SockRef::from(&c.stream).set_linger(Some(Duration::ZERO));
                }
                Some(Connection::WebSocket(c)) => c.expire(),
                _ => {}
            }
            self.close(key);
        }
    }
}

/// Counts a WebSocket connection that ended, when it was cut off.
fn count_ended(ctx: &mut Context, ended: ws::Ended) {
    if ended == ws::Ended::Dropped {
        ctx.counters.webtorrent.dropped_connections += 1;
    }
}

/// The error of a thread that did not start, saying which (`what`) and,
/// when it is the usual cause, that a limit on tasks was reached: the
/// kernel says only "Resource temporarily unavailable".
fn thread_start_error(what: &str, e: io::Error) -> io::Error {
    let hint = if e.raw_os_error() == Some(libc::EAGAIN) {
        "; a limit on threads or processes was reached (docker's pids_limit, systemd's \
         TasksMax=, ulimit -u): raise it, or start fewer threads (listen.udp_workers)"
    } else {
        ""
    };
    io::Error::new(e.kind(), format!("{what}: {e}{hint}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_per_second_over_the_time_that_passed() {
        assert_eq!(per_second(100, STATUS_EVERY), 10);
        // A status line 20 s late: not twice the rate.
        assert_eq!(per_second(300, Duration::from_secs(30)), 10);
        assert_eq!(per_second(15, Duration::from_millis(1500)), 10);
        assert_eq!(per_second(5, Duration::ZERO), 0);
    }

    #[test]
    fn conntrack_trouble_is_drops_or_a_nearly_full_table() {
        let table = |entries| Conntrack {
            entries,
            limit: 1000,
            dropped: 0,
        };
        assert_eq!(conntrack_trouble(&table(899), 0, 10), None);
        assert_eq!(
            conntrack_trouble(&table(950), 0, 10).as_deref(),
            Some("the conntrack table is nearly full (950 of 1000 entries)")
        );
        assert_eq!(
            conntrack_trouble(&table(1000), 7, 10).as_deref(),
            Some("7 packets dropped by connection tracking in 10 s (1000 of 1000 entries)")
        );
        // A status line that came late counts over the time that passed.
        assert_eq!(
            conntrack_trouble(&table(1000), 7, 23).as_deref(),
            Some("7 packets dropped by connection tracking in 23 s (1000 of 1000 entries)")
        );
    }

    #[test]
    fn a_thread_refused_by_a_task_limit_says_so() {
        let what = "UDP 0.0.0.0:6969: starting worker thread 32 of 32";
        let limited = thread_start_error(what, io::Error::from_raw_os_error(libc::EAGAIN));
        assert_eq!(
            limited.to_string(),
            "UDP 0.0.0.0:6969: starting worker thread 32 of 32: Resource temporarily \
             unavailable (os error 11); a limit on threads or processes was reached \
             (docker's pids_limit, systemd's TasksMax=, ulimit -u): raise it, or start \
             fewer threads (listen.udp_workers)"
        );
        let other = thread_start_error(what, io::Error::from_raw_os_error(libc::ENOMEM));
        assert_eq!(
            other.to_string(),
            format!("{what}: Cannot allocate memory (os error 12)")
        );
    }
}
