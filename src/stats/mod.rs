//! Request counters and upstream opentracker's `/stats` text formats.
//!
//! Output is byte-compatible with upstream where monitoring depends on it
//! (the four-line MRTG blocks, top10, the XML of `everything`), so existing
//! MRTG setups and Prometheus exporters that scrape `/stats` keep working.
//! Two upstream bugs are fixed: `fscr` counts full scrapes (upstream always
//! shows 0) and `herr` prints the counters its labels name.

pub mod clients;
pub mod webtorrent;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::proto::params::{StatsMode, TpbsFormat};
use crate::proto::{InfoHash, SwarmCounts};
use crate::sys::conntrack::Conntrack;
use crate::sys::process::Usage;
use crate::tracker::access_list::Sizes;
use crate::tracker::pace::Pace;
use crate::tracker::{Busiest, ShardedTracker, Tops, Totals};
use clients::ClientCounts;
pub use webtorrent::{WebtorrentCounters, WebtorrentGauges};

/// Upstream's HTTP error counter names, in its order (`mode=everything`
/// shows these), then those of answers upstream never gives (shown only
/// in `/metrics` and `mode=json`).
pub const HTTP_ERROR_NAMES: [&str; HTTP_ERRORS] = [
    "302 Redirect",
    "400 Parse Error",
    "400 Invalid Parameter",
    "400 Invalid Parameter (compact=0)",
    "400 Not Modest",
    "402 Payment Required",
    "403 Access Denied",
    "404 Not found",
    "500 Internal Server Error",
    "426 Upgrade Required",
];

const HTTP_ERRORS: usize = 10;
/// How many of [`HTTP_ERROR_NAMES`] are upstream's.
const UPSTREAM_HTTP_ERRORS: usize = 9;

/// Which HTTP error counter to bump (index into [`HTTP_ERROR_NAMES`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpErrorKind {
    Redirect = 0,
    ParseError = 1,
    InvalidParameter = 2,
    CompactZero = 3,
    /// A full scrape too soon (upstream's label says 400; the answer is 402).
    NotModest = 4,
    /// A streamed or ranked `/stats` mode or a full scrape refused while the
    /// client, or the tracker, has as many going out as it may.
    PaymentRequired = 5,
    AccessDenied = 6,
    NotFound = 7,
    Internal = 8,
    /// A WebSocket handshake of another version than 13.
    UpgradeRequired = 9,
}

/// Event counters since start.
#[derive(Clone, Debug, Default)]
pub struct Counters {
    pub tcp_accepts: u64,
    /// Accepted TCP connections closed at once: `http.max_connections`
    /// were open.
    pub tcp_refused_full: u64,
    pub tcp_announces: u64,
    pub tcp_scrapes: u64,
    pub udp_packets: u64,
    pub udp_connects: u64,
    pub udp_announces: u64,
    pub udp_scrapes: u64,
    pub udp_mismatches: u64,
    /// UDP replies the socket refused to send.
    pub udp_unsent: u64,
    pub blocked_clients: u64,
    pub blocked_networks: u64,
    /// Announces refused for a torrent the access lists do not allow.
    pub not_authorized: u64,
    /// Announces and scrapes refused for a missing or unknown passkey.
    pub passkey_refusals: u64,
    /// Per [`ListFiles`]: re-reads that took effect, re-reads that failed
    /// (the previous list kept), and the Unix second the list in force was
    /// read.
    pub list_reloads: [u64; LIST_FILES],
    pub list_reload_failures: [u64; LIST_FILES],
    pub list_loaded_at: [u64; LIST_FILES],
    /// Per [`ListFiles`]: the last re-read failed, so the previous list is
    /// still in force. Only the event loop's thread re-reads lists.
    pub list_reload_failing: [bool; LIST_FILES],
    pub full_scrapes: u64,
    pub full_scrape_bytes: u64,
    pub http_errors: [u64; HTTP_ERRORS],
    /// Connections and datagrams from a PROXY protocol balancer without a
    /// valid header.
    pub proxy_header_errors: u64,
    /// Cluster sync: datagrams sent and failed, entries applied, datagrams
    /// refused (a bad tag, too old, heard before, damaged).
    pub cluster_sent: u64,
    pub cluster_unsent: u64,
    pub cluster_received: u64,
    pub cluster_refused: u64,
    /// This tracker's announces not passed on: the outbox was full.
    pub cluster_overflowed: u64,
    /// Requests refused for `access.rate_limit`, and the network of one.
    pub rate_limited: u64,
    pub rate_limited_network: Option<std::net::IpAddr>,
    /// Saves of `tracker.state_file` that completed, and that failed.
    pub state_saves: u64,
    pub state_save_failures: u64,
    /// Unix second of the last completed save; 0 before the first.
    pub state_saved_at: u64,
    /// That save's number (see [`SaveEnd`]): the number, not the time, says
    /// which of two threads' saves is the later one, as the wall clock may
    /// have been stepped back between them.
    pub state_saved_number: u64,
    /// How the latest save ended, whichever thread made it.
    pub latest_state_save: SaveEnd,
    /// Announces by client software, counted where `tcp_announces` and
    /// `udp_announces` are.
    pub clients: ClientCounts,
    pub webtorrent: WebtorrentCounters,
    pub numwants: NumwantCounts,
}

/// Announces by the number of peers they were given room for: the numwant
/// asked for, or the default, within the cap (upstream's `WANT_LOG_NUMWANT`,
/// `/stats?mode=numwants`). Above 200 counts as 200.
#[derive(Clone, Debug)]
pub struct NumwantCounts([u64; NumwantCounts::BUCKETS]);

impl Default for NumwantCounts {
    fn default() -> Self {
        NumwantCounts([0; Self::BUCKETS])
    }
}

impl NumwantCounts {
    const BUCKETS: usize = 201;

    pub fn count(&mut self, numwant: usize) {
        self.0[numwant.min(Self::BUCKETS - 1)] += 1;
    }

    fn absorb(&mut self, other: &NumwantCounts) {
        for (total, count) in self.0.iter_mut().zip(other.0) {
            *total += count;
        }
    }
}

/// How a save of `tracker.state_file` ended. Saves are numbered as they
/// end, on the saver thread or, at stop, the event loop's, so the greater
/// of two threads' is the latest.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct SaveEnd {
    number: u64,
    failed: bool,
}

