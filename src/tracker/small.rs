//! Torrents small enough to keep their peers inline: at most `N` peers, all
//! of one address family (`W`, the compact address width: 6 for IPv4, 18
//! for IPv6). Most torrents have one or two peers, so this is where most of
//! the memory goes: 30 bytes for one IPv4 peer, 38 for two, 42 and 62 for
//! IPv6 ones, and no heap block at all.

use super::clock::{Mark, PeerClock};
use super::leaf::Addr;
use super::peer::{write_all, Dropped, Peer, Updated, Visit};
use crate::proto::SwarmCounts;

const COUNT_SHIFT: u32 = 14;
const COMPLETED_MASK: u16 = (1 << COUNT_SHIFT) - 1;
/// The most completed downloads an inline torrent counts; one more moves it
/// to a [`super::crowd::Crowd`]. Few torrents with so many downloads have
/// only one or two peers, and the 16-bit word keeps the entry at 30 bytes.
pub const COMPLETED_MAX: u32 = COMPLETED_MASK as u32;

/// A torrent with up to `N` inline peers of `W` address bytes (IPv4 unless
/// said).
#[derive(Clone, Copy, Debug)]
pub struct Small<const N: usize, const W: usize = 6> {
    pub hash: [u8; 20],
    /// The completed count (low 14 bits) and how many slots hold peers
    /// (top 2 bits).
    word: u16,
    /// Peers fill `slots[..count]`. While `count < N` the last slot is free
    /// and its first 4 address bytes hold the torrent's last activity (a
    /// tracker second), which with all slots full is the newest peer stamp.
    slots: [Peer<W>; N],
}

impl<const N: usize, const W: usize> Small<N, W> {
    const EMPTY_SLOT: Peer<W> = Peer {
        addr: [0; W],
        mark: Mark::ZERO,
    };
    /// Whether the peers are IPv6 ones.
    const IPV6: bool = {
        assert!(W == 6 || W == 18);
        W == 18
    };

    /// A torrent without peers.
    pub fn empty(hash: [u8; 20], completed: u32, last_active: u32) -> Self {
        let mut small = Small {
            hash,
            word: 0,
            slots: [Self::EMPTY_SLOT; N],
        };
        small.set_completed(completed);
        small.store_last_active(last_active);
        small
    }

    /// A torrent holding exactly `peers` (at most `N` of them).
    pub fn with_peers(hash: [u8; 20], completed: u32, last_active: u32, peers: &[Peer<W>]) -> Self {
        let mut small = Self::empty(hash, completed, last_active);
        small.slots[..peers.len()].copy_from_slice(peers);
        small.set_count(peers.len());
        if peers.len() < N {
            small.store_last_active(last_active);
        }
        small
    }

    pub fn count(&self) -> usize {
        (self.word >> COUNT_SHIFT) as usize
    }

    fn set_count(&mut self, count: usize) {
        self.word = (self.word & COMPLETED_MASK) | ((count as u16) << COUNT_SHIFT);
    }

    pub fn peers(&self) -> &[Peer<W>] {
        &self.slots[..self.count()]
    }

    pub fn is_ipv6(&self) -> bool {
        Self::IPV6
    }

    /// Bytes of a peer's compact address.
    pub fn width(&self) -> usize {
        W
    }

    /// Peers held, IPv4 and IPv6.
    pub fn have(&self) -> (usize, usize) {
        self.by_family(self.count())
    }

    /// Leechers held, IPv4 and IPv6.
    pub fn leechers_held(&self) -> (usize, usize) {
        self.by_family(self.counts().leechers as usize)
    }

    /// `n` as a figure of this torrent's family: (IPv4, IPv6).
    fn by_family(&self, n: usize) -> (usize, usize) {
        if Self::IPV6 {
            (0, n)
        } else {
            (n, 0)
        }
    }

    /// Whether the peer at `addr` is held.
    pub fn contains(&self, addr: &Addr) -> bool {
        self.peers().iter().any(|p| p.addr[..] == *addr.bytes())
    }

    /// How many peers are in the network of `addr` (see [`Addr::network`]).
    pub fn peers_in_network(&self, addr: &Addr) -> usize {
        if addr.bytes().len() != W {
            return 0;
        }
        let network = addr.network();
        self.peers()
            .iter()
            .filter(|p| p.addr.starts_with(network))
            .count()
    }

