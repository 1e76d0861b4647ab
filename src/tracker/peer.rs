//! The compact peer record: the bytes a peer costs is a headline figure.
//!
//! A peer is its address and port exactly as they go on the wire (6 bytes
//! for IPv4, 18 for IPv6, network order), so replies are plain copies, plus
//! two flag bytes and the second it last announced: 12 and 24 bytes.

/// One peer of one address family; `N` is 6 (IPv4) or 18 (IPv6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peer<const N: usize> {
    /// IP address then port, network byte order: the compact wire form.
    pub addr: [u8; N],
    pub seeding: bool,
    /// Sticky once counted, so repeating `completed` never counts twice.
    pub completed: bool,
    /// Tracker clock second of the last announce.
    pub last_seen: u32,
}

pub type Peer4 = Peer<6>;
pub type Peer6 = Peer<18>;

/// The peers of one family in one torrent, sorted by address so that a peer
/// is found by binary search, with the seeder count kept alongside.
#[derive(Clone, Debug, Default)]
pub struct PeerList<const N: usize> {
    peers: Vec<Peer<N>>,
    seeders: u32,
}

/// What an update did to the list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Updated {
    /// The peer was not in the list before.
    pub new: bool,
    /// Seconds since the peer's previous announce (0 for a new peer).
    pub since_last: u32,
    /// This announce completed a download that had not been counted.
    pub newly_completed: bool,
    /// Change of the seeder count (-1, 0 or +1).
    pub seeder_delta: i32,
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

    /// Inserts or refreshes the peer at `addr`. `completed` counts only for a
    /// seeder, as upstream: a "completed" with bytes left is discarded.
    pub fn update(&mut self, addr: [u8; N], seeding: bool, completed: bool, now: u32) -> Updated {
        let completed = completed && seeding;
        match self.peers.binary_search_by(|p| p.addr.cmp(&addr)) {
            Ok(at) => {
                let peer = &mut self.peers[at];
                let seeder_delta = i32::from(seeding) - i32::from(peer.seeding);
                let newly_completed = completed && !peer.completed;
                let since_last = now.saturating_sub(peer.last_seen);
                peer.seeding = seeding;
                peer.completed |= completed;
                peer.last_seen = now;
                self.seeders = self.seeders.wrapping_add_signed(seeder_delta);
                Updated {
                    new: false,
                    since_last,
                    newly_completed,
                    seeder_delta,
                }
            }
            Err(at) => {
                self.peers.insert(
                    at,
                    Peer {
                        addr,
                        seeding,
                        completed,
                        last_seen: now,
                    },
                );
                self.seeders += u32::from(seeding);
                Updated {
                    new: true,
                    since_last: 0,
                    newly_completed: completed,
                    seeder_delta: i32::from(seeding),
                }
            }
        }
    }

    /// Removes the peer at `addr`; returns it if it was there.
    pub fn remove(&mut self, addr: &[u8; N]) -> Option<Peer<N>> {
        let at = self.peers.binary_search_by(|p| p.addr.cmp(addr)).ok()?;
        let peer = self.peers.remove(at);
        self.seeders -= u32::from(peer.seeding);
        Some(peer)
    }

    /// Drops peers last seen before `cutoff`; returns (peers, seeders) dropped.
    pub fn expire(&mut self, cutoff: u32) -> (u32, u32) {
        let before = (self.peers.len() as u32, self.seeders);
        self.peers.retain(|p| p.last_seen >= cutoff);
        self.seeders = self.peers.iter().filter(|p| p.seeding).count() as u32;
        if self.peers.capacity() > 4 * self.peers.len().max(1) {
            self.peers.shrink_to(2 * self.peers.len());
        }
        (before.0 - self.peers.len() as u32, before.1 - self.seeders)
    }

    /// Appends up to `quota` distinct peers in compact form to `out`,
    /// leechers first, then seeders. When the list holds more than `quota`,
    /// the sample is stratified: one random peer from each of `quota` equal
    /// slices, rotated by a random offset, so every peer has the same chance
    /// and no one is always first.
    pub fn sample_into(&self, quota: usize, rng: &mut fastrand::Rng, out: &mut Vec<u8>) {
        let count = self.peers.len();
        if quota == 0 || count == 0 {
            return;
        }
        if quota >= count {
            for seeding in [false, true] {
                for peer in self.peers.iter().filter(|p| p.seeding == seeding) {
                    out.extend_from_slice(&peer.addr);
                }
            }
            return;
        }
        let offset = rng.usize(..count);
        let pick = |i: usize, rng: &mut fastrand::Rng| {
            let start = i * count / quota;
            let end = (i + 1) * count / quota;
            (offset + rng.usize(start..end)) % count
        };
        let mut chosen = [0usize; 256];
        let mut chosen_vec = Vec::new();
        let indices: &mut [usize] = if quota <= chosen.len() {
            for (i, slot) in chosen.iter_mut().take(quota).enumerate() {
                *slot = pick(i, rng);
            }
            &mut chosen[..quota]
        } else {
            chosen_vec.extend((0..quota).map(|i| pick(i, rng)));
            &mut chosen_vec
        };
        for seeding in [false, true] {
            for &index in indices.iter() {
                let peer = &self.peers[index];
                if peer.seeding == seeding {
                    out.extend_from_slice(&peer.addr);
                }
            }
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &Peer<N>> {
        self.peers.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(n: u8) -> [u8; 6] {
        [10, 0, 0, n, 0x1a, 0xe1]
    }

    #[test]
    fn update_counts_seeders_and_completion_once() {
        let mut list = PeerList::<6>::default();
        let u = list.update(addr(1), false, false, 10);
        assert!(u.new);
        assert_eq!((list.len(), list.seeders()), (1, 0));
        let u = list.update(addr(1), true, true, 20);
        assert!(!u.new && u.newly_completed);
        assert_eq!(u.since_last, 10);
        assert_eq!(list.seeders(), 1);
        assert!(!list.update(addr(1), true, true, 30).newly_completed);
        // A completed event while still leeching is discarded.
        assert!(!list.update(addr(2), false, true, 30).newly_completed);
        assert_eq!(list.update(addr(1), false, false, 40).seeder_delta, -1);
        assert_eq!(list.seeders(), 0);
        assert!(list.remove(&addr(1)).is_some());
        assert!(list.remove(&addr(1)).is_none());
    }

    #[test]
    fn expiry() {
        let mut list = PeerList::<6>::default();
        list.update(addr(1), true, false, 10);
        list.update(addr(2), false, false, 50);
        assert_eq!(list.expire(20), (1, 1));
        assert_eq!((list.len(), list.seeders()), (1, 0));
    }

    #[test]
    fn sample_is_distinct_fair_and_leechers_first() {
        let mut list = PeerList::<6>::default();
        for n in 0..100 {
            list.update(addr(n), n % 2 == 0, false, 1);
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
