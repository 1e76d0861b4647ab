//! WebTorrent swarms: browsers that find each other through the tracker and
//! then connect over WebRTC. They have no address to hand out; the tracker
//! relays their connection offers and answers over the WebSocket each keeps
//! open, so a peer here is an id and the key of its connection.
//!
//! These swarms are kept apart from the BitTorrent ones: a browser cannot
//! connect to a TCP or uTP peer, nor they to it.

use std::collections::HashMap;

use super::Limits;
use crate::proto::{Event, InfoHash, SwarmCounts};

pub type PeerId = [u8; 20];
/// Which connection a peer announced on; the server's slab key.
pub type ConnectionKey = usize;

#[derive(Clone, Copy, Debug)]
struct RtcPeer {
    id: PeerId,
    connection: ConnectionKey,
    seeder: bool,
    /// Sticky, as a BitTorrent peer's: its download is counted once.
    completed: bool,
    last_announce: u32,
}

/// One torrent's peers, sorted by id.
#[derive(Default)]
struct RtcTorrent {
    peers: Vec<RtcPeer>,
    seeders: u32,
    completed: u32,
    /// The last announce: a peerless torrent with downloads is kept for
    /// the torrent timeout after it, as a BitTorrent one.
    last_active: u32,
}

impl RtcTorrent {
    fn counts(&self) -> SwarmCounts {
        SwarmCounts {
            seeders: self.seeders,
            leechers: self.peers.len() as u32 - self.seeders,
            completed: self.completed,
        }
    }

    fn find(&self, id: &PeerId) -> Result<usize, usize> {
        self.peers.binary_search_by(|p| p.id.cmp(id))
    }

    fn remove_at(&mut self, at: usize) -> RtcPeer {
        let peer = self.peers.remove(at);
        self.seeders -= u32::from(peer.seeder);
        peer
    }
}

/// Totals over every WebTorrent swarm.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RtcTotals {
    pub torrents: usize,
    pub peers: usize,
    pub seeders: usize,
}

/// What an announce did to its swarm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RtcAnnounced {
    /// The torrent's counts after it.
    pub counts: SwarmCounts,
    /// Whether it counted a download: `completed` from a seeder not
    /// counted before, as for BitTorrent peers.
    pub completed: bool,
    /// False when a limit kept a new torrent or peer out: the announce is
    /// answered with the swarm's counts and changes nothing.
    pub stored: bool,
}

pub struct RtcSwarms {
    torrents: HashMap<InfoHash, RtcTorrent, foldhash::fast::RandomState>,
    peers: usize,
    seeders: usize,
    /// `tracker.max_torrents` and `tracker.max_peers`, which bound these
    /// swarms as they bound the BitTorrent ones, counted apart.
    limits: Limits,
}

impl Default for RtcSwarms {
    fn default() -> Self {
        RtcSwarms::new(Limits::NONE)
    }
}

impl RtcSwarms {
    pub fn new(limits: Limits) -> Self {
        RtcSwarms {
            torrents: HashMap::default(),
            peers: 0,
            seeders: 0,
            limits,
        }
    }

    /// Whether peer `id` may be stored in the torrent: a new torrent
    /// needs room under the torrent limit, a new peer under the peer limit.
    fn has_room(&self, hash: &InfoHash, id: &PeerId) -> bool {
        let room_for_peer = (self.peers as u64) < self.limits.peers;
        match self.torrents.get(hash) {
            None => self.torrents.len() < self.limits.torrents && room_for_peer,
            Some(torrent) => torrent.find(id).is_ok() || room_for_peer,
        }
    }

