//! Swarm state, pure: torrents and their peers in RAM.
//!
//! The tracker never does I/O and never reads a clock: `now` (seconds on the
//! caller's monotonic clock) comes in with each call, and sampled peers are
//! written in compact wire form into buffers the caller owns, so neither HTTP
//! nor UDP details leak in here.

pub mod access_list;
pub mod peer;
pub mod swarm;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::ops::Bound;

use crate::proto::{Event, InfoHash, SwarmCounts};
use access_list::AccessList;
use swarm::{split_quota, Torrent};

/// Timeouts, in seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// A peer is forgotten this long after its last announce.
    pub peer: u32,
    /// A peerless torrent with completed downloads is kept this long.
    pub torrent: u32,
}

/// One announce, protocol-independent.
#[derive(Clone, Copy, Debug)]
pub struct Announce {
    pub info_hash: InfoHash,
    /// The peer's address and the port it listens on.
    pub peer: SocketAddr,
    pub seeding: bool,
    pub event: Event,
    /// Peers wanted, already clamped by the protocol's rules.
    pub numwant: usize,
}

/// Which peers a reply may carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Families {
    /// Only the requester's family (UDP: one compact format per reply).
    Own,
    /// Both (HTTP: `peers` and `peers6`).
    Both,
}

/// The outcome of an announce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Announced {
    /// Counts after the announce; sampled peers are in the caller's buffers.
    Ok {
        counts: SwarmCounts,
        completed: bool,
    },
    /// The peer left (`event=stopped`); counts after its removal.
    Stopped { counts: SwarmCounts },
    /// The access list refuses this torrent.
    NotAuthorized,
}

/// Totals over all torrents, kept up to date on every change.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub torrents: usize,
    pub peers: u64,
    pub seeders: u64,
    /// Completed events ever counted.
    pub completed: u64,
}

/// How many minutes-since-last-announce buckets the renew histogram has.
pub const RENEW_BUCKETS: usize = 45;

/// All torrents, ordered by info hash so a full scrape can walk them in
/// ascending order and resume where it left off.
pub struct Tracker {
    torrents: BTreeMap<InfoHash, Torrent>,
    access: AccessList,
    timeouts: Timeouts,
    rng: fastrand::Rng,
    peers: u64,
    seeders: u64,
    completed: u64,
    renew: [u64; RENEW_BUCKETS],
    sweep_cursor: Option<InfoHash>,
}

fn compact_v4(ip: std::net::Ipv4Addr, port: u16) -> [u8; 6] {
    let mut addr = [0u8; 6];
    addr[..4].copy_from_slice(&ip.octets());
    addr[4..].copy_from_slice(&port.to_be_bytes());
    addr
}

fn compact_v6(ip: std::net::Ipv6Addr, port: u16) -> [u8; 18] {
    let mut addr = [0u8; 18];
    addr[..16].copy_from_slice(&ip.octets());
    addr[16..].copy_from_slice(&port.to_be_bytes());
    addr
}

impl Tracker {
    /// An empty tracker; `seed` drives peer sampling.
    pub fn new(timeouts: Timeouts, seed: u64) -> Self {
        Tracker {
            torrents: BTreeMap::new(),
            access: AccessList::open(),
            timeouts,
            rng: fastrand::Rng::with_seed(seed),
            peers: 0,
            seeders: 0,
            completed: 0,
            renew: [0; RENEW_BUCKETS],
            sweep_cursor: None,
        }
    }

    /// Replaces the access list. Torrents already tracked stay until they
    /// expire; new announces are checked against the new list.
    pub fn set_access_list(&mut self, access: AccessList) {
        self.access = access;
    }

    pub fn access_list(&self) -> &AccessList {
        &self.access
    }

    /// A random announce interval in [interval - interval/10, interval +
    /// interval/10), as upstream's 1800 s ± 180 s.
    pub fn interval(&mut self, base: u32) -> u32 {
        let jitter = base / 10;
        base - jitter + self.rng.u32(0..(2 * jitter).max(1))
    }

