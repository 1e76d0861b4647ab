//! What a request handler may touch: the shared tracker and keys, and the
//! serving thread's own clock, counters and scratch buffers.

use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use super::sliced::{NetworksTurn, StreamPlaces, StreamTicket};
use crate::config::network_list::NetworkList;
use crate::config::passkey_list::PasskeyList;
use crate::config::{ClientIp, Config, Network};
use crate::proto::connection_id::ConnectionIdKey;
use crate::proto::{cluster, InfoHash, SentHash};
use crate::rate_limit::{FullScrapeQuota, RateLimiter};
use crate::stats::{Counters, KernelReadings, WebtorrentGauges};
use crate::tracker::hybrids::HybridLinks;
use crate::tracker::pace::Pace;
use crate::tracker::{self, Announce, Announced, Families, ShardedTracker};

/// The failure reason a client in `access.blocked_clients` is given.
pub const CLIENT_BLOCKED: &str = "This client software is not allowed on this tracker.";
/// The failure reason an HTTP client over `access.rate_limit` is given.
pub const RATE_LIMITED: &str = "Too many requests from your network; try again later.";
/// The failure reason an HTTP client in `access.blocked_networks` is given.
pub const NETWORK_BLOCKED: &str = "Your network is not allowed on this tracker.";

/// The failure reason for an announce or scrape without a passkey, under
/// `access.passkeys`.
pub const PASSKEY_MISSING: &str = "This tracker needs your passkey in its announce URL.";
/// The failure reason for a passkey not in `access.passkeys`.
pub const PASSKEY_UNKNOWN: &str = "Your passkey is not valid on this tracker.";

/// A list shared by the serving threads and replaced on SIGHUP (the
/// blocked networks, the passkeys). Each thread keeps its own handle on the
/// current list and looks at the version once per loop turn or batch, not
/// per request.
pub struct Reloadable<T> {
    version: AtomicU64,
    list: Mutex<Arc<T>>,
}

impl<T: Default> Default for Reloadable<T> {
    fn default() -> Self {
        Reloadable {
            version: AtomicU64::new(0),
            list: Mutex::default(),
        }
    }
}

impl<T> Reloadable<T> {
    pub fn replace(&self, list: T) {
        *self.list.lock().unwrap_or_else(PoisonError::into_inner) = Arc::new(list);
        self.version.fetch_add(1, Ordering::Release);
    }

    pub fn current(&self) -> (u64, Arc<T>) {
        let version = self.version.load(Ordering::Acquire);
        let list = self.list.lock().unwrap_or_else(PoisonError::into_inner);
        (version, Arc::clone(&list))
    }

    /// Brings a thread's `copy` up to date.
    fn refresh(&self, copy: &mut (u64, Arc<T>)) {
        if self.version.load(Ordering::Acquire) != copy.0 {
            *copy = self.current();
        }
    }
}

/// What the request handlers need from the configuration.
#[derive(Clone)]
pub struct Settings {
    pub numwant: u32,
    pub numwant_max: u32,
    pub full_scrape: bool,
    /// `tracker.full_scrape_min_interval`: 0 for no limit.
    pub full_scrape_min_interval: u32,
    /// Tell HTTP clients their address (BEP 24).
    pub external_ip: bool,
    pub stats_path: String,
    pub stats_allowed: Vec<Network>,
    pub proxy: Vec<Network>,
    pub proxy_protocol: Vec<Network>,
    pub blocked_clients: Vec<Vec<u8>>,
    /// `access.blocked_networks` is set (its list may be empty).
    pub has_blocked_networks_list: bool,
    /// `access.passkeys` is set: requests need a passkey.
    pub needs_passkeys: bool,
    /// `access.hybrids` is set (its list may be empty).
    pub has_hybrids_list: bool,
    pub redirect_url: Option<String>,
    pub keep_alive: bool,
    pub keep_alive_timeout: u32,
    pub max_requests: u32,
    pub request_timeout: u32,
    pub max_connections: usize,
    /// `[webtorrent]`, when enabled.
    pub webtorrent: Option<crate::config::Webtorrent>,
    /// The tracker second the clock starts at: late enough that a torrent
    /// or peer loaded from a saved state can have announced before this
    /// process started, and still expire on time (a paced peer may be as
    /// old as the longest peer timeout).
    pub clock_start: u32,
}

