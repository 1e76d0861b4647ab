//! One leaf of the torrent index: the torrents whose hashes share a prefix,
//! in three sorted vectors by kind (one inline peer, two inline peers, a
//! crowd on the heap), so each kind is stored at its own size with no
//! per-torrent heap block or pointer for the common small swarms.
//!
//! A leaf never holds more than [`super::index`] allows (about a thousand
//! torrents), so inserting into its sorted vectors moves little memory even
//! when an attacker picks hashes sharing a long prefix.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::capacity;
use super::clock::PeerClock;
use super::crowd::{Crowd, Fit};
use super::peer::{Dropped, Updated, Visit};
use super::search::{key, position, prefetch, Keyed};
use super::small::{Small, COMPLETED_MAX};
use super::torrent::Torrent;
use crate::proto::SwarmCounts;

/// Inserts a torrent known to be absent; returns its index.
fn insert<T: Keyed>(entries: &mut Vec<T>, entry: T, prefix: usize) -> usize {
    let at = position(entries, entry.hash(), prefix).unwrap_or_else(|at| at);
    capacity::reserve_one(entries);
    entries.insert(at, entry);
    at
}

/// Adds torrents in any order to sorted `entries`.
fn add_all<T: Keyed>(entries: &mut Vec<T>, more: Vec<T>) {
    if !more.is_empty() {
        capacity::reserve(entries, more.len());
        entries.extend(more);
        entries.sort_unstable_by_key(|e| key(e.hash()));
    }
}

/// Where a torrent is in its leaf.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    One(usize),
    Two(usize),
    Crowd(usize),
}

/// A peer's compact address.
#[derive(Clone, Copy, Debug)]
pub enum Addr {
    V4([u8; 6]),
    V6([u8; 18]),
}

impl Addr {
    /// The compact form of `ip` (IPv4-mapped addresses given as IPv4) and
    /// `port`: address bytes, then the port, big-endian.
    pub fn new(ip: IpAddr, port: u16) -> Addr {
        match ip {
            IpAddr::V4(v4) => {
                let mut addr = [0u8; 6];
                addr[..4].copy_from_slice(&v4.octets());
                addr[4..].copy_from_slice(&port.to_be_bytes());
                Addr::V4(addr)
            }
            IpAddr::V6(v6) => {
                let mut addr = [0u8; 18];
                addr[..16].copy_from_slice(&v6.octets());
                addr[16..].copy_from_slice(&port.to_be_bytes());
                Addr::V6(addr)
            }
        }
    }

    pub fn socket_addr(&self) -> SocketAddr {
        match self {
            Addr::V4(a) => {
                let ip = Ipv4Addr::new(a[0], a[1], a[2], a[3]);
                SocketAddr::new(ip.into(), u16::from_be_bytes([a[4], a[5]]))
            }
            Addr::V6(a) => {
                let mut ip = [0u8; 16];
                ip.copy_from_slice(&a[..16]);
                let port = u16::from_be_bytes([a[16], a[17]]);
                SocketAddr::new(Ipv6Addr::from(ip).into(), port)
            }
        }
    }
}

/// What a sweep of one leaf dropped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Swept {
    pub peers: u64,
    pub seeders: u64,
    pub torrents: usize,
}

/// The torrents of one hash prefix.
#[derive(Debug, Default)]
pub struct Leaf {
    /// How many leading nibbles all hashes here share.
    prefix: usize,
    ones: Vec<Small<1>>,
    twos: Vec<Small<2>>,
    crowds: Vec<Crowd>,
}

impl Leaf {
    /// An empty leaf for hashes sharing their first `prefix` nibbles.
    pub fn new(prefix: usize) -> Self {
        Leaf {
            prefix,
            ..Leaf::default()
        }
    }

    pub fn len(&self) -> usize {
        self.ones.len() + self.twos.len() + self.crowds.len()
    }