    /// Handles one announce, appending sampled peers to `peers4` (6 bytes
    /// each) and `peers6` (18 bytes each). The requester is not excluded, as
    /// upstream: a lone first announcer gets itself back.
    pub fn announce(
        &mut self,
        request: &Announce,
        families: Families,
        now: u32,
        peers4: &mut Vec<u8>,
        peers6: &mut Vec<u8>,
    ) -> Announced {
        let ip = request.peer.ip().to_canonical();
        let port = request.peer.port();
        if request.event == Event::Stopped {
            return Announced::Stopped {
                counts: self.stop(&request.info_hash, ip, port),
            };
        }
        if !self.access.allows(&request.info_hash) {
            return Announced::NotAuthorized;
        }
        let torrent = self.torrents.entry(request.info_hash).or_default();
        let completed_event = request.event == Event::Completed;
        let updated = match ip {
            IpAddr::V4(v4) => {
                torrent.update_v4(compact_v4(v4, port), request.seeding, completed_event, now)
            }
            IpAddr::V6(v6) => {
                torrent.update_v6(compact_v6(v6, port), request.seeding, completed_event, now)
            }
        };
        torrent.last_active = now;
        if updated.newly_completed {
            torrent.completed = torrent.completed.saturating_add(1);
        }
        let counts = torrent.counts();
        let have4 = torrent.v4.len();
        let have6 = torrent.v6.as_ref().map_or(0, |l| l.len());
        let (quota4, quota6) = match (families, ip) {
            (Families::Both, _) => split_quota(request.numwant, have4, have6),
            (Families::Own, IpAddr::V4(_)) => (request.numwant, 0),
            (Families::Own, IpAddr::V6(_)) => (0, request.numwant),
        };
        torrent.v4.sample_into(quota4, &mut self.rng, peers4);
        if let Some(v6) = &torrent.v6 {
            v6.sample_into(quota6, &mut self.rng, peers6);
        }

        if updated.new {
            self.peers += 1;
        } else {
            let minutes = (updated.since_last / 60) as usize;
            self.renew[minutes.min(RENEW_BUCKETS - 1)] += 1;
        }
        self.seeders = self
            .seeders
            .wrapping_add_signed(updated.seeder_delta.into());
        self.completed += u64::from(updated.newly_completed);
        Announced::Ok {
            counts,
            completed: updated.newly_completed,
        }
    }

    fn stop(&mut self, hash: &InfoHash, ip: IpAddr, port: u16) -> SwarmCounts {
        let Some(torrent) = self.torrents.get_mut(hash) else {
            return SwarmCounts::default();
        };
        let removed_seeding = match ip {
            IpAddr::V4(v4) => torrent.v4.remove(&compact_v4(v4, port)).map(|p| p.seeding),
            IpAddr::V6(v6) => torrent
                .v6
                .as_mut()
                .and_then(|l| l.remove(&compact_v6(v6, port)))
                .map(|p| p.seeding),
        };
        if let Some(seeding) = removed_seeding {
            self.peers -= 1;
            self.seeders -= u64::from(seeding);
        }
        torrent.counts()
    }

    /// The counts of one torrent, or `None` when it is not tracked.
    pub fn scrape(&self, hash: &InfoHash) -> Option<SwarmCounts> {
        self.torrents.get(hash).map(Torrent::counts)
    }

    pub fn totals(&self) -> Totals {
        Totals {
            torrents: self.torrents.len(),
            peers: self.peers,
            seeders: self.seeders,
            completed: self.completed,
        }
    }

    /// Re-announces bucketed by minutes since the peer's previous announce.
    pub fn renew_histogram(&self) -> &[u64; RENEW_BUCKETS] {
        &self.renew
    }

    /// Calls `visit` for up to `max` torrents in ascending hash order,
    /// starting after `after`. Returns the last hash visited, or `None` when
    /// the walk reached the end.
    pub fn walk(
        &self,
        after: Option<&InfoHash>,
        max: usize,
        mut visit: impl FnMut(&InfoHash, SwarmCounts),
    ) -> Option<InfoHash> {
        let start = after.map_or(Bound::Unbounded, Bound::Excluded);
        let mut last = None;
        for (count, (hash, torrent)) in self.torrents.range((start, Bound::Unbounded)).enumerate() {
            if count == max {
                return last;
            }
            visit(hash, torrent.counts());
            last = Some(*hash);
        }
        None
    }