impl Settings {
    pub fn from_config(config: &Config) -> Self {
        Settings {
            numwant: config.tracker.numwant,
            numwant_max: config.tracker.numwant_max,
            full_scrape: config.tracker.full_scrape,
            full_scrape_min_interval: config.tracker.full_scrape_min_interval,
            external_ip: config.tracker.external_ip,
            stats_path: config.access.stats_path.clone(),
            stats_allowed: config.access.stats.clone(),
            proxy: config.access.proxy.clone(),
            proxy_protocol: config.access.proxy_protocol.clone(),
            blocked_clients: (config.access.blocked_clients.iter())
                .map(|prefix| prefix.as_bytes().to_vec())
                .collect(),
            has_blocked_networks_list: config.access.blocked_networks.is_some(),
            needs_passkeys: config.access.passkeys.is_some(),
            has_hybrids_list: config.access.hybrids.is_some(),
            redirect_url: config.tracker.redirect_url.clone(),
            clock_start: (config.tracker.torrent_timeout)
                .max(config.tracker.pace().longest_peer_timeout())
                .min(1 << 30),
            keep_alive: config.http.keep_alive,
            keep_alive_timeout: config.http.keep_alive_timeout,
            max_requests: config.http.max_requests_per_connection,
            request_timeout: config.http.request_timeout,
            max_connections: config.http.max_connections as usize,
            webtorrent: (config.webtorrent.enabled).then(|| config.webtorrent.clone()),
        }
    }
}

/// `network` (cut at `prefix` bits) as a log line may name it under
/// `log.client_ip`: whole when that is no finer than a truncated address,
/// else the /24 or /48 holding it; nothing when addresses are hashed.
pub fn network_label(mode: ClientIp, network: IpAddr, prefix: u8) -> Option<String> {
    let coarsest = match network {
        IpAddr::V4(_) => 24,
        IpAddr::V6(_) => 48,
    };
    match mode {
        ClientIp::Full => Some(format!("{network}/{prefix}")),
        ClientIp::Truncated if prefix <= coarsest => Some(format!("{network}/{prefix}")),
        ClientIp::Truncated => Some(
            ClientLabels {
                mode,
                key: Default::default(),
            }
            .label(network),
        ),
        ClientIp::Hashed => None,
    }
}

/// Writes client addresses into log lines (requests, completed downloads)
/// as `log.client_ip` says.
#[derive(Clone)]
pub struct ClientLabels {
    mode: ClientIp,
    key: std::collections::hash_map::RandomState,
}

impl ClientLabels {
    pub fn label(&self, ip: IpAddr) -> String {
        match (self.mode, ip) {
            (ClientIp::Full, ip) => ip.to_string(),
            (ClientIp::Truncated, IpAddr::V4(v4)) => {
                let [a, b, c, _] = v4.octets();
                format!("{a}.{b}.{c}.0/24")
            }
            (ClientIp::Truncated, IpAddr::V6(v6)) => {
                let network = u128::from(v6) & !(u128::MAX >> 48);
                format!("{}/48", std::net::Ipv6Addr::from(network))
            }
            (ClientIp::Hashed, ip) => format!("client-{:016x}", self.key.hash_one(ip)),
        }
    }

    /// Logs one request line from `client`, which came through `via`: a
    /// trusted proxy or balancer, named too so a misbehaving one can be
    /// found, or the client itself.
    pub fn request(&self, client: IpAddr, via: IpAddr, outcome: &str) {
        if client == via {
            log::info!("{} {outcome}", self.label(client));
        } else {
            log::info!("{} via {} {outcome}", self.label(client), self.label(via));
        }
    }
}

/// This tracker's announces, encoded for the cluster until the event loop
/// sends them (every second).
#[derive(Default)]
pub struct Outbox {
    entries: Mutex<Vec<u8>>,
    /// Entries dropped because the outbox was full, since the last send.
    pub overflowed: AtomicU64,
}

impl Outbox {
    /// At most this much waits: about 100,000 announces.
    const LIMIT: usize = 4 << 20;

    fn push(&self, request: &Announce) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() + cluster::MAX_ENTRY > Self::LIMIT {
            self.overflowed.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let entry = cluster::Entry {
            info_hash: request.info_hash,
            peer: request.peer,
            seeding: request.seeding,
            event: request.event,
        };
        cluster::push_entry(&mut entries, &entry);
    }

