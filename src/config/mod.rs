//! The configuration: one struct whose `Default` is the single source of the
//! built-in defaults (packaging/opentracker.toml restates them, and a test
//! keeps the two equal), read from TOML or from upstream's `opentracker.conf`
//! and then overridden by command-line flags.

pub mod cli;
pub mod legacy;
pub mod network_list;
pub mod passkey_list;
mod spans;
pub mod types;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::rate_limit::Rate;
use crate::tracker::pace::PaceSettings;
use crate::tracker::Limits;

pub use types::{ClientIp, ListenAddr, LogLevel, LogTarget, Network};

/// A configuration file's text. Upstream reads bytes, so a comment in
/// another encoding (Latin-1, say) is let through; anywhere else, text that
/// is not UTF-8 is refused with its line.
/// A serde message with Rust's type names (`expected u32`) put as an
/// operator reads a TOML file.
fn in_plain_words(message: &str) -> String {
    const TYPES: [(&str, &str); 7] = [
        ("u8", "a whole number from 0 to 255"),
        ("u16", "a whole number from 0 to 65535"),
        ("u32", "a whole number from 0 to 4294967295"),
        ("u64", "a whole number from 0 to 18446744073709551615"),
        ("usize", "a whole number from 0 to 18446744073709551615"),
        ("a sequence", "an array"),
        ("path string", "a path (a string)"),
    ];
    match message.rsplit_once(", expected ") {
        Some((head, wanted)) => match TYPES.iter().find(|(rust, _)| *rust == wanted) {
            Some((_, plain)) => format!("{head}, expected {plain}"),
            None => message.to_string(),
        },
        None => message.to_string(),
    }
}

/// The text of the file at `path`, which holds `bytes`.
fn text_of(path: &Path, bytes: Vec<u8>) -> Result<String, ConfigError> {
    let bytes = match String::from_utf8(bytes) {
        Ok(text) => return Ok(text),
        Err(e) => e.into_bytes(),
    };
    let lines = bytes.split(|&b| b == b'\n').enumerate();
    for (index, line) in lines {
        if std::str::from_utf8(line).is_err() && !line.trim_ascii_start().starts_with(b"#") {
            let message = "not UTF-8 text (only a comment may be in another encoding)";
            return Err(ConfigError::at(path, Some(index + 1), message));
        }
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The port upstream listens on when none is given.
pub const DEFAULT_PORT: u16 = 6969;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "a table of settings")]
pub struct Config {
    pub listen: Listen,
    pub access: Access,
    pub tracker: TrackerSection,
    pub http: Http,
    pub log: Log,
    pub cluster: Cluster,
    pub webtorrent: Webtorrent,
    /// Things worth a warning found while reading the file (logged at start).
    #[serde(skip)]
    pub warnings: Vec<String>,
    /// Why the listen addresses cannot all be bound, as
    /// [`Listen::check_bindable`] found: the start stops on it unless
    /// systemd passes the sockets, which leaves these addresses unbound.
    #[serde(skip)]
    pub unbindable: Option<String>,
    /// The files this was read from.
    #[serde(skip)]
    pub files: Vec<ConfigFile>,
}

/// A configuration file as it was read: SIGHUP re-reads only the list
/// files, as upstream's, so an edit to this one is said to need a restart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigFile {
    /// Absolute: the start leaves the directory it was given in.
    pub path: PathBuf,
    digest: u64,
}

impl ConfigFile {
    fn new(path: &Path, bytes: &[u8]) -> ConfigFile {
        ConfigFile {
            path: std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()),
            digest: digest(bytes),
        }
    }

    /// Whether the file holds other bytes now; false when it cannot be
    /// read (after a chroot, or by the user the tracker became).
    pub fn changed(&self) -> bool {
        crate::sys::read_regular_file(&self.path).is_ok_and(|bytes| digest(&bytes) != self.digest)
    }
}

fn digest(bytes: &[u8]) -> u64 {
    use std::hash::{DefaultHasher, Hasher};
    let mut hasher = DefaultHasher::new();
    hasher.write(bytes);
    hasher.finish()
}

/// Listen addresses. `None` everywhere means the default, `[::]:6969` for
/// HTTP and UDP; any list given replaces that default.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "a table of settings")]
pub struct Listen {
    pub tcp_udp: Option<Vec<ListenAddr>>,
    pub tcp: Option<Vec<ListenAddr>>,
    pub udp: Option<Vec<ListenAddr>>,
    /// Threads serving each UDP socket; 0 serves UDP from the event loop.
    pub udp_workers: u32,
}

/// Most threads per UDP socket: far more than any host has cores.
pub const MAX_UDP_WORKERS: u32 = 256;

/// Where each protocol is served, after defaults are applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listeners {
    pub tcp: Vec<SocketAddr>,
    pub udp: Vec<SocketAddr>,
}

impl Listen {
    pub fn is_default(&self) -> bool {
        self.tcp_udp.is_none() && self.tcp.is_none() && self.udp.is_none()
    }

