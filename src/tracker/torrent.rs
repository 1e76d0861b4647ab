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

    /// Writes up to `quotas` peers of each family into `out4` and `out6`.
    pub fn sample_into(
        &self,
        quotas: (usize, usize),
        rng: &mut fastrand::Rng,
        out4: &mut Vec<u8>,
        out6: &mut Vec<u8>,
    ) {
        match self {
            Torrent::One(t) => t.sample_into(quotas.0, rng, out4),
            Torrent::Two(t) => t.sample_into(quotas.0, rng, out4),
            Torrent::Crowd(t) => {
                t.v4.sample_into(quotas.0, rng, out4);
                if let Some(v6) = &t.v6 {
                    v6.sample_into(quotas.1, rng, out6);
                }
            }
        }
    }
}