    /// Records an announce made at `now` on `connection`. A stopped peer
    /// leaves, when the stop comes on its own connection: peer ids travel
    /// in every relayed offer, so anyone could otherwise stop anyone. A
    /// peer id seen on another connection moves to this one (a browser
    /// that reconnected; the server allows that only from the address the
    /// id is held from).
    pub fn announce(
        &mut self,
        hash: InfoHash,
        id: &PeerId,
        connection: ConnectionKey,
        seeder: bool,
        event: Event,
        now: u32,
    ) -> RtcAnnounced {
        if event != Event::Stopped && !self.has_room(&hash, id) {
            return RtcAnnounced {
                counts: self.counts(&hash),
                completed: false,
                stored: false,
            };
        }
        let torrent = self.torrents.entry(hash).or_default();
        let completing = seeder && event == Event::Completed;
        let mut completed = false;
        match (torrent.find(id), event) {
            (Ok(at), Event::Stopped) if torrent.peers[at].connection == connection => {
                let peer = torrent.remove_at(at);
                self.peers -= 1;
                self.seeders -= usize::from(peer.seeder);
            }
            (_, Event::Stopped) => {}
            (Ok(at), _) => {
                let peer = &mut torrent.peers[at];
                completed = completing && !peer.completed;
                if seeder != peer.seeder {
                    if seeder {
                        torrent.seeders += 1;
                        self.seeders += 1;
                    } else {
                        torrent.seeders -= 1;
                        self.seeders -= 1;
                    }
                }
                *peer = RtcPeer {
                    id: *id,
                    connection,
                    seeder,
                    completed: peer.completed || completing,
                    last_announce: now,
                };
            }
            (Err(at), _) => {
                let peer = RtcPeer {
                    id: *id,
                    connection,
                    seeder,
                    completed: completing,
                    last_announce: now,
                };
                torrent.peers.insert(at, peer);
                completed = completing;
                torrent.seeders += u32::from(seeder);
                self.peers += 1;
                self.seeders += usize::from(seeder);
            }
        }
        torrent.completed += u32::from(completed);
        torrent.last_active = now;
        let counts = torrent.counts();
        if torrent.peers.is_empty() && torrent.completed == 0 {
            self.torrents.remove(&hash);
        }
        RtcAnnounced {
            counts,
            completed,
            stored: true,
        }
    }

    /// Writes into `out` the connections of up to `wanted` other peers of
    /// the torrent, drawn at random, for `from`'s offers: leechers only when
    /// `from` is a seeder, as one seeder has nothing for another.
    pub fn offer_targets(
        &self,
        hash: &InfoHash,
        from: &PeerId,
        seeder: bool,
        wanted: usize,
        rng: &mut fastrand::Rng,
        out: &mut Vec<(PeerId, ConnectionKey)>,
    ) {
        out.clear();
        let Some(torrent) = self.torrents.get(hash) else {
            return;
        };
        let eligible = |p: &RtcPeer| p.id != *from && !(seeder && p.seeder);
        let peers = &torrent.peers;
        let leechers = peers.len() - torrent.seeders as usize;
        let candidates = if seeder { leechers } else { peers.len() };
        if wanted == 0 || candidates == 0 {
            return;
        }
        if candidates <= 2 * wanted {
            out.extend(
                peers
                    .iter()
                    .filter(|p| eligible(p))
                    .map(|p| (p.id, p.connection)),
            );
            rng.shuffle(out);
            out.truncate(wanted);
            return;
        }
        // Many candidates: draw at random, and walk on from a random place
        // should the draws keep hitting ineligible peers.
        for _ in 0..64 * wanted {
            let peer = &peers[rng.usize(..peers.len())];
            if eligible(peer) && !out.iter().any(|(id, _)| *id == peer.id) {
                out.push((peer.id, peer.connection));
                if out.len() == wanted {
                    return;
                }
            }
        }
        let start = rng.usize(..peers.len());
        for peer in peers[start..].iter().chain(&peers[..start]) {
            if out.len() == wanted {
                break;
            }
            if eligible(peer) && !out.iter().any(|(id, _)| *id == peer.id) {
                out.push((peer.id, peer.connection));
            }
        }
    }

    /// The connection peer `id` of the torrent announced on, if it is there.
    pub fn connection_of(&self, hash: &InfoHash, id: &PeerId) -> Option<ConnectionKey> {
        let torrent = self.torrents.get(hash)?;
        let at = torrent.find(id).ok()?;
        Some(torrent.peers[at].connection)
    }

