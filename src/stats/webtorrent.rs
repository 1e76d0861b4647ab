//! WebTorrent's figures: what happened on the WebSocket connections, and
//! what their swarms hold (see [`crate::tracker::rtc`]).

use super::family;
use crate::tracker::rtc::RtcTotals;

/// Events since start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WebtorrentCounters {
    /// HTTP connections switched to a WebSocket.
    pub upgrades: u64,
    pub announces: u64,
    pub scrapes: u64,
    /// Offers and answers passed on to another peer's connection.
    pub offers_relayed: u64,
    pub answers_relayed: u64,
    /// Downloads finished, as peers' `completed` announces count them.
    pub completed: u64,
    /// Messages answered with a failure reason: unreadable, a torrent the
    /// access lists refuse, a limit reached.
    pub refused: u64,
    /// Connections closed for breaking the protocol, a message over
    /// `webtorrent.max_message_size`, or not reading what they were sent.
    pub dropped_connections: u64,
    /// Announces answered but not stored: `tracker.max_torrents` or
    /// `tracker.max_peers` reached.
    pub unstored: u64,
}

impl WebtorrentCounters {
    pub fn absorb(&mut self, other: &WebtorrentCounters) {
        self.upgrades += other.upgrades;
        self.announces += other.announces;
        self.scrapes += other.scrapes;
        self.offers_relayed += other.offers_relayed;
        self.answers_relayed += other.answers_relayed;
        self.completed += other.completed;
        self.refused += other.refused;
        self.dropped_connections += other.dropped_connections;
        self.unstored += other.unstored;
    }

    /// The messages counter's samples, by kind.
    fn messages(&self) -> [(&'static str, u64); 5] {
        [
            ("announce", self.announces),
            ("scrape", self.scrapes),
            ("offer_relayed", self.offers_relayed),
            ("answer_relayed", self.answers_relayed),
            ("refused", self.refused),
        ]
    }
}

/// What is open and held now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WebtorrentGauges {
    pub connections: usize,
    pub swarms: RtcTotals,
}

/// The `opentracker_webtorrent_*` families.
pub fn prometheus(out: &mut String, c: &WebtorrentCounters, now: &WebtorrentGauges) {
    let one = |value: usize| [(String::new(), value as u64)];
    let gauges = [
        (
            "webtorrent_connections",
            "WebSocket connections open.",
            now.connections,
        ),
        (
            "webtorrent_torrents",
            "WebTorrent swarms.",
            now.swarms.torrents,
        ),
        (
            "webtorrent_peers",
            "Peers in WebTorrent swarms.",
            now.swarms.peers,
        ),
        (
            "webtorrent_seeders",
            "Peers in WebTorrent swarms that have the whole torrent.",
            now.swarms.seeders,
        ),
    ];
    for (name, help, value) in gauges {
        family(out, name, "gauge", help, &one(value));
    }
    let messages: Vec<(String, u64)> = (c.messages().into_iter())
        .map(|(kind, value)| (format!("{{kind=\"{kind}\"}}"), value))
        .collect();
    family(
        out,
        "webtorrent_messages_total",
        "counter",
        "WebTorrent messages: announces and scrapes answered, offers and answers relayed, messages refused.",
        &messages,
    );
    let counters = [
        (
            "webtorrent_upgrades_total",
            "HTTP connections switched to a WebSocket.",
            c.upgrades,
        ),
        (
            "webtorrent_completed_total",
            "Downloads completed in WebTorrent swarms.",
            c.completed,
        ),
        (
            "webtorrent_connections_dropped_total",
            "WebSocket connections closed for breaking the protocol, an oversized message, or not reading.",
            c.dropped_connections,
        ),
        (
            "webtorrent_announces_unstored_total",
            "WebTorrent announces answered but not stored: tracker.max_torrents or tracker.max_peers reached.",
            c.unstored,
        ),
    ];
    for (name, help, value) in counters {
        family(out, name, "counter", help, &[(String::new(), value)]);
    }
}

/// The `webtorrent` object of `mode=json`.
pub fn json(c: &WebtorrentCounters, now: &WebtorrentGauges) -> serde_json::Value {
    let messages: serde_json::Map<String, serde_json::Value> = (c.messages().into_iter())
        .map(|(kind, value)| (kind.to_string(), value.into()))
        .collect();
    serde_json::json!({
        "connections": now.connections,
        "torrents": now.swarms.torrents,
        "peers": now.swarms.peers,
        "seeders": now.swarms.seeders,
        "upgrades": c.upgrades,
        "completed": c.completed,
        "connections_dropped": c.dropped_connections,
        "announces_unstored": c.unstored,
        "messages": messages,
    })
}