    /// Calls `visit` with every peer's address and mark.
    pub fn visit_peers(&self, visit: &mut impl FnMut(Addr, Mark)) {
        for peer in self.peers() {
            visit(Addr::from_compact(&peer.addr), peer.mark);
        }
    }

    pub fn completed(&self) -> u32 {
        u32::from(self.word & COMPLETED_MASK)
    }

    /// Sets the completed count, at most [`COMPLETED_MAX`].
    pub fn set_completed(&mut self, completed: u32) {
        debug_assert!(completed <= COMPLETED_MAX);
        let completed = completed.min(COMPLETED_MAX) as u16;
        self.word = (self.word & !COMPLETED_MASK) | completed;
    }

    fn store_last_active(&mut self, seconds: u32) {
        self.slots[N - 1].addr[..4].copy_from_slice(&seconds.to_le_bytes());
    }

    fn stored_last_active(&self) -> u32 {
        let bytes = &self.slots[N - 1].addr;
        u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
    }

    /// Tracker second of the torrent's last announce (to the stamp unit).
    pub fn last_active(&self, clock: PeerClock, now: u32) -> u32 {
        let newest = self.peers().iter().map(|p| clock.seconds(p.mark, now));
        let stored = (self.count() < N).then(|| self.stored_last_active());
        newest.chain(stored).max().unwrap_or(0)
    }

    pub fn counts(&self) -> SwarmCounts {
        let seeders = self.peers().iter().filter(|p| p.mark.seeding()).count() as u32;
        SwarmCounts {
            seeders,
            leechers: self.count() as u32 - seeders,
            completed: self.completed(),
        }
    }

    /// Refreshes or adds the peer at `addr`; `None` when it is new and all
    /// slots are taken, so the torrent must move to a larger kind.
    pub fn update(&mut self, addr: [u8; W], visit: &Visit) -> Option<Updated> {
        let count = self.count();
        if let Some(peer) = self.slots[..count].iter_mut().find(|p| p.addr == addr) {
            return Some(visit.refresh(&mut peer.mark));
        }
        if count == N {
            return None;
        }
        // The new peer's stamp is the newest, so the stored last activity
        // may be overwritten when this fills the last slot.
        self.slots[count] = Peer {
            addr,
            mark: visit.fresh_mark(),
        };
        self.set_count(count + 1);
        Some(visit.added())
    }

    /// Removes the peer at `addr`; returns it if it was there.
    pub fn remove(&mut self, addr: &[u8; W], clock: PeerClock, now: u32) -> Option<Peer<W>> {
        let at = self.peers().iter().position(|p| p.addr == *addr)?;
        let last_active = self.last_active(clock, now);
        let peer = self.slots[at];
        let count = self.count();
        self.slots.copy_within(at + 1..count, at);
        self.set_count(count - 1);
        self.store_last_active(last_active);
        Some(peer)
    }

    /// Removes the peer at `addr` (`event=stopped`), which may be of the
    /// other family; returns whether it was seeding, if it was here.
    pub fn stop(&mut self, addr: &Addr, clock: PeerClock, now: u32) -> Option<bool> {
        let addr: &[u8; W] = addr.bytes().try_into().ok()?;
        self.remove(addr, clock, now).map(|p| p.mark.seeding())
    }

    /// Drops peers that timed out.
    pub fn expire(&mut self, clock: PeerClock, now: u32) -> Dropped {
        let mut dropped = Dropped::default();
        if self.peers().iter().all(|p| !clock.expired(p.mark, now)) {
            return dropped;
        }
        let last_active = self.last_active(clock, now);
        let mut kept = 0;
        for at in 0..self.count() {
            let peer = self.slots[at];
            if clock.expired(peer.mark, now) {
                dropped.count(clock, peer.mark, now);
            } else {
                self.slots[kept] = peer;
                kept += 1;
            }
        }
        self.set_count(kept);
        self.store_last_active(last_active);
        dropped
    }

