//! Swarm state, pure: torrents and their peers in RAM.
//!
//! The tracker never does I/O and never reads a clock: `now` (seconds on the
//! caller's monotonic clock) comes in with each call, and sampled peers are
//! written in compact wire form into buffers the caller owns, so neither HTTP
//! nor UDP details leak in here.
//!
//! Memory per torrent and per peer is the headline figure, so torrents live
//! in a trie of small sorted leaves ([`index`]), by kind: up to two peers
//! of one family inline ([`small`]), more, or both families, on the heap
//! ([`crowd`]); a peer is 8 bytes, 20 over IPv6 ([`peer`]), with a 14-bit
//! wrapping time stamp ([`clock`]). A big swarm's
//! peers are split into buckets by a keyed hash ([`bucket`]), so that no
//! announce moves more than a few thousand of them.

pub mod access_list;
mod bucket;
#[cfg(test)]
mod bucket_tests;
mod capacity;
mod clock;
mod crowd;
pub mod hybrids;
mod index;
mod leaf;
mod networks;
pub mod pace;
pub mod peer;
mod peer_set;
pub mod rtc;
mod search;
mod shards;
mod small;
pub mod swarm;
#[cfg(test)]
mod tests;
mod torrent;

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use crate::proto::{Event, InfoHash, SwarmCounts};
use access_list::AccessList;
use bucket::BucketKey;
use clock::PeerClock;
use index::Index;
use leaf::{Addr, Swept};
pub use networks::{Busiest, NetworkRanking, Networks};
use peer::Visit;
pub use shards::ShardedTracker;
use swarm::split_quota;
use torrent::Torrent;

/// Timeouts, in seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// A peer is forgotten this long after its last announce.
    pub peer: u32,
    /// The longest [`Tracker::set_peer_timeout`] may make `peer` (announce
    /// pacing); it sizes the unit of peer time stamps.
    pub peer_longest: u32,
    /// A peerless torrent with completed downloads is kept this long.
    pub torrent: u32,
}

/// One announce, protocol-independent.
#[derive(Clone, Copy, Debug)]
pub struct Announce {
    pub info_hash: InfoHash,
    /// The peer's address and the port it listens on.
    pub peer: SocketAddr,
    pub seeding: bool,
    pub event: Event,
    /// Peers wanted, already clamped by the protocol's rules.
    pub numwant: usize,
}

/// Which peers a reply may carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Families {
    /// Only the requester's family (UDP: one compact format per reply).
    Own,
    /// Both (HTTP: `peers` and `peers6`).
    Both,
}

/// The outcome of an announce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Announced {
    /// Counts after the announce; sampled peers are in the caller's buffers.
    Ok {
        counts: SwarmCounts,
        completed: bool,
    },
    /// The peer left (`event=stopped`); counts after its removal.
    Stopped { counts: SwarmCounts },
    /// The access list refuses this torrent.
    NotAuthorized,
}

/// Totals over all torrents, kept up to date on every change.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub torrents: usize,
    pub peers: u64,
    pub seeders: u64,
    /// Completed events ever counted.
    pub completed: u64,
    /// Announces answered but not stored, for a limit (see [`Limits`]).
    pub unstored: u64,
}

/// The most a tracker stores. At any limit an announce that would add
/// a peer or a torrent is answered from what is stored but not stored
/// itself, so memory stays bounded under a flood of made-up peers or info
/// hashes while every stored swarm goes on being served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub peers: u64,
    pub torrents: usize,
    /// Peers one network may have in one torrent: an IPv4 address, or an
    /// IPv6 /64. One host can announce as many peers as it has ports, and
    /// one IPv6 subscriber as many as it has addresses.
    pub peers_per_network: usize,
}

impl Limits {
    pub const NONE: Limits = Limits {
        peers: u64::MAX,
        torrents: usize::MAX,
        peers_per_network: usize::MAX,
    };
}

/// Peers and torrents held by all shards of a [`ShardedTracker`] together,
/// which its [`Limits`] bound: each shard adds its own changes. Shards
/// check it under their own locks, so with several threads the tracker may
/// pass a limit by a peer or torrent per thread.
#[derive(Debug, Default)]
pub struct Held {
    peers: AtomicU64,
    torrents: AtomicUsize,
}

/// One torrent as a walk sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Listed {
    pub counts: SwarmCounts,
    /// Seconds since its last announce (to the peer clock's unit).
    pub idle: u32,
}