/// The list files SIGHUP re-reads, as counted in [`Counters`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListFiles {
    /// `access.whitelist` and `access.blacklist`, read together.
    Access = 0,
    BlockedNetworks = 1,
    Passkeys = 2,
    Hybrids = 3,
}

const LIST_FILES: usize = 4;

impl ListFiles {
    const NAMES: [&'static str; LIST_FILES] = ["access", "blocked_networks", "passkeys", "hybrids"];

    /// The label of these lists in `/metrics`.
    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

impl Counters {
    /// Notes that `lists` were read at Unix second `now` and are in force.
    pub fn list_loaded(&mut self, lists: ListFiles, now: u64) {
        self.list_loaded_at[lists as usize] = now;
    }

    /// Counts a re-read of `lists` at Unix second `now`, taken or failed.
    pub fn list_reloaded(&mut self, lists: ListFiles, taken: bool, now: u64) {
        if taken {
            self.list_reloads[lists as usize] += 1;
            self.list_loaded(lists, now);
        } else {
            self.list_reload_failures[lists as usize] += 1;
        }
        self.list_reload_failing[lists as usize] = !taken;
    }

    /// The lists whose last re-read failed, kept as they were.
    pub fn lists_kept(&self) -> impl Iterator<Item = &'static str> + '_ {
        (ListFiles::NAMES.iter().zip(self.list_reload_failing))
            .filter_map(|(name, failing)| failing.then_some(*name))
    }

    /// Counts a save of `tracker.state_file` that ended: completed at Unix
    /// second `now`, or failed.
    pub fn state_save_ended(&mut self, saved: bool, now: u64) {
        static ENDED: AtomicU64 = AtomicU64::new(0);
        let number = ENDED.fetch_add(1, Ordering::Relaxed) + 1;
        self.latest_state_save = SaveEnd {
            number,
            failed: !saved,
        };
        if saved {
            self.state_saves += 1;
            self.state_saved_at = now;
            self.state_saved_number = number;
        } else {
            self.state_save_failures += 1;
        }
    }

    /// Whether the latest save of `tracker.state_file` failed.
    pub fn state_save_failing(&self) -> bool {
        self.latest_state_save.failed
    }

    pub fn http_error(&mut self, kind: HttpErrorKind) {
        self.http_errors[kind as usize] += 1;
    }

    /// Adds `other`'s counts to these (a worker thread's, published).
    pub fn absorb(&mut self, other: &Counters) {
        self.absorb_all_but_clients(other);
        self.clients.absorb(&other.clients);
    }

    /// These counts and `other`'s together, for reading (`/metrics`, the
    /// status line): the client breakdown keeps the busiest clients of
    /// both (see [`ClientCounts::combined`]).
    pub fn combined(&self, other: &Counters) -> Counters {
        let mut all = Counters {
            clients: self.clients.combined(&other.clients),
            ..Counters::default()
        };
        all.absorb_all_but_clients(self);
        all.absorb_all_but_clients(other);
        all
    }

    fn absorb_all_but_clients(&mut self, other: &Counters) {
        self.tcp_accepts += other.tcp_accepts;
        self.tcp_refused_full += other.tcp_refused_full;
        self.tcp_announces += other.tcp_announces;
        self.tcp_scrapes += other.tcp_scrapes;
        self.udp_packets += other.udp_packets;
        self.udp_connects += other.udp_connects;
        self.udp_announces += other.udp_announces;
        self.udp_scrapes += other.udp_scrapes;
        self.udp_mismatches += other.udp_mismatches;
        self.udp_unsent += other.udp_unsent;
        self.blocked_clients += other.blocked_clients;
        self.blocked_networks += other.blocked_networks;
        self.not_authorized += other.not_authorized;
        self.passkey_refusals += other.passkey_refusals;
        for i in 0..LIST_FILES {
            self.list_reloads[i] += other.list_reloads[i];
            self.list_reload_failures[i] += other.list_reload_failures[i];
            self.list_loaded_at[i] = self.list_loaded_at[i].max(other.list_loaded_at[i]);
            self.list_reload_failing[i] |= other.list_reload_failing[i];
        }
        self.full_scrapes += other.full_scrapes;
        self.full_scrape_bytes += other.full_scrape_bytes;
        self.proxy_header_errors += other.proxy_header_errors;
        self.cluster_sent += other.cluster_sent;
        self.cluster_unsent += other.cluster_unsent;
        self.cluster_received += other.cluster_received;
        self.cluster_refused += other.cluster_refused;
        self.cluster_overflowed += other.cluster_overflowed;
        self.rate_limited += other.rate_limited;
        self.rate_limited_network = other.rate_limited_network.or(self.rate_limited_network);
        self.state_saves += other.state_saves;
        self.state_save_failures += other.state_save_failures;
        if other.state_saved_number > self.state_saved_number {
            self.state_saved_number = other.state_saved_number;
            self.state_saved_at = other.state_saved_at;
        }
        self.latest_state_save = self.latest_state_save.max(other.latest_state_save);
        for (total, count) in self.http_errors.iter_mut().zip(other.http_errors) {
            *total += count;
        }
        self.webtorrent.absorb(&other.webtorrent);
        self.numwants.absorb(&other.numwants);
    }

    /// Requests answered, for the STATUS line's requests/s.
    pub fn answered(&self) -> u64 {
        self.tcp_announces
            + self.tcp_scrapes
            + self.udp_connects
            + self.udp_announces
            + self.udp_scrapes
            + self.webtorrent.announces
            + self.webtorrent.scrapes
    }
}

/// The version line of `mode=version`.
pub const VERSION: &str = concat!("opentracker ", env!("CARGO_PKG_VERSION"), " (Rust)\n");

fn mrtg(out: &mut String, first: u64, second: u64, uptime: u64, label: &str) {
    let _ = write!(
        out,
        "{first}\n{second}\n{uptime} seconds ({} hours)\n{label}",
        uptime / 3600
    );
}

fn per_second(events: u64, seconds: u64) -> u64 {
    events / seconds.max(1)
}

/// Renders an immediate (non-streamed) stats mode into `out`. Returns false
/// for modes that are streamed ([`StatsMode::Tpbs`]), answered as JSON
/// ([`json`]) or not implemented.
pub fn render(
    mode: StatsMode,
    counters: &Counters,
    tracker: &ShardedTracker,
    uptime: u64,
    out: &mut String,
) -> bool {
    let c = counters;
    let totals = tracker.totals();
    let conns = c.tcp_accepts + c.udp_packets;
    let successes = c.tcp_announces + c.udp_announces + c.udp_connects;
    match mode {
        StatsMode::Peer => {
            let _ = write!(
                out,
                "{}\n{}\nopentracker serving {} torrents\nopentracker",
                totals.peers, totals.seeders, totals.torrents
            );
        }
        StatsMode::Torrents => {
            let _ = write!(
                out,
                "{0}\n0\nopentracker serving {0} torrents\nopentracker",
                totals.torrents
            );
        }
        StatsMode::Conn => {
            let label = format!(
                "opentracker connections, {} conns/s :: {} success/s.",
                per_second(conns, uptime),
                per_second(successes, uptime)
            );
            mrtg(out, conns, successes, uptime, &label);
        }
        StatsMode::Udp4 => {
            let ok = c.udp_announces + c.udp_connects;
            let label = format!(
                "opentracker udp4 stats, {} conns/s :: {} success/s.",
                per_second(c.udp_packets, uptime),
                per_second(ok, uptime)
            );
            mrtg(out, c.udp_packets, ok, uptime, &label);
        }
        StatsMode::Tcp4 => {
            let label = format!(
                "opentracker tcp4 stats, {} conns/s :: {} success/s.",
                per_second(c.tcp_accepts, uptime),
                per_second(c.tcp_announces, uptime)
            );
            mrtg(out, c.tcp_accepts, c.tcp_announces, uptime, &label);
        }
        StatsMode::Scrape => {
            let label = format!(
                "opentracker scrape stats, {} scrape/s (tcp and udp)",
                per_second(c.tcp_scrapes + c.udp_scrapes, uptime)
            );
            mrtg(out, c.tcp_scrapes, c.udp_scrapes, uptime, &label);
        }
        StatsMode::FullScrape => {
            let label = format!(
                "opentracker full scrape stats, {} conns/s :: {} bytes/s.",
                per_second(c.full_scrapes, uptime),
                per_second(c.full_scrape_bytes, uptime)
            );
            mrtg(
                out,
                c.full_scrapes * 1000,
                c.full_scrape_bytes,
                uptime,
                &label,
            );
        }
        StatsMode::Completed => {
            let label = format!(
                "opentracker, {} completed/h.",
                per_second(totals.completed, uptime / 3600)
            );
            mrtg(out, totals.completed, 0, uptime, &label);
        }
        StatsMode::Syncs => {
            let label = format!(
                "opentracker connections, {} conns/s :: {} success/s.",
                per_second(conns, uptime),
                per_second(successes, uptime)
            );
            // Upstream's live sync counted the peers other trackers sent;
            // [cluster], which replaces it, counts the announces.
            mrtg(out, c.cluster_received, 0, uptime, &label);
        }
        StatsMode::HttpErrors => {
            let e = &c.http_errors;
            let _ = write!(
                out,
                "302 RED {}\n400 ... {}\n400 PAR {}\n400 COM {}\n403 IP  {}\n404 INV {}\n500 SRV {}\n",
                e[0], e[1], e[2], e[3], e[6], e[7], e[8]
            );
        }
        StatsMode::Renew => {
            for (minutes, count) in tracker.renew_histogram().iter().enumerate() {
                let _ = writeln!(out, "{minutes:02} {count}");
            }
        }
        StatsMode::Version => out.push_str(VERSION),
        StatsMode::Clients => clients::render(out, &c.clients),
        StatsMode::Numwants => {
            for (numwant, count) in c.numwants.0.iter().enumerate() {
                let _ = writeln!(out, "{numwant:03} => {count}");
            }
        }
        StatsMode::Everything => everything(out, c, tracker, &totals, uptime),
        // `busy` (upstream's, never implemented there: it answers 500) is
        // refused; JSON and the modes that walk every torrent a slice per
        // turn are answered elsewhere.
        StatsMode::Busy
        | StatsMode::Json
        | StatsMode::Tpbs(_)
        | StatsMode::StateDump
        | StatsMode::Top10
        | StatsMode::Top100
        | StatsMode::BusyNetworks => return false,
    }
    true
}

/// `top10` and `top100`, from lists gathered over every torrent.
pub fn top(out: &mut String, tops: &Tops) {
    let n = tops.n();
    for (title, list) in ["peers", "seeds", "leechers"].iter().zip(tops.lists()) {
        let _ = writeln!(out, "Top {n} torrents by {title}:");
        for (count, hash) in list {
            let _ = writeln!(out, "\t{count}\t{}", hash.to_hex_upper());
        }
    }
}

/// Networks listed per prefix length, as upstream.
pub const BUSY_NETWORKS: usize = 128;

/// Upstream's `s24s` layout: a heading per prefix length, then one
/// `PEERS: NETWORK` line per network, most peers first, and a blank line.
/// Upstream prints IPv4 networks in IPv6 notation (`7f00::`); these are in
/// their own family's notation, and IPv6 peers get /64 and /48 sections.
pub fn busy_networks(out: &mut String, busiest: &[Busiest]) {
    for section in busiest {
        let _ = writeln!(out, "Networks, limit /{}:", section.prefix);
        for (peers, network) in &section.networks {
            let _ = writeln!(out, "{peers:08}: {network}");
        }
        out.push('\n');
    }
}

/// `mode=everything`'s `tracker_id`: random, and the same for the life of
/// the process, as upstream's (`random()` at start, so below 2^31).
fn tracker_id() -> u32 {
    static TRACKER_ID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *TRACKER_ID.get_or_init(|| fastrand::u32(..1 << 31))
}

fn everything(
    out: &mut String,
    c: &Counters,
    tracker: &ShardedTracker,
    totals: &Totals,
    uptime: u64,
) {
    let _ = write!(
        out,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<stats>\n  <tracker_id>{}</tracker_id>\n  <version>\n{}  </version>\n  <uptime>{uptime}</uptime>\n  <torrents>\n    <count_mutex>{t}</count_mutex>\n    <count_iterator>{t}</count_iterator>\n  </torrents>\n  <peers>\n    <count>{}</count>\n  </peers>\n  <seeds>\n    <count>{}</count>\n  </seeds>\n  <completed>\n    <count>{}</count>\n  </completed>\n",
        tracker_id(),
        VERSION,
        totals.peers,
        totals.seeders,
        totals.completed,
        t = totals.torrents
    );
    let _ = write!(
        out,
        "  <connections>\n    <tcp>\n      <accept>{}</accept>\n      <announce>{}</announce>\n      <scrape>{}</scrape>\n    </tcp>\n    <udp>\n      <overall>{}</overall>\n      <connect>{}</connect>\n      <announce>{}</announce>\n      <scrape>{}</scrape>\n      <missmatch>{}</missmatch>\n    </udp>\n    <livesync>\n      <count>{}</count>\n    </livesync>\n  </connections>\n  <debug>\n    <renew>\n",
        c.tcp_accepts, c.tcp_announces, c.tcp_scrapes, c.udp_packets, c.udp_connects, c.udp_announces, c.udp_scrapes, c.udp_mismatches, c.cluster_received
    );
    for (minutes, count) in tracker.renew_histogram().iter().enumerate() {
        let _ = writeln!(
            out,
            "      <count interval=\"{minutes:02}\">{count}</count>"
        );
    }
    out.push_str("    </renew>\n    <http_error>\n");
    // Upstream's layout: its counters only.
    let upstream = HTTP_ERROR_NAMES.iter().zip(c.http_errors);
    for (name, count) in upstream.take(UPSTREAM_HTTP_ERRORS) {
        let _ = writeln!(out, "      <count code=\"{name}\">{count}</count>");
    }
    out.push_str("    </http_error>\n    <mutex_stall>\n      <count>0</count>\n    </mutex_stall>\n  </debug>\n</stats>");
}

/// Percent-encodes `bytes` as libowfat's `fmt_urlencoded`, which upstream's
/// `tpbs&format=url` uses: letters, digits and `$/.=~-_` as they are, any
/// other byte as `%` and two lower-case hex digits.
fn push_urlencoded(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for &byte in bytes {
        if byte.is_ascii_alphanumeric() || b"$/.=~-_".contains(&byte) {
            out.push(byte);
        } else {
            let (high, low) = (HEX[usize::from(byte >> 4)], HEX[usize::from(byte & 15)]);
            out.extend_from_slice(&[b'%', high, low]);
        }
    }
}

/// One torrent's line of `mode=tpbs` in the given format.
pub fn tpbs_entry(out: &mut Vec<u8>, format: TpbsFormat, hash: &InfoHash, counts: SwarmCounts) {
    match format {
        TpbsFormat::Bin => {
            out.extend_from_slice(&hash.0);
            out.extend_from_slice(&counts.seeders.to_be_bytes());
            out.extend_from_slice(&counts.leechers.to_be_bytes());
        }
        TpbsFormat::Ben => crate::proto::bencode::scrape_entry(out, &hash.0, counts),
        TpbsFormat::Url => {
            push_urlencoded(out, &hash.0);
            out.extend_from_slice(format!(":{}:{}\n", counts.seeders, counts.leechers).as_bytes());
        }
        TpbsFormat::Txt => {
            out.extend_from_slice(
                format!(
                    "{}:{}:{}\n",
                    hash.to_hex_upper(),
                    counts.seeders,
                    counts.leechers
                )
                .as_bytes(),
            );
        }
        TpbsFormat::Jsonl => out.extend_from_slice(
            format!(
                "{{\"info_hash\":\"{}\",\"complete\":{},\"incomplete\":{},\"downloaded\":{}}}\n",
                hash.to_hex_upper(),
                counts.seeders,
                counts.leechers,
                counts.completed
            )
            .as_bytes(),
        ),
        TpbsFormat::Txtp => out.extend_from_slice(
            format!(
                "{}:{}:{}:{}\n",
                hash.to_hex_upper(),
                counts.seeders,
                counts.leechers,
                counts.completed
            )
            .as_bytes(),
        ),
    }
}

/// One metric family in Prometheus' text format: help, type, and one
/// sample per label set (`""` for none).
fn family(out: &mut String, name: &str, kind: &str, help: &str, samples: &[(String, u64)]) {
    let _ = writeln!(
        out,
        "# HELP opentracker_{name} {help}\n# TYPE opentracker_{name} {kind}"
    );
    for (labels, value) in samples {
        let _ = writeln!(out, "opentracker_{name}{labels} {value}");
    }
}

/// `/stats?mode=json`: the totals and counters `/metrics` has, as one JSON
/// object, for status pages and scripts that want no Prometheus. Lists not
/// set are left out; a reading the system lacks is null.
pub fn json(c: &Counters, tracker: &ShardedTracker, readings: &Readings) -> String {
    let totals = tracker.totals();
    let access = tracker.access_list();
    let lists: BTreeMap<&str, usize> = [
        ("whitelist", access.whitelist),
        ("blacklist", access.blacklist),
        ("blocked_networks", readings.blocked_networks),
        ("passkeys", readings.passkeys),
        ("hybrids", readings.hybrids),
    ]
    .into_iter()
    .filter_map(|(list, size)| Some((list, size?)))
    .collect();
    let http_errors: BTreeMap<&str, u64> = HTTP_ERROR_NAMES
        .iter()
        .copied()
        .zip(c.http_errors)
        .collect();
    let clients: Vec<serde_json::Value> = (c.clients.rows().into_iter())
        .map(|row| {
            serde_json::json!({
                "client": row.client,
                "version": row.version,
                "announces": row.announces,
            })
        })
        .collect();
    let value = serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": readings.uptime.seconds,
        "started_unix": readings.uptime.started_unix,
        "torrents": totals.torrents,
        "peers": totals.peers,
        "seeders": totals.seeders,
        "leechers": totals.peers.saturating_sub(totals.seeders),
        "completed": totals.completed,
        "announce_interval_seconds": readings.pace.interval,
        "peer_timeout_seconds": readings.pace.peer_timeout,
        "requests": {
            "udp": {
                "connect": c.udp_connects,
                "announce": c.udp_announces,
                "scrape": c.udp_scrapes,
            },
            "http": {
                "announce": c.tcp_announces,
                "scrape": c.tcp_scrapes,
                "full_scrape": c.full_scrapes,
            },
        },
        "refused": {
            "not_authorized": c.not_authorized,
            "passkey": c.passkey_refusals,
            "blocked_client": c.blocked_clients,
            "blocked_network": c.blocked_networks,
            "rate_limited": c.rate_limited,
            "unstored": totals.unstored,
        },
        "lists": lists,
        "http_errors": http_errors,
        "announces_by_client": clients,
        "resident_memory_bytes": readings.process.resident_bytes,
        "webtorrent": readings.webtorrent.map(|now| webtorrent::json(&c.webtorrent, &now)),
    });
    let mut text = value.to_string();
    text.push('\n');
    text
}