    /// Takes peer `id` out of the torrent when `connection` closed, unless
    /// it has announced on another connection since.
    pub fn leave(&mut self, hash: &InfoHash, id: &PeerId, connection: ConnectionKey) {
        let Some(torrent) = self.torrents.get_mut(hash) else {
            return;
        };
        if let Ok(at) = torrent.find(id) {
            if torrent.peers[at].connection == connection {
                let peer = torrent.remove_at(at);
                self.peers -= 1;
                self.seeders -= usize::from(peer.seeder);
            }
        }
        if torrent.peers.is_empty() && torrent.completed == 0 {
            self.torrents.remove(hash);
        }
    }

    /// Forgets peers that have not announced for `peer_timeout` seconds,
    /// and torrents left without peers: at once without downloads, else
    /// `torrent_timeout` seconds after their last announce. How many peers
    /// went.
    pub fn sweep(&mut self, now: u32, peer_timeout: u32, torrent_timeout: u32) -> usize {
        let before = self.peers;
        let (mut peers, mut seeders) = (0, 0);
        self.torrents.retain(|_, torrent| {
            torrent
                .peers
                .retain(|p| now.saturating_sub(p.last_announce) < peer_timeout);
            torrent.seeders = torrent.peers.iter().filter(|p| p.seeder).count() as u32;
            peers += torrent.peers.len();
            seeders += torrent.seeders as usize;
            !torrent.peers.is_empty()
                || torrent.completed > 0
                    && now.saturating_sub(torrent.last_active) < torrent_timeout
        });
        self.peers = peers;
        self.seeders = seeders;
        // After a flood of swarms the table would keep its size for good.
        let (len, capacity) = (self.torrents.len(), self.torrents.capacity());
        if capacity > 1024 && len < capacity / 4 {
            self.torrents.shrink_to(len * 2);
        }
        before - peers
    }

    /// The torrent's counts, zeros when unknown.
    pub fn counts(&self, hash: &InfoHash) -> SwarmCounts {
        self.torrents
            .get(hash)
            .map_or_else(SwarmCounts::default, RtcTorrent::counts)
    }

