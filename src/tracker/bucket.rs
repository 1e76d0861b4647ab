//! A big swarm's peers of one family, split into buckets by a keyed hash of
//! the peer address.
//!
//! One sorted vector per family makes every new peer move half of it: at
//! 100k peers that is 400 KB per announce, and an attacker with one address
//! and many ports (a peer is its address *and* port) can fill one torrent
//! and make each announce slower than the last. Split into a power of two of
//! sorted buckets, each a few thousand peers on average, an insert or
//! removal moves a bounded amount whatever the swarm's size.
//!
//! The bucket comes from SipHash of the compact address under a key drawn
//! once per tracker, so addresses chosen by an attacker spread like any
//! others and cannot be aimed at one bucket. The bucket count follows the
//! swarm with hysteresis (see [`bucket_count`]); a change re-spreads all
//! peers, once per doubling or halving, so its cost per peer is constant.

use super::capacity;
use super::clock::PeerClock;
use super::peer::{sample_indexed, Dropped, Peer, PeerList, Updated, Visit};

/// A swarm of one family doubles its buckets once they hold more than this
/// many peers on average, so an insert moves about 16 KB (IPv4; half a
/// bucket) at most on average, whatever the swarm's size.
pub const GROW_ABOVE: usize = 4096;
/// ...and halves them below a quarter of that, so a swarm at either
/// threshold does not re-spread back and forth.
const SHRINK_BELOW: usize = GROW_ABOVE / 4;

/// The bucket count for `len` peers, starting from `count` (1 is a flat
/// list): doubled while the average passes [`GROW_ABOVE`], halved while it
/// is under [`SHRINK_BELOW`]. Between the two it stays, so after a change
/// the swarm must double or halve before the next.
pub fn bucket_count(len: usize, count: usize) -> usize {
    let mut count = count.max(1);
    while len > count * GROW_ABOVE {
        count *= 2;
    }
    while count > 1 && len < count * SHRINK_BELOW {
        count /= 2;
    }
    count
}

/// The tracker's secret for spreading peers over buckets.
pub use crate::keyed_hash::KeyedHash as BucketKey;

/// Peers of one family spread over a power of two of sorted buckets.
#[derive(Clone, Debug)]
pub struct Buckets<const N: usize> {
    key: BucketKey,
    buckets: Vec<PeerList<N>>,
    /// How many peers the buckets before each hold: where each starts when
    /// the buckets are laid end to end, for sampling. Kept up to date on
    /// every insert and removal, which is cheap next to the bucket's own
    /// memmove (a few hundred buckets at most).
    starts: Vec<u32>,
    len: usize,
    seeders: u32,
}