/// A peer as a state file keeps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SavedPeer {
    pub addr: SocketAddr,
    pub seeding: bool,
    /// Its completed download was counted; a repeated `completed` is not.
    pub completed: bool,
    /// Seconds since its last announce (to the peer clock's unit).
    pub age: u32,
}

/// One torrent as a state file keeps it.
#[derive(Clone, Copy, Debug)]
pub struct Saved<'a> {
    pub hash: &'a InfoHash,
    pub completed: u32,
    /// Seconds since its last announce.
    pub idle: u32,
    /// Its peers that have not timed out.
    pub peers: &'a [SavedPeer],
}

/// How many minutes-since-last-announce buckets the renew histogram has.
pub const RENEW_BUCKETS: usize = 45;

/// All torrents, ordered by info hash so a full scrape can walk them in
/// ascending order and resume where it left off.
pub struct Tracker {
    index: Index,
    access: AccessList,
    timeouts: Timeouts,
    clock: PeerClock,
    rng: fastrand::Rng,
    /// Spreads big swarms over buckets; secret, so that attackers cannot
    /// crowd one bucket.
    bucket_key: BucketKey,
    peers: u64,
    seeders: u64,
    completed: u64,
    renew: [u64; RENEW_BUCKETS],
    limits: Limits,
    /// What the tracker this shard is part of holds; `None` when it is
    /// the whole tracker, whose own counts then say.
    held: Option<Arc<Held>>,
    /// Seeders are sent leechers only (`tracker.leechers_only_for_seeders`).
    leechers_only_for_seeders: bool,
    unstored: u64,
    /// Where the sweep resumes: a hash in the last leaf it swept.
    sweep_cursor: Option<[u8; 20]>,
}

/// A random announce interval in [base - base/10, base + base/10), as
/// upstream's 1800 s ± 180 s, so that clients started together drift apart.
pub fn jittered_interval(rng: &mut fastrand::Rng, base: u32) -> u32 {
    let jitter = base / 10;
    base - jitter + rng.u32(0..(2 * jitter).max(1))
}

impl Tracker {
    /// An empty tracker; `seed` drives peer sampling.
    pub fn new(timeouts: Timeouts, seed: u64) -> Self {
        Tracker::for_share(timeouts, seed, 0, 1, None)
    }

    /// An empty tracker for the info hashes whose first byte falls in
    /// share `share` of `shares` (see [`ShardedTracker`]), counting what it
    /// holds into `held` as well when it is one shard of several.
    pub fn for_share(
        timeouts: Timeouts,
        seed: u64,
        share: usize,
        shares: usize,
        held: Option<Arc<Held>>,
    ) -> Self {
        let mut rng = fastrand::Rng::with_seed(seed);
        let bucket_key = BucketKey::draw(&mut rng);
        Tracker {
            index: Index::for_share(share, shares),
            access: AccessList::open(),
            timeouts,
            clock: PeerClock::up_to(timeouts.peer, timeouts.peer_longest),
            rng,
            bucket_key,
            peers: 0,
            seeders: 0,
            completed: 0,
            renew: [0; RENEW_BUCKETS],
            limits: Limits::NONE,
            held,
            leechers_only_for_seeders: false,
            unstored: 0,
            sweep_cursor: None,
        }
    }

    /// Sets what this tracker stores at most. Peers and torrents already
    /// past a lowered limit stay until they expire.
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// The peers and torrents the whole tracker holds, against its limits.
    fn held(&self) -> (u64, usize) {
        match &self.held {
            Some(held) => (
                held.peers.load(Ordering::Relaxed),
                held.torrents.load(Ordering::Relaxed),
            ),
            None => (self.peers, self.index.len()),
        }
    }

    fn peers_added(&mut self, count: u64) {
        self.peers += count;
        if let Some(held) = &self.held {
            held.peers.fetch_add(count, Ordering::Relaxed);
        }
    }

    fn peers_removed(&mut self, count: u64) {
        self.peers -= count;
        if let Some(held) = &self.held {
            held.peers.fetch_sub(count, Ordering::Relaxed);
        }
    }

