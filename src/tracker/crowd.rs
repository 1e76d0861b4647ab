//! Torrents too big for inline slots, or with peers of both families:
//! sorted peer lists on the heap (split into buckets once big, see
//! [`super::peer_set`]), IPv6 boxed apart since most swarms never see an
//! IPv6 peer.

use super::clock::{Mark, PeerClock};
use super::leaf::Addr;
use super::peer::{Dropped, Peer, Updated, Visit};
use super::peer_set::PeerSet;
use super::small::{self, Small};
use crate::proto::SwarmCounts;

/// A torrent with more than two peers of a family or peers of both (or
/// fewer, until the next sweep moves it to an inline kind).
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
    One6(Small<1, 18>),
    Two6(Small<2, 18>),
    Crowd,
}

impl Crowd {
    /// A crowd holding an inline torrent's peers.
    pub fn from_small<const N: usize, const W: usize>(
        small: &Small<N, W>,
        clock: PeerClock,
        now: u32,
    ) -> Self {
        let mut crowd = Crowd {
            hash: small.hash,
            completed: small.completed(),
            last_active: small.last_active(clock, now),
            v4: PeerSet::default(),
            v6: None,
        };
        small.visit_peers(&mut |addr, mark| crowd.push(addr, mark));
        crowd
    }

    /// Adds a peer known not to be here.
    fn push(&mut self, addr: Addr, mark: Mark) {
        match addr {
            Addr::V4(addr) => self.v4.push_sorted(Peer { addr, mark }),
            Addr::V6(addr) => self
                .v6
                .get_or_insert_with(Default::default)
                .push_sorted(Peer { addr, mark }),
        }
    }

    /// Inserts or refreshes the peer at `addr`.
    pub fn update(&mut self, addr: Addr, visit: &Visit) -> Updated {
        match addr {
            Addr::V4(addr) => self.update_v4(addr, visit),
            Addr::V6(addr) => self.update_v6(addr, visit),
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

    /// Removes the peer at `addr` (`event=stopped`); returns whether it was
    /// seeding, if it was here.
    pub fn stop(&mut self, addr: &Addr) -> Option<bool> {
        let removed = match addr {
            Addr::V4(addr) => self.v4.remove(addr).map(|p| p.mark),
            Addr::V6(addr) => self.v6.as_mut()?.remove(addr).map(|p| p.mark),
        };
        removed.map(Mark::seeding)
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

    /// The smallest kind that holds this torrent's peers now: inline when
    /// it has at most two, all of one family (no peer at all: IPv4's).
    pub fn fit(&self) -> Fit {
        if self.completed > small::COMPLETED_MAX {
            return Fit::Crowd;
        }
        // At most two peers are always in one flat list.
        match (self.v4.len(), self.v6_len()) {
            (0, 1..=2) => match self.v6.as_deref().and_then(PeerSet::flat_peers) {
                Some(peers) if peers.len() == 2 => Fit::Two6(self.inline(peers)),
                Some(peers) => Fit::One6(self.inline(peers)),
                None => Fit::Crowd,
            },
            (0..=2, 0) => match self.v4.flat_peers() {
                Some(peers) if peers.len() == 2 => Fit::Two(self.inline(peers)),
                Some(peers) => Fit::One(self.inline(peers)),
                None => Fit::Crowd,
            },
            _ => Fit::Crowd,
        }
    }

    fn inline<const N: usize, const W: usize>(&self, peers: &[Peer<W>]) -> Small<N, W> {
        Small::with_peers(self.hash, self.completed, self.last_active, peers)
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
        // IPv6 peers alone fit IPv6 inline kinds, and move there intact.
        crowd.update_v6([5; 18], &visit(30));
        assert!(matches!(crowd.fit(), Fit::One6(one) if one.peers()[0].addr == [5; 18]));
        crowd.update_v6([6; 18], &visit(31));
        assert!(matches!(crowd.fit(), Fit::Two6(two) if two.count() == 2));
        crowd.update_v4([7; 6], &visit(32));
        assert!(matches!(crowd.fit(), Fit::Crowd));
        let mut one6 = Small::<1, 18>::empty([8; 20], 2, 0);
        one6.update([9; 18], &visit(40));
        let moved = Crowd::from_small(&one6, clock, 41);
        assert_eq!((moved.v4.len(), moved.v6_len(), moved.completed), (0, 1, 2));
    }
}
