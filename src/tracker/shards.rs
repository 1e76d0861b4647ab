//! The tracker shared between threads: torrents split by the first byte of
//! their info hash into shards, each a [`Tracker`] behind its own lock.
//!
//! Shards are contiguous ranges of the hash space, so walking them in order
//! still visits torrents in ascending hash order, and a full scrape resumes
//! across shard boundaries as within one. With a single shard (UDP served
//! by the event loop alone) the lock is never contended and costs two
//! uncontended atomic operations per request.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::access_list::{AccessList, Sizes};
use super::networks::Networks;
use super::torrent::Torrent;
use super::{Held, Limits, Listed, Saved, SavedPeer, Timeouts, Totals, Tracker, RENEW_BUCKETS};
use crate::proto::{InfoHash, SwarmCounts};

/// Most shards a tracker is split into: one per value of the first byte.
pub const MAX_SHARDS: usize = 256;

pub struct ShardedTracker {
    shards: Box<[Mutex<Tracker>]>,
    /// The shard the sweep is in; only the sweeping thread moves it.
    sweep_shard: AtomicUsize,
    access: Mutex<Sizes>,
}

fn lock(shard: &Mutex<Tracker>) -> MutexGuard<'_, Tracker> {
    // A panic while a shard is held aborts the process in release builds,
    // so a poisoned lock only shows up in tests, where the panic is reported.
    shard.lock().unwrap_or_else(PoisonError::into_inner)
}

impl ShardedTracker {
    /// `shards` is rounded up to a power of two, at most [`MAX_SHARDS`].
    pub fn new(timeouts: Timeouts, shards: usize, seed: u64) -> Self {
        let count = shards.clamp(1, MAX_SHARDS).next_power_of_two();
        let mut seeds = fastrand::Rng::with_seed(seed);
        // A lone shard's own counts are the tracker's.
        let held = (count > 1).then(|| Arc::new(Held::default()));
        ShardedTracker {
            shards: (0..count)
                .map(|share| {
                    let seed = seeds.u64(..);
                    let tracker = Tracker::for_share(timeouts, seed, share, count, held.clone());
                    Mutex::new(tracker)
                })
                .collect(),
            sweep_shard: AtomicUsize::new(0),
            access: Mutex::new(Sizes::default()),
        }
    }

    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    fn shard_index(&self, hash: &InfoHash) -> usize {
        usize::from(hash.0[0]) * self.shards.len() / MAX_SHARDS
    }

