//! The compact peer record and the sorted peer list of a larger swarm.
//!
//! A peer is its address and port exactly as they go on the wire (network
//! order), so replies are plain copies, plus a 16-bit [`Mark`]: a wrapping
//! time stamp and the seeding and completed flags. That is 8 bytes for an
//! IPv4 peer, as upstream's, and 20 for an IPv6 one.

use super::bucket::BucketKey;
use super::capacity;
use super::clock::{Mark, PeerClock};
use super::search::load_early;

/// One peer; `N` is the compact address length, 6 (IPv4) or 18 (IPv6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peer<const N: usize> {
    pub addr: [u8; N],
    pub mark: Mark,
}

pub type Peer4 = Peer<6>;
pub type Peer6 = Peer<18>;

/// What an update did to a swarm.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Updated {
    /// The peer was not there before.
    pub new: bool,
    /// Seconds since the peer's previous announce (0 for a new peer).
    pub since_last: u32,
    /// This announce completed a download that had not been counted.
    pub newly_completed: bool,
    /// Change of the seeder count (-1, 0 or +1).
    pub seeder_delta: i32,
}

/// The announce being applied to a peer.
#[derive(Clone, Copy, Debug)]
pub struct Visit {
    pub clock: PeerClock,
    pub now: u32,
    pub seeding: bool,
    /// The peer is marked as having completed: an announce's
    /// `event=completed` from a seeder (a "completed" with bytes left is
    /// discarded, as upstream's), or a saved peer's mark, kept while it
    /// leeches again so that its next completion is not counted twice.
    pub completed: bool,
    /// The tracker's key for spreading a big swarm over buckets.
    pub key: BucketKey,
}

impl Visit {
    /// The mark of a peer first seen by this announce.
    pub fn fresh_mark(&self) -> Mark {
        Mark::new(self.clock.stamp(self.now), self.seeding, self.completed)
    }

    /// Refreshes an existing peer's mark; returns what changed.
    pub fn refresh(&self, mark: &mut Mark) -> Updated {
        let old = *mark;
        *mark = Mark::new(
            self.clock.stamp(self.now),
            self.seeding,
            old.completed() || self.completed,
        );
        Updated {
            new: false,
            since_last: self.clock.age(old, self.now),
            newly_completed: self.completed && !old.completed(),
            seeder_delta: i32::from(self.seeding) - i32::from(old.seeding()),
        }
    }

    /// The update a new peer makes.
    pub fn added(&self) -> Updated {
        let mark = self.fresh_mark();
        Updated {
            new: true,
            since_last: 0,
            newly_completed: mark.completed(),
            seeder_delta: i32::from(mark.seeding()),
        }
    }
}

/// Peers of one family sorted by address, so a peer is found by binary
/// search, with the seeder count kept alongside.
#[derive(Clone, Debug, Default)]
pub struct PeerList<const N: usize> {
    peers: Vec<Peer<N>>,
    seeders: u32,
}

/// A compact address (at most 18 bytes) as integers that order as its
/// bytes do: comparing them takes a few instructions where comparing the
/// byte arrays calls `memcmp`, which an IPv6 swarm's search felt.
fn sort_key<const N: usize>(addr: &[u8; N]) -> (u128, u16) {
    const { assert!(N <= 18) };
    let head = N.min(16);
    let mut high = [0u8; 16];
    high[..head].copy_from_slice(&addr[..head]);
    let mut low = [0u8; 2];
    low[..N - head].copy_from_slice(&addr[head..]);
    (u128::from_be_bytes(high), u16::from_be_bytes(low))
}

