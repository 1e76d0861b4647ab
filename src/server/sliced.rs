//! Responses that walk every torrent, a slice of torrents per turn of the
//! event loop, in ascending hash order from a cursor, so that the loop
//! keeps serving others between slices. Like upstream's, the result is not
//! an atomic snapshot.
//!
//! Two sorts:
//! - streamed bodies (the full scrape, `/stats?mode=tpbs` and
//!   `mode=statedump`) go out as the socket drains, so memory stays at one
//!   slice however many torrents there are;
//! - rankings (`mode=top10`, `top100`, `s24s`) are gathered slice by slice
//!   and answered whole at the end: their bodies are small, and so keep
//!   upstream's framing (Content-Length, keep-alive).

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::io::Write;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use flate2::write::GzEncoder;
use flate2::Compression;

use crate::proto::params::TpbsFormat;
use crate::proto::response::{self, Connection};
use crate::proto::{bencode, InfoHash};
use crate::rate_limit::client_of;
use crate::state::torrent_line;
use crate::stats::{self, tpbs_entry};
use crate::tracker::{NetworkRanking, Networks, ShardedTracker, Tops};

/// Torrents walked per slice: about 70 KB of bencode.
const TORRENTS_PER_SLICE: usize = 1024;

/// A response still being produced after its request was answered.
pub enum SlicedBody {
    Streamed(StreamedBody),
    Ranking(Ranking),
}

impl SlicedBody {
    /// Appends the next slice's output to `out` (none, for a ranking until
    /// its last slice), at `clock`: the tracker's second and seconds since
    /// the Unix epoch. Returns true once the response is complete.
    pub fn fill(&mut self, tracker: &ShardedTracker, clock: (u32, u64), out: &mut Vec<u8>) -> bool {
        match self {
            SlicedBody::Streamed(body) => body.fill(tracker, clock, out),
            SlicedBody::Ranking(ranking) => ranking.fill(tracker, clock.0, out),
        }
    }

    /// Its place, for its connection to hold until the body's last bytes
    /// have left the output buffer: a body ends with its output still
    /// there, a whole ranking or a whole small stream at once.
    pub fn into_ticket(self) -> StreamTicket {
        match self {
            SlicedBody::Streamed(body) => body.ticket,
            SlicedBody::Ranking(ranking) => ranking.ticket,
        }
    }

    /// Body bytes of a full scrape produced since last asked, for its
    /// counters, so that one the client leaves partway counts what went
    /// out up to then; 0 for any other body.
    pub fn take_full_scrape_bytes(&mut self) -> u64 {
        match self {
            SlicedBody::Streamed(body) if body.kind == BodyKind::FullScrape => {
                std::mem::take(&mut body.produced)
            }
            _ => 0,
        }
    }
}

/// What a ranking counts.
enum Ranked {
    Torrents(Tops),
    /// Networks, once it is this request's turn.
    NetworksQueued(NetworksTurn),
    Networks {
        count: NetworkCount,
        /// Held for as long as the count lives.
        _turn: NetworksPermit,
    },
}

/// A count of networks: the peers' networks collected a slice of torrents
/// per turn, then ranked a step per turn.
enum NetworkCount {
    Collecting(Networks),
    Ranking(Box<NetworkRanking>),
}

/// Counting networks holds 4 bytes per peer until the last slice (80 MB at
/// 20 million peers), so one count runs at a time and concurrent requests
/// wait their turn rather than multiply that.
#[derive(Clone, Default)]
pub struct NetworksTurn(Arc<AtomicBool>);

impl NetworksTurn {
    fn try_take(&self) -> Option<NetworksPermit> {
        let taken = self.0.swap(true, Ordering::Acquire);
        (!taken).then(|| NetworksPermit(self.0.clone()))
    }
}

/// The turn to count networks, handed on when the count ends or its
/// connection goes.
struct NetworksPermit(Arc<AtomicBool>);

impl Drop for NetworksPermit {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// What a `/stats` ranking lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rank {
    /// `top10`, `top100`: the torrents with the most peers, seeders and
    /// leechers.
    Torrents(usize),
    /// `s24s`: the networks with the most peers.
    Networks,
}

/// A `/stats` ranking being gathered.
pub struct Ranking {
    ranked: Ranked,
    cursor: Option<InfoHash>,
    connection: Connection,
    /// Its place among the bodies going out over many turns.
    ticket: StreamTicket,
}