    /// Drops expired peers and torrents in up to `max` torrents, continuing
    /// where the previous call stopped. Returns true when this call reached
    /// the end of the torrents (a full sweep is complete).
    pub fn sweep(&mut self, now: u32, max: usize) -> bool {
        let peer_cutoff = now.saturating_sub(self.timeouts.peer);
        let start = self
            .sweep_cursor
            .as_ref()
            .map_or(Bound::Unbounded, Bound::Excluded);
        let mut dead = Vec::new();
        let mut visited = 0;
        let mut last = None;
        for (hash, torrent) in self.torrents.range_mut((start, Bound::Unbounded)) {
            if visited == max {
                break;
            }
            visited += 1;
            last = Some(*hash);
            let (peers4, seeders4) = torrent.v4.expire(peer_cutoff);
            let (peers6, seeders6) = torrent
                .v6
                .as_mut()
                .map_or((0, 0), |l| l.expire(peer_cutoff));
            if torrent.v6.as_ref().is_some_and(|l| l.is_empty()) {
                torrent.v6 = None;
            }
            self.peers -= u64::from(peers4 + peers6);
            self.seeders -= u64::from(seeders4 + seeders6);
            let idle = now.saturating_sub(torrent.last_active);
            if torrent.peer_count() == 0
                && (torrent.completed == 0 || idle >= self.timeouts.torrent)
            {
                dead.push(*hash);
            }
        }
        for hash in &dead {
            self.torrents.remove(hash);
        }
        let finished = visited < max;
        self.sweep_cursor = if finished { None } else { last };
        finished
    }

    /// The `n` torrents with the most peers, seeders and leechers.
    pub fn top(&self, n: usize) -> [Vec<(u64, InfoHash)>; 3] {
        let mut tops: [Vec<(u64, InfoHash)>; 3] = Default::default();
        for (hash, torrent) in &self.torrents {
            let counts = torrent.counts();
            let values = [
                u64::from(counts.seeders + counts.leechers),
                u64::from(counts.seeders),
                u64::from(counts.leechers),
            ];
            for (top, value) in tops.iter_mut().zip(values) {
                if value == 0 || (top.len() == n && top.last().is_some_and(|&(v, _)| v >= value)) {
                    continue;
                }
                let at = top.partition_point(|&(v, _)| v >= value);
                top.insert(at, (value, *hash));
                top.truncate(n);
            }
        }
        tops
    }
}

#[cfg(test)]
mod tests {
    use super::access_list::Mode;
    use super::*;

    const TIMEOUTS: Timeouts = Timeouts {
        peer: 100,
        torrent: 1000,
    };

    fn announce(
        tracker: &mut Tracker,
        peer: &str,
        seeding: bool,
        event: Event,
        now: u32,
    ) -> (Announced, Vec<u8>, Vec<u8>) {
        let request = Announce {
            info_hash: InfoHash([1; 20]),
            peer: peer.parse().unwrap(),
            seeding,
            event,
            numwant: 50,
        };
        let (mut p4, mut p6) = (Vec::new(), Vec::new());
        let result = tracker.announce(&request, Families::Both, now, &mut p4, &mut p6);
        (result, p4, p6)
    }

    #[test]
    fn announce_returns_self_and_both_families() {
        let mut t = Tracker::new(TIMEOUTS, 1);
        let (result, p4, p6) = announce(&mut t, "10.0.0.1:6881", false, Event::None, 0);
        assert_eq!(
            result,
            Announced::Ok {
                counts: SwarmCounts {
                    seeders: 0,
                    leechers: 1,
                    completed: 0
                },
                completed: false
            }
        );
        assert_eq!(p4, [10, 0, 0, 1, 0x1a, 0xe1]);
        assert!(p6.is_empty());
        let (_, p4, p6) = announce(&mut t, "[2001:db8::1]:6881", true, Event::None, 0);
        assert_eq!((p4.len(), p6.len()), (6, 18));
        assert_eq!(
            t.totals(),
            Totals {
                torrents: 1,
                peers: 2,
                seeders: 1,
                completed: 0
            }
        );
    }