/// The sizes of the list files in force and how their re-reads went; none
/// when no list is set.
fn list_metrics(out: &mut String, c: &Counters, access: Sizes, readings: &Readings) {
    let Readings {
        blocked_networks,
        passkeys,
        hybrids,
        ..
    } = *readings;
    let label = |list: &str| format!("{{list=\"{list}\"}}");
    let entries: Vec<(String, u64)> = [
        ("whitelist", access.whitelist),
        ("blacklist", access.blacklist),
        ("blocked_networks", blocked_networks),
        ("passkeys", passkeys),
        ("hybrids", hybrids),
    ]
    .into_iter()
    .filter_map(|(list, size)| Some((label(list), size? as u64)))
    .collect();
    if entries.is_empty() {
        return;
    }
    family(
        out,
        "list_entries",
        "gauge",
        "Entries of each list in force: info hashes (changesets included), networks, \
         passkeys, or hybrid torrents' pairs of hashes.",
        &entries,
    );
    let set = [
        !access.is_open(),
        blocked_networks.is_some(),
        passkeys.is_some(),
        hybrids.is_some(),
    ];
    let per_file = |values: [u64; LIST_FILES]| -> Vec<(String, u64)> {
        (ListFiles::NAMES.iter().zip(values).zip(set))
            .filter(|(_, set)| *set)
            .map(|((list, value), _)| (label(list), value))
            .collect()
    };
    let families = [
        (
            "list_reloads_total",
            "counter",
            "Re-reads of list files (SIGHUP, access.reload_on_change) that took effect; \
             \"access\" is access.whitelist and access.blacklist together.",
            c.list_reloads,
        ),
        (
            "list_reload_failures_total",
            "counter",
            "Re-reads of list files that failed: the previous list stays in force.",
            c.list_reload_failures,
        ),
        (
            "list_loaded_timestamp_seconds",
            "gauge",
            "Unix time the list in force was read from its file.",
            c.list_loaded_at,
        ),
        (
            "list_reload_failing",
            "gauge",
            "1 while the last re-read of the list files failed, so the previous list is still \
             in force; 0 once one takes.",
            c.list_reload_failing.map(u64::from),
        ),
    ];
    for (name, kind, help, values) in families {
        family(out, name, kind, help, &per_file(values));
    }
}