impl Ranking {
    pub fn new(
        rank: Rank,
        networks_turn: &NetworksTurn,
        connection: Connection,
        ticket: StreamTicket,
    ) -> Self {
        let ranked = match rank {
            Rank::Torrents(n) => Ranked::Torrents(Tops::new(n)),
            Rank::Networks => Ranked::NetworksQueued(networks_turn.clone()),
        };
        Ranking {
            ranked,
            cursor: None,
            connection,
            ticket,
        }
    }

    fn fill(&mut self, tracker: &ShardedTracker, now: u32, out: &mut Vec<u8>) -> bool {
        if let Ranked::NetworksQueued(turn) = &self.ranked {
            let Some(permit) = turn.try_take() else {
                return false;
            };
            let networks = Networks::with_capacity(tracker.totals().peers as usize);
            self.ranked = Ranked::Networks {
                count: NetworkCount::Collecting(networks),
                _turn: permit,
            };
        }
        let cursor = &mut self.cursor;
        let finished = match &mut self.ranked {
            Ranked::Torrents(tops) => {
                tracker.walk_on(cursor, TORRENTS_PER_SLICE, now, |hash, listed| {
                    tops.offer(hash, listed.counts)
                })
            }
            Ranked::Networks { count, .. } => match count {
                NetworkCount::Collecting(networks) => {
                    if tracker.walk_networks_on(cursor, TORRENTS_PER_SLICE, networks) {
                        let ranking = std::mem::take(networks).rank(stats::BUSY_NETWORKS);
                        *count = NetworkCount::Ranking(Box::new(ranking));
                    }
                    false
                }
                NetworkCount::Ranking(ranking) => ranking.step(),
            },
            Ranked::NetworksQueued(_) => false,
        };
        if finished {
            let mut text = String::new();
            match &self.ranked {
                Ranked::Torrents(tops) => stats::top(&mut text, tops),
                Ranked::Networks {
                    count: NetworkCount::Ranking(ranking),
                    ..
                } => stats::busy_networks(&mut text, &ranking.busiest()),
                Ranked::Networks { .. } | Ranked::NetworksQueued(_) => {}
            }
            response::ok_head(out, text.len(), self.connection);
            out.extend_from_slice(text.as_bytes());
        }
        finished
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyKind {
    FullScrape,
    Tpbs(TpbsFormat),
    StateDump,
}

impl BodyKind {
    /// JSON Lines say so; the other formats, upstream's, are served as
    /// opaque bytes, as upstream serves them.
    pub fn content_type(self) -> &'static [u8] {
        match self {
            BodyKind::Tpbs(TpbsFormat::Jsonl) => b"application/x-ndjson",
            _ => b"application/octet-stream",
        }
    }
}

/// Sliced bodies going out at once, at most, with the whole responses
/// larger than [`MAX_BODY_WITHOUT_PLACE`]. A streamed one holds a slice's
/// buffer and, gzipped, an encoder (together up to about half a MB) until
/// its client has taken it, and a client may take its time: without a cap,
/// thousands of connections that ask and read slowly hold gigabytes. A
/// ranking walks every torrent: without a cap, as many as there are
/// connections would share the event loop with everyone else.
pub const MAX_STREAMS: usize = 64;

/// Of those, the most one client (as [`client_of`] counts) may have: enough
/// for a scraper and a monitor side by side, too few for one client that
/// asks and never reads to take every place from everyone else.
pub const MAX_STREAMS_PER_CLIENT: usize = 4;

/// The largest body a whole response (one answered at once: `/metrics`,
/// a `/stats` page) may have without a place. A larger one waits in its
/// connection's output buffer for the socket to take it, which a client
/// that does not read delays for as long as `http.request_timeout`, so it
/// holds a place, as a streamed body does, until its last byte has gone
/// to the socket. `/metrics` with a full table of client tags is about
/// 46 KB: without places, 16384 connections that asked for it could hold
/// 750 MB. Announce and scrape answers stay below it (a scrape's request
/// head is at most 8 KiB) and are not held to it: a peer is never told to
/// come back later.
pub const MAX_BODY_WITHOUT_PLACE: usize = 16 << 10;

/// The places taken, in all and by client.
#[derive(Default)]
pub struct StreamPlaces(Mutex<Places>);

#[derive(Default)]
struct Places {
    taken: usize,
    by_client: HashMap<IpAddr, usize>,
}

impl StreamPlaces {
    fn lock(&self) -> MutexGuard<'_, Places> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One of the [`MAX_STREAMS`] places, given back when its body is dropped.
pub struct StreamTicket {
    places: Arc<StreamPlaces>,
    client: IpAddr,
}

impl StreamTicket {
    /// A place for a body to the client at `ip`, if one is free in all and
    /// the client has fewer than its share.
    pub fn take(places: &Arc<StreamPlaces>, ip: IpAddr) -> Option<StreamTicket> {
        let client = client_of(ip);
        let mut taken = places.lock();
        let by_client = taken.by_client.get(&client).copied().unwrap_or(0);
        if taken.taken >= MAX_STREAMS || by_client >= MAX_STREAMS_PER_CLIENT {
            return None;
        }
        taken.taken += 1;
        taken.by_client.insert(client, by_client + 1);
        Some(StreamTicket {
            places: Arc::clone(places),
            client,
        })
    }
}

impl Drop for StreamTicket {
    fn drop(&mut self) {
        let mut taken = self.places.lock();
        taken.taken -= 1;
        if let Entry::Occupied(mut entry) = taken.by_client.entry(self.client) {
            *entry.get_mut() -= 1;
            if *entry.get() == 0 {
                entry.remove();
            }
        }
    }
}

pub struct StreamedBody {
    kind: BodyKind,
    /// Its place among the streams going out.
    ticket: StreamTicket,
    cursor: Option<InfoHash>,
    started: bool,
    gzip: Option<GzEncoder<Vec<u8>>>,
    /// Sent in chunks (HTTP/1.1), or as is until the connection closes.
    chunked: bool,
    plain: Vec<u8>,
    /// Body bytes produced (after compression, before chunk framing) and
    /// not yet counted in the stats.
    produced: u64,
}

impl StreamedBody {
    pub fn new(kind: BodyKind, ticket: StreamTicket, gzip: bool, chunked: bool) -> Self {
        StreamedBody {
            kind,
            ticket,
            cursor: None,
            started: false,
            // Hashes do not compress; the fastest level saves nearly as much.
            gzip: gzip.then(|| GzEncoder::new(Vec::new(), Compression::fast())),
            chunked,
            plain: Vec::new(),
            produced: 0,
        }
    }