impl<const N: usize> PeerList<N> {
    pub fn len(&self) -> usize {
        self.peers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    pub fn seeders(&self) -> u32 {
        self.seeders
    }

    pub fn leechers(&self) -> u32 {
        self.peers.len() as u32 - self.seeders
    }

    pub fn peers(&self) -> &[Peer<N>] {
        &self.peers
    }

    /// A list of `peers` (distinct, any order).
    pub fn from_unsorted(mut peers: Vec<Peer<N>>) -> Self {
        peers.sort_unstable_by_key(|p| p.addr);
        let seeders = peers.iter().filter(|p| p.mark.seeding()).count() as u32;
        PeerList { peers, seeders }
    }

    pub fn into_peers(self) -> Vec<Peer<N>> {
        self.peers
    }

    pub fn contains(&self, addr: &[u8; N]) -> bool {
        self.locate(addr).is_ok()
    }

    /// How many peers' addresses start with `prefix`: sorted by address,
    /// they sit side by side, found by two binary searches.
    pub fn count_prefix(&self, prefix: &[u8]) -> usize {
        let k = prefix.len().min(N);
        let first = self.peers.partition_point(|p| p.addr[..k] < prefix[..k]);
        let rest = &self.peers[first..];
        rest.partition_point(|p| p.addr[..k] == prefix[..k])
    }

    /// Where the peer at `addr` is, or where it would go: as
    /// `binary_search`, but without branches, and each step starts loading
    /// both entries the next step may probe. A big swarm's list spans
    /// dozens of cache lines, so the misses of two steps overlap instead of
    /// queueing.
    fn locate(&self, addr: &[u8; N]) -> Result<usize, usize> {
        let peers = &self.peers[..];
        if peers.is_empty() {
            return Err(0);
        }
        let key = sort_key(addr);
        let (mut base, mut size) = (0, peers.len());
        while size > 1 {
            let half = size / 2;
            if let Some(lower) = peers.get(base + half / 2) {
                load_early(lower);
            }
            if let Some(upper) = peers.get(base + half + half / 2) {
                load_early(upper);
            }
            base = if sort_key(&peers[base + half].addr) <= key {
                base + half
            } else {
                base
            };
            size -= half;
        }
        match sort_key(&peers[base].addr).cmp(&key) {
            std::cmp::Ordering::Equal => Ok(base),
            std::cmp::Ordering::Less => Err(base + 1),
            std::cmp::Ordering::Greater => Err(base),
        }
    }

    /// Inserts or refreshes the peer at `addr`.
    pub fn update(&mut self, addr: [u8; N], visit: &Visit) -> Updated {
        let updated = match self.locate(&addr) {
            Ok(at) => visit.refresh(&mut self.peers[at].mark),
            Err(at) => {
                capacity::reserve_one(&mut self.peers);
                let mark = visit.fresh_mark();
                self.peers.insert(at, Peer { addr, mark });
                visit.added()
            }
        };
        self.seeders = self.seeders.wrapping_add_signed(updated.seeder_delta);
        updated
    }

    /// Adds a peer known not to be in the list.
    pub fn push_sorted(&mut self, peer: Peer<N>) {
        let at = self.peers.partition_point(|p| p.addr < peer.addr);
        capacity::reserve_one(&mut self.peers);
        self.peers.insert(at, peer);
        self.seeders += u32::from(peer.mark.seeding());
    }

    /// Removes the peer at `addr`; returns it if it was there.
    pub fn remove(&mut self, addr: &[u8; N]) -> Option<Peer<N>> {
        let at = self.locate(addr).ok()?;
        let peer = self.peers.remove(at);
        self.seeders -= u32::from(peer.mark.seeding());
        Some(peer)
    }

    /// Drops peers that timed out; returns (peers, seeders) dropped and the
    /// newest stamp among the dropped (for the torrent's last activity).
    pub fn expire(&mut self, clock: PeerClock, now: u32) -> Dropped {
        let mut dropped = Dropped::default();
        self.peers.retain(|p| {
            let expired = clock.expired(p.mark, now);
            if expired {
                dropped.count(clock, p.mark, now);
            }
            !expired
        });
        self.seeders -= dropped.seeders;
        capacity::trim(&mut self.peers);
        dropped
    }

    /// Appends up to `quota` distinct peers to `out`, leechers first, then
    /// seeders (see [`sample_indexed`]); returns how many leechers it wrote.
    pub fn sample_into(&self, quota: usize, rng: &mut fastrand::Rng, out: &mut Vec<u8>) -> usize {
        sample_indexed(self.peers.len(), quota, rng, out, |index| {
            &self.peers[index]
        })
    }
}

/// Peers a sparse sample takes side by side (see [`sample_indexed`]).
const SAMPLE_RUN: usize = 4;

/// Appends up to `quota` distinct peers of the `count` that `peer_at` finds
/// by index to `out`, leechers first, then seeders, and returns how many
/// leechers it wrote. With more than `quota`
/// the sample is stratified: the peers, rotated by a random offset, are cut
/// into equal slices, and each slice gives one random peer, or, with at
/// least twice as many peers as wanted, a run of up to [`SAMPLE_RUN`]
/// neighbours from a random place in it. Every peer has the same chance and
/// no one is always first.
pub fn sample_indexed<'a, const N: usize>(
    count: usize,
    quota: usize,
    rng: &mut fastrand::Rng,
    out: &mut Vec<u8>,
    peer_at: impl Fn(usize) -> &'a Peer<N>,
) -> usize {
    if quota == 0 || count == 0 {
        return 0;
    }
    if quota >= count {
        return write_leechers_first(0..count, peer_at, out);
    }
    let offset = rng.usize(..count);
    // A sparse sample is taken in runs of neighbours, each run from a slice
    // of its own: a run shares a cache line or two, where as many lone
    // picks would each miss the cache. Slices are wide enough for their
    // run once there are twice as many peers as wanted.
    let run = if count >= 2 * quota { SAMPLE_RUN } else { 1 };
    let slices = quota.div_ceil(run);
    // Slice bounds in 32.32 fixed point: a multiplication each instead of
    // a division; the last slice ends exactly at `count`.
    let step = ((count as u128) << 32) / slices as u128;
    let bound = |i: usize| {
        if i == slices {
            count
        } else {
            ((i as u128 * step) >> 32) as usize
        }
    };
    let picks = (0..slices).flat_map(|i| {
        let len = run.min(quota - i * run);
        let start = offset + rng.usize(bound(i)..=bound(i + 1) - len);
        (start..start + len).map(move |at| if at >= count { at - count } else { at })
    });
    // Every pick is found before any is read, so that the cache misses of
    // reading them overlap however long finding one takes.
    let filler = Peer {
        addr: [0; N],
        mark: Mark::ZERO,
    };
    let mut chosen = [&filler; 256];
    let mut chosen_vec = Vec::new();
    let picked: &[&Peer<N>] = if quota <= chosen.len() {
        for (slot, at) in chosen.iter_mut().zip(picks) {
            *slot = peer_at(at);
        }
        &chosen[..quota]
    } else {
        chosen_vec.extend(picks.map(&peer_at));
        &chosen_vec
    };
    write_leechers_first(0..quota, |at| picked[at], out)
}