    /// Finds a torrent, looking first among crowds, which get most
    /// announces. All three first probes are fetched from memory at once.
    pub fn find(&self, hash: &[u8; 20]) -> Option<Slot> {
        prefetch(&self.crowds, hash, self.prefix);
        prefetch(&self.twos, hash, self.prefix);
        prefetch(&self.ones, hash, self.prefix);
        if let Ok(at) = position(&self.crowds, hash, self.prefix) {
            return Some(Slot::Crowd(at));
        }
        if let Ok(at) = position(&self.twos, hash, self.prefix) {
            return Some(Slot::Two(at));
        }
        position(&self.ones, hash, self.prefix).ok().map(Slot::One)
    }

    /// Adds a torrent with no peers, `completed` downloads and its last
    /// announce at tracker second `last_active`, from a state dump. Returns
    /// false, changing nothing, when the torrent is already here.
    pub fn restore(
        &mut self,
        hash: &[u8; 20],
        completed: u32,
        last_active: u32,
        clock: PeerClock,
        now: u32,
    ) -> bool {
        if self.find(hash).is_some() {
            return false;
        }
        if completed <= COMPLETED_MAX {
            let torrent = Small::<1>::empty(*hash, completed, last_active);
            insert(&mut self.ones, torrent, self.prefix);
        } else {
            let empty = Small::<1>::empty(*hash, 0, last_active);
            let mut crowd = Crowd::from_small(&empty, clock, now);
            crowd.completed = completed;
            insert(&mut self.crowds, crowd, self.prefix);
        }
        true
    }