    fn torrent_added(&mut self) {
        self.index.added();
        if let Some(held) = &self.held {
            held.torrents.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Whether a seeder's announce is answered with leechers only: another
    /// seeder has nothing for it. Upstream sends seeders too (last).
    pub fn set_leechers_only_for_seeders(&mut self, leechers_only: bool) {
        self.leechers_only_for_seeders = leechers_only;
    }

    /// Changes how long a peer is kept without announcing, up to
    /// [`Timeouts::peer_longest`]; stored peers keep their stamps.
    pub fn set_peer_timeout(&mut self, seconds: u32) {
        self.clock = self.clock.with_timeout(seconds);
    }

    /// Replaces the access list. Torrents already tracked stay until they
    /// expire; new announces are checked against the new list.
    pub fn set_access_list(&mut self, access: AccessList) {
        self.access = access;
    }

    /// See [`AccessList::set_listed`].
    pub fn set_listed(&mut self, hash: InfoHash, listed: bool) -> bool {
        self.access.set_listed(hash, listed)
    }

    pub fn access_list(&self) -> &AccessList {
        &self.access
    }

    /// Handles one announce, appending sampled peers to `peers4` (6 bytes
    /// each) and `peers6` (18 bytes each). The requester is not excluded, as
    /// upstream: a lone first announcer gets itself back.
    pub fn announce(
        &mut self,
        request: &Announce,
        families: Families,
        now: u32,
        peers4: &mut Vec<u8>,
        peers6: &mut Vec<u8>,
    ) -> Announced {
        let ip = request.peer.ip().to_canonical();
        let port = request.peer.port();
        if request.event == Event::Stopped {
            return Announced::Stopped {
                counts: self.stop(&request.info_hash, ip, port, now),
            };
        }
        if !self.access.allows(&request.info_hash) {
            return Announced::NotAuthorized;
        }
        let addr = Addr::new(ip, port);
        let visit = Visit {
            clock: self.clock,
            now,
            seeding: request.seeding,
            completed: request.event == Event::Completed && request.seeding,
            key: self.bucket_key,
        };
        let hash = &request.info_hash.0;
        let leechers_only = request.seeding && self.leechers_only_for_seeders;
        let (held_peers, held_torrents) = self.held();
        let rng = &mut self.rng;
        let mut sample = |torrent: &Torrent| {
            // A seeder sent leechers only has them split between families.
            let (have4, have6) = if leechers_only {
                torrent.leechers_held()
            } else {
                torrent.have()
            };
            let quotas = match (families, ip) {
                (Families::Both, _) => split_quota(request.numwant, have4, have6),
                (Families::Own, IpAddr::V4(_)) => (request.numwant, 0),
                (Families::Own, IpAddr::V6(_)) => (0, request.numwant),
            };
            torrent.sample_into(quotas, leechers_only, rng, peers4, peers6);
        };
        let limits = self.limits;
        if held_peers >= limits.peers
            || held_torrents >= limits.torrents
            || limits.peers_per_network != Limits::NONE.peers_per_network
        {
            let leaf = self.index.leaf(hash);
            let found = leaf.find(hash).map(|slot| leaf.get(slot));
            // Refreshing a stored peer adds nothing; anything else would.
            let stored = found.is_some_and(|t| t.contains(&addr));
            // Counting the network's peers takes a search per bucket: only
            // for a newcomer.
            let full = || match found {
                None => held_torrents >= limits.torrents || held_peers >= limits.peers,
                Some(torrent) => {
                    held_peers >= limits.peers
                        || torrent.peers_in_network(&addr) >= limits.peers_per_network
                }
            };
            if !stored && full() {
                self.unstored += 1;
                let Some(torrent) = found else {
                    return Announced::Ok {
                        counts: SwarmCounts::default(),
                        completed: false,
                    };
                };
                sample(&torrent);
                return Announced::Ok {
                    counts: torrent.counts(),
                    completed: false,
                };
            }
        }
        let leaf = self.index.leaf_mut(hash);
        let (updated, slot, new_torrent) = leaf.announce(hash, addr, &visit);
        let torrent = leaf.get(slot);
        let counts = torrent.counts();
        sample(&torrent);
        if new_torrent {
            self.torrent_added();
        }

        if updated.new {
            self.peers_added(1);
        } else {
            let minutes = (updated.since_last / 60) as usize;
            self.renew[minutes.min(RENEW_BUCKETS - 1)] += 1;
        }
        self.seeders = self
            .seeders
            .wrapping_add_signed(updated.seeder_delta.into());
        self.completed += u64::from(updated.newly_completed);
        Announced::Ok {
            counts,
            completed: updated.newly_completed,
        }
    }

    fn stop(&mut self, hash: &InfoHash, ip: IpAddr, port: u16, now: u32) -> SwarmCounts {
        let addr = Addr::new(ip, port);
        let leaf = self.index.leaf_mut(&hash.0);
        let Some((removed_seeding, counts)) = leaf.stop(&hash.0, addr, self.clock, now) else {
            return SwarmCounts::default();
        };
        if let Some(seeding) = removed_seeding {
            self.peers_removed(1);
            self.seeders -= u64::from(seeding);
        }
        counts
    }

    /// Adds a torrent from a state dump: no peers, `completed` downloads,
    /// last announced `idle` seconds before `now`. Returns false, changing
    /// nothing, when the access list refuses it or it is already tracked.
    pub fn restore(&mut self, hash: &InfoHash, completed: u32, idle: u32, now: u32) -> bool {
        if !self.access.allows(hash) || self.held().1 >= self.limits.torrents {
            return false;
        }
        let last_active = now.saturating_sub(idle);
        let restored = (self.index.leaf_mut(&hash.0)).restore(
            &hash.0,
            completed,
            last_active,
            self.clock,
            now,
        );
        if restored {
            self.torrent_added();
        }
        restored
    }

    /// Adds a peer from a state file to a torrent [`Tracker::restore`]d
    /// first, as last seen `peer.age` seconds before `now`: it expires when
    /// it would have, had the tracker kept running. No download is counted.
    /// Returns false when the torrent is refused or not there, a peer
    /// limit is reached, or the peer was there already.
    pub fn restore_peer(&mut self, hash: &InfoHash, peer: &SavedPeer, now: u32) -> bool {
        let addr = Addr::new(peer.addr.ip().to_canonical(), peer.addr.port());
        let held_peers = self.held().0;
        let leaf = self.index.leaf_mut(&hash.0);
        let Some(slot) = leaf.find(&hash.0) else {
            return false;
        };
        let torrent = leaf.get(slot);
        if held_peers >= self.limits.peers
            || torrent.contains(&addr)
            || torrent.peers_in_network(&addr) >= self.limits.peers_per_network
        {
            return false;
        }
        let visit = Visit {
            clock: self.clock,
            now: now.saturating_sub(peer.age),
            seeding: peer.seeding,
            completed: peer.completed,
            key: self.bucket_key,
        };
        let (updated, _) = leaf.restore_peer(&hash.0, addr, &visit);
        self.peers_added(u64::from(updated.new));
        self.seeders = self
            .seeders
            .wrapping_add_signed(updated.seeder_delta.into());
        updated.new
    }

    /// Calls `visit` with every torrent and its peers that have not timed
    /// out, as a state file keeps them.
    pub fn visit_saved(&self, now: u32, visit: &mut impl FnMut(Saved)) {
        let mut peers = Vec::new();
        self.walk_torrents(None, usize::MAX, &mut |torrent| {
            self.visit_saved_torrent(torrent, now, &mut peers, visit)
        });
    }

    /// Calls `visit` with `torrent` as a state file keeps it; `peers` is
    /// scratch space.
    fn visit_saved_torrent(
        &self,
        torrent: Torrent<'_>,
        now: u32,
        peers: &mut Vec<SavedPeer>,
        visit: &mut impl FnMut(Saved),
    ) {
        let clock = self.clock;
        peers.clear();
        torrent.visit_peers(&mut |addr, mark| {
            if !clock.expired(mark, now) {
                peers.push(SavedPeer {
                    addr: addr.socket_addr(),
                    seeding: mark.seeding(),
                    completed: mark.completed(),
                    age: clock.age(mark, now),
                });
            }
        });
        visit(Saved {
            hash: &InfoHash(*torrent.hash()),
            completed: torrent.counts().completed,
            idle: now.saturating_sub(torrent.last_active(clock, now)),
            peers,
        });
    }

    /// The counts of one torrent, or `None` when it is not tracked.
    pub fn scrape(&self, hash: &InfoHash) -> Option<SwarmCounts> {
        let leaf = self.index.leaf(&hash.0);
        leaf.find(&hash.0).map(|slot| leaf.get(slot).counts())
    }

    pub fn totals(&self) -> Totals {
        Totals {
            torrents: self.index.len(),
            peers: self.peers,
            seeders: self.seeders,
            completed: self.completed,
            unstored: self.unstored,
        }
    }

    /// Re-announces bucketed by minutes since the peer's previous announce.
    pub fn renew_histogram(&self) -> &[u64; RENEW_BUCKETS] {
        &self.renew
    }

    /// Calls `visit` for up to `max` torrents in ascending hash order,
    /// starting after `after`, at tracker second `now`. Returns the last
    /// hash visited, or `None` when the walk reached the end.
    pub fn walk(
        &self,
        after: Option<&InfoHash>,
        max: usize,
        now: u32,
        mut visit: impl FnMut(&InfoHash, Listed),
    ) -> Option<InfoHash> {
        self.walk_torrents(after, max, &mut |torrent| {
            let (hash, listed) = self.listed(torrent, now);
            visit(&hash, listed)
        })
    }

    /// What a full scrape or a state dump shows of `torrent`.
    fn listed(&self, torrent: Torrent<'_>, now: u32) -> (InfoHash, Listed) {
        let idle = now.saturating_sub(torrent.last_active(self.clock, now));
        let counts = torrent.counts();
        (InfoHash(*torrent.hash()), Listed { counts, idle })
    }

    /// The walk under [`Tracker::walk`] and the state file's: up to `max`
    /// torrents after `after`; the last visited, or `None` at the end.
    fn walk_torrents(
        &self,
        after: Option<&InfoHash>,
        max: usize,
        visit: &mut dyn FnMut(Torrent<'_>),
    ) -> Option<InfoHash> {
        let mut left = max;
        let mut last = None;
        let stopped = self.index.visit_after(after.map(|h| &h.0), &mut |torrent| {
            if left == 0 {
                return false;
            }
            left -= 1;
            last = Some(InfoHash(*torrent.hash()));
            visit(torrent);
            true
        });
        if stopped {
            last
        } else {
            None
        }
    }

    /// Drops expired peers and torrents in about `max` torrents (whole
    /// leaves of the index), continuing where the previous call stopped.
    /// Returns true when this call reached the end of the torrents (a full
    /// sweep is complete).
    pub fn sweep(&mut self, now: u32, max: usize) -> bool {
        let (clock, torrent_timeout) = (self.clock, self.timeouts.torrent);
        let mut swept = Swept::default();
        let cursor = self.sweep_cursor.take();
        let torrents_before = self.index.len();
        self.sweep_cursor = self.index.sweep(cursor.as_ref(), max, &mut |leaf| {
            let dropped = leaf.sweep(clock, now, torrent_timeout);
            swept.peers += dropped.peers;
            swept.seeders += dropped.seeders;
            dropped.torrents
        });
        self.peers_removed(swept.peers);
        self.seeders -= swept.seeders;
        if let Some(held) = &self.held {
            let dropped = torrents_before - self.index.len();
            held.torrents.fetch_sub(dropped, Ordering::Relaxed);
        }
        self.sweep_cursor.is_none()
    }

    /// Drops every peer, once the clock has jumped by half the stamps' wrap
    /// or more (see [`PeerClock::half_wrap`]): a stamp then reads as any
    /// age, fresh ones among them. A whole sweep at `now` drops those that
    /// read as expired; one at a second that puts the rest past the
    /// timeout drops those. A sweep under way starts over.
    pub fn forget_every_peer(&mut self, now: u32) {
        for at in [now, self.clock.past_every_fresh_stamp(now)] {
            self.sweep_cursor = None;
            self.sweep(at, usize::MAX);
        }
    }
}

/// The `n` torrents with the most peers, seeders and leechers, offered one
/// torrent at a time so that a walk can gather them a slice per turn.
pub struct Tops {
    n: usize,
    /// By peers, by seeders, by leechers; each most first, equal counts in
    /// the order offered.
    lists: [Vec<(u64, InfoHash)>; 3],
}

impl Tops {
    pub fn new(n: usize) -> Self {
        Tops {
            n,
            lists: Default::default(),
        }
    }

    pub fn offer(&mut self, hash: &InfoHash, counts: SwarmCounts) {
        let values = [
            u64::from(counts.seeders + counts.leechers),
            u64::from(counts.seeders),
            u64::from(counts.leechers),
        ];
        for (list, value) in self.lists.iter_mut().zip(values) {
            let full = list.len() == self.n;
            if value == 0 || (full && list.last().is_some_and(|&(v, _)| v >= value)) {
                continue;
            }
            let at = list.partition_point(|&(v, _)| v >= value);
            list.insert(at, (value, *hash));
            list.truncate(self.n);
        }
    }

    pub fn n(&self) -> usize {
        self.n
    }

    /// By peers, by seeders, by leechers.
    pub fn lists(&self) -> &[Vec<(u64, InfoHash)>; 3] {
        &self.lists
    }
}