    #[test]
    fn mapped_v4_is_v4() {
        let mut t = Tracker::new(TIMEOUTS, 1);
        let (_, p4, _) = announce(&mut t, "[::ffff:10.0.0.1]:6881", false, Event::None, 0);
        assert_eq!(p4.len(), 6);
    }

    #[test]
    fn completed_counted_once_and_stop_removes() {
        let mut t = Tracker::new(TIMEOUTS, 1);
        announce(&mut t, "10.0.0.1:1", false, Event::None, 0);
        let (r, ..) = announce(&mut t, "10.0.0.1:1", true, Event::Completed, 1);
        assert_eq!(
            r,
            Announced::Ok {
                counts: SwarmCounts {
                    seeders: 1,
                    leechers: 0,
                    completed: 1
                },
                completed: true
            }
        );
        announce(&mut t, "10.0.0.1:1", true, Event::Completed, 2);
        let (r, ..) = announce(&mut t, "10.0.0.1:1", true, Event::Stopped, 3);
        assert_eq!(
            r,
            Announced::Stopped {
                counts: SwarmCounts {
                    seeders: 0,
                    leechers: 0,
                    completed: 1
                }
            }
        );
        assert_eq!(t.totals().peers, 0);
        assert_eq!(t.totals().completed, 1);
        // After a stop, a fresh completion counts again (upstream semantics).
        let (r, ..) = announce(&mut t, "10.0.0.1:1", true, Event::Completed, 4);
        assert!(matches!(
            r,
            Announced::Ok {
                counts: SwarmCounts { completed: 2, .. },
                ..
            }
        ));
    }

    #[test]
    fn sweep_expires_peers_then_torrents() {
        let mut t = Tracker::new(TIMEOUTS, 1);
        announce(&mut t, "10.0.0.1:1", false, Event::None, 0);
        t.torrents.entry(InfoHash([2; 20])).or_default().completed = 1;
        assert!(t.sweep(50, 100));
        assert_eq!(t.totals().peers, 1);
        assert!(t.sweep(150, 100));
        assert_eq!(
            t.totals(),
            Totals {
                torrents: 1,
                peers: 0,
                seeders: 0,
                completed: 0
            }
        );
        assert!(t.scrape(&InfoHash([2; 20])).is_some());
        assert!(t.sweep(2000, 100));
        assert_eq!(t.totals().torrents, 0);
    }

    #[test]
    fn sweep_and_walk_resume() {
        let mut t = Tracker::new(TIMEOUTS, 1);
        for n in 0..10u8 {
            t.torrents.entry(InfoHash([n; 20])).or_default().completed = 1;
        }
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            cursor = t.walk(cursor.as_ref(), 3, |h, _| seen.push(h.0[0]));
            if cursor.is_none() {
                break;
            }
        }
        assert_eq!(seen, (0..10).collect::<Vec<_>>());
        assert!(!t.sweep(5000, 4));
        assert!(!t.sweep(5000, 4));
        assert!(t.sweep(5000, 4));
        assert_eq!(t.totals().torrents, 0);
    }

    #[test]
    fn access_list_refuses_announce_but_not_stop() {
        let mut t = Tracker::new(TIMEOUTS, 1);
        t.set_access_list(AccessList::new(Mode::Whitelist, []));
        let (r, ..) = announce(&mut t, "10.0.0.1:1", false, Event::None, 0);
        assert_eq!(r, Announced::NotAuthorized);
        let (r, ..) = announce(&mut t, "10.0.0.1:1", false, Event::Stopped, 0);
        assert!(matches!(r, Announced::Stopped { .. }));
        assert_eq!(t.totals().torrents, 0);
    }

    #[test]
    fn interval_jitter() {
        let mut t = Tracker::new(TIMEOUTS, 1);
        for _ in 0..1000 {
            assert!((1620..1980).contains(&t.interval(1800)));
        }
    }

    #[test]
    fn top_lists() {
        let mut t = Tracker::new(TIMEOUTS, 1);
        announce(&mut t, "10.0.0.1:1", true, Event::None, 0);
        let tops = t.top(10);
        assert_eq!(tops[0].len(), 1);
        assert_eq!(tops[1].len(), 1);
        assert!(tops[2].is_empty());
    }
}
