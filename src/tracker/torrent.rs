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
    One6(&'a Small<1, 18>),
    Two6(&'a Small<2, 18>),
    Crowd(&'a Crowd),
}

/// `$inline` with `$t` bound to an inline torrent of any kind (the same
/// code for each, as each is its own type), or `$crowd` with `$c` bound to
/// a crowd.
macro_rules! by_kind {
    ($torrent:expr, $t:ident => $inline:expr, $c:ident => $crowd:expr) => {
        match $torrent {
            Torrent::One($t) => $inline,
            Torrent::Two($t) => $inline,
            Torrent::One6($t) => $inline,
            Torrent::Two6($t) => $inline,
            Torrent::Crowd($c) => $crowd,
        }
    };
}

impl Torrent<'_> {
    pub fn hash(&self) -> &[u8; 20] {
        by_kind!(self, t => &t.hash, c => &c.hash)
    }

    pub fn counts(&self) -> SwarmCounts {
        by_kind!(self, t => t.counts(), c => c.counts())
    }

    /// Whether the peer at `addr` is held.
    pub fn contains(&self, addr: &Addr) -> bool {
        by_kind!(self, t => t.contains(addr), c => match addr {
            Addr::V4(addr) => c.v4.contains(addr),
            Addr::V6(addr) => c.v6.as_ref().is_some_and(|v6| v6.contains(addr)),
        })
    }

    /// How many of its peers are in the network of `addr`: the same IPv4
    /// address, or the same IPv6 /64 (what one subscriber is given).
    pub fn peers_in_network(&self, addr: &Addr) -> usize {
        by_kind!(self, t => t.peers_in_network(addr), c => match addr {
            Addr::V4(_) => c.v4.count_prefix(addr.network()),
            Addr::V6(_) => c.v6.as_ref().map_or(0, |v6| v6.count_prefix(addr.network())),
        })
    }

    /// Calls `visit` with every peer's compact address and mark.
    pub fn visit_peers(&self, visit: &mut impl FnMut(Addr, Mark)) {
        by_kind!(self, t => t.visit_peers(visit), c => {
            c.v4.visit(&mut |p| visit(Addr::V4(p.addr), p.mark));
            if let Some(set) = &c.v6 {
                set.visit(&mut |p| visit(Addr::V6(p.addr), p.mark));
            }
        })
    }

    /// Tracker second of the last announce (to the peer clock's unit).
    pub fn last_active(&self, clock: PeerClock, now: u32) -> u32 {
        by_kind!(self, t => t.last_active(clock, now), c => c.last_active)
    }

    /// Peers held, IPv4 and IPv6.
    pub fn have(&self) -> (usize, usize) {
        by_kind!(self, t => t.have(), c => (c.v4.len(), c.v6_len()))
    }

    /// Leechers held, IPv4 and IPv6.
    pub fn leechers_held(&self) -> (usize, usize) {
        by_kind!(self, t => t.leechers_held(), c => (
            c.v4.leechers() as usize,
            c.v6.as_ref().map_or(0, |v6| v6.leechers() as usize),
        ))
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
        by_kind!(self, t => {
            let (quota, out) = if t.is_ipv6() { (quotas.1, out6) } else { (quotas.0, out4) };
            pick.list(t.width(), t.count(), t.counts().leechers, quota, out, |q, r, o| {
                t.sample_into(q, r, o)
            });
        }, c => {
            let v4 = &c.v4;
            let pick = pick.list(6, v4.len(), v4.leechers(), quotas.0, out4, |q, r, o| {
                v4.sample_into(q, r, o)
            });
            if let Some(v6) = &c.v6 {
                pick.list(18, v6.len(), v6.leechers(), quotas.1, out6, |q, r, o| {
                    v6.sample_into(q, r, o)
                });
            }
        })
    }
}

/// How many more peers than wanted a sample for leechers only may draw, so
/// that a big swarm of seeders costs a bounded amount...
const LEECHER_DRAW: usize = 4;
/// ...or this many, if more: a whole swarm this size, where a seeder then
/// finds every leecher (reading it costs a few microseconds).
const LEECHER_DRAW_ALL_UP_TO: usize = 4096;

/// A sample of one peer list at a time.
struct Pick<'r> {
    leechers_only: bool,
    rng: &'r mut fastrand::Rng,
}

impl<'r> Pick<'r> {
    /// Samples `quota` of a list of `count` peers (`leechers` of them
    /// leechers, `width` address bytes each) with `sample`, which writes
    /// leechers first and says how many it wrote. For leechers only it
    /// draws as many peers as should hold `quota` leechers, at most
    /// [`LEECHER_DRAW`] times `quota` or [`LEECHER_DRAW_ALL_UP_TO`],
    /// whichever is more, and keeps the leechers. Returns itself for the
    /// next list.
    fn list(
        self,
        width: usize,
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
        let most = (quota * LEECHER_DRAW).max(LEECHER_DRAW_ALL_UP_TO);
        let draw = (quota * count).div_ceil(leechers).min(most);
        let written = sample(draw, self.rng, out);
        out.truncate(start + written.min(quota) * width);
        self
    }
}
