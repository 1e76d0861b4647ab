//! One family's peers of a crowd: a flat sorted list while the swarm is
//! small, [`Buckets`] once it is big (see [`super::bucket`] for why and
//! when). Small crowds, nearly all of them, pay nothing for this: the flat
//! form is the same list as before, and the bucketed one is a pointer in
//! its place.

use super::bucket::{bucket_count, Buckets};
use super::clock::PeerClock;
use super::peer::{Dropped, Peer, PeerList, Updated, Visit};

#[derive(Clone, Debug)]
pub enum PeerSet<const N: usize> {
    Flat(PeerList<N>),
    Bucketed(Box<Buckets<N>>),
}

impl<const N: usize> Default for PeerSet<N> {
    fn default() -> Self {
        PeerSet::Flat(PeerList::default())
    }
}

impl<const N: usize> PeerSet<N> {
    pub fn len(&self) -> usize {
        match self {
            PeerSet::Flat(list) => list.len(),
            PeerSet::Bucketed(buckets) => buckets.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn seeders(&self) -> u32 {
        match self {
            PeerSet::Flat(list) => list.seeders(),
            PeerSet::Bucketed(buckets) => buckets.seeders(),
        }
    }

    pub fn leechers(&self) -> u32 {
        self.len() as u32 - self.seeders()
    }

    /// The peers, when they are in one list: always so for a swarm of
    /// fewer than [`super::bucket::GROW_ABOVE`] / 2 peers.
    pub fn flat_peers(&self) -> Option<&[Peer<N>]> {
        match self {
            PeerSet::Flat(list) => Some(list.peers()),
            PeerSet::Bucketed(_) => None,
        }
    }

    /// Calls `visit` with every peer.
    pub fn visit(&self, visit: &mut impl FnMut(&Peer<N>)) {
        match self {
            PeerSet::Flat(list) => list.peers().iter().for_each(visit),
            PeerSet::Bucketed(buckets) => buckets.peers().for_each(visit),
        }
    }

    pub fn contains(&self, addr: &[u8; N]) -> bool {
        match self {
            PeerSet::Flat(list) => list.contains(addr),
            PeerSet::Bucketed(buckets) => buckets.contains(addr),
        }
    }

    /// How many peers' addresses start with `prefix`.
    pub fn count_prefix(&self, prefix: &[u8]) -> usize {
        match self {
            PeerSet::Flat(list) => list.count_prefix(prefix),
            PeerSet::Bucketed(buckets) => buckets.count_prefix(prefix),
        }
    }

    /// Inserts or refreshes the peer at `addr`, spreading a flat list that
    /// outgrew [`super::bucket::GROW_ABOVE`] over buckets.
    pub fn update(&mut self, addr: [u8; N], visit: &Visit) -> Updated {
        match self {
            PeerSet::Bucketed(buckets) => buckets.update(addr, visit),
            PeerSet::Flat(list) => {
                let updated = list.update(addr, visit);
                let count = bucket_count(list.len(), 1);
                if count > 1 {
                    let peers = std::mem::take(list).into_peers();
                    *self = PeerSet::Bucketed(Box::new(Buckets::spread(visit.key, peers, count)));
                }
                updated
            }
        }
    }

    /// Adds a peer known not to be in a flat list (a small torrent's peer
    /// moving here).
    pub fn push_sorted(&mut self, peer: Peer<N>) {
        match self {
            PeerSet::Flat(list) => list.push_sorted(peer),
            PeerSet::Bucketed(_) => unreachable!("only new crowds take peers this way"),
        }
    }

    /// Removes the peer at `addr`; returns it if it was there.
    pub fn remove(&mut self, addr: &[u8; N]) -> Option<Peer<N>> {
        match self {
            PeerSet::Flat(list) => list.remove(addr),
            PeerSet::Bucketed(buckets) => {
                let (removed, count) = buckets.remove(addr);
                self.flatten_if(count);
                removed
            }
        }
    }

    /// Drops peers that timed out.
    pub fn expire(&mut self, clock: PeerClock, now: u32) -> Dropped {
        match self {
            PeerSet::Flat(list) => list.expire(clock, now),
            PeerSet::Bucketed(buckets) => {
                let (dropped, count) = buckets.expire(clock, now);
                self.flatten_if(count);
                dropped
            }
        }
    }

    /// Goes back to one list when the buckets asked for one.
    fn flatten_if(&mut self, count: usize) {
        if let (PeerSet::Bucketed(buckets), 1) = (&mut *self, count) {
            *self = PeerSet::Flat(PeerList::from_unsorted(buckets.take_peers()));
        }
    }

    /// Appends up to `quota` distinct peers to `out`, leechers first; a
    /// fair random sample when there are more. Returns how many leechers
    /// it wrote.
    pub fn sample_into(&self, quota: usize, rng: &mut fastrand::Rng, out: &mut Vec<u8>) -> usize {
        match self {
            PeerSet::Flat(list) => list.sample_into(quota, rng, out),
            PeerSet::Bucketed(buckets) => buckets.sample_into(quota, rng, out),
        }
    }
}