impl<const N: usize> Buckets<N> {
    /// Spreads `peers` (any order, distinct) over `count` buckets.
    pub fn spread(key: BucketKey, peers: Vec<Peer<N>>, count: usize) -> Self {
        let mut buckets = Buckets {
            key,
            buckets: Vec::new(),
            starts: Vec::new(),
            len: 0,
            seeders: 0,
        };
        buckets.fill(vec![peers], count);
        buckets
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// How many peers each bucket holds.
    #[cfg(test)]
    pub fn bucket_lens(&self) -> Vec<usize> {
        self.buckets.iter().map(PeerList::len).collect()
    }

    pub fn seeders(&self) -> u32 {
        self.seeders
    }

    /// All peers, bucket after bucket; the buckets are left empty.
    pub fn take_peers(&mut self) -> Vec<Peer<N>> {
        let mut peers = Vec::with_capacity(self.len);
        for bucket in std::mem::take(&mut self.buckets) {
            peers.extend(bucket.into_peers());
        }
        (self.len, self.seeders) = (0, 0);
        peers
    }

    pub fn contains(&self, addr: &[u8; N]) -> bool {
        self.buckets[self.bucket_of(addr)].contains(addr)
    }

    pub fn peers(&self) -> impl Iterator<Item = &Peer<N>> {
        self.buckets.iter().flat_map(PeerList::peers)
    }

    /// See [`PeerList::count_prefix`]: a network's peers are spread over
    /// every bucket, as the hash covers the whole address.
    pub fn count_prefix(&self, prefix: &[u8]) -> usize {
        self.buckets.iter().map(|b| b.count_prefix(prefix)).sum()
    }

    /// The bucket `addr` belongs in: the low bits of its keyed hash.
    fn bucket_of(&self, addr: &[u8; N]) -> usize {
        self.key.hash(addr) as usize & (self.buckets.len() - 1)
    }

    /// Replaces the buckets with `count` built from `sources` (each a
    /// vector of distinct peers). A first pass hashes every peer once and
    /// counts per bucket, so each bucket is allocated once at its size.
    fn fill(&mut self, sources: Vec<Vec<Peer<N>>>, count: usize) {
        debug_assert!(count.is_power_of_two());
        self.buckets = (0..count).map(|_| PeerList::default()).collect();
        let total: usize = sources.iter().map(Vec::len).sum();
        let mut targets = Vec::with_capacity(total);
        let mut sizes = vec![0usize; count];
        for peer in sources.iter().flatten() {
            let at = self.bucket_of(&peer.addr);
            targets.push(at as u32);
            sizes[at] += 1;
        }
        let mut spread: Vec<Vec<Peer<N>>> = sizes
            .iter()
            .map(|&size| {
                let mut bucket = Vec::new();
                capacity::reserve(&mut bucket, size);
                bucket
            })
            .collect();
        for (peer, &at) in sources.into_iter().flatten().zip(&targets) {
            spread[at as usize].push(peer);
        }
        self.len = total;
        self.seeders = 0;
        for (bucket, peers) in self.buckets.iter_mut().zip(spread) {
            *bucket = PeerList::from_unsorted(peers);
            self.seeders += bucket.seeders();
        }
        self.recount_starts();
    }

    fn recount_starts(&mut self) {
        let mut start = 0;
        self.starts.clear();
        for bucket in &self.buckets {
            self.starts.push(start);
            start += bucket.len() as u32;
        }
    }

    /// Moves the start of every bucket after `bucket` by one peer.
    fn shift_starts(&mut self, bucket: usize, added: bool) {
        for start in &mut self.starts[bucket + 1..] {
            *start = if added { *start + 1 } else { *start - 1 };
        }
    }

    /// Re-spreads the peers over `count` buckets.
    fn respread(&mut self, count: usize) {
        let sources = std::mem::take(&mut self.buckets)
            .into_iter()
            .map(PeerList::into_peers)
            .collect();
        self.fill(sources, count);
    }

    /// Re-spreads after a change of size if the swarm has outgrown (or
    /// shrunk below) its bucket count; returns the count wanted now, which
    /// is 1 when the caller should go back to a flat list.
    fn resize(&mut self) -> usize {
        let count = bucket_count(self.len, self.buckets.len());
        if count > 1 && count != self.buckets.len() {
            self.respread(count);
        }
        count
    }

    /// Inserts or refreshes the peer at `addr`.
    pub fn update(&mut self, addr: [u8; N], visit: &Visit) -> Updated {
        let at = self.bucket_of(&addr);
        let updated = self.buckets[at].update(addr, visit);
        self.seeders = self.seeders.wrapping_add_signed(updated.seeder_delta);
        if updated.new {
            self.len += 1;
            self.shift_starts(at, true);
            self.resize();
        }
        updated
    }

    /// Removes the peer at `addr`; returns it, and the bucket count wanted
    /// now (1: flatten).
    pub fn remove(&mut self, addr: &[u8; N]) -> (Option<Peer<N>>, usize) {
        let at = self.bucket_of(addr);
        let Some(peer) = self.buckets[at].remove(addr) else {
            return (None, self.buckets.len());
        };
        self.len -= 1;
        self.seeders -= u32::from(peer.mark.seeding());
        self.shift_starts(at, false);
        (Some(peer), self.resize())
    }

    /// Drops peers that timed out, in every bucket; returns them and the
    /// bucket count wanted now (1: flatten).
    pub fn expire(&mut self, clock: PeerClock, now: u32) -> (Dropped, usize) {
        let mut dropped = Dropped::default();
        for bucket in &mut self.buckets {
            dropped.add(bucket.expire(clock, now));
        }
        self.len -= dropped.peers as usize;
        self.seeders -= dropped.seeders;
        self.recount_starts();
        (dropped, self.resize())
    }

    /// Appends up to `quota` distinct peers to `out`, leechers first, as
    /// [`PeerList::sample_into`] does, over the buckets laid end to end: a
    /// peer's index is its place in that concatenation, so every peer is as
    /// likely as in one list. Keyed hashing fills the buckets about evenly,
    /// so an index's bucket is first guessed in proportion and then
    /// corrected by a step or two: cheaper than a binary search of the
    /// starts, and with branches that rarely mispredict.
    pub fn sample_into(&self, quota: usize, rng: &mut fastrand::Rng, out: &mut Vec<u8>) -> usize {
        let last = self.buckets.len() - 1;
        // Buckets per peer in 32-bit fixed point.
        let scale = ((self.buckets.len() as u64) << 32) / self.len.max(1) as u64;
        sample_indexed(self.len, quota, rng, out, |index| {
            let mut bucket = (((index as u64 * scale) >> 32) as usize).min(last);
            while self.starts[bucket] as usize > index {
                bucket -= 1;
            }
            while bucket < last && self.starts[bucket + 1] as usize <= index {
                bucket += 1;
            }
            &self.buckets[bucket].peers()[index - self.starts[bucket] as usize]
        })
    }
}