    pub fn get(&self, slot: Slot) -> Torrent<'_> {
        match slot {
            Slot::One(at) => Torrent::One(&self.ones[at]),
            Slot::Two(at) => Torrent::Two(&self.twos[at]),
            Slot::Crowd(at) => Torrent::Crowd(&self.crowds[at]),
        }
    }

    /// Counts one more completed download, moving an inline torrent to a
    /// crowd when its count would overflow. Returns where it is now.
    pub fn add_completed(&mut self, slot: Slot, clock: PeerClock, now: u32) -> Slot {
        let mut crowd = match slot {
            Slot::One(at) if self.ones[at].completed() < COMPLETED_MAX => {
                let t = &mut self.ones[at];
                t.set_completed(t.completed() + 1);
                return slot;
            }
            Slot::Two(at) if self.twos[at].completed() < COMPLETED_MAX => {
                let t = &mut self.twos[at];
                t.set_completed(t.completed() + 1);
                return slot;
            }
            Slot::Crowd(at) => {
                let t = &mut self.crowds[at];
                t.completed = t.completed.saturating_add(1);
                return slot;
            }
            Slot::One(at) => Crowd::from_small(&self.ones.remove(at), clock, now),
            Slot::Two(at) => Crowd::from_small(&self.twos.remove(at), clock, now),
        };
        crowd.completed += 1;
        Slot::Crowd(insert(&mut self.crowds, crowd, self.prefix))
    }

    /// Adds a peer from a state file as it was at `visit.now`, its last
    /// announce, with its completed flag but counting no download. Returns
    /// the update and whether the torrent is new.
    pub fn restore_peer(&mut self, hash: &[u8; 20], addr: Addr, visit: &Visit) -> (Updated, bool) {
        let (updated, _, new) = self.update_peer(hash, addr, visit);
        (updated, new)
    }

    /// Inserts or refreshes a peer, creating the torrent or moving it to a
    /// larger kind as needed, and counts a completed download. Returns the
    /// update, where the torrent is now, and whether the torrent is new.
    pub fn announce(
        &mut self,
        hash: &[u8; 20],
        addr: Addr,
        visit: &Visit,
    ) -> (Updated, Slot, bool) {
        let (updated, slot, new) = self.update_peer(hash, addr, visit);
        if !updated.newly_completed {
            return (updated, slot, new);
        }
        (
            updated,
            self.add_completed(slot, visit.clock, visit.now),
            new,
        )
    }

    fn update_peer(&mut self, hash: &[u8; 20], addr: Addr, visit: &Visit) -> (Updated, Slot, bool) {
        let (clock, now) = (visit.clock, visit.now);
        let Some(found) = self.find(hash) else {
            let (updated, slot) = match addr {
                Addr::V4(addr) => {
                    let mut one = Small::<1>::empty(*hash, 0, now);
                    let updated = one.update(addr, visit).unwrap_or_default();
                    (updated, Slot::One(insert(&mut self.ones, one, self.prefix)))
                }
                Addr::V6(addr) => {
                    let mut crowd =
                        Crowd::from_small(&Small::<1>::empty(*hash, 0, now), clock, now);
                    let updated = crowd.update_v6(addr, visit);
                    (
                        updated,
                        Slot::Crowd(insert(&mut self.crowds, crowd, self.prefix)),
                    )
                }
            };
            return (updated, slot, true);
        };
        let (updated, slot) = match (found, addr) {
            (Slot::Crowd(at), Addr::V4(addr)) => (self.crowds[at].update_v4(addr, visit), found),
            (Slot::Crowd(at), Addr::V6(addr)) => (self.crowds[at].update_v6(addr, visit), found),
            (Slot::One(at), Addr::V4(addr)) => match self.ones[at].update(addr, visit) {
                Some(updated) => (updated, found),
                None => {
                    let one = self.ones.remove(at);
                    capacity::release(&mut self.ones);
                    let last_active = one.last_active(clock, now);
                    let mut two =
                        Small::<2>::with_peers(*hash, one.completed(), last_active, one.peers());
                    let updated = two.update(addr, visit).unwrap_or_default();
                    (updated, Slot::Two(insert(&mut self.twos, two, self.prefix)))
                }
            },
            (Slot::Two(at), Addr::V4(addr)) => match self.twos[at].update(addr, visit) {
                Some(updated) => (updated, found),
                None => {
                    let mut crowd = Crowd::from_small(&self.twos.remove(at), clock, now);
                    capacity::release(&mut self.twos);
                    let updated = crowd.update_v4(addr, visit);
                    (
                        updated,
                        Slot::Crowd(insert(&mut self.crowds, crowd, self.prefix)),
                    )
                }
            },
            (Slot::One(at), Addr::V6(addr)) => {
                let mut crowd = Crowd::from_small(&self.ones.remove(at), clock, now);
                let updated = crowd.update_v6(addr, visit);
                (
                    updated,
                    Slot::Crowd(insert(&mut self.crowds, crowd, self.prefix)),
                )
            }
            (Slot::Two(at), Addr::V6(addr)) => {
                let mut crowd = Crowd::from_small(&self.twos.remove(at), clock, now);
                let updated = crowd.update_v6(addr, visit);
                (
                    updated,
                    Slot::Crowd(insert(&mut self.crowds, crowd, self.prefix)),
                )
            }
        };
        (updated, slot, false)
    }

    /// Removes a peer (`event=stopped`). Returns `None` for an unknown
    /// torrent, else whether the removed peer was seeding (`None` when it
    /// was not there) and the counts after. Inline torrents stay in their
    /// kind until the next sweep.
    pub fn stop(
        &mut self,
        hash: &[u8; 20],
        addr: Addr,
        clock: PeerClock,
        now: u32,
    ) -> Option<(Option<bool>, SwarmCounts)> {
        let slot = self.find(hash)?;
        let removed = match (slot, addr) {
            (Slot::One(at), Addr::V4(addr)) => self.ones[at].remove(&addr, clock, now),
            (Slot::Two(at), Addr::V4(addr)) => self.twos[at].remove(&addr, clock, now),
            (Slot::Crowd(at), Addr::V4(addr)) => self.crowds[at].v4.remove(&addr),
            (Slot::Crowd(at), Addr::V6(addr)) => {
                let crowd = &mut self.crowds[at];
                let removed = crowd.v6.as_mut().and_then(|l| l.remove(&addr));
                return Some((removed.map(|p| p.mark.seeding()), crowd.counts()));
            }
            (_, Addr::V6(_)) => None,
        };
        Some((removed.map(|p| p.mark.seeding()), self.get(slot).counts()))
    }

    /// Drops timed-out peers, moves torrents to the smallest kind that holds
    /// them, and drops peerless torrents that never completed or have been
    /// idle for `torrent_timeout` seconds.
    pub fn sweep(&mut self, clock: PeerClock, now: u32, torrent_timeout: u32) -> Swept {
        let keep = |peers: usize, completed: u32, last_active: u32| {
            peers > 0 || (completed > 0 && now.saturating_sub(last_active) < torrent_timeout)
        };
        let mut dropped = Dropped::default();
        let mut dead_crowds = 0;
        let (mut to_ones, mut to_twos) = (Vec::new(), Vec::new());
        self.crowds.retain_mut(|crowd| {
            dropped.add(crowd.expire(clock, now));
            match crowd.fit() {
                Fit::Crowd => {
                    let peers = crowd.v4.len() + crowd.v6_len();
                    let kept = keep(peers, crowd.completed, crowd.last_active);
                    dead_crowds += usize::from(!kept);
                    kept
                }
                Fit::Two(two) => {
                    to_twos.push(two);
                    false
                }
                Fit::One(one) => {
                    to_ones.push(one);
                    false
                }
            }
        });
        self.twos.retain_mut(|two| {
            dropped.add(two.expire(clock, now));
            if two.count() == 2 {
                return true;
            }
            let last_active = two.last_active(clock, now);
            let peers = two.peers();
            to_ones.push(Small::with_peers(
                two.hash,
                two.completed(),
                last_active,
                peers,
            ));
            false
        });
        add_all(&mut self.twos, to_twos);
        add_all(&mut self.ones, to_ones);
        let before = self.ones.len();
        self.ones.retain_mut(|one| {
            dropped.add(one.expire(clock, now));
            keep(one.count(), one.completed(), one.last_active(clock, now))
        });
        self.trim();
        Swept {
            peers: u64::from(dropped.peers),
            seeders: u64::from(dropped.seeders),
            torrents: dead_crowds + before - self.ones.len(),
        }
    }

    /// Calls `visit` for each torrent after `after` in ascending hash order
    /// until it returns false; returns true when it did.
    pub fn visit_after(
        &self,
        after: Option<&[u8; 20]>,
        visit: &mut dyn FnMut(Torrent<'_>) -> bool,
    ) -> bool {
        let start = |found: Result<usize, usize>| found.map_or_else(|at| at, |at| at + 1);
        let (mut one, mut two, mut crowd) = match after {
            None => (0, 0, 0),
            Some(after) => (
                start(position(&self.ones, after, self.prefix)),
                start(position(&self.twos, after, self.prefix)),
                start(position(&self.crowds, after, self.prefix)),
            ),
        };
        loop {
            let next = [
                self.ones.get(one).map(Torrent::One),
                self.twos.get(two).map(Torrent::Two),
                self.crowds.get(crowd).map(Torrent::Crowd),
            ]
            .into_iter()
            .flatten()
            .min_by_key(|t| key(t.hash()));
            let Some(torrent) = next else {
                return false;
            };
            match torrent {
                Torrent::One(_) => one += 1,
                Torrent::Two(_) => two += 1,
                Torrent::Crowd(_) => crowd += 1,
            }
            if !visit(torrent) {
                return true;
            }
        }
    }

    /// Splits this leaf into 16 by the hash nibble after its prefix.
    pub fn split(self) -> Vec<Leaf> {
        let nibble = self.prefix;
        let of = |hash: &[u8; 20]| usize::from(hash[nibble / 2] >> (4 * (1 - nibble % 2)) & 15);
        let mut leaves: Vec<Leaf> = (0..16).map(|_| Leaf::new(nibble + 1)).collect();
        for one in self.ones {
            leaves[of(&one.hash)].ones.push(one);
        }
        for two in self.twos {
            leaves[of(&two.hash)].twos.push(two);
        }
        for crowd in self.crowds {
            leaves[of(&crowd.hash)].crowds.push(crowd);
        }
        leaves.iter_mut().for_each(Leaf::trim);
        leaves
    }

    fn trim(&mut self) {
        capacity::trim(&mut self.ones);
        capacity::trim(&mut self.twos);
        capacity::trim(&mut self.crowds);
    }

    /// Appends a leaf whose hashes all follow this one's.
    pub fn absorb(&mut self, other: Leaf) {
        self.ones.extend(other.ones);
        self.twos.extend(other.twos);
        self.crowds.extend(other.crowds);
        self.trim();
    }
}