/// Writes the peers at `indices` to `out`, leechers first, and returns how
/// many leechers there were. Each address
/// goes to the front (a leecher) or the back (a seeder) of the space made
/// for them, picked without a branch: to the branch predictor the seeding
/// flags of a random sample are coin tosses, and a mispredicted branch
/// would also throw away the loads of the peers after it.
fn write_leechers_first<'a, const N: usize>(
    indices: impl ExactSizeIterator<Item = usize>,
    peer_at: impl Fn(usize) -> &'a Peer<N>,
    out: &mut Vec<u8>,
) -> usize {
    let start = out.len();
    let (mut front, mut back) = (0, indices.len());
    out.resize(start + back * N, 0);
    let area = &mut out[start..];
    for index in indices {
        let peer = peer_at(index);
        let seeding = peer.mark.seeding();
        back -= usize::from(seeding);
        let slot = if seeding { back } else { front };
        front += usize::from(!seeding);
        area[slot * N..slot * N + N].copy_from_slice(&peer.addr);
    }
    front
}

/// Writes every peer of `peers`, leechers first; returns how many leechers
/// there were.
pub fn write_all<const N: usize>(peers: &[Peer<N>], out: &mut Vec<u8>) -> usize {
    for seeding in [false, true] {
        for peer in peers.iter().filter(|p| p.mark.seeding() == seeding) {
            out.extend_from_slice(&peer.addr);
        }
    }
    peers.iter().filter(|p| !p.mark.seeding()).count()
}

/// Peers dropped by an expiry or removal.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Dropped {
    pub peers: u32,
    pub seeders: u32,
    /// Tracker second of the newest announce among them (0 if none).
    pub last_seen: u32,
}

impl Dropped {
    pub fn count(&mut self, clock: PeerClock, mark: Mark, now: u32) {
        self.peers += 1;
        self.seeders += u32::from(mark.seeding());
        self.last_seen = self.last_seen.max(clock.seconds(mark, now));
    }