    /// Takes what is waiting.
    pub fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.entries.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// The pace in force: set by the event loop, read by every thread.
struct SharedPace {
    interval: AtomicU32,
    peer_timeout: AtomicU32,
}

/// What the contexts of all serving threads share.
struct Shared {
    cluster_outbox: Option<Arc<Outbox>>,
    tracker: Arc<ShardedTracker>,
    worker_counters: Arc<Mutex<Counters>>,
    connection_ids: ConnectionIdKey,
    request_log: Option<ClientLabels>,
    completed_log: Option<ClientLabels>,
    blocked_networks: Arc<Reloadable<NetworkList>>,
    passkeys: Arc<Reloadable<PasskeyList>>,
    hybrids: Arc<Reloadable<HybridLinks>>,
    rate_limiter: Option<Arc<RateLimiter>>,
    pace: Arc<SharedPace>,
    started: Instant,
    started_unix: u64,
}

/// Everything a request handler may touch. Each serving thread has its own;
/// the tracker and the keys behind connection ids and hashed log labels are
/// shared, so any thread can answer any client.
pub struct Context {
    pub tracker: Arc<ShardedTracker>,
    pub counters: Counters,
    /// Counts the UDP worker threads have published so far.
    worker_counters: Arc<Mutex<Counters>>,
    pub settings: Settings,
    pub connection_ids: ConnectionIdKey,
    pub request_log: Option<ClientLabels>,
    /// `log.completed`: a line per completed download.
    completed_log: Option<ClientLabels>,
    pub blocked_networks: Arc<Reloadable<NetworkList>>,
    pub passkeys: Arc<Reloadable<PasskeyList>>,
    pub hybrids: Arc<Reloadable<HybridLinks>>,
    /// `access.rate_limit`, shared by every thread.
    rate_limiter: Option<Arc<RateLimiter>>,
    /// `tracker.full_scrape_min_interval`, on the thread that serves HTTP.
    full_scrape_quota: Option<FullScrapeQuota>,
    /// Sliced bodies going out (see [`StreamTicket`]).
    stream_places: Arc<StreamPlaces>,
    /// This tracker's announces waiting for the cluster, with `[cluster]`.
    pub cluster_outbox: Option<Arc<Outbox>>,
    pace: Arc<SharedPace>,
    /// This thread's copies of the blocked networks, the passkeys and the
    /// hybrids, with their versions.
    blocked: (u64, Arc<NetworkList>),
    keys: (u64, Arc<PasskeyList>),
    links: (u64, Arc<HybridLinks>),
    rng: fastrand::Rng,
    started: Instant,
    /// The Unix time at start, read once: the wall clock may be stepped
    /// since, and the start must not move with it.
    pub started_unix: u64,
    /// The thread's clock, refreshed once per loop turn or batch.
    pub instant: Instant,
    /// The tracker's clock: seconds since start, plus
    /// [`Settings::clock_start`].
    pub now: u32,
    pub stopping: bool,
    /// What the kernel dropped, as last read by the event loop (every 10 s).
    pub kernel: KernelReadings,
    pub peers4: Vec<u8>,
    pub peers6: Vec<u8>,
    pub body: Vec<u8>,
    pub scrape_hashes: Vec<SentHash>,
    /// Where connections read into: allocated and zeroed once, not per read.
    pub read_buffer: Box<[u8]>,
    /// Whose turn it is to count `/stats?mode=s24s`.
    pub networks_turn: NetworksTurn,
    /// WebTorrent's connections and swarms, as of the last message.
    pub webtorrent_now: WebtorrentGauges,
    /// TCP connections open (HTTP and WebSocket, as `max_connections`
    /// counts them), the one being answered included.
    pub open_connections: usize,
}

impl Context {
    /// A context on an empty tracker with the default configuration.
    #[cfg(test)]
    pub fn for_tests() -> Context {
        let timeouts = tracker::Timeouts {
            peer: 1800,
            peer_longest: 1800,
            torrent: 1800,
        };
        let tracker = Arc::new(ShardedTracker::new(timeouts, 1, 1));
        Context::new(&Config::default(), tracker)
    }

    pub fn new(config: &Config, tracker: Arc<ShardedTracker>) -> Self {
        // One key, so that a hashed client reads the same in both logs.
        let labels = ClientLabels {
            mode: config.log.client_ip,
            key: Default::default(),
        };
        let request_log = config.log.requests.then(|| labels.clone());
        let completed_log = config.log.completed.then_some(labels);
        let rate_limiter = config
            .access
            .rate()
            .map(|rate| Arc::new(RateLimiter::new(rate, fastrand::u64(..))));
        let cluster_outbox = config.cluster.listen.map(|_| Arc::default());
        Self::with_shared(
            Settings::from_config(config),
            Shared {
                cluster_outbox,
                tracker,
                worker_counters: Arc::default(),
                connection_ids: ConnectionIdKey::new(std::collections::hash_map::RandomState::new()),
                request_log,
                completed_log,
                blocked_networks: Arc::default(),
                passkeys: Arc::default(),
                hybrids: Arc::default(),
                rate_limiter,
                pace: Arc::new(SharedPace {
                    interval: AtomicU32::new(config.tracker.interval),
                    peer_timeout: AtomicU32::new(config.tracker.peer_timeout),
                }),
                started: Instant::now(),
                started_unix: unix_seconds(),
            },
        )
    }