    /// The shard that holds `hash`, locked: announce into it.
    pub fn shard(&self, hash: &InfoHash) -> MutexGuard<'_, Tracker> {
        lock(&self.shards[self.shard_index(hash)])
    }

    /// See [`Tracker::restore`].
    pub fn restore(&self, hash: &InfoHash, completed: u32, idle: u32, now: u32) -> bool {
        self.shard(hash).restore(hash, completed, idle, now)
    }

    /// See [`Tracker::scrape`].
    pub fn scrape(&self, hash: &InfoHash) -> Option<SwarmCounts> {
        self.shard(hash).scrape(hash)
    }

    /// Sets what the tracker stores at most, across all its shards: one
    /// huge swarm may take all of `max_peers`, as in a tracker of one shard.
    pub fn set_limits(&self, limits: Limits) {
        for shard in self.shards.iter() {
            lock(shard).set_limits(limits);
        }
    }

    /// See [`Tracker::set_leechers_only_for_seeders`].
    pub fn set_leechers_only_for_seeders(&self, leechers_only: bool) {
        for shard in self.shards.iter() {
            lock(shard).set_leechers_only_for_seeders(leechers_only);
        }
    }

    /// See [`Tracker::set_peer_timeout`].
    pub fn set_peer_timeout(&self, seconds: u32) {
        for shard in self.shards.iter() {
            lock(shard).set_peer_timeout(seconds);
        }
    }

    /// Replaces the access lists, each shard getting the hashes in its range.
    pub fn set_access_list(&self, list: AccessList) {
        let sizes = list.sizes();
        let parts = list.split(self.shards.len(), |hash| self.shard_index(hash));
        for (shard, part) in self.shards.iter().zip(parts) {
            lock(shard).set_access_list(part);
        }
        *self.access.lock().unwrap_or_else(PoisonError::into_inner) = sizes;
    }

    /// Puts `hash` on the list changesets edit or takes it off (a changeset
    /// line); true when that changed anything.
    pub fn set_listed(&self, hash: InfoHash, listed: bool) -> bool {
        let changed = self.shard(&hash).set_listed(hash, listed);
        if changed {
            let mut access = self.access.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(size) = access.edited_mut() {
                *size = if listed { *size + 1 } else { *size - 1 };
            }
        }
        changed
    }

    /// Whether the access lists in force allow `hash`.
    pub fn allows(&self, hash: &InfoHash) -> bool {
        self.shard(hash).access_list().allows(hash)
    }

    /// Whether the blacklist in force names `hash`.
    pub fn blacklists(&self, hash: &InfoHash) -> bool {
        self.shard(hash).access_list().blacklists(hash)
    }

    /// How many hashes each access list in force holds.
    pub fn access_list(&self) -> Sizes {
        *self.access.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn totals(&self) -> Totals {
        let mut sum = Totals::default();
        for shard in self.shards.iter() {
            let totals = lock(shard).totals();
            sum.torrents += totals.torrents;
            sum.peers += totals.peers;
            sum.seeders += totals.seeders;
            sum.completed += totals.completed;
            sum.unstored += totals.unstored;
        }
        sum
    }

    /// See [`Tracker::renew_histogram`].
    pub fn renew_histogram(&self) -> [u64; RENEW_BUCKETS] {
        let mut sum = [0; RENEW_BUCKETS];
        for shard in self.shards.iter() {
            for (total, count) in sum.iter_mut().zip(lock(shard).renew_histogram()) {
                *total += count;
            }
        }
        sum
    }

    /// See [`Tracker::restore_peer`].
    pub fn restore_peer(&self, hash: &InfoHash, peer: &SavedPeer, now: u32) -> bool {
        self.shard(hash).restore_peer(hash, peer, now)
    }

    /// As [`ShardedTracker::walk_on`], adding the network of every peer of
    /// the torrents visited to `networks` (for [`Networks::busiest`]).
    pub fn walk_networks_on(
        &self,
        cursor: &mut Option<InfoHash>,
        max: usize,
        networks: &mut Networks,
    ) -> bool {
        self.walk_shards(cursor, max, &mut |_, torrent| {
            torrent.visit_peers(&mut |addr, _| networks.add(&addr));
        })
    }

    /// Visits up to `max` torrents in ascending hash order across shards,
    /// after `cursor` (from the first when `None`), at tracker second
    /// `now`, and leaves `cursor` at the last one visited. Returns true once
    /// no torrent is left after it.
    pub fn walk_on(
        &self,
        cursor: &mut Option<InfoHash>,
        max: usize,
        now: u32,
        mut visit: impl FnMut(&InfoHash, Listed),
    ) -> bool {
        self.walk_shards(cursor, max, &mut |tracker, torrent| {
            let (hash, listed) = tracker.listed(torrent, now);
            visit(&hash, listed)
        })
    }

    /// As [`ShardedTracker::walk_on`], with each torrent and its live
    /// peers as a state file keeps them. One shard is locked at a time, for
    /// `max` torrents at most, so a save can run beside the requests.
    pub fn walk_saved(
        &self,
        cursor: &mut Option<InfoHash>,
        max: usize,
        now: u32,
        mut visit: impl FnMut(Saved),
    ) -> bool {
        let mut peers = Vec::new();
        self.walk_shards(cursor, max, &mut |tracker, torrent| {
            tracker.visit_saved_torrent(torrent, now, &mut peers, &mut visit)
        })
    }

    fn walk_shards(
        &self,
        cursor: &mut Option<InfoHash>,
        max: usize,
        visit: &mut dyn FnMut(&Tracker, Torrent<'_>),
    ) -> bool {
        let first = cursor.as_ref().map_or(0, |hash| self.shard_index(hash));
        let mut left = max;
        for (i, shard) in self.shards.iter().enumerate().skip(first) {
            if left == 0 {
                return false;
            }
            let resume = if i == first { *cursor } else { None };
            let tracker = lock(shard);
            let stopped = tracker.walk_torrents(resume.as_ref(), left, &mut |torrent| {
                left -= 1;
                *cursor = Some(InfoHash(*torrent.hash()));
                visit(&tracker, torrent);
            });
            if stopped.is_some() {
                return false;
            }
        }
        true
    }

    /// How far the clock may jump between two turns before some expired
    /// peers could read as fresh: see [`Tracker::forget_every_peer`].
    pub fn longest_safe_jump(&self) -> u32 {
        lock(&self.shards[0]).clock.half_wrap()
    }

    /// See [`Tracker::forget_every_peer`]; every shard in turn.
    pub fn forget_every_peer(&self, now: u32) {
        for shard in &self.shards {
            lock(shard).forget_every_peer(now);
        }
    }

    /// See [`Tracker::sweep`]: about `max` torrents of one shard per call;
    /// true when the sweep has been through every shard.
    pub fn sweep(&self, now: u32, max: usize) -> bool {
        let index = self.sweep_shard.load(Ordering::Relaxed);
        if !lock(&self.shards[index]).sweep(now, max) {
            return false;
        }
        let next = (index + 1) % self.shards.len();
        self.sweep_shard.store(next, Ordering::Relaxed);
        next == 0
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;
    use crate::proto::Event;
    use crate::tracker::access_list::Kind;
    use crate::tracker::{Announce, Announced, Families, Tops};

    const TIMEOUTS: Timeouts = Timeouts {
        peer: 100,
        peer_longest: 100,
        torrent: 1000,
    };

    fn hash(first: u8, last: u8) -> InfoHash {
        let mut hash = [0; 20];
        hash[0] = first;
        hash[19] = last;
        InfoHash(hash)
    }

    fn announce(t: &ShardedTracker, hash: InfoHash, peer: &str, now: u32) -> Announced {
        let request = Announce {
            info_hash: hash,
            peer: peer.parse::<SocketAddr>().unwrap(),
            seeding: false,
            event: Event::None,
            numwant: 50,
        };
        let mut shard = t.shard(&hash);
        shard.announce(
            &request,
            Families::Both,
            now,
            &mut Vec::new(),
            &mut Vec::new(),
        )
    }

    /// One torrent at each of these first bytes, so every shard of 4 has some.
    const FIRST_BYTES: [u8; 8] = [0, 1, 0x3f, 0x40, 0x80, 0xbf, 0xc0, 0xff];

    fn filled(shards: usize) -> ShardedTracker {
        let t = ShardedTracker::new(TIMEOUTS, shards, 7);
        for (i, first) in FIRST_BYTES.into_iter().enumerate() {
            for peer in 0..=i {
                announce(&t, hash(first, 1), &format!("10.0.0.{peer}:1"), 0);
            }
        }
        t
    }

    #[test]
    fn shard_count_is_a_power_of_two_within_bounds() {
        assert_eq!(ShardedTracker::new(TIMEOUTS, 0, 1).shard_count(), 1);
        assert_eq!(ShardedTracker::new(TIMEOUTS, 3, 1).shard_count(), 4);
        assert_eq!(ShardedTracker::new(TIMEOUTS, 1000, 1).shard_count(), 256);
    }

    #[test]
    fn each_shard_holds_only_the_roots_of_its_share() {
        for shards in [1, 4, 256] {
            let t = ShardedTracker::new(TIMEOUTS, shards, 1);
            for shard in t.shards.iter() {
                assert_eq!(lock(shard).index.root_count(), 4096 / shards);
            }
        }
    }

    #[test]
    fn every_first_byte_is_found_walked_and_swept_in_its_shard() {
        // The first and last root of every first byte.
        let hashes: Vec<InfoHash> = (0..=255u8)
            .flat_map(|first| [0x00, 0xf0].map(|second| (first, second)))
            .map(|(first, second)| {
                let mut hash = hash(first, 1);
                hash.0[1] = second;
                hash
            })
            .collect();
        for shards in [2, 8, 256] {
            let t = ShardedTracker::new(TIMEOUTS, shards, 1);
            for &hash in &hashes {
                announce(&t, hash, "10.0.0.1:1", 0);
            }
            for hash in &hashes {
                assert_eq!(t.scrape(hash).map(|c| c.leechers), Some(1));
            }
            let mut walked = Vec::new();
            assert!(t.walk_on(&mut None, 1000, 0, |h, _| walked.push(*h)));
            assert_eq!(walked, hashes, "{shards} shards");
            // One leaf per call, so that every step resumes from a cursor.
            while !t.sweep(1000, 1) {}
            assert_eq!(t.totals().peers, 0, "{shards} shards: every peer expired");
        }
    }

    #[test]
    fn totals_and_scrapes_span_shards() {
        let t = filled(4);
        let totals = t.totals();
        assert_eq!((totals.torrents, totals.peers), (8, 36));
        let counts = t.scrape(&hash(0xff, 1)).unwrap();
        assert_eq!(counts.leechers, 8);
        assert_eq!(t.scrape(&hash(0xff, 2)), None);
    }

    #[test]
    fn walk_is_ascending_across_shards_and_resumes_anywhere() {
        let t = filled(4);
        let mut all = Vec::new();
        assert!(t.walk_on(&mut None, 100, 0, |h, _| all.push(*h)));
        let expected: Vec<InfoHash> = FIRST_BYTES.iter().map(|&b| hash(b, 1)).collect();
        assert_eq!(all, expected);
        // In chunks of every size the same sequence comes out.
        for chunk in 1..=8 {
            let mut seen = Vec::new();
            let mut cursor = None;
            while !t.walk_on(&mut cursor, chunk, 0, |h, _| seen.push(*h)) {}
            assert_eq!(seen, expected, "chunks of {chunk}");
            // A save walks the same way, each torrent with all its peers.
            let mut saved = Vec::new();
            let mut cursor = None;
            while !t.walk_saved(&mut cursor, chunk, 0, |s| {
                saved.push((*s.hash, s.peers.len()))
            }) {}
            let with_peers: Vec<(InfoHash, usize)> = expected
                .iter()
                .enumerate()
                .map(|(i, h)| (*h, i + 1))
                .collect();
            assert_eq!(saved, with_peers, "saved in chunks of {chunk}");
        }
    }

    #[test]
    fn tops_are_gathered_across_slices_and_shards() {
        let t = filled(4);
        let mut tops = Tops::new(3);
        let mut cursor = None;
        // Two torrents a slice: the walk resumes within and across shards.
        while !t.walk_on(&mut cursor, 2, 0, |hash, listed| {
            tops.offer(hash, listed.counts)
        }) {}
        let [all, _, leechers] = tops.lists();
        let firsts: Vec<u8> = all.iter().map(|(_, h)| h.0[0]).collect();
        assert_eq!(firsts, [0xff, 0xc0, 0xbf]);
        assert_eq!(leechers[0].0, 8);
    }

    #[test]
    fn limits_bound_the_whole_tracker_so_one_swarm_may_take_them_all() {
        let t = ShardedTracker::new(TIMEOUTS, 8, 7);
        t.set_limits(Limits {
            peers: 6,
            torrents: 3,
            peers_per_network: Limits::NONE.peers_per_network,
        });
        let stored = |t: &ShardedTracker| (t.totals().peers, t.totals().torrents);
        let leave = |hash: InfoHash, peer: &str, now: u32| {
            let stop = Announce {
                info_hash: hash,
                peer: peer.parse().unwrap(),
                seeding: false,
                event: Event::Stopped,
                numwant: 0,
            };
            let (mut v4, mut v6) = (Vec::new(), Vec::new());
            t.shard(&hash)
                .announce(&stop, Families::Both, now, &mut v4, &mut v6);
        };
        // One swarm in one shard takes all six peers, not an eighth of them.
        for peer in 0..7 {
            announce(&t, hash(0x10, 1), &format!("10.0.0.{peer}:1"), 0);
        }
        assert_eq!(stored(&t), (6, 1));
        assert_eq!(t.totals().unstored, 1);
        // Full: a newcomer in another shard is answered but not stored.
        announce(&t, hash(0xf0, 1), "10.0.1.1:1", 0);
        assert_eq!(stored(&t), (6, 1));
        // A peer leaving makes room, wherever the next one comes.
        leave(hash(0x10, 1), "10.0.0.0:1", 1);
        announce(&t, hash(0xf0, 1), "10.0.1.1:1", 1);
        assert_eq!(stored(&t), (6, 2));
        // The torrent limit counts every shard's torrents too.
        leave(hash(0xf0, 1), "10.0.1.1:1", 2);
        announce(&t, hash(0x80, 1), "10.0.2.1:1", 2);
        assert_eq!(stored(&t), (6, 3));
        leave(hash(0x80, 1), "10.0.2.1:1", 3);
        announce(&t, hash(0x40, 1), "10.0.2.2:1", 3);
        assert_eq!(stored(&t), (5, 3));
        announce(&t, hash(0x10, 1), "10.0.2.2:1", 3);
        assert_eq!(stored(&t), (6, 3));
        // Once the sweep has dropped expired peers and torrents, the
        // tracker has room for as many as before.
        while !t.sweep(5000, usize::MAX) {}
        assert_eq!(stored(&t), (0, 0));
        for peer in 0..7 {
            announce(&t, hash(0xc0 + peer, 1), &format!("10.0.3.{peer}:1"), 5000);
        }
        assert_eq!(stored(&t), (3, 3));
    }

    #[test]
    fn sweep_visits_every_shard_then_reports_the_end() {
        let t = filled(4);
        let mut calls = 1;
        while !t.sweep(1000, 8192) {
            calls += 1;
        }
        assert_eq!(calls, 4);
        assert_eq!(t.totals().peers, 0, "every peer expired");
    }

    #[test]
    fn threads_announcing_at_once_lose_nothing() {
        let t = std::sync::Arc::new(ShardedTracker::new(TIMEOUTS, 16, 1));
        let threads: Vec<_> = (0..4u16)
            .map(|thread| {
                let t = std::sync::Arc::clone(&t);
                std::thread::spawn(move || {
                    for i in 0..2000u16 {
                        let torrent = hash((i % 64 * 4) as u8, 0);
                        let peer = format!("10.{thread}.{}.{}:1", i / 250, i % 250);
                        assert!(matches!(
                            announce(&t, torrent, &peer, 0),
                            Announced::Ok { .. }
                        ));
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let totals = t.totals();
        assert_eq!((totals.torrents, totals.peers), (64, 8000));
    }

    #[test]
    fn access_list_is_split_by_shard_and_counted_whole() {
        let t = ShardedTracker::new(TIMEOUTS, 4, 1);
        let listed = [hash(0, 1), hash(0xff, 1)];
        let taken_down = hash(0x40, 1);
        let whitelist =
            AccessList::open().with(Kind::Whitelist, listed.into_iter().chain([taken_down]));
        t.set_access_list(whitelist.with(Kind::Blacklist, [taken_down]));
        let sizes = t.access_list();
        assert_eq!((sizes.whitelist, sizes.blacklist), (Some(3), Some(1)));
        assert_eq!(
            announce(&t, taken_down, "10.0.0.1:1", 0),
            Announced::NotAuthorized
        );
        assert!(t.set_listed(hash(0x80, 2), true));
        assert_eq!(
            t.access_list().whitelist,
            Some(4),
            "changesets edit the whitelist"
        );
        for allowed in listed {
            assert!(matches!(
                announce(&t, allowed, "10.0.0.1:1", 0),
                Announced::Ok { .. }
            ));
        }
        let refused = announce(&t, hash(0x80, 1), "10.0.0.1:1", 0);
        assert_eq!(refused, Announced::NotAuthorized);
    }
}