/// The standard `process_*` families; readings the system lacks are left
/// out.
fn process_metrics(out: &mut String, usage: &Usage, started_unix: u64) {
    let _ = writeln!(
        out,
        "# HELP process_cpu_seconds_total User and system CPU time spent in seconds.\n\
         # TYPE process_cpu_seconds_total counter\n\
         process_cpu_seconds_total {:.3}",
        usage.cpu_seconds
    );
    let gauges = [
        (
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            usage.resident_bytes,
        ),
        (
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes.",
            usage.virtual_bytes,
        ),
        (
            "process_open_fds",
            "Number of open file descriptors.",
            usage.open_fds,
        ),
        (
            "process_max_fds",
            "Maximum number of open file descriptors.",
            usage.max_fds,
        ),
        (
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds.",
            Some(started_unix),
        ),
    ];
    for (name, help, value) in gauges {
        if let Some(value) = value {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        }
    }
}

/// What the kernel reported since the tracker started, as last read (every
/// 10 s).
#[derive(Clone, Copy, Debug, Default)]
pub struct KernelReadings {
    /// Datagrams dropped on the UDP sockets for a full receive queue.
    pub udp_dropped: u64,
    /// Datagrams dropped on the cluster sync socket for a full receive queue.
    pub cluster_dropped: u64,
    /// The connection-tracking table, when connections are tracked; its
    /// drops counted from the tracker's start.
    pub conntrack: Option<Conntrack>,
}