    pub fn totals(&self) -> RtcTotals {
        RtcTotals {
            torrents: self.torrents.len(),
            peers: self.peers,
            seeders: self.seeders,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: InfoHash = InfoHash([7; 20]);

    fn id(n: u32) -> PeerId {
        let mut id = [0u8; 20];
        id[..4].copy_from_slice(&n.to_be_bytes());
        id
    }

    fn counts(seeders: u32, leechers: u32, completed: u32) -> SwarmCounts {
        SwarmCounts {
            seeders,
            leechers,
            completed,
        }
    }

    #[test]
    fn announces_count_and_stopped_peers_leave() {
        let mut swarms = RtcSwarms::default();
        // (peer, connection, seeder, event, counts after, a download
        // counted): completing, a leecher turned seeder counts a download,
        // once, even after leeching again (a recheck); so does a newcomer
        // that completed; a "completed" with bytes left counts none.
        let steps = [
            (1, 10, false, Event::None, counts(0, 1, 0), false),
            (2, 11, true, Event::None, counts(1, 1, 0), false),
            (1, 10, true, Event::Completed, counts(2, 0, 1), true),
            (1, 10, true, Event::Completed, counts(2, 0, 1), false),
            (1, 10, false, Event::None, counts(1, 1, 1), false),
            (1, 10, true, Event::Completed, counts(2, 0, 1), false),
            (3, 12, false, Event::Completed, counts(2, 1, 1), false),
            (4, 13, true, Event::Completed, counts(3, 1, 2), true),
            (2, 11, true, Event::Stopped, counts(2, 1, 2), false),
        ];
        for (now, (peer, connection, seeder, event, counts, completed)) in
            steps.into_iter().enumerate()
        {
            let got = swarms.announce(HASH, &id(peer), connection, seeder, event, now as u32);
            let stored = true;
            assert_eq!(
                got,
                RtcAnnounced {
                    counts,
                    completed,
                    stored
                },
                "step {now}"
            );
        }
        let totals = swarms.totals();
        assert_eq!((totals.torrents, totals.peers, totals.seeders), (1, 3, 2));
        // A torrent without peers or downloads is not kept.
        let other = InfoHash([9; 20]);
        swarms.announce(other, &id(3), 12, false, Event::None, 0);
        swarms.announce(other, &id(3), 12, false, Event::Stopped, 1);
        assert_eq!(swarms.totals().torrents, 1);
        assert_eq!(swarms.counts(&other), SwarmCounts::default());
    }

    #[test]
    fn only_its_own_connection_stops_a_peer() {
        let mut swarms = RtcSwarms::default();
        swarms.announce(HASH, &id(1), 10, false, Event::None, 0);
        let forged = swarms.announce(HASH, &id(1), 66, false, Event::Stopped, 1);
        assert_eq!(forged.counts, counts(0, 1, 0));
        assert_eq!(swarms.connection_of(&HASH, &id(1)), Some(10));
        let own = swarms.announce(HASH, &id(1), 10, false, Event::Stopped, 2);
        assert_eq!(own.counts, counts(0, 0, 0));
    }

    #[test]
    fn a_closed_connection_takes_only_its_own_peers() {
        let mut swarms = RtcSwarms::default();
        swarms.announce(HASH, &id(1), 10, false, Event::None, 0);
        // The same browser reconnected: its peer moved to connection 20.
        swarms.announce(HASH, &id(1), 20, false, Event::None, 1);
        assert_eq!(swarms.connection_of(&HASH, &id(1)), Some(20));
        swarms.leave(&HASH, &id(1), 10);
        assert_eq!(swarms.totals().peers, 1);
        swarms.leave(&HASH, &id(1), 20);
        assert_eq!(swarms.totals(), RtcTotals::default());
        assert_eq!(swarms.connection_of(&HASH, &id(1)), None);
    }

    #[test]
    fn offers_go_to_other_peers_and_a_seeders_to_leechers_only() {
        let mut rng = fastrand::Rng::with_seed(3);
        let mut out = Vec::new();
        for size in [1u32, 2, 5, 30, 3000] {
            let mut swarms = RtcSwarms::default();
            for n in 0..size {
                // Every third peer a leecher.
                swarms.announce(HASH, &id(n), n as usize, n % 3 != 0, Event::None, 0);
            }
            let leechers = size.div_ceil(3) as usize;
            for (from, seeder) in [(id(0), false), (id(1), true)] {
                swarms.offer_targets(&HASH, &from, seeder, 10, &mut rng, &mut out);
                let others = if seeder { leechers } else { size as usize - 1 };
                assert_eq!(out.len(), others.min(10), "swarm of {size}");
                for (n, (peer, connection)) in out.iter().enumerate() {
                    assert_ne!(*peer, from);
                    assert_eq!(id(*connection as u32), *peer);
                    assert!(
                        !seeder || connection % 3 == 0,
                        "a seeder's offer to a seeder"
                    );
                    assert!(!out[..n].iter().any(|(p, _)| p == peer), "twice");
                }
            }
        }
        RtcSwarms::default().offer_targets(&HASH, &id(0), false, 10, &mut rng, &mut out);
        assert!(
            out.is_empty(),
            "an unknown torrent has no peers to offer to"
        );
    }

    #[test]
    fn offers_reach_every_peer_over_many_draws() {
        let mut swarms = RtcSwarms::default();
        for n in 0..100 {
            swarms.announce(HASH, &id(n), n as usize, false, Event::None, 0);
        }
        let mut rng = fastrand::Rng::with_seed(5);
        let (mut out, mut seen) = (Vec::new(), [0u32; 100]);
        for _ in 0..1000 {
            swarms.offer_targets(&HASH, &id(0), false, 5, &mut rng, &mut out);
            for (_, connection) in &out {
                seen[*connection] += 1;
            }
        }
        // 5000 offers over 99 peers: about 50 each.
        assert_eq!(seen[0], 0);
        assert!(
            seen[1..].iter().all(|&n| (20..100).contains(&n)),
            "{seen:?}"
        );
    }

    #[test]
    fn a_sweep_forgets_silent_peers() {
        let mut swarms = RtcSwarms::default();
        swarms.announce(HASH, &id(1), 1, true, Event::None, 0);
        swarms.announce(HASH, &id(2), 2, false, Event::None, 100);
        assert_eq!(swarms.sweep(150, 120, 1000), 1);
        assert_eq!(swarms.counts(&HASH), counts(0, 1, 0));
        assert_eq!(swarms.sweep(300, 120, 1000), 1);
        assert_eq!(swarms.totals(), RtcTotals::default());
    }

    #[test]
    fn a_peerless_swarm_keeps_its_downloads_for_the_torrent_timeout() {
        let mut swarms = RtcSwarms::default();
        swarms.announce(HASH, &id(1), 1, true, Event::Completed, 0);
        assert_eq!(swarms.sweep(200, 120, 1000), 1);
        assert_eq!(swarms.counts(&HASH), counts(0, 0, 1));
        assert_eq!(swarms.totals().torrents, 1);
        swarms.sweep(999, 120, 1000);
        assert_eq!(swarms.counts(&HASH), counts(0, 0, 1));
        swarms.sweep(1000, 120, 1000);
        assert_eq!(swarms.totals(), RtcTotals::default());
    }

    #[test]
    fn limits_keep_new_torrents_and_peers_out() {
        let mut swarms = RtcSwarms::new(Limits {
            peers: 3,
            torrents: 2,
            ..Limits::NONE
        });
        let hash = |n| InfoHash([n; 20]);
        // Completed and stopped at once: the swarm stays for its download.
        for n in 0..2 {
            swarms.announce(hash(n), &id(1), 1, true, Event::Completed, 0);
            swarms.announce(hash(n), &id(1), 1, true, Event::Stopped, 0);
        }
        let refused = swarms.announce(hash(2), &id(1), 1, true, Event::Completed, 0);
        assert!(!refused.stored && !refused.completed);
        assert_eq!(refused.counts, SwarmCounts::default());
        assert_eq!(swarms.totals().torrents, 2);
        // Known torrents take new peers up to the peer limit.
        for n in 1..=3 {
            assert!(
                swarms
                    .announce(hash(0), &id(n), n as usize, false, Event::None, 0)
                    .stored
            );
        }
        let refused = swarms.announce(hash(1), &id(9), 9, false, Event::None, 0);
        assert_eq!((refused.stored, refused.counts), (false, counts(0, 0, 1)));
        // Peers held re-announce as before, and a stop makes room.
        assert!(
            swarms
                .announce(hash(0), &id(2), 2, true, Event::Completed, 1)
                .stored
        );
        swarms.announce(hash(0), &id(3), 3, false, Event::Stopped, 1);
        assert!(
            swarms
                .announce(hash(1), &id(9), 9, false, Event::None, 1)
                .stored
        );
    }

    #[test]
    fn a_swept_flood_gives_its_table_back() {
        let mut swarms = RtcSwarms::default();
        for n in 0..50_000u32 {
            let mut hash = [0; 20];
            hash[..4].copy_from_slice(&n.to_be_bytes());
            swarms.announce(InfoHash(hash), &id(1), 1, false, Event::None, 0);
        }
        let flooded = swarms.torrents.capacity();
        swarms.announce(HASH, &id(2), 2, false, Event::None, 200);
        swarms.sweep(200, 120, 1000);
        assert_eq!(swarms.totals().torrents, 1);
        assert!(swarms.torrents.capacity() < flooded / 100, "{flooded}");
    }
}