    /// Appends the next chunk(s) to `out`. Returns true once the body,
    /// including the last chunk, is complete.
    fn fill(
        &mut self,
        tracker: &ShardedTracker,
        (now, unix_now): (u32, u64),
        out: &mut Vec<u8>,
    ) -> bool {
        self.plain.clear();
        if !self.started {
            self.started = true;
            if self.kind == BodyKind::FullScrape || self.kind == BodyKind::Tpbs(TpbsFormat::Ben) {
                self.plain.extend_from_slice(bencode::FILES_OPEN);
            }
        }
        let kind = self.kind;
        let plain = &mut self.plain;
        let finished = tracker.walk_on(
            &mut self.cursor,
            TORRENTS_PER_SLICE,
            now,
            |hash, listed| match kind {
                BodyKind::FullScrape => bencode::scrape_entry(plain, &hash.0, listed.counts),
                BodyKind::Tpbs(format) => tpbs_entry(plain, format, hash, listed.counts),
                BodyKind::StateDump => {
                    let minute = unix_now.saturating_sub(listed.idle.into()) / 60;
                    torrent_line(plain, hash, minute, listed.counts.completed)
                }
            },
        );
        if finished && (kind == BodyKind::FullScrape || kind == BodyKind::Tpbs(TpbsFormat::Ben)) {
            self.plain.extend_from_slice(bencode::FILES_CLOSE);
        }
        let chunked = self.chunked;
        let frame = |out: &mut Vec<u8>, data: &[u8]| {
            if chunked {
                response::chunk(out, data);
            } else {
                out.extend_from_slice(data);
            }
        };
        match &mut self.gzip {
            Some(encoder) => {
                // Writing into a Vec cannot fail.
                let _ = encoder.write_all(&self.plain);
                if finished {
                    let _ = encoder.try_finish();
                }
                let compressed = std::mem::take(encoder.get_mut());
                frame(out, &compressed);
                self.produced += compressed.len() as u64;
            }
            None => {
                frame(out, &self.plain);
                self.produced += self.plain.len() as u64;
            }
        }
        if finished && chunked {
            out.extend_from_slice(response::LAST_CHUNK);
        }
        finished
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracker::{Announce, Families, Timeouts};
    use std::io::Read;

    /// `n` torrents spread over the hash space, so over all `shards`.
    fn tracker_with(n: u16, shards: usize) -> ShardedTracker {
        let timeouts = Timeouts {
            peer: 100,
            peer_longest: 100,
            torrent: 100,
        };
        let t = ShardedTracker::new(timeouts, shards, 1);
        for i in 0..n {
            let mut hash = [0; 20];
            hash[0] = (i % 256) as u8;
            hash[1..3].copy_from_slice(&i.to_be_bytes());
            let a = Announce {
                info_hash: InfoHash(hash),
                peer: "10.0.0.1:1".parse().unwrap(),
                seeding: true,
                event: crate::proto::Event::None,
                numwant: 0,
            };
            t.shard(&a.info_hash)
                .announce(&a, Families::Both, 0, &mut Vec::new(), &mut Vec::new());
        }
        t
    }

    fn unchunk(mut body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let line_end = body.windows(2).position(|w| w == b"\r\n").unwrap();
            let len =
                usize::from_str_radix(std::str::from_utf8(&body[..line_end]).unwrap(), 16).unwrap();
            if len == 0 {
                return out;
            }
            out.extend_from_slice(&body[line_end + 2..line_end + 2 + len]);
            body = &body[line_end + 4 + len..];
        }
    }