    fn with_shared(settings: Settings, shared: Shared) -> Self {
        let Shared {
            cluster_outbox,
            tracker,
            worker_counters,
            connection_ids,
            request_log,
            completed_log,
            blocked_networks,
            passkeys,
            hybrids,
            rate_limiter,
            pace,
            started,
            started_unix,
        } = shared;
        let now = settings.clock_start;
        let full_scrape_quota = (settings.full_scrape_min_interval > 0)
            .then(|| FullScrapeQuota::new(settings.full_scrape_min_interval));
        Context {
            tracker,
            counters: Counters::default(),
            worker_counters,
            settings,
            connection_ids,
            request_log,
            completed_log,
            blocked: blocked_networks.current(),
            blocked_networks,
            keys: passkeys.current(),
            passkeys,
            links: hybrids.current(),
            hybrids,
            rate_limiter,
            full_scrape_quota,
            stream_places: Arc::default(),
            cluster_outbox,
            pace,
            rng: fastrand::Rng::new(),
            started,
            started_unix,
            instant: started,
            now,
            stopping: false,
            kernel: KernelReadings::default(),
            peers4: Vec::with_capacity(200 * 6),
            peers6: Vec::with_capacity(200 * 18),
            body: Vec::with_capacity(4096),
            scrape_hashes: Vec::new(),
            read_buffer: vec![0; 4096].into_boxed_slice(),
            networks_turn: NetworksTurn::default(),
            webtorrent_now: WebtorrentGauges::default(),
            open_connections: 0,
        }
    }

    /// A context for another serving thread: the same tracker, keys, limits
    /// and clock origin; its own counters (see [`Context::publish_counters`])
    /// and buffers.
    pub fn for_worker(&self) -> Context {
        let mut ctx = Self::with_shared(
            self.settings.clone(),
            Shared {
                cluster_outbox: self.cluster_outbox.clone(),
                tracker: Arc::clone(&self.tracker),
                worker_counters: Arc::clone(&self.worker_counters),
                connection_ids: self.connection_ids.clone(),
                request_log: self.request_log.clone(),
                completed_log: self.completed_log.clone(),
                blocked_networks: Arc::clone(&self.blocked_networks),
                passkeys: Arc::clone(&self.passkeys),
                hybrids: Arc::clone(&self.hybrids),
                rate_limiter: self.rate_limiter.clone(),
                pace: Arc::clone(&self.pace),
                started: self.started,
                started_unix: self.started_unix,
            },
        );
        ctx.begin_turn();
        ctx
    }

    /// Moves this thread's counts to where [`Context::all_counters`] sees them.
    pub fn publish_counters(&mut self) {
        let mut published = self
            .worker_counters
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        published.absorb(&self.counters);
        // The client table keeps its allocation: this runs for every batch.
        let mut clients = std::mem::take(&mut self.counters.clients);
        clients.clear();
        self.counters = Counters {
            clients,
            ..Counters::default()
        };
    }

    /// This thread's counts plus every worker's published ones.
    pub fn all_counters(&self) -> Counters {
        let published = (self.worker_counters.lock()).unwrap_or_else(PoisonError::into_inner);
        self.counters.combined(&published)
    }

    /// Whether `ip`'s network has used up its `access.rate_limit`; if not,
    /// the request is counted against it.
    pub fn over_rate(&mut self, ip: IpAddr) -> bool {
        let Some(limiter) = &self.rate_limiter else {
            return false;
        };
        // Read afresh, not the turn's `instant`: other threads count into
        // the same slots, and a reading one batch old would be behind theirs.
        let now_ns = self.started.elapsed().as_nanos() as u64;
        if limiter.allow(ip, now_ns) {
            return false;
        }
        self.counters.rate_limited += 1;
        self.counters.rate_limited_network = Some(limiter.network(ip));
        true
    }