    pub fn add(&mut self, other: Dropped) {
        self.peers += other.peers;
        self.seeders += other.seeders;
        self.last_seen = self.last_seen.max(other.last_seen);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sort keys order as the addresses' bytes do, so lists stay sorted
    /// byte-wise (prefix counts rely on it).
    #[test]
    fn sort_keys_order_as_bytes_do() {
        fn check<const N: usize>(rng: &mut fastrand::Rng) {
            for _ in 0..10_000 {
                let a: [u8; N] = std::array::from_fn(|_| rng.u8(0..4));
                let b: [u8; N] = std::array::from_fn(|_| rng.u8(0..4));
                assert_eq!(sort_key(&a).cmp(&sort_key(&b)), a.cmp(&b), "{a:?} {b:?}");
            }
        }
        let mut rng = fastrand::Rng::with_seed(7);
        check::<6>(&mut rng);
        check::<18>(&mut rng);
    }

    fn addr(n: u8) -> [u8; 6] {
        [10, 0, 0, n, 0x1a, 0xe1]
    }

    fn visit(now: u32, seeding: bool, completed: bool) -> Visit {
        Visit {
            clock: PeerClock::new(100),
            now,
            seeding,
            completed,
            key: BucketKey::default(),
        }
    }

    #[test]
    fn peers_are_compact() {
        assert_eq!(std::mem::size_of::<Peer4>(), 8);
        assert_eq!(std::mem::size_of::<Peer6>(), 20);
    }

    #[test]
    fn update_counts_seeders_and_completion_once() {
        let mut list = PeerList::<6>::default();
        let u = list.update(addr(1), &visit(10, false, false));
        assert!(u.new);
        assert_eq!((list.len(), list.seeders()), (1, 0));
        let u = list.update(addr(1), &visit(20, true, true));
        assert!(!u.new && u.newly_completed);
        assert_eq!(u.since_last, 10);
        assert_eq!(list.seeders(), 1);
        assert!(!list.update(addr(1), &visit(30, true, true)).newly_completed);
        assert_eq!(
            list.update(addr(1), &visit(40, false, false)).seeder_delta,
            -1
        );
        assert_eq!(list.seeders(), 0);
        assert!(list.remove(&addr(1)).is_some());
        assert!(list.remove(&addr(1)).is_none());
    }

    #[test]
    fn locate_agrees_with_binary_search() {
        let mut rng = fastrand::Rng::with_seed(5);
        for len in [0, 1, 2, 3, 7, 8, 100, 701] {
            let peers: Vec<Peer4> = (0..len)
                .map(|_| Peer {
                    addr: [10, 0, rng.u8(..), rng.u8(..), rng.u8(..), 0],
                    mark: Mark::ZERO,
                })
                .collect();
            let mut list = PeerList::from_unsorted(peers);
            list.peers.dedup_by_key(|p| p.addr);
            let probes = (0..300).map(|_| [10, 0, rng.u8(..), rng.u8(..), rng.u8(..), 0]);
            for addr in list.peers.iter().map(|p| p.addr).chain(probes) {
                let plain = list.peers.binary_search_by(|p| p.addr.cmp(&addr));
                assert_eq!(list.locate(&addr), plain, "{len} peers, {addr:?}");
            }
        }
    }

    #[test]
    fn samples_are_distinct_and_full_at_every_size() {
        let mut rng = fastrand::Rng::with_seed(3);
        for count in [1, 2, 3, 7, 8, 9, 59, 60, 61, 200, 700, 1000] {
            let list = PeerList::from_unsorted(
                (0..count)
                    .map(|n: u32| Peer {
                        addr: [10, 0, (n >> 8) as u8, n as u8, 0, 1],
                        mark: Mark::ZERO,
                    })
                    .collect(),
            );
            for quota in [1, 2, 5, 29, 30, 31, 300, 999] {
                for _ in 0..20 {
                    let mut out = Vec::new();
                    list.sample_into(quota, &mut rng, &mut out);
                    let mut ids: Vec<&[u8]> = out.chunks(6).collect();
                    assert_eq!(ids.len(), quota.min(count as usize), "{count} {quota}");
                    ids.sort_unstable();
                    ids.dedup();
                    assert_eq!(ids.len(), quota.min(count as usize), "{count} {quota}");
                }
            }
        }
    }

    #[test]
    fn expiry() {
        let mut list = PeerList::<6>::default();
        list.update(addr(1), &visit(10, true, false));
        list.update(addr(2), &visit(50, false, false));
        let dropped = list.expire(PeerClock::new(100), 120);
        assert_eq!(
            (dropped.peers, dropped.seeders, dropped.last_seen),
            (1, 1, 10)
        );
        assert_eq!((list.len(), list.seeders()), (1, 0));
    }

    #[test]
    fn sample_is_distinct_fair_and_leechers_first() {
        let mut list = PeerList::<6>::default();
        for n in 0..100 {
            list.update(addr(n), &visit(1, n % 2 == 0, false));
        }
        let mut rng = fastrand::Rng::with_seed(7);
        let mut hits = [0u32; 100];
        for _ in 0..2000 {
            let mut out = Vec::new();
            list.sample_into(10, &mut rng, &mut out);
            assert_eq!(out.len(), 60);
            let ids: Vec<u8> = out.chunks(6).map(|c| c[3]).collect();
            let mut unique = ids.clone();
            unique.sort_unstable();
            unique.dedup();
            assert_eq!(unique.len(), 10);
            let first_seeder = ids.iter().position(|id| id % 2 == 0).unwrap_or(10);
            assert!(ids[first_seeder..].iter().all(|id| id % 2 == 0));
            for id in ids {
                hits[usize::from(id)] += 1;
            }
        }
        // Every peer is picked about 200 times out of 2000 draws of 10/100.
        assert!(hits.iter().all(|&h| (120..280).contains(&h)), "{hits:?}");
    }
}