/// How long the tracker has run, and since when.
#[derive(Clone, Copy, Debug)]
pub struct Uptime {
    pub seconds: u64,
    pub started_unix: u64,
}

/// What `/metrics` reports besides the counters and the swarms, as read
/// for the request.
pub struct Readings {
    pub pace: Pace,
    pub uptime: Uptime,
    pub kernel: KernelReadings,
    pub process: Usage,
    /// Networks in `access.blocked_networks`, keys in `access.passkeys`
    /// and pairs in `access.hybrids`; `None` when it is not set.
    pub blocked_networks: Option<usize>,
    pub passkeys: Option<usize>,
    pub hybrids: Option<usize>,
    /// With `[webtorrent]` enabled: its connections and swarms.
    pub webtorrent: Option<WebtorrentGauges>,
    /// TCP connections open, HTTP and WebSocket, and `http.max_connections`.
    pub tcp_connections: usize,
    pub tcp_connections_limit: usize,
}

/// The counters and totals for Prometheus (`GET /metrics`), so no exporter
/// has to scrape and parse `/stats`; with the process's own readings under
/// the names Prometheus client libraries give them.
pub fn prometheus(out: &mut String, c: &Counters, tracker: &ShardedTracker, readings: &Readings) {
    let Readings {
        pace,
        uptime,
        kernel,
        process,
        ..
    } = readings;
    let totals = tracker.totals();
    let one = |value: u64| [(String::new(), value)];
    let gauges = [
        ("torrents", "Torrents tracked.", totals.torrents as u64),
        ("peers", "Peers in all swarms.", totals.peers),
        (
            "seeders",
            "Peers that have the whole torrent.",
            totals.seeders,
        ),
        (
            "uptime_seconds",
            "Seconds since the tracker started.",
            uptime.seconds,
        ),
        (
            "announce_interval_seconds",
            "The interval handed out before jitter (grows with tracker.max_announce_rate).",
            pace.interval.into(),
        ),
        (
            "peer_timeout_seconds",
            "How long a peer is kept without announcing.",
            pace.peer_timeout.into(),
        ),
        (
            "state_last_save_timestamp_seconds",
            "Unix time of the last completed save of tracker.state_file; 0 before the first.",
            c.state_saved_at,
        ),
        (
            "tcp_connections",
            "TCP connections open, HTTP and WebSocket.",
            readings.tcp_connections as u64,
        ),
        (
            "tcp_connections_limit",
            "http.max_connections: with this many TCP connections open, new ones are closed at once.",
            readings.tcp_connections_limit as u64,
        ),
        (
            "state_save_failing",
            "1 while the latest save of tracker.state_file failed (the previous file stays, growing older); 0 once one completes.",
            c.state_save_failing().into(),
        ),
    ];
    for (name, help, value) in gauges {
        family(out, name, "gauge", help, &one(value));
    }
    let request = |protocol: &str, kind: &str, value: u64| {
        (
            format!("{{protocol=\"{protocol}\",request=\"{kind}\"}}"),
            value,
        )
    };
    let requests = [
        request("udp", "connect", c.udp_connects),
        request("udp", "announce", c.udp_announces),
        request("udp", "scrape", c.udp_scrapes),
        request("http", "announce", c.tcp_announces),
        request("http", "scrape", c.tcp_scrapes),
        request("http", "full_scrape", c.full_scrapes),
    ];
    family(
        out,
        "requests_total",
        "counter",
        "Requests answered.",
        &requests,
    );
    let counters = [
        (
            "completed_total",
            "Completed downloads counted.",
            totals.completed,
        ),
        (
            "announces_unstored_total",
            "Announces answered but not stored: the tracker held tracker.max_peers or tracker.max_torrents, or the network tracker.max_peers_per_network in the torrent.",
            totals.unstored,
        ),
        (
            "udp_datagrams_total",
            "UDP datagrams received.",
            c.udp_packets,
        ),
        (
            "udp_bad_connection_id_total",
            "UDP requests with a wrong or expired connection id.",
            c.udp_mismatches,
        ),
        (
            "udp_datagrams_dropped_total",
            "UDP datagrams the kernel dropped for a full receive queue (read every 10 s).",
            kernel.udp_dropped,
        ),
        (
            "udp_replies_unsent_total",
            "UDP replies the socket refused to send (a full send buffer, a firewall rule).",
            c.udp_unsent,
        ),
        (
            "blocked_client_announces_total",
            "Announces refused for a peer_id in access.blocked_clients.",
            c.blocked_clients,
        ),
        (
            "announces_not_authorized_total",
            "Announces refused: access.whitelist or access.blacklist does not allow the torrent.",
            c.not_authorized,
        ),
        (
            "passkey_refusals_total",
            "Announces and scrapes refused for a missing or unknown passkey (access.passkeys).",
            c.passkey_refusals,
        ),
        (
            "blocked_network_requests_total",
            "Announces, scrapes and UDP datagrams refused for a client in access.blocked_networks.",
            c.blocked_networks,
        ),
        (
            "proxy_protocol_errors_total",
            "Connections and datagrams from access.proxy_protocol balancers without a valid PROXY header.",
            c.proxy_header_errors,
        ),
        (
            "cluster_datagrams_sent_total",
            "Cluster sync datagrams sent to other trackers.",
            c.cluster_sent,
        ),
        (
            "cluster_datagrams_unsent_total",
            "Cluster sync datagrams the socket refused to send.",
            c.cluster_unsent,
        ),
        (
            "cluster_datagrams_dropped_total",
            "Cluster sync datagrams from other trackers the kernel dropped for a full receive queue (read every 10 s).",
            kernel.cluster_dropped,
        ),
        (
            "cluster_announces_dropped_total",
            "Announces not passed on to the cluster: its outbox (4 MiB, about 100,000 announces) was full.",
            c.cluster_overflowed,
        ),
        (
            "cluster_announces_received_total",
            "Announces other trackers of the cluster passed on, applied here (not those the access lists here refuse).",
            c.cluster_received,
        ),
        (
            "cluster_datagrams_refused_total",
            "Cluster sync datagrams dropped: a tag that does not verify, too old, heard before, or damaged.",
            c.cluster_refused,
        ),
        (
            "rate_limited_requests_total",
            "UDP datagrams and HTTP requests refused for access.rate_limit.",
            c.rate_limited,
        ),
        (
            "tcp_accepts_total",
            "TCP connections accepted.",
            c.tcp_accepts,
        ),
        (
            "tcp_connections_refused_total",
            "TCP connections accepted and closed at once, as http.max_connections were open.",
            c.tcp_refused_full,
        ),
        (
            "full_scrape_bytes_total",
            "Bytes of full-scrape bodies (after gzip, before chunk framing), counted as each slice is produced: a full scrape the client leaves partway counts up to there.",
            c.full_scrape_bytes,
        ),
        (
            "state_saves_total",
            "Saves of tracker.state_file completed, periodic and at stop.",
            c.state_saves,
        ),
        (
            "state_save_failures_total",
            "Saves of tracker.state_file that failed; the previous file stays.",
            c.state_save_failures,
        ),
    ];
    for (name, help, value) in counters {
        family(out, name, "counter", help, &one(value));
    }
    list_metrics(out, c, tracker.access_list(), readings);
    if let Some(table) = kernel.conntrack {
        let conntrack = [
            (
                "conntrack_entries",
                "gauge",
                "Entries in the kernel's connection-tracking table (read every 10 s).",
                table.entries,
            ),
            (
                "conntrack_limit",
                "gauge",
                "Size of the kernel's connection-tracking table (net.netfilter.nf_conntrack_max).",
                table.limit,
            ),
            (
                "conntrack_dropped_total",
                "counter",
                "Packets the kernel dropped for want of a connection-tracking entry (read every 10 s).",
                table.dropped,
            ),
        ];
        for (name, kind, help, value) in conntrack {
            family(out, name, kind, help, &one(value));
        }
    }
    process_metrics(out, process, uptime.started_unix);
    let errors: Vec<(String, u64)> = HTTP_ERROR_NAMES
        .iter()
        .zip(c.http_errors)
        .map(|(error, count)| (format!("{{error=\"{error}\"}}"), count))
        .collect();
    family(
        out,
        "http_errors_total",
        "counter",
        "HTTP error answers.",
        &errors,
    );
    // Client names and versions are printable as they are (see ClientTag).
    let clients: Vec<(String, u64)> = (c.clients.rows().into_iter())
        .map(|row| {
            let labels = format!("{{client=\"{}\",version=\"{}\"}}", row.client, row.version);
            (labels, row.announces)
        })
        .collect();
    family(
        out,
        "announces_by_client_total",
        "counter",
        "Announces answered over UDP, HTTP and WebTorrent (requests_total{request=\"announce\"} has no WebTorrent ones), by the client software the peer id names: the 512 client tags with the most announces; the rest, and tags a serving thread's full table (512) had no room for, as client=\"other\".",
        &clients,
    );
    if let Some(now) = &readings.webtorrent {
        webtorrent::prometheus(out, &c.webtorrent, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracker::access_list::{AccessList, Kind};
    use crate::tracker::{Networks, Timeouts};

    const PACE: Pace = Pace {
        interval: 2400,
        peer_timeout: 3600,
    };
    const UPTIME: Uptime = Uptime {
        seconds: 42,
        started_unix: 1000,
    };

    #[test]
    fn mrtg_blocks() {
        let timeouts = Timeouts {
            peer: 10,
            peer_longest: 10,
            torrent: 10,
        };
        let tracker = ShardedTracker::new(timeouts, 1, 1);
        let mut counters = Counters {
            tcp_accepts: 10,
            udp_packets: 20,
            udp_connects: 5,
            ..Counters::default()
        };
        counters.http_error(HttpErrorKind::NotFound);
        let mut out = String::new();
        assert!(render(StatsMode::Peer, &counters, &tracker, 10, &mut out));
        assert_eq!(out, "0\n0\nopentracker serving 0 torrents\nopentracker");
        out.clear();
        render(StatsMode::Conn, &counters, &tracker, 10, &mut out);
        assert_eq!(
            out,
            "30\n5\n10 seconds (0 hours)\nopentracker connections, 3 conns/s :: 0 success/s."
        );
        out.clear();
        render(StatsMode::HttpErrors, &counters, &tracker, 10, &mut out);
        assert!(out.contains("404 INV 1\n"));
        out.clear();
        render(StatsMode::Everything, &counters, &tracker, 10, &mut out);
        assert!(out.starts_with("<?xml") && out.ends_with("</stats>"));
        // Upstream's counters only, as its XML has.
        let codes = out.matches("<count code=").count();
        assert_eq!(codes, UPSTREAM_HTTP_ERRORS, "{out}");
        let id = format!("<tracker_id>{}</tracker_id>", tracker_id());
        assert!(out.contains(&id), "{out}");
        assert!(tracker_id() < 1 << 31);
        assert!(!render(StatsMode::Busy, &counters, &tracker, 10, &mut out));
        out.clear();
        busy_networks(&mut out, &Networks::with_capacity(0).busiest(BUSY_NETWORKS));
        assert_eq!(
            out,
            "Networks, limit /28:\n\nNetworks, limit /24:\n\n\
             Networks, limit /64:\n\nNetworks, limit /48:\n\n"
        );
    }

    #[test]
    fn prometheus_text_format() {
        let tracker = ShardedTracker::new(
            Timeouts {
                peer: 10,
                peer_longest: 10,
                torrent: 10,
            },
            1,
            1,
        );
        let mut counters = Counters {
            udp_announces: 7,
            ..Counters::default()
        };
        counters.http_error(HttpErrorKind::NotFound);
        let mut out = String::new();
        let kernel = KernelReadings {
            udp_dropped: 3,
            cluster_dropped: 0,
            conntrack: None,
        };
        let process = Usage {
            cpu_seconds: 1.25,
            resident_bytes: Some(4096),
            ..Usage::default()
        };
        let mut readings = Readings {
            pace: PACE,
            uptime: UPTIME,
            kernel,
            process,
            blocked_networks: None,
            passkeys: None,
            hybrids: None,
            webtorrent: None,
            tcp_connections: 3,
            tcp_connections_limit: 16384,
        };
        prometheus(&mut out, &counters, &tracker, &readings);
        assert!(!out.contains("conntrack"), "absent where not tracked");
        assert!(!out.contains("webtorrent"), "absent where not enabled");
        assert!(!out.contains("list_"), "absent without lists");
        assert!(out.contains("\nprocess_cpu_seconds_total 1.250\n"), "{out}");
        assert!(
            out.contains("\nprocess_resident_memory_bytes 4096\n"),
            "{out}"
        );
        assert!(out.contains("\nprocess_start_time_seconds 1000\n"), "{out}");
        assert!(!out.contains("process_open_fds"), "absent when unknown");
        readings.kernel.conntrack = Some(Conntrack {
            entries: 5,
            limit: 100,
            dropped: 2,
        });
        readings.blocked_networks = Some(4);
        tracker.set_access_list(AccessList::open().with(Kind::Whitelist, [InfoHash([1; 20])]));
        counters.list_reloaded(ListFiles::Access, false, 0);
        counters.list_reloaded(ListFiles::BlockedNetworks, true, 77);
        out.clear();
        prometheus(&mut out, &counters, &tracker, &readings);
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines.contains(&"opentracker_conntrack_entries 5"));
        assert!(lines.contains(&"opentracker_conntrack_limit 100"));
        assert!(lines.contains(&"opentracker_conntrack_dropped_total 2"));
        assert!(lines.contains(&"opentracker_uptime_seconds 42"));
        assert!(lines.contains(&"opentracker_tcp_connections 3"));
        assert!(lines.contains(&"opentracker_tcp_connections_limit 16384"));
        assert!(lines.contains(&"opentracker_announce_interval_seconds 2400"));
        assert!(lines.contains(&"opentracker_peer_timeout_seconds 3600"));
        assert!(
            lines.contains(&"opentracker_requests_total{protocol=\"udp\",request=\"announce\"} 7")
        );
        assert!(lines.contains(&"opentracker_http_errors_total{error=\"404 Not found\"} 1"));
        assert!(lines.contains(&"opentracker_udp_datagrams_dropped_total 3"));
        for line in [
            "opentracker_list_entries{list=\"whitelist\"} 1",
            "opentracker_list_entries{list=\"blocked_networks\"} 4",
            "opentracker_list_reloads_total{list=\"access\"} 0",
            "opentracker_list_reloads_total{list=\"blocked_networks\"} 1",
            "opentracker_list_reload_failures_total{list=\"access\"} 1",
            "opentracker_list_loaded_timestamp_seconds{list=\"blocked_networks\"} 77",
            "opentracker_list_reload_failing{list=\"access\"} 1",
            "opentracker_list_reload_failing{list=\"blocked_networks\"} 0",
            "opentracker_state_save_failing 0",
            "opentracker_announces_not_authorized_total 0",
        ] {
            assert!(lines.contains(&line), "{line} in {out}");
        }
        assert!(!out.contains("list=\"blacklist\""), "only the lists set");
        // Every sample follows its family's HELP and TYPE lines.
        let mut family = "";
        for line in lines {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                family = rest.split(' ').next().unwrap();
                assert!(
                    rest.ends_with(" gauge") || rest.ends_with(" counter"),
                    "{rest}"
                );
            } else if !line.starts_with("# HELP ") {
                let name = line.split(['{', ' ']).next().unwrap();
                assert_eq!(name, family, "{line}");
            }
        }
    }

    #[test]
    fn json_has_the_totals_and_counters() {
        let tracker = ShardedTracker::new(
            Timeouts {
                peer: 10,
                peer_longest: 10,
                torrent: 10,
            },
            1,
            1,
        );
        tracker.set_access_list(AccessList::open().with(Kind::Blacklist, [InfoHash([1; 20])]));
        let mut counters = Counters {
            udp_announces: 7,
            passkey_refusals: 2,
            ..Counters::default()
        };
        counters.http_error(HttpErrorKind::NotFound);
        counters.http_error(HttpErrorKind::UpgradeRequired);
        let readings = Readings {
            pace: PACE,
            uptime: UPTIME,
            kernel: KernelReadings::default(),
            process: Usage::default(),
            blocked_networks: None,
            passkeys: Some(3),
            hybrids: Some(1),
            webtorrent: None,
            tcp_connections: 0,
            tcp_connections_limit: 0,
        };
        let text = json(&counters, &tracker, &readings);
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["requests"]["udp"]["announce"], 7);
        assert_eq!(value["refused"]["passkey"], 2);
        assert_eq!(value["uptime_seconds"], 42);
        assert_eq!(value["announce_interval_seconds"], 2400);
        assert_eq!(value["torrents"], 0);
        assert_eq!(value["http_errors"]["404 Not found"], 1);
        assert_eq!(value["http_errors"]["426 Upgrade Required"], 1);
        assert_eq!(
            value["lists"],
            serde_json::json!({"blacklist": 1, "passkeys": 3, "hybrids": 1})
        );
        assert!(value["resident_memory_bytes"].is_null(), "unknown here");
    }

    #[test]
    fn absorbing_adds_every_counter() {
        let mut one = Counters {
            udp_announces: 2,
            full_scrape_bytes: 5,
            ..Counters::default()
        };
        one.http_error(HttpErrorKind::NotFound);
        one.state_save_ended(true, 7);
        let mut sum = one.clone();
        sum.absorb(&one);
        assert_eq!(sum.state_saved_at, 7, "the latest save, not a sum");
        assert_eq!(sum.udp_announces, 4);
        assert_eq!(sum.full_scrape_bytes, 10);
        assert_eq!(sum.http_errors[HttpErrorKind::NotFound as usize], 2);
        let combined = one.combined(&one);
        assert_eq!(
            (
                combined.udp_announces,
                combined.full_scrape_bytes,
                combined.state_saved_at
            ),
            (4, 10, 7)
        );
    }

    #[test]
    fn the_last_save_time_is_the_later_saves_after_a_step_back() {
        // The saver thread saves; the wall clock is stepped back an hour;
        // the event loop saves at stop: that earlier-looking time is the last.
        let (mut saver, mut main) = (Counters::default(), Counters::default());
        saver.state_save_ended(true, 10_000);
        main.state_save_ended(true, 10_000 - 3600 + 5);
        main.state_save_ended(false, 10_000 - 3600 + 10);
        for (a, b) in [(&saver, &main), (&main, &saver)] {
            assert_eq!(a.combined(b).state_saved_at, 10_000 - 3600 + 5);
        }
        let mut absorbed = main.clone();
        absorbed.absorb(&saver);
        assert_eq!(absorbed.state_saved_at, 10_000 - 3600 + 5);
    }

    #[test]
    fn the_latest_save_and_reload_say_whether_they_are_failing() {
        // A failed save on the saver thread, then one at stop that
        // completes on the event loop's: combined either way, not failing.
        let (mut saver, mut main) = (Counters::default(), Counters::default());
        saver.state_save_ended(false, 5);
        assert!(saver.state_save_failing());
        main.state_save_ended(true, 6);
        for (a, b) in [(&saver, &main), (&main, &saver)] {
            let all = a.combined(b);
            assert!(!all.state_save_failing());
            assert_eq!((all.state_saves, all.state_save_failures), (1, 1));
        }
        saver.state_save_ended(false, 7);
        assert!(main.combined(&saver).state_save_failing());

        main.list_reloaded(ListFiles::Hybrids, false, 8);
        main.list_reloaded(ListFiles::Access, false, 8);
        assert_eq!(main.lists_kept().collect::<Vec<_>>(), ["access", "hybrids"]);
        main.list_reloaded(ListFiles::Access, true, 9);
        assert_eq!(
            main.combined(&saver).lists_kept().collect::<Vec<_>>(),
            ["hybrids"]
        );
    }

    /// The safe bytes of libowfat's `fmt_urlencoded`, and some it escapes.
    const URL_TEST_HASH: [u8; 20] = *b"$/.=~-_Az0!*'()\xab\xff\x00 +";

    #[test]
    fn tpbs_formats() {
        let counts = SwarmCounts {
            seeders: 1,
            leechers: 2,
            completed: 3,
        };
        let mut out = Vec::new();
        tpbs_entry(&mut out, TpbsFormat::Txtp, &InfoHash([0xab; 20]), counts);
        assert_eq!(out, format!("{}:1:2:3\n", "AB".repeat(20)).as_bytes());
        out.clear();
        tpbs_entry(&mut out, TpbsFormat::Bin, &InfoHash([0; 20]), counts);
        assert_eq!(out.len(), 28);
        out.clear();
        tpbs_entry(&mut out, TpbsFormat::Url, &InfoHash(URL_TEST_HASH), counts);
        assert_eq!(out, b"$/.=~-_Az0%21%2a%27%28%29%ab%ff%00%20%2b:1:2\n");
        out.clear();
        tpbs_entry(&mut out, TpbsFormat::Jsonl, &InfoHash([0xab; 20]), counts);
        let line: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(line["info_hash"], "AB".repeat(20));
        assert_eq!(
            (&line["complete"], &line["incomplete"], &line["downloaded"]),
            (&1.into(), &2.into(), &3.into())
        );
        assert!(out.ends_with(b"}\n"));
    }
}