    fn ticket() -> StreamTicket {
        StreamTicket::take(&Arc::default(), [127, 0, 0, 1].into()).unwrap()
    }

    #[test]
    fn streams_take_one_of_a_fixed_number_of_places_while_they_last() {
        let places = Arc::default();
        let client = |n: usize| IpAddr::from([10, 0, 0, n as u8]);
        let tickets: Vec<_> = (0..MAX_STREAMS)
            .map(|n| {
                StreamTicket::take(&places, client(n / MAX_STREAMS_PER_CLIENT))
                    .expect("a free place")
            })
            .collect();
        assert!(StreamTicket::take(&places, client(250)).is_none());
        drop(tickets);
        assert!(StreamTicket::take(&places, client(250)).is_some());
    }

    #[test]
    fn one_client_takes_at_most_its_share_of_the_places() {
        let places = Arc::default();
        let host = |last: u16| IpAddr::from([0x2001, 0xdb8, 0, 1, 0, 0, 0, last]);
        // Every address of an IPv6 /64 is one client.
        let mut held: Vec<_> = (0..MAX_STREAMS_PER_CLIENT as u16)
            .map(|n| StreamTicket::take(&places, host(n)).expect("within its share"))
            .collect();
        assert!(StreamTicket::take(&places, host(99)).is_none());
        let other = IpAddr::from([0x2001, 0xdb8, 0, 2, 0, 0, 0, 1]);
        assert!(StreamTicket::take(&places, other).is_some());
        held.pop();
        assert!(StreamTicket::take(&places, host(99)).is_some());
        assert_eq!(places.lock().by_client.len(), 1, "the other one left");
    }

    fn stream(tracker: &ShardedTracker, gzip: bool) -> Vec<u8> {
        let mut body = StreamedBody::new(BodyKind::FullScrape, ticket(), gzip, true);
        let mut out = Vec::new();
        while !body.fill(tracker, (0, 0), &mut out) {}
        unchunk(&out)
    }

    #[test]
    fn unchunked_for_http_10_is_the_same_body() {
        let tracker = tracker_with(3000, 4);
        for gzip in [false, true] {
            let mut body = StreamedBody::new(BodyKind::FullScrape, ticket(), gzip, false);
            let mut out = Vec::new();
            while !body.fill(&tracker, (0, 0), &mut out) {}
            if gzip {
                let mut unzipped = Vec::new();
                flate2::read::GzDecoder::new(&out[..])
                    .read_to_end(&mut unzipped)
                    .unwrap();
                out = unzipped;
            }
            assert_eq!(out, stream(&tracker, false), "gzip {gzip}");
        }
    }

    /// The whole response a ranking gives after as many slices as it takes.
    fn gathered(tracker: &ShardedTracker, rank: Rank) -> (String, usize) {
        let mut ranking = Ranking::new(rank, &NetworksTurn::default(), Connection::Close, ticket());
        let mut out = Vec::new();
        let mut slices = 1;
        while !ranking.fill(tracker, 0, &mut out) {
            assert!(out.is_empty(), "output before the last slice");
            slices += 1;
        }
        (String::from_utf8(out).unwrap(), slices)
    }