    /// Under `log.completed`, logs that the peer at `ip` (with `peer_id`,
    /// if it sent one) has completed the torrent `hash`, as upstream's
    /// `WANT_SYSLOGS` build does.
    pub fn log_completed(&self, hash: &InfoHash, peer_id: Option<&[u8; 20]>, ip: IpAddr) {
        let Some(labels) = &self.completed_log else {
            return;
        };
        let peer_id = peer_id.map_or_else(String::new, |id| crate::proto::hex_upper(id));
        log::info!(
            "completed info_hash={} peer_id={peer_id} ip={}",
            hash.to_hex_upper(),
            labels.label(ip)
        );
    }

    /// A place for a body sliced over many turns (streamed or a ranking)
    /// to the client at `ip`, if fewer than [`super::sliced::MAX_STREAMS`]
    /// are going out and fewer than its share to that client.
    pub fn stream_ticket(&self, ip: IpAddr) -> Option<StreamTicket> {
        StreamTicket::take(&self.stream_places, ip)
    }

    /// Under `tracker.full_scrape_min_interval`, the seconds the client at
    /// `ip` must wait for its next full scrape, if it must; else its full
    /// scrape is counted against it.
    pub fn full_scrape_wait(&mut self, ip: IpAddr) -> Option<u32> {
        let quota = self.full_scrape_quota.as_mut()?;
        quota.take(ip, self.now).err()
    }

    /// Whether what `ip` sends starts with a PROXY protocol header
    /// (`access.proxy_protocol`).
    pub fn expects_proxy_header(&self, ip: IpAddr) -> bool {
        let balancers = &self.settings.proxy_protocol;
        !balancers.is_empty() && balancers.iter().any(|net| net.contains(ip))
    }

    /// Why a request carrying `key` is refused under `access.passkeys`, if
    /// it is; counted.
    pub fn passkey_refusal(&mut self, key: Option<&[u8]>) -> Option<&'static str> {
        if !self.settings.needs_passkeys {
            return None;
        }
        let reason = match key {
            None => PASSKEY_MISSING,
            Some(key) if !self.keys.1.contains(key) => PASSKEY_UNKNOWN,
            Some(_) => return None,
        };
        self.counters.passkey_refusals += 1;
        Some(reason)
    }

    /// Whether requests from `via`, for `client` (another behind a trusted
    /// proxy) with `passkey`, pass the network and passkey lists in force.
    /// Nothing is counted: this is for connections admitted before.
    pub fn admits(&self, via: IpAddr, client: IpAddr, passkey: Option<&[u8]>) -> bool {
        let passes_passkeys =
            !self.settings.needs_passkeys || passkey.is_some_and(|k| self.keys.1.contains(k));
        passes_passkeys && !self.blocks_network(via) && !self.blocks_network(client)
    }

    /// Whether any network is blocked (`access.blocked_networks`).
    pub fn blocks_networks(&self) -> bool {
        !self.blocked.1.is_empty()
    }

    /// Whether requests from `ip` are refused.
    pub fn blocks_network(&self, ip: IpAddr) -> bool {
        self.blocks_networks() && self.blocked.1.contains(ip)
    }

    /// Whether the client that sent `peer_id` is refused: the start of a
    /// peer_id names the client software (BEP 20).
    pub fn blocks_client(&self, peer_id: &[u8; 20]) -> bool {
        let blocked = &self.settings.blocked_clients;
        !blocked.is_empty() && blocked.iter().any(|prefix| peer_id.starts_with(prefix))
    }

    /// The hash whose swarm serves requests for `hash`: with
    /// `access.hybrids`, one swarm for both hashes of a hybrid torrent, its
    /// v1 hash's unless the whitelist names only the v2 hash.
    pub fn swarm_of(&self, hash: InfoHash) -> InfoHash {
        let Some((v1, v2)) = self.links.1.pair_of(&hash) else {
            return hash;
        };
        // The access lists judge the pair as one torrent: a blacklist that
        // names either hash refuses both, and a whitelist that names either
        // admits both, into the swarm of the hash it names.
        let tracker = &self.tracker;
        if tracker.blacklists(&v2) {
            return v2;
        }
        if !tracker.blacklists(&v1) && !tracker.allows(&v1) && tracker.allows(&v2) {
            return v2;
        }
        v1
    }

    /// Announces, leaving the sampled peers in `peers4` and `peers6`.
    pub fn announce(&mut self, request: &Announce, families: Families) -> Announced {
        let request = &self.linked(request);
        let announced = self.announce_linked(request, families);
        if announced != Announced::NotAuthorized {
            self.counters.numwants.count(request.numwant);
            if let Some(outbox) = &self.cluster_outbox {
                outbox.push(request);
            }
        }
        announced
    }