    /// The addresses to bind. The default is the dual-stack wildcard.
    pub fn effective(&self) -> Listeners {
        if self.is_default() {
            let any = ListenAddr::default().0;
            return Listeners {
                tcp: vec![any],
                udp: vec![any],
            };
        }
        let both = self.tcp_udp.iter().flatten();
        Listeners {
            tcp: both
                .clone()
                .chain(self.tcp.iter().flatten())
                .map(|a| a.0)
                .collect(),
            udp: both.chain(self.udp.iter().flatten()).map(|a| a.0).collect(),
        }
    }

    fn push(list: &mut Option<Vec<ListenAddr>>, addr: ListenAddr) {
        list.get_or_insert_with(Vec::new).push(addr);
    }

    pub fn add_tcp(&mut self, addr: ListenAddr) {
        Self::push(&mut self.tcp, addr);
    }

    pub fn add_udp(&mut self, addr: ListenAddr) {
        Self::push(&mut self.udp, addr);
    }

    pub fn add_both(&mut self, addr: ListenAddr) {
        Self::push(&mut self.tcp_udp, addr);
    }

    /// Whether the addresses can all be bound: checked only where they
    /// are, for under systemd's socket activation they are not.
    pub fn check_bindable(&self) -> Result<(), Invalid> {
        // The system picks a free port for each socket it binds to port 0,
        // so HTTP and UDP would not share one.
        if let Some(any) = self.tcp_udp.iter().flatten().find(|a| a.0.port() == 0) {
            return Err(Invalid::new(
                &["listen.tcp_udp"],
                format!(
                    "listen.tcp_udp entry {any} has port 0, which would give HTTP and UDP \
                 different free ports: name a port, or list it in listen.tcp and listen.udp"
                ),
            ));
        }
        let listeners = self.effective();
        for (protocol, key, addresses) in [
            ("TCP", "listen.tcp", &listeners.tcp),
            ("UDP", "listen.udp", &listeners.udp),
        ] {
            if let Some(v4) = wildcard_clash(addresses) {
                let port = v4.port();
                return Err(Invalid::new(
                    &["listen.tcp_udp", key],
                    format!(
                        "listen: [::]:{port} already serves IPv4 over {protocol} (it is opened \
                     dual stack, or as 0.0.0.0:{port} on a host without IPv6), so drop {v4}"
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// An IPv4 wildcard in `addresses` on the port of the IPv6 wildcard there:
/// `[::]` is opened dual stack (and as `0.0.0.0` on a host without IPv6,
/// server::listeners), so binding the second fails. Port 0 picks a free
/// port for each.
fn wildcard_clash(addresses: &[SocketAddr]) -> Option<SocketAddr> {
    let v6_wildcard_on = |port| {
        addresses
            .iter()
            .any(|a| a.ip() == IpAddr::V6(Ipv6Addr::UNSPECIFIED) && a.port() == port)
    };
    addresses.iter().copied().find(|a| {
        a.port() != 0
            && a.ip().to_canonical() == IpAddr::V4(Ipv4Addr::UNSPECIFIED)
            && v6_wildcard_on(a.port())
    })
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "a table of settings")]
pub struct Access {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub whitelist: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blacklist: Option<PathBuf>,
    pub stats: Vec<Network>,
    pub stats_path: String,
    pub proxy: Vec<Network>,
    /// Load balancers whose connections and datagrams start with a PROXY
    /// protocol header naming the client.
    pub proxy_protocol: Vec<Network>,
    /// Prefixes of the peer_id of clients whose announces are refused.
    pub blocked_clients: Vec<String>,
    /// A file of addresses and networks whose requests are refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocked_networks: Option<PathBuf>,
    /// A file of passkeys: with it, announces and scrapes need one of them
    /// in their URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub passkeys: Option<PathBuf>,
    /// A file of hybrid torrents' v1 and v2 hashes: a v2 hash's announces
    /// and scrapes are served from its v1 hash's swarm.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hybrids: Option<PathBuf>,
    /// Reload the lists when their files change, as SIGHUP does.
    pub reload_on_change: bool,
    /// FIFOs whose lines add hashes to the access list and delete them from
    /// it, until the next reload (upstream's dynamic access lists).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fifo_add: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fifo_delete: Option<PathBuf>,
    /// Requests per second one network may send; 0 for no limit, at most
    /// `MAX_RATE_LIMIT`.
    pub rate_limit: u32,
    /// Requests a network may send at once; 0 for ten seconds' worth.
    pub rate_limit_burst: u32,
    /// The prefix lengths that make one network.
    pub rate_limit_ipv4_prefix: u8,
    pub rate_limit_ipv6_prefix: u8,
}

/// The highest `access.rate_limit`: a request per microsecond. The limiter
/// counts in nanoseconds, so a rate near 10^9 would round to no limit.
pub const MAX_RATE_LIMIT: u32 = 1_000_000;

impl Access {
    /// The list files the tracker reads: the access lists, the blocked
    /// networks, the passkeys and the hybrids.
    pub fn list_files(&self) -> impl Iterator<Item = &PathBuf> {
        [
            &self.whitelist,
            &self.blacklist,
            &self.blocked_networks,
            &self.passkeys,
            &self.hybrids,
        ]
        .into_iter()
        .flatten()
    }

    /// The rate limit, when one is set.
    pub fn rate(&self) -> Option<Rate> {
        (self.rate_limit > 0).then(|| Rate {
            per_second: self.rate_limit,
            burst: match self.rate_limit_burst {
                0 => self.rate_limit.saturating_mul(10),
                burst => burst,
            },
            prefixes: (self.rate_limit_ipv4_prefix, self.rate_limit_ipv6_prefix),
        })
    }
}

impl Default for Access {
    fn default() -> Self {
        Access {
            whitelist: None,
            blacklist: None,
            stats: Vec::new(),
            stats_path: "stats".into(),
            proxy: Vec::new(),
            proxy_protocol: Vec::new(),
            blocked_clients: Vec::new(),
            blocked_networks: None,
            passkeys: None,
            hybrids: None,
            reload_on_change: false,
            fifo_add: None,
            fifo_delete: None,
            rate_limit: 0,
            rate_limit_burst: 0,
            rate_limit_ipv4_prefix: 24,
            rate_limit_ipv6_prefix: 48,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "a table of settings")]
pub struct TrackerSection {
    pub user: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rootdir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect_url: Option<String>,
    /// A state dump to load at start (upstream's `-l`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_file: Option<PathBuf>,
    /// Write the whole state, peers included, to `state_file` on stop.
    pub save_state: bool,
    /// With `save_state`, also save every this many seconds (0: only on
    /// stop), so a crash loses at most this much.
    pub save_interval: u32,
    pub interval: u32,
    /// Announces a second the tracker should get at most: the interval
    /// handed out grows with the peers to keep under it (0: fixed interval).
    pub max_announce_rate: u32,
    /// The longest interval pacing hands out.
    pub max_interval: u32,
    pub peer_timeout: u32,
    pub torrent_timeout: u32,
    pub sweep_interval: u32,
    pub numwant: u32,
    pub numwant_max: u32,
    pub full_scrape: bool,
    /// Seconds a client waits between two full scrapes (upstream's
    /// `WANT_MODEST_FULLSCRAPES`, 300); 0 for no limit.
    pub full_scrape_min_interval: u32,
    /// Add "external ip" to HTTP announce replies (BEP 24).
    pub external_ip: bool,
    /// Answer seeders with leechers only.
    pub leechers_only_for_seeders: bool,
    /// The most peers and torrents stored; 0 for no limit.
    pub max_peers: u64,
    pub max_torrents: u64,
    /// The most peers one IPv4 address or IPv6 /64 has in one torrent; 0
    /// for no limit.
    pub max_peers_per_network: u32,
    /// Hand the heap's free pages back to the kernel after the swarms have
    /// shrunk well below their peak.
    pub give_back_memory: bool,
}

impl TrackerSection {
    pub fn pace(&self) -> PaceSettings {
        PaceSettings {
            interval: self.interval,
            longest_interval: self.max_interval,
            peer_timeout: self.peer_timeout,
            max_announce_rate: self.max_announce_rate,
        }
    }

    pub fn limits(&self) -> Limits {
        let or_none = |limit: u64, none| if limit == 0 { none } else { limit };
        Limits {
            peers: or_none(self.max_peers, Limits::NONE.peers),
            torrents: usize::try_from(or_none(self.max_torrents, u64::MAX)).unwrap_or(usize::MAX),
            peers_per_network: match self.max_peers_per_network {
                0 => Limits::NONE.peers_per_network,
                limit => limit as usize,
            },
        }
    }
}

impl Default for TrackerSection {
    fn default() -> Self {
        TrackerSection {
            user: "nobody".into(),
            rootdir: None,
            redirect_url: None,
            state_file: None,
            save_state: false,
            save_interval: 600,
            interval: 1800,
            max_announce_rate: 0,
            max_interval: 3 * 3600,
            peer_timeout: 45 * 60,
            torrent_timeout: 24 * 3600,
            sweep_interval: 60,
            numwant: 50,
            numwant_max: 200,
            full_scrape: true,
            full_scrape_min_interval: 0,
            external_ip: false,
            leechers_only_for_seeders: false,
            max_peers: 0,
            max_torrents: 0,
            max_peers_per_network: 0,
            give_back_memory: true,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "a table of settings")]
pub struct Http {
    pub keep_alive: bool,
    pub keep_alive_timeout: u32,
    pub max_requests_per_connection: u32,
    pub request_timeout: u32,
    pub max_connections: u32,
}

impl Default for Http {
    fn default() -> Self {
        Http {
            keep_alive: true,
            keep_alive_timeout: 15,
            max_requests_per_connection: 1000,
            request_timeout: 30,
            max_connections: 16384,
        }
    }
}

/// WebTorrent signalling: browsers announce over a WebSocket on the HTTP
/// listeners and the tracker relays their WebRTC offers and answers. Off,
/// as upstream has none; then an upgrade request is answered as HTTP.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "a table of settings")]
pub struct Webtorrent {
    pub enabled: bool,
    /// Seconds between a browser's announces.
    pub interval: u32,
    /// A connection that sends nothing for this long is closed, and a peer
    /// that has not announced for this long is forgotten.
    pub idle_timeout: u32,
    /// Offers relayed per announce, at most.
    pub max_offers: u32,
    /// Bytes in one message, at most.
    pub max_message_size: u32,
    /// Torrents one connection may announce, at most.
    pub max_torrents_per_connection: u32,
}

impl Default for Webtorrent {
    fn default() -> Self {
        Webtorrent {
            enabled: false,
            interval: 120,
            idle_timeout: 300,
            max_offers: 10,
            max_message_size: 65536,
            max_torrents_per_connection: 256,
        }
    }
}

/// Trackers that pass each other their announces (see
/// [`crate::proto::cluster`]). Off unless `listen` is set.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "a table of settings")]
pub struct Cluster {
    /// The UDP address other trackers send to.
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "types::peer_addr"
    )]
    pub listen: Option<SocketAddr>,
    /// The other trackers' `listen` addresses.
    #[serde(deserialize_with = "types::peer_addrs")]
    pub peers: Vec<SocketAddr>,
    /// A file holding the key shared by the cluster.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "a table of settings")]
pub struct Log {
    pub target: LogTarget,
    pub level: LogLevel,
    /// `None`: the platform's socket ([`Log::default_syslog_socket`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub syslog_socket: Option<PathBuf>,
    pub requests: bool,
    /// A line per completed download (upstream's `WANT_SYSLOGS`).
    pub completed: bool,
    pub client_ip: ClientIp,
}

impl Default for Log {
    fn default() -> Self {
        Log {
            target: LogTarget::Auto,
            level: LogLevel::Info,
            syslog_socket: None,
            requests: false,
            completed: false,
            client_ip: ClientIp::Truncated,
        }
    }
}

impl Log {
    /// Where syslogd listens: `/var/run/log` on FreeBSD, `/dev/log` elsewhere.
    pub fn default_syslog_socket() -> &'static Path {
        Path::new(if cfg!(target_os = "freebsd") {
            "/var/run/log"
        } else {
            "/dev/log"
        })
    }

    pub fn syslog_socket(&self) -> &Path {
        self.syslog_socket
            .as_deref()
            .unwrap_or(Self::default_syslog_socket())
    }
}

/// A configuration error, with the file and line when there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: Option<PathBuf>,
    pub line: Option<usize>,
    pub message: String,
}

impl ConfigError {
    pub fn new(message: impl Into<String>) -> Self {
        ConfigError {
            file: None,
            line: None,
            message: message.into(),
        }
    }

    pub fn at(file: &Path, line: Option<usize>, message: impl Into<String>) -> Self {
        ConfigError {
            file: Some(file.to_path_buf()),
            line,
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, self.line) {
            (Some(file), Some(line)) => write!(f, "{}:{}: {}", file.display(), line, self.message),
            (Some(file), None) => write!(f, "{}: {}", file.display(), self.message),
            _ => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Settings that do not go together, or a value out of range: the message,
/// and the keys it is about (in TOML's names), so that an error in a file
/// can name the line that set one of them.
#[derive(Debug)]
pub struct Invalid {
    keys: Vec<&'static str>,
    pub message: String,
}

impl Invalid {
    fn new(keys: &[&'static str], message: impl Into<String>) -> Self {
        Invalid {
            keys: keys.to_vec(),
            message: message.into(),
        }
    }

    /// The settings the error is about.
    pub fn keys(&self) -> &[&'static str] {
        &self.keys
    }

    /// The error in the terms of `files` (path and text, read in order):
    /// at the line of the last file that sets one of the keys, with the
    /// names that file's format uses.
    pub fn in_files(self, files: &[(PathBuf, String)]) -> ConfigError {
        let found = files.iter().rev().find_map(|(path, text)| {
            let line = self
                .keys
                .iter()
                .find_map(|key| match legacy::looks_legacy(text) {
                    true => legacy::line_of(text, key),
                    false => spans::line_of(text, key),
                })?;
            Some((path, text, line))
        });
        let (path, text, line) = match (found, files.last()) {
            (Some((path, text, line)), _) => (path, text, Some(line)),
            (None, Some((path, text))) => (path, text, None),
            (None, None) => return ConfigError::new(self.message),
        };
        let message = match legacy::looks_legacy(text) {
            true => legacy::in_upstream_terms(&self.message),
            false => self.message,
        };
        ConfigError::at(path, line, message)
    }
}

impl Config {
    /// Reads a configuration file, TOML or upstream's format (told apart by
    /// the first meaningful line: upstream's lines have no `=` and no `[`).
    /// Reads the files `-f` named, in order, without validating: none
    /// gives the defaults, one may be TOML or upstream's format, and several
    /// must all be in upstream's format, adding up as upstream reads them.
    /// Command-line flags apply on top before [`Config::validate`], so the
    /// texts come back too, for [`Invalid::in_files`] to find the line.
    pub fn read_all(paths: &[PathBuf]) -> Result<(Config, Vec<(PathBuf, String)>), ConfigError> {
        let mut config = Config::default();
        let mut texts = Vec::with_capacity(paths.len());
        for path in paths {
            let bytes = crate::sys::read_file_or_pipe(path)
                .map_err(|e| ConfigError::at(path, None, format!("cannot read: {e}")))?;
            let file = ConfigFile::new(path, &bytes);
            let text = text_of(path, bytes)?;
            if !legacy::looks_legacy(&text) {
                if paths.len() > 1 {
                    return Err(ConfigError::at(
                        path,
                        None,
                        "several -f files must all be in upstream's format, which add up as \
                         upstream's do; a TOML configuration comes alone",
                    ));
                }
                config = Self::parse_toml(&text, path)?;
            } else {
                legacy::apply(&text, path, &mut config)?;
            }
            // Upstream's format may name a file twice: one warning for it.
            if !config.files.iter().any(|read| read.path == file.path) {
                config.files.push(file);
            }
            texts.push((path.clone(), text));
        }
        Ok((config, texts))
    }

    pub fn parse_toml(text: &str, path: &Path) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|e| {
            let message = in_plain_words(e.message().trim());
            let Some(span) = e.span() else {
                return ConfigError::at(path, None, message);
            };
            let message = match spans::key_at(text, span.start) {
                Some(key) => format!("{key}: {message}"),
                None => message,
            };
            ConfigError::at(path, Some(spans::line_at(text, span.start)), message)
        })
    }

    /// Settings that are valid but probably not meant, as warnings.
    pub fn advice(&self) -> Vec<String> {
        let t = &self.tracker;
        // Clients come back up to a tenth later than told (the jitter),
        // and as late as max_interval when the announce rate drives it up.
        let longest = if t.max_announce_rate > 0 {
            t.max_interval.max(t.interval)
        } else {
            t.interval
        };
        let comes_back = u64::from(longest) + u64::from(longest) / 10;
        let mut advice = Vec::new();
        if u64::from(t.peer_timeout) < comes_back {
            advice.push(format!(
                "tracker.peer_timeout ({}) is shorter than the interval clients are told (up \
                 to {comes_back} s): peers are dropped before they announce again",
                t.peer_timeout
            ));
        }
        // The default cannot be told from a chosen value; any other one was chosen.
        if !t.save_state && t.save_interval != TrackerSection::default().save_interval {
            advice.push(format!(
                "tracker.save_interval ({}) does nothing without tracker.save_state = true: \
                 the state is never saved",
                t.save_interval
            ));
        }
        let a = &self.access;
        let unlimited = Access::default();
        if a.rate_limit == 0
            && (a.rate_limit_burst != unlimited.rate_limit_burst
                || a.rate_limit_ipv4_prefix != unlimited.rate_limit_ipv4_prefix
                || a.rate_limit_ipv6_prefix != unlimited.rate_limit_ipv6_prefix)
        {
            advice.push(
                "access.rate_limit_burst and the rate_limit prefixes do nothing without \
                 access.rate_limit: no network is limited"
                    .to_string(),
            );
        }
        advice
    }

    /// Checks what no single value can: combinations and ranges.
    pub fn validate(&self) -> Result<(), Invalid> {
        let t = &self.tracker;
        let nonzero: [(&'static str, u32); 13] = [
            ("tracker.interval", t.interval),
            ("tracker.peer_timeout", t.peer_timeout),
            ("tracker.torrent_timeout", t.torrent_timeout),
            ("tracker.sweep_interval", t.sweep_interval),
            ("tracker.numwant_max", t.numwant_max),
            ("http.keep_alive_timeout", self.http.keep_alive_timeout),
            (
                "http.max_requests_per_connection",
                self.http.max_requests_per_connection,
            ),
            ("http.request_timeout", self.http.request_timeout),
            ("http.max_connections", self.http.max_connections),
            ("webtorrent.interval", self.webtorrent.interval),
            ("webtorrent.idle_timeout", self.webtorrent.idle_timeout),
            ("webtorrent.max_offers", self.webtorrent.max_offers),
            (
                "webtorrent.max_torrents_per_connection",
                self.webtorrent.max_torrents_per_connection,
            ),
        ];
        for (name, value) in nonzero {
            if value == 0 {
                return Err(Invalid::new(&[name], format!("{name} must be at least 1")));
            }
        }
        // Peer time stamps are 14-bit and wrap after a few peer timeouts; the
        // sweep must visit every peer well before that (tracker::clock).
        if u64::from(t.sweep_interval) >= 6 * u64::from(t.peer_timeout) {
            return Err(Invalid::new(
                &["tracker.sweep_interval", "tracker.peer_timeout"],
                format!(
                    "tracker.sweep_interval ({}) must be under 6 times tracker.peer_timeout ({})",
                    t.sweep_interval, t.peer_timeout
                ),
            ));
        }
        if t.max_announce_rate > 0 && t.max_interval < t.interval {
            return Err(Invalid::new(
                &[
                    "tracker.max_interval",
                    "tracker.interval",
                    "tracker.max_announce_rate",
                ],
                format!(
                    "tracker.max_interval ({}) is below tracker.interval ({}); with \
                 tracker.max_announce_rate the interval only grows from there",
                    t.max_interval, t.interval
                ),
            ));
        }
        if t.numwant > t.numwant_max {
            return Err(Invalid::new(
                &["tracker.numwant", "tracker.numwant_max"],
                format!(
                    "tracker.numwant ({}) is above tracker.numwant_max ({})",
                    t.numwant, t.numwant_max
                ),
            ));
        }
        let a = &self.access;
        if (a.fifo_add.is_some() || a.fifo_delete.is_some())
            && a.whitelist.is_none()
            && a.blacklist.is_none()
        {
            return Err(Invalid::new(
                &["access.fifo_add", "access.fifo_delete"],
                "access.fifo_add and access.fifo_delete change an access list: set \
                 access.whitelist or access.blacklist",
            ));
        }
        let wrong_prefixes: Vec<_> = [
            (
                "access.rate_limit_ipv4_prefix",
                a.rate_limit_ipv4_prefix,
                32,
            ),
            (
                "access.rate_limit_ipv6_prefix",
                a.rate_limit_ipv6_prefix,
                128,
            ),
        ]
        .into_iter()
        .filter(|&(_, prefix, bits)| !(1..=bits).contains(&prefix))
        .collect();
        if !wrong_prefixes.is_empty() {
            let keys: Vec<_> = wrong_prefixes.iter().map(|&(name, ..)| name).collect();
            let said: Vec<_> = wrong_prefixes
                .iter()
                .map(|(name, prefix, bits)| format!("{name} ({prefix}) must be 1 to {bits}"))
                .collect();
            return Err(Invalid::new(&keys, said.join("; ")));
        }
        if a.rate_limit > MAX_RATE_LIMIT {
            return Err(Invalid::new(
                &["access.rate_limit"],
                format!(
                    "access.rate_limit ({}) must be at most {MAX_RATE_LIMIT} requests per \
                     second (0 for no limit)",
                    a.rate_limit
                ),
            ));
        }
        let c = &self.cluster;
        match (c.listen, c.peers.is_empty(), &c.key_file) {
            (None, true, None) | (Some(_), false, Some(_)) => {}
            _ => {
                return Err(Invalid::new(
                    &["cluster.listen", "cluster.peers", "cluster.key_file"],
                    "cluster needs all of listen, peers and key_file (or none of them)",
                ))
            }
        }
        for (i, peer) in c.peers.iter().enumerate() {
            // A second entry sends each datagram twice, and the copy is
            // refused as replayed; port 0 cannot be sent to.
            if peer.port() == 0 || c.peers[..i].contains(peer) {
                return Err(Invalid::new(
                    &["cluster.peers"],
                    format!("cluster.peers entry {peer} is listed twice or has port 0"),
                ));
            }
        }
        if let Some(listen) = c.listen {
            if let Some(peer) = c.peers.iter().find(|p| p.is_ipv4() != listen.is_ipv4()) {
                return Err(Invalid::new(
                    &["cluster.peers", "cluster.listen"],
                    format!(
                        "cluster.peers entry {peer} is not of the family of cluster.listen \
                     ({listen}); write IPv4 peers of an IPv6 socket as [::ffff:a.b.c.d]:port"
                    ),
                ));
            }
        }
        if t.save_state && t.state_file.is_none() {
            return Err(Invalid::new(
                &["tracker.save_state"],
                "tracker.save_state needs tracker.state_file: where to save",
            ));
        }
        for prefix in &self.access.blocked_clients {
            let printable = |c: char| c.is_ascii_graphic() || c == ' ';
            if !(1..=20).contains(&prefix.len()) || !prefix.chars().all(printable) {
                return Err(Invalid::new(
                    &["access.blocked_clients"],
                    format!(
                        "access.blocked_clients entry {prefix:?} must be 1 to 20 printable \
                     ASCII characters: the start of a peer_id, such as \"-XL\""
                    ),
                ));
            }
        }
        let stats_path = &self.access.stats_path;
        if stats_path.is_empty()
            || stats_path.len() > crate::proto::http::MAX_NAMED_PATH
            || stats_path.contains(['/', '?', ' '])
        {
            return Err(Invalid::new(
                &["access.stats_path"],
                format!(
                    "access.stats_path {stats_path:?} must be a plain path segment of at most \
                     {} bytes",
                    crate::proto::http::MAX_NAMED_PATH
                ),
            ));
        }
        // Routed as upstream routes, these paths never reach the statistics.
        let unreachable = if stats_path.starts_with('a') {
            Some("paths starting with \"a\" are announces")
        } else if stats_path.starts_with("sc") {
            Some("paths starting with \"sc\" are scrapes")
        } else if stats_path.contains(['&', '=', '@']) {
            Some("a path holding '&', '=' or '@' is not found")
        } else if stats_path == "metrics" {
            Some("/metrics is the Prometheus endpoint")
        } else {
            None
        };
        if let Some(why) = unreachable {
            return Err(Invalid::new(
                &["access.stats_path"],
                format!("access.stats_path {stats_path:?} would never be reached: {why}"),
            ));
        }
        if t.user.is_empty() {
            return Err(Invalid::new(
                &["tracker.user"],
                "tracker.user must not be empty",
            ));
        }
        if t.rootdir
            .as_ref()
            .is_some_and(|dir| dir.as_os_str().is_empty())
        {
            return Err(Invalid::new(
                &["tracker.rootdir"],
                "tracker.rootdir must not be empty: leave it out for none",
            ));
        }
        let w = &self.webtorrent;
        if w.idle_timeout <= w.interval {
            return Err(Invalid::new(
                &["webtorrent.idle_timeout", "webtorrent.interval"],
                format!(
                    "webtorrent.idle_timeout ({}) must be above webtorrent.interval ({}): \
                 browsers that announce on time would be cut off",
                    w.idle_timeout, w.interval
                ),
            ));
        }
        if w.max_message_size < 4096 {
            return Err(Invalid::new(
                &["webtorrent.max_message_size"],
                format!(
                    "webtorrent.max_message_size ({}) must be at least 4096: an offer alone \
                 takes a few kilobytes",
                    w.max_message_size
                ),
            ));
        }
        if self.listen.udp_workers > MAX_UDP_WORKERS {
            return Err(Invalid::new(
                &["listen.udp_workers"],
                format!(
                    "listen.udp_workers ({}) must be at most {MAX_UDP_WORKERS}",
                    self.listen.udp_workers
                ),
            ));
        }
        Ok(())
    }

    /// The effective configuration as TOML, for `--check-config`.
    pub fn to_toml(&self) -> String {
        let mut shown = self.clone();
        let effective = self.listen.effective();
        shown.listen = Listen {
            tcp_udp: None,
            tcp: Some(effective.tcp.into_iter().map(ListenAddr).collect()),
            udp: Some(effective.udp.into_iter().map(ListenAddr).collect()),
            udp_workers: self.listen.udp_workers,
        };
        toml::to_string(&shown).unwrap_or_else(|e| format!("# cannot print configuration: {e}\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_file_states_the_defaults() {
        let sample = include_str!("../../packaging/opentracker.toml");
        let parsed = Config::parse_toml(sample, Path::new("sample")).unwrap();
        let default = Config::default();
        assert_eq!(parsed.listen.effective(), default.listen.effective());
        assert_eq!(parsed.listen.udp_workers, default.listen.udp_workers);
        assert_eq!(
            Config {
                listen: Listen::default(),
                ..parsed
            },
            default
        );
    }

    #[test]
    fn unknown_key_and_bad_value_name_the_line() {
        let err = Config::parse_toml("[tracker]\ninterval = 10\nbogus = 1\n", Path::new("f.toml"))
            .unwrap_err();
        assert_eq!(err.line, Some(3));
        assert!(err.to_string().starts_with("f.toml:3: "), "{err}");
        let err = Config::parse_toml("[listen]\ntcp = [\"not an address\"]\n", Path::new("f"))
            .unwrap_err();
        assert_eq!(err.line, Some(2));
        let err = Config::parse_toml("[log]\nlevel = \"loud\"\n", Path::new("f")).unwrap_err();
        assert_eq!(err.line, Some(2));
    }

    #[test]
    fn errors_between_keys_find_the_line_that_set_one() {
        let upstream = "listen.udp.workers 2\n# listen.udp.workers 3\nlisten.udp.workers 300\n";
        assert_eq!(legacy::line_of(upstream, "listen.udp_workers"), Some(3));
        let invalid = Invalid::new(
            &["tracker.peer_timeout", "listen.udp_workers"],
            "listen.udp_workers",
        );
        let error = invalid.in_files(&[
            ("a".into(), upstream.into()),
            ("b".into(), "tracker.user x\n".into()),
        ]);
        assert_eq!(error.to_string(), "a:3: listen.udp.workers");
    }

    #[test]
    fn a_section_that_is_not_a_table_is_named_in_toml_terms() {
        for text in [
            "tracker = 5\n",
            "[log]\nlevel = \"info\"\n[access]\nstats = [1]\n",
            "http = \"x\"\n",
        ] {
            let err = Config::parse_toml(text, Path::new("f")).unwrap_err();
            assert!(!err.message.contains("Section"), "{text:?}: {err}");
        }
        let err = Config::parse_toml("tracker = 5\n", Path::new("f")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "f:1: tracker: invalid type: integer `5`, expected a table of settings"
        );
    }

    #[test]
    fn a_file_given_twice_is_one_file_read() {
        let dir = std::env::temp_dir().join(format!("ot-twice-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("b.conf"), "tracker.rootdir /\n").unwrap();
        let (config, _) =
            Config::read_all(&[dir.join("b.conf"), dir.join(".").join("b.conf")]).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let paths: Vec<_> = config.files.iter().map(|file| &file.path).collect();
        assert_eq!(paths, [&dir.join("b.conf")]);
    }

    #[test]
    fn listen_lists_replace_the_default() {
        let c = Config::parse_toml("[listen]\ntcp = [\"127.0.0.1:80\"]\n", Path::new("f")).unwrap();
        let l = c.listen.effective();
        assert_eq!(l.tcp, vec!["127.0.0.1:80".parse().unwrap()]);
        assert!(l.udp.is_empty());
    }

    /// What [`Listen::check_bindable`] says of the `[listen]` section `text`.
    fn listening(text: &str) -> Result<(), String> {
        let c = Config::parse_toml(&format!("[listen]\n{text}\n"), Path::new("f")).unwrap();
        c.listen.check_bindable().map_err(|invalid| invalid.message)
    }

    #[test]
    fn both_wildcards_on_one_port_and_protocol_are_refused() {
        assert_eq!(
            listening("tcp_udp = [\"0.0.0.0:26001\", \"[::]:26001\"]"),
            Err(
                "listen: [::]:26001 already serves IPv4 over TCP (it is opened dual stack, or \
                 as 0.0.0.0:26001 on a host without IPv6), so drop 0.0.0.0:26001"
                    .into()
            )
        );
        let udp =
            listening("tcp = [\"[::]:26001\"]\nudp = [\"[::]:26001\", \"[::ffff:0.0.0.0]:26001\"]");
        assert!(
            udp.unwrap_err().contains("over UDP"),
            "mapped, the same wildcard"
        );
        let both = listening("tcp_udp = [\"[::]:26001\"]\ntcp = [\"0.0.0.0:26001\"]");
        assert!(both.unwrap_err().ends_with("so drop 0.0.0.0:26001"));
        for apart in [
            "tcp_udp = [\"0.0.0.0:26001\", \"[::]:26002\"]",
            "tcp = [\"0.0.0.0:26001\"]\nudp = [\"[::]:26001\"]",
            "tcp = [\"0.0.0.0:0\", \"[::]:0\"]",
            "tcp_udp = [\"127.0.0.1:26001\", \"[::1]:26001\"]",
        ] {
            assert_eq!(listening(apart), Ok(()), "{apart}");
        }
    }

    #[test]
    fn port_0_serves_one_protocol_only() {
        assert_eq!(
            listening("tcp_udp = [\"[::1]:0\"]"),
            Err(
                "listen.tcp_udp entry [::1]:0 has port 0, which would give HTTP and UDP \
                 different free ports: name a port, or list it in listen.tcp and listen.udp"
                    .into()
            )
        );
        assert_eq!(
            listening("tcp = [\"[::1]:0\"]\nudp = [\"[::1]:0\"]"),
            Ok(())
        );
    }

    #[test]
    fn validation() {
        let mut c = Config::default();
        c.access.whitelist = Some("a".into());
        c.access.blacklist = Some("b".into());
        assert!(c.validate().is_ok(), "both lists may be set");
        let mut c = Config::default();
        c.tracker.numwant = 500;
        assert!(c.validate().is_err());
        let mut c = Config::default();
        c.tracker.peer_timeout = 10;
        c.tracker.sweep_interval = 70;
        assert!(c.validate().is_err());
        let mut c = Config::default();
        c.tracker.save_state = true;
        assert!(c
            .validate()
            .unwrap_err()
            .message
            .contains("needs tracker.state_file"));
        c.tracker.state_file = Some("/var/lib/opentracker/state".into());
        assert!(c.validate().is_ok());
        let mut c = Config::default();
        assert_eq!(c.access.rate(), None, "no limit by default");
        c.access.rate_limit = 50;
        let rate = c.access.rate().unwrap();
        assert_eq!((rate.burst, rate.prefixes), (500, (24, 48)));
        c.access.rate_limit_burst = 7;
        assert_eq!(c.access.rate().unwrap().burst, 7);
        c.access.rate_limit_ipv4_prefix = 33;
        assert_eq!(
            c.validate().unwrap_err().message,
            "access.rate_limit_ipv4_prefix (33) must be 1 to 32"
        );
        c.access.rate_limit_ipv4_prefix = 32;
        c.access.rate_limit_ipv6_prefix = 0;
        assert_eq!(
            c.validate().unwrap_err().message,
            "access.rate_limit_ipv6_prefix (0) must be 1 to 128",
            "only the wrong prefix is named"
        );
        c.access.rate_limit_ipv4_prefix = 0;
        assert_eq!(
            c.validate().unwrap_err().message,
            "access.rate_limit_ipv4_prefix (0) must be 1 to 32; \
             access.rate_limit_ipv6_prefix (0) must be 1 to 128"
        );
        c.access.rate_limit_ipv4_prefix = 32;
        c.access.rate_limit_ipv6_prefix = 128;
        assert!(c.validate().is_ok());
        // Above a request per microsecond the nanosecond interval rounds
        // to nothing, and 2 000 000 000 would have meant no limit at all.
        c.access.rate_limit = 2_000_000_000;
        assert!(c
            .validate()
            .unwrap_err()
            .message
            .contains("at most 1000000 requests per second"));
        c.access.rate_limit = MAX_RATE_LIMIT;
        assert!(c.validate().is_ok());
        c.cluster.listen = Some("[::]:6970".parse().unwrap());
        c.cluster.peers = vec!["10.0.0.2:6970".parse().unwrap()];
        c.cluster.key_file = Some("key".into());
        assert!(c
            .validate()
            .unwrap_err()
            .message
            .contains("not of the family"));
        c.cluster.peers = vec!["[::ffff:10.0.0.2]:6970".parse().unwrap()];
        assert!(c.validate().is_ok());
        c.cluster.key_file = None;
        assert!(c.validate().unwrap_err().message.contains("needs all of"));
        c.cluster = Cluster::default();
        c.access.fifo_add = Some("add".into());
        assert!(c
            .validate()
            .unwrap_err()
            .message
            .contains("set access.whitelist or"));
        c.access.blacklist = Some("blacklist".into());
        assert!(c.validate().is_ok());
        let mut c = Config::default();
        for refused in ["", "-XL0012-0123456789abc", "-XL\u{e9}", "-XL\n"] {
            c.access.blocked_clients = vec![refused.into()];
            let error = c.validate().unwrap_err().message;
            assert!(error.starts_with("access.blocked_clients entry"), "{error}");
        }
        c.access.blocked_clients = vec!["-XL".into(), "-SD0100-".into(), "exbc".into()];
        assert!(c.validate().is_ok());
        assert!(Config::default().validate().is_ok());
        assert!(Config::parse_toml(&Config::default().to_toml(), Path::new("f")).is_ok());
    }
}
