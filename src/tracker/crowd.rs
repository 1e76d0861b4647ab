//! Torrents too big for inline slots: sorted peer lists on the heap (split
//! into buckets once big, see [`super::peer_set`]), IPv6 boxed apart since
//! most swarms never see an IPv6 peer.

use super::clock::PeerClock;
use super::peer::{Dropped, Peer4, Updated, Visit};
use super::peer_set::PeerSet;
use super::small::{self, Small};
use crate::proto::SwarmCounts;

/// A torrent with more than two IPv4 peers or any IPv6 peer (or fewer, until
/// the next sweep moves it to an inline kind).
#[derive(Clone, Debug)]
pub struct Crowd {
    pub hash: [u8; 20],
    pub completed: u32,
    /// Tracker second of the last announce.
    pub last_active: u32,
    pub v4: PeerSet<6>,
    pub v6: Option<Box<PeerSet<18>>>,
}

/// Where a torrent belongs after its peers changed.
pub enum Fit {
    One(Small<1>),
    Two(Small<2>),
    Crowd,
}

impl Crowd {
    /// A crowd holding an inline torrent's peers.
    pub fn from_small<const N: usize>(small: &Small<N>, clock: PeerClock, now: u32) -> Self {
        let mut v4 = PeerSet::default();
        for &peer in small.peers() {
            v4.push_sorted(peer);
        }
        Crowd {
            hash: small.hash,
            completed: small.completed(),
            last_active: small.last_active(clock, now),
            v4,
            v6: None,
        }
    }

    pub fn counts(&self) -> SwarmCounts {
        let (seeders6, leechers6) = self
            .v6
            .as_ref()
            .map_or((0, 0), |l| (l.seeders(), l.leechers()));
        SwarmCounts {
            seeders: self.v4.seeders() + seeders6,
            leechers: self.v4.leechers() + leechers6,
            completed: self.completed,
        }
    }

    pub fn v6_len(&self) -> usize {
        self.v6.as_ref().map_or(0, |l| l.len())
    }

    pub fn update_v4(&mut self, addr: [u8; 6], visit: &Visit) -> Updated {
        self.last_active = visit.now;
        self.v4.update(addr, visit)
    }

    pub fn update_v6(&mut self, addr: [u8; 18], visit: &Visit) -> Updated {
        self.last_active = visit.now;
        self.v6
            .get_or_insert_with(Default::default)
            .update(addr, visit)
    }

    /// Drops peers that timed out, and the IPv6 list once it is empty.
    pub fn expire(&mut self, clock: PeerClock, now: u32) -> Dropped {
        let mut dropped = self.v4.expire(clock, now);
        if let Some(v6) = &mut self.v6 {
            dropped.add(v6.expire(clock, now));
            if v6.is_empty() {
                self.v6 = None;
            }
        }
        dropped
    }

    /// The smallest kind that holds this torrent's peers now.
    pub fn fit(&self) -> Fit {
        if self.v6.is_some() || self.v4.len() > 2 || self.completed > small::COMPLETED_MAX {
            return Fit::Crowd;
        }
        // At most two peers are always in one list.
        let Some(peers) = self.v4.flat_peers() else {
            return Fit::Crowd;
        };
        let peers: &[Peer4] = peers;
        if peers.len() == 2 {
            Fit::Two(Small::with_peers(
                self.hash,
                self.completed,
                self.last_active,
                peers,
            ))
        } else {
            Fit::One(Small::with_peers(
                self.hash,
                self.completed,
                self.last_active,
                peers,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moves_between_kinds() {
        let clock = PeerClock::new(10);
        let visit = |now| Visit {
            clock,
            now,
            seeding: true,
            completed: true,
            key: Default::default(),
        };
        let mut two = Small::<2>::empty([7; 20], 0, 0);
        two.update([1; 6], &visit(1));
        two.update([2; 6], &visit(2));
        let mut crowd = Crowd::from_small(&two, clock, 3);
        assert_eq!(crowd.last_active, 2);
        crowd.update_v4([3; 6], &visit(4));
        crowd.update_v6([4; 18], &visit(12));
        assert!(matches!(crowd.fit(), Fit::Crowd));
        assert_eq!(crowd.counts().seeders, 4);
        let dropped = crowd.expire(clock, 14);
        assert_eq!((dropped.peers, dropped.last_seen), (2, 2));
        assert!(matches!(crowd.fit(), Fit::Crowd));
        crowd.expire(clock, 25);
        assert!(crowd.v6.is_none());
        match crowd.fit() {
            Fit::One(one) => {
                assert_eq!(one.count(), 0);
                assert_eq!(one.last_active(clock, 25), 12);
            }
            _ => panic!("an empty crowd fits one slot"),
        }
    }
}