    /// Announces without passing it on to the cluster: for announces the
    /// other trackers pass on (linked here, as a tracker without
    /// `access.hybrids` passes a v2 hash on as it came).
    pub fn apply_announce(&mut self, request: &Announce, families: Families) -> Announced {
        let request = &self.linked(request);
        self.announce_linked(request, families)
    }

    /// `request` for the swarm that serves its hash (see [`Self::swarm_of`]).
    fn linked(&self, request: &Announce) -> Announce {
        Announce {
            info_hash: self.swarm_of(request.info_hash),
            ..*request
        }
    }

    fn announce_linked(&mut self, request: &Announce, families: Families) -> Announced {
        self.peers4.clear();
        self.peers6.clear();
        let mut shard = self.tracker.shard(&request.info_hash);
        shard.announce(
            request,
            families,
            self.now,
            &mut self.peers4,
            &mut self.peers6,
        )
    }

    /// The interval to tell a client, jittered around the one in force.
    pub fn interval(&mut self) -> u32 {
        let interval = self.pace.interval.load(Ordering::Relaxed);
        tracker::jittered_interval(&mut self.rng, interval)
    }

    pub fn pace(&self) -> Pace {
        Pace {
            interval: self.pace.interval.load(Ordering::Relaxed),
            peer_timeout: self.pace.peer_timeout.load(Ordering::Relaxed),
        }
    }

    /// Puts `pace` in force: the peer timeout first, so that no peer is
    /// told a longer interval than it is kept for.
    pub fn set_pace(&self, pace: Pace) {
        self.tracker.set_peer_timeout(pace.peer_timeout);
        let shared = &self.pace;
        shared
            .peer_timeout
            .store(pace.peer_timeout, Ordering::Relaxed);
        shared.interval.store(pace.interval, Ordering::Release);
    }

    /// The tracker second and the Unix time, for state dumps.
    pub fn clock(&self) -> (u32, u64) {
        (self.now, unix_seconds())
    }

    pub fn uptime_secs(&self) -> u64 {
        self.instant.duration_since(self.started).as_secs()
    }

    /// Starts a turn of serving: reads the clock, and takes up the blocked
    /// networks, passkeys and hybrid links last reloaded, so that a turn
    /// sees one version of each.
    pub fn begin_turn(&mut self) {
        self.instant = Instant::now();
        let now = self.uptime_secs() + u64::from(self.settings.clock_start);
        self.now = now.min(u64::from(u32::MAX)) as u32;
        self.blocked_networks.refresh(&mut self.blocked);
        self.passkeys.refresh(&mut self.keys);
        self.hybrids.refresh(&mut self.links);
    }
}

/// Seconds since the Unix epoch, by the system clock.
pub fn unix_seconds() -> u64 {
    let unix = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    unix.map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_are_named_no_finer_than_log_client_ip_allows() {
        let v4: IpAddr = "192.0.2.68".parse().unwrap();
        let v6: IpAddr = "2001:db8:1:2::".parse().unwrap();
        let named = |mode, ip, prefix| network_label(mode, ip, prefix);
        assert_eq!(
            named(ClientIp::Full, v4, 32).as_deref(),
            Some("192.0.2.68/32")
        );
        assert_eq!(
            named(ClientIp::Truncated, v4, 32).as_deref(),
            Some("192.0.2.0/24")
        );
        let network: IpAddr = "192.0.0.0".parse().unwrap();
        assert_eq!(
            named(ClientIp::Truncated, network, 16).as_deref(),
            Some("192.0.0.0/16")
        );
        assert_eq!(
            named(ClientIp::Truncated, v6, 64).as_deref(),
            Some("2001:db8:1::/48")
        );
        assert_eq!(named(ClientIp::Hashed, v4, 24), None);
    }

    #[test]
    fn truncated_addresses_are_written_as_networks_are() {
        let labels = ClientLabels {
            mode: ClientIp::Truncated,
            key: Default::default(),
        };
        let label = |ip: &str| labels.label(ip.parse().unwrap());
        assert_eq!(label("192.0.2.68"), "192.0.2.0/24");
        assert_eq!(label("2001:db8:1:2::7"), "2001:db8:1::/48");
        assert_eq!(label("::1"), "::/48");
        assert_eq!(label("2001:0:0:ffff::1"), "2001::/48");
    }
}
