//! One torrent: its peers per address family, its completed count, and how a
//! reply's peer quota is split between the families.

use super::peer::{PeerList, Updated};
use crate::proto::SwarmCounts;

/// One torrent's swarm. IPv6 peers are rare on most trackers, so their list
/// is boxed and only allocated once the first IPv6 peer arrives: an IPv4-only
/// torrent costs 48 bytes here.
#[derive(Debug, Default)]
pub struct Torrent {
    pub(crate) v4: PeerList<6>,
    pub(crate) v6: Option<Box<PeerList<18>>>,
    /// Completed downloads seen while the torrent existed.
    pub(crate) completed: u32,
    /// Tracker clock second of the last announce.
    pub(crate) last_active: u32,
}

impl Torrent {
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

    pub fn peer_count(&self) -> usize {
        self.v4.len() + self.v6.as_ref().map_or(0, |l| l.len())
    }

    pub(crate) fn update_v4(
        &mut self,
        addr: [u8; 6],
        seeding: bool,
        completed: bool,
        now: u32,
    ) -> Updated {
        self.v4.update(addr, seeding, completed, now)
    }

    pub(crate) fn update_v6(
        &mut self,
        addr: [u8; 18],
        seeding: bool,
        completed: bool,
        now: u32,
    ) -> Updated {
        self.v6
            .get_or_insert_with(Default::default)
            .update(addr, seeding, completed, now)
    }
}

/// How many peers of each family an HTTP reply carries, as upstream splits
/// them: each family first gets up to a quarter of `numwant`, the rest is
/// shared in proportion to what each family has left (fixed point, scale
/// 1024), and a slot lost to rounding goes to IPv6, then IPv4.
pub fn split_quota(numwant: usize, have4: usize, have6: usize) -> (usize, usize) {
    if have4 + have6 <= numwant {
        return (have4, have6);
    }
    let mut take4 = (numwant / 4).min(have4);
    let mut take6 = (numwant / 4).min(have6);
    let rest = (numwant - take4 - take6) as u64;
    let (left4, left6) = ((have4 - take4) as u64, (have6 - take6) as u64);
    let scale = (rest << 10) / (left4 + left6).max(1);
    take4 += ((left4 * scale) >> 10) as usize;
    take6 += ((left6 * scale) >> 10) as usize;
    if take4 + take6 < numwant && take6 < have6 {
        take6 += 1;
    }
    if take4 + take6 < numwant && take4 < have4 {
        take4 += 1;
    }
    (take4.min(have4), take6.min(have6))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_split() {
        assert_eq!(split_quota(50, 10, 5), (10, 5));
        assert_eq!(split_quota(50, 100, 0), (50, 0));
        assert_eq!(split_quota(50, 0, 100), (0, 50));
        let (a, b) = split_quota(50, 100, 100);
        assert_eq!(a + b, 50);
        assert!(a >= 12 && b >= 12);
        let (a, b) = split_quota(40, 1000, 20);
        assert_eq!(a + b, 40);
        assert!(b >= 10);
        assert_eq!(split_quota(0, 10, 10), (0, 0));
    }

    #[test]
    fn v6_list_allocated_lazily() {
        let mut t = Torrent::default();
        t.update_v4([1, 2, 3, 4, 0, 1], true, false, 0);
        assert!(t.v6.is_none());
        t.update_v6([0; 18], false, false, 0);
        assert_eq!(
            t.counts(),
            SwarmCounts {
                seeders: 1,
                leechers: 1,
                completed: 0
            }
        );
        assert_eq!(t.peer_count(), 2);
    }
}