    /// Appends up to `quota` of the peers to `out`, leechers first; with
    /// fewer slots than peers, a random subset. Returns how many leechers
    /// it wrote.
    pub fn sample_into(&self, quota: usize, rng: &mut fastrand::Rng, out: &mut Vec<u8>) -> usize {
        let peers = self.peers();
        if quota >= peers.len() {
            return write_all(peers, out);
        }
        let mut picked = [Self::EMPTY_SLOT; N];
        let mut pool = self.slots;
        for (taken, slot) in picked.iter_mut().take(quota).enumerate() {
            let at = rng.usize(taken..peers.len());
            pool.swap(taken, at);
            *slot = pool[taken];
        }
        write_all(&picked[..quota], out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn visit(now: u32, seeding: bool) -> Visit {
        Visit {
            clock: PeerClock::new(10),
            now,
            seeding,
            completed: false,
            key: Default::default(),
        }
    }

    fn addr(n: u8) -> [u8; 6] {
        [10, 0, 0, n, 0, 1]
    }

    #[test]
    fn inline_sizes() {
        assert_eq!(std::mem::size_of::<Small<1>>(), 30);
        assert_eq!(std::mem::size_of::<Small<2>>(), 38);
        assert_eq!(std::mem::size_of::<Small<1, 18>>(), 42);
        assert_eq!(std::mem::size_of::<Small<2, 18>>(), 62);
    }

    #[test]
    fn an_ipv6_torrent_counts_and_finds_its_own_family() {
        let v6 = |n: u8| {
            let mut a = [0u8; 18];
            a[0] = 0x20;
            a[7] = n;
            a[15] = n;
            a
        };
        let mut small = Small::<2, 18>::empty([1; 20], 0, 0);
        small.update(v6(1), &visit(1, false));
        small.update(v6(1 | 0x80), &visit(1, true));
        assert_eq!((small.have(), small.leechers_held()), ((0, 2), (0, 1)));
        assert!(small.contains(&Addr::V6(v6(1))));
        assert!(!small.contains(&Addr::V4(addr(1))));
        // Byte 7 puts the two in different /64s; IPv4 shares nothing.
        assert_eq!(small.peers_in_network(&Addr::V6(v6(1))), 1);
        assert_eq!(small.peers_in_network(&Addr::V4(addr(1))), 0);
        let mut seen = Vec::new();
        small.visit_peers(&mut |a, _| seen.push(a.bytes().to_vec()));
        assert_eq!(seen, [v6(1).to_vec(), v6(0x81).to_vec()]);
    }

    #[test]
    fn fills_then_reports_full() {
        let mut small = Small::<2>::empty([1; 20], 3, 0);
        assert!(small.update(addr(1), &visit(5, true)).unwrap().new);
        assert!(!small.update(addr(1), &visit(6, true)).unwrap().new);
        assert!(small.update(addr(2), &visit(7, false)).unwrap().new);
        assert!(small.update(addr(3), &visit(8, false)).is_none());
        assert_eq!(
            small.counts(),
            SwarmCounts {
                seeders: 1,
                leechers: 1,
                completed: 3
            }
        );
        let clock = PeerClock::new(10);
        assert_eq!(small.last_active(clock, 9), 7);
    }

    #[test]
    fn last_activity_survives_removal_and_expiry() {
        let clock = PeerClock::new(10);
        let mut small = Small::<1>::empty([1; 20], 1, 0);
        small.update(addr(1), &visit(5, true));
        assert_eq!(small.expire(clock, 15), Dropped::default());
        let dropped = small.expire(clock, 16);
        assert_eq!((dropped.peers, dropped.seeders), (1, 1));
        assert_eq!((small.count(), small.last_active(clock, 16)), (0, 5));
        small.update(addr(2), &visit(20, false));
        assert_eq!(small.remove(&addr(2), clock, 30).unwrap().addr, addr(2));
        assert_eq!(small.last_active(clock, 30), 20);
        assert!(small.remove(&addr(2), clock, 30).is_none());
    }

    #[test]
    fn sample_picks_distinct_peers() {
        let mut small = Small::<2>::empty([1; 20], 0, 0);
        small.update(addr(1), &visit(1, false));
        small.update(addr(2), &visit(1, true));
        let mut rng = fastrand::Rng::with_seed(3);
        let mut seen = [0; 3];
        for _ in 0..100 {
            let mut out = Vec::new();
            small.sample_into(1, &mut rng, &mut out);
            assert_eq!(out.len(), 6);
            seen[usize::from(out[3])] += 1;
        }
        assert!(seen[1] > 20 && seen[2] > 20);
        let mut out = Vec::new();
        small.sample_into(5, &mut rng, &mut out);
        assert_eq!(out, [addr(1), addr(2)].concat());
    }
}