    #[test]
    fn rankings_answer_whole_after_their_last_slice() {
        let tracker = tracker_with(3000, 16);
        let (top, slices) = gathered(&tracker, Rank::Torrents(10));
        assert_eq!(slices, 3);
        let (head, body) = top.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert!(head.contains(&format!("\r\nContent-Length: {}", body.len())));
        assert!(head.ends_with("\r\nConnection: close"), "{head}");
        // One seeder each: the lists by peers and by seeders are the first
        // ten torrents in hash order, across slices and shards.
        let mut first_ten = Vec::new();
        tracker.walk_on(&mut None, 10, 0, |hash, _| {
            first_ten.push(format!("\t1\t{}", hash.to_hex_upper()))
        });
        let lines: Vec<&str> = body.lines().collect();
        assert_eq!(lines[0], "Top 10 torrents by peers:");
        assert_eq!(lines[1..11], first_ten);
        assert_eq!(lines[12..22], first_ten);
        assert_eq!(lines[22..], ["Top 10 torrents by leechers:"]);

        let (networks, _) = gathered(&tracker, Rank::Networks);
        let (_, body) = networks.split_once("\r\n\r\n").unwrap();
        assert!(
            body.starts_with("Networks, limit /28:\n00003000: 10.0.0.0\n\n"),
            "{body}"
        );
    }

    #[test]
    fn one_count_of_networks_at_a_time() {
        let tracker = tracker_with(3000, 4);
        let turn = NetworksTurn::default();
        let mut first = Ranking::new(Rank::Networks, &turn, Connection::Close, ticket());
        let mut second = Ranking::new(Rank::Networks, &turn, Connection::Close, ticket());
        let mut out = Vec::new();
        assert!(!first.fill(&tracker, 0, &mut out));
        // The second waits for its turn, which the first gives up when it
        // goes, done or not; a top list does not wait.
        for _ in 0..10 {
            assert!(!second.fill(&tracker, 0, &mut out));
        }
        assert!(second.cursor.is_none());
        let mut top = Ranking::new(Rank::Torrents(10), &turn, Connection::Close, ticket());
        while !top.fill(&tracker, 0, &mut out) {}
        drop(first);
        let mut turns = 1;
        out.clear();
        while !second.fill(&tracker, 0, &mut out) {
            turns += 1;
        }
        // Three slices of torrents, one chunk sorted, one batch merged.
        assert_eq!(turns, 5);
        assert!(String::from_utf8(out)
            .unwrap()
            .contains("00003000: 10.0.0.0\n"));
    }

    #[test]
    fn full_scrape_bytes_are_counted_slice_by_slice() {
        let tracker = tracker_with(3000, 4);
        // Unchunked, so the output is the body bytes.
        let body = StreamedBody::new(BodyKind::FullScrape, ticket(), false, false);
        let mut body = SlicedBody::Streamed(body);
        let mut out = Vec::new();
        assert!(!body.fill(&tracker, (0, 0), &mut out));
        let first = body.take_full_scrape_bytes();
        assert_eq!(first, out.len() as u64, "counted before the body ends");
        assert_eq!(body.take_full_scrape_bytes(), 0, "and only once");
        let mut counted = first;
        while !body.fill(&tracker, (0, 0), &mut out) {
            counted += body.take_full_scrape_bytes();
        }
        counted += body.take_full_scrape_bytes();
        assert_eq!(counted, out.len() as u64);
        let ranking = Ranking::new(
            Rank::Torrents(10),
            &NetworksTurn::default(),
            Connection::Close,
            ticket(),
        );
        let mut ranking = SlicedBody::Ranking(ranking);
        while !ranking.fill(&tracker, (0, 0), &mut out) {}
        assert_eq!(ranking.take_full_scrape_bytes(), 0, "not a full scrape");
    }

    #[test]
    fn plain_and_gzip_agree() {
        let tracker = tracker_with(3, 1);
        let plain = stream(&tracker, false);
        assert!(plain.starts_with(b"d5:filesd20:"));
        assert!(plain.ends_with(b"ee"));
        let mut unzipped = Vec::new();
        flate2::read::GzDecoder::new(&stream(&tracker, true)[..])
            .read_to_end(&mut unzipped)
            .unwrap();
        assert_eq!(unzipped, plain);
    }

    #[test]
    fn empty_tracker() {
        assert_eq!(stream(&tracker_with(0, 1), false), b"d5:filesdee");
    }

    #[test]
    fn every_torrent_of_every_shard_once_in_ascending_order() {
        let plain = stream(&tracker_with(3000, 16), false);
        // Each entry is "20:" + hash + "d8:complete...": pick out the hashes.
        let mut hashes = Vec::new();
        let mut rest = &plain[b"d5:filesd".len()..];
        while rest.starts_with(b"20:") {
            hashes.push(rest[3..23].to_vec());
            let counts = &rest[23..];
            let end = counts.windows(2).position(|w| w == b"ee").unwrap();
            rest = &counts[end + 2..];
        }
        assert_eq!(rest, b"ee");
        assert_eq!(hashes.len(), 3000);
        assert!(hashes.windows(2).all(|w| w[0] < w[1]));
    }
}
