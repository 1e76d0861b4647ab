//! A read-only view of one torrent whatever its kind, for replies, scrapes
//! and walks.

use super::clock::{Mark, PeerClock};
use super::crowd::Crowd;
use super::leaf::Addr;
use super::small::Small;
use crate::proto::SwarmCounts;

/// One torrent, whatever its kind.
#[derive(Clone, Copy)]
pub enum Torrent<'a> {
    One(&'a Small<1>),
    Two(&'a Small<2>),
    Crowd(&'a Crowd),
}

impl Torrent<'_> {
    pub fn hash(&self) -> &[u8; 20] {
        match self {
            Torrent::One(t) => &t.hash,
            Torrent::Two(t) => &t.hash,
            Torrent::Crowd(t) => &t.hash,
        }
    }

    pub fn counts(&self) -> SwarmCounts {
        match self {
            Torrent::One(t) => t.counts(),
            Torrent::Two(t) => t.counts(),
            Torrent::Crowd(t) => t.counts(),
        }
    }

    /// Whether the peer at `addr` is held.
    pub fn contains(&self, addr: &Addr) -> bool {
        match (self, addr) {
            (Torrent::One(t), Addr::V4(addr)) => t.peers().iter().any(|p| p.addr == *addr),
            (Torrent::Two(t), Addr::V4(addr)) => t.peers().iter().any(|p| p.addr == *addr),
            (Torrent::Crowd(t), Addr::V4(addr)) => t.v4.contains(addr),
            (Torrent::Crowd(t), Addr::V6(addr)) => {
                t.v6.as_ref().is_some_and(|v6| v6.contains(addr))
            }
            // Inline torrents hold IPv4 peers only.
            (Torrent::One(_) | Torrent::Two(_), Addr::V6(_)) => false,
        }
    }

    /// How many of its peers are in the network of `addr`: the same IPv4
    /// address, or the same IPv6 /64 (what one subscriber is given).
    pub fn peers_in_network(&self, addr: &Addr) -> usize {
        let same_ip = |peers: &[super::peer::Peer4], ip: &[u8]| {
            peers.iter().filter(|p| p.addr[..4] == *ip).count()
        };
        match (self, addr) {
            (Torrent::One(t), Addr::V4(a)) => same_ip(t.peers(), &a[..4]),
            (Torrent::Two(t), Addr::V4(a)) => same_ip(t.peers(), &a[..4]),
            (Torrent::Crowd(t), Addr::V4(a)) => t.v4.count_prefix(&a[..4]),
            (Torrent::Crowd(t), Addr::V6(a)) => {
                t.v6.as_ref().map_or(0, |v6| v6.count_prefix(&a[..8]))
            }
            (Torrent::One(_) | Torrent::Two(_), Addr::V6(_)) => 0,
        }
    }

    /// Calls `visit` with every peer's compact address and mark.
    pub fn visit_peers(&self, visit: &mut impl FnMut(Addr, Mark)) {
        match self {
            Torrent::One(t) => t
                .peers()
                .iter()
                .for_each(|p| visit(Addr::V4(p.addr), p.mark)),
            Torrent::Two(t) => t
                .peers()
                .iter()
                .for_each(|p| visit(Addr::V4(p.addr), p.mark)),
            Torrent::Crowd(t) => {
                t.v4.visit(&mut |p| visit(Addr::V4(p.addr), p.mark));
                if let Some(set) = &t.v6 {
                    set.visit(&mut |p| visit(Addr::V6(p.addr), p.mark));
                }
            }
        }
    }

    /// Tracker second of the last announce (to the peer clock's unit).
    pub fn last_active(&self, clock: PeerClock, now: u32) -> u32 {
        match self {
            Torrent::One(t) => t.last_active(clock, now),
            Torrent::Two(t) => t.last_active(clock, now),
            Torrent::Crowd(t) => t.last_active,
        }
    }

    /// Peers held, IPv4 and IPv6.
    pub fn have(&self) -> (usize, usize) {
        match self {
            Torrent::One(t) => (t.count(), 0),
            Torrent::Two(t) => (t.count(), 0),
            Torrent::Crowd(t) => (t.v4.len(), t.v6_len()),
        }
    }

    /// Leechers held, IPv4 and IPv6.
    pub fn leechers_held(&self) -> (usize, usize) {
        match self {
            Torrent::One(t) => (t.counts().leechers as usize, 0),
            Torrent::Two(t) => (t.counts().leechers as usize, 0),
            Torrent::Crowd(t) => (
                t.v4.leechers() as usize,
                t.v6.as_ref().map_or(0, |v6| v6.leechers() as usize),
            ),
        }
    }

    /// Writes up to `quotas` peers of each family into `out4` and `out6`,
    /// leechers first; with `leechers_only`, leechers alone (for a seeder,
    /// who has no use for other seeders).
    pub fn sample_into(
        &self,
        quotas: (usize, usize),
        leechers_only: bool,
        rng: &mut fastrand::Rng,
        out4: &mut Vec<u8>,
        out6: &mut Vec<u8>,
    ) {
        let pick = Pick { leechers_only, rng };
        match self {
            Torrent::One(t) => {
                let leechers = t.counts().leechers;
                pick.list::<6>(t.count(), leechers, quotas.0, out4, |q, r, o| {
                    t.sample_into(q, r, o)
                });
            }
            Torrent::Two(t) => {
                let leechers = t.counts().leechers;
                pick.list::<6>(t.count(), leechers, quotas.0, out4, |q, r, o| {
                    t.sample_into(q, r, o)
                });
            }
            Torrent::Crowd(t) => {
                let v4 = &t.v4;
                let pick = pick.list::<6>(v4.len(), v4.leechers(), quotas.0, out4, |q, r, o| {
                    v4.sample_into(q, r, o)
                });
                if let Some(v6) = &t.v6 {
                    pick.list::<18>(v6.len(), v6.leechers(), quotas.1, out6, |q, r, o| {
                        v6.sample_into(q, r, o)
                    });
                }
            }
        }
    }
}

/// How many more peers than wanted a sample for leechers only may draw, so
/// that a swarm of seeders costs a bounded amount.
const LEECHER_DRAW: usize = 4;

/// A sample of one peer list at a time.
struct Pick<'r> {
    leechers_only: bool,
    rng: &'r mut fastrand::Rng,
}

impl<'r> Pick<'r> {
    /// Samples `quota` of a list of `count` peers (`leechers` of them
    /// leechers, `N` address bytes each) with `sample`, which writes
    /// leechers first and says how many it wrote. For leechers only it
    /// draws as many peers as should hold `quota` leechers, at most
    /// [`LEECHER_DRAW`] times `quota`, and keeps the leechers. Returns
    /// itself for the next list.
    fn list<const N: usize>(
        self,
        count: usize,
        leechers: u32,
        quota: usize,
        out: &mut Vec<u8>,
        sample: impl FnOnce(usize, &mut fastrand::Rng, &mut Vec<u8>) -> usize,
    ) -> Pick<'r> {
        if !self.leechers_only {
            sample(quota, self.rng, out);
            return self;
        }
        let leechers = leechers as usize;
        if leechers == 0 || quota == 0 {
            return self;
        }
        let start = out.len();
        let draw = (quota * count).div_ceil(leechers).min(quota * LEECHER_DRAW);
        let written = sample(draw, self.rng, out);
        out.truncate(start + written.min(quota) * N);
        self
    }
}
