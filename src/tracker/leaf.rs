//! One leaf of the torrent index: the torrents whose hashes share a prefix,
//! in sorted vectors by kind (one or two inline peers of either address
//! family, a crowd on the heap), so each kind is stored at its own size with
//! no per-torrent heap block or pointer for the common small swarms.
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
    One6(usize),
    Two6(usize),
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

    /// The address of a compact form, 6 bytes (IPv4) or 18 (IPv6).
    pub fn from_compact(bytes: &[u8]) -> Addr {
        match bytes.len() {
            6 => Addr::V4(bytes.try_into().expect("6 bytes")),
            18 => Addr::V6(bytes.try_into().expect("18 bytes")),
            n => unreachable!("no address family has {n}-byte compact addresses"),
        }
    }

    /// The compact form: address bytes, then the port.
    pub fn bytes(&self) -> &[u8] {
        match self {
            Addr::V4(a) => a,
            Addr::V6(a) => a,
        }
    }

    /// The leading bytes that name the peer's network: its IPv4 address, or
    /// its IPv6 /64 (what one subscriber is given).
    pub fn network(&self) -> &[u8] {
        match self {
            Addr::V4(a) => &a[..4],
            Addr::V6(a) => &a[..8],
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
    ones6: Vec<Small<1, 18>>,
    twos6: Vec<Small<2, 18>>,
    crowds: Vec<Crowd>,
}

/// Counts a completed download on an inline torrent; when its count is
/// full, takes it out of its kind instead, as a crowd.
fn complete_inline<const N: usize, const W: usize>(
    kind: &mut Vec<Small<N, W>>,
    at: usize,
    clock: PeerClock,
    now: u32,
) -> Option<Crowd> {
    let torrent = &mut kind[at];
    if torrent.completed() < COMPLETED_MAX {
        torrent.set_completed(torrent.completed() + 1);
        return None;
    }
    let crowd = Crowd::from_small(&kind.remove(at), clock, now);
    capacity::release(kind);
    Some(crowd)
}

/// Refreshes or adds a peer of a one-peer torrent's family. A second peer
/// moves the torrent to `twos`: then its index there is returned too.
fn update_one<const W: usize>(
    ones: &mut Vec<Small<1, W>>,
    twos: &mut Vec<Small<2, W>>,
    at: usize,
    addr: [u8; W],
    visit: &Visit,
    prefix: usize,
) -> (Updated, Option<usize>) {
    if let Some(updated) = ones[at].update(addr, visit) {
        return (updated, None);
    }
    let one = ones.remove(at);
    capacity::release(ones);
    let last_active = one.last_active(visit.clock, visit.now);
    let mut two = Small::<2, W>::with_peers(one.hash, one.completed(), last_active, one.peers());
    let updated = two.update(addr, visit).unwrap_or_default();
    (updated, Some(insert(twos, two, prefix)))
}

/// Sweeps one family's inline torrents, with the one- and two-peer ones of
/// `shrunk` (crowds that shrank) added: expires peers, moves two-peer
/// torrents left with one to `ones`, and drops peerless torrents `keep`
/// refuses. Returns how many it dropped.
fn sweep_inline<const W: usize>(
    ones: &mut Vec<Small<1, W>>,
    twos: &mut Vec<Small<2, W>>,
    shrunk: (Vec<Small<1, W>>, Vec<Small<2, W>>),
    clock: PeerClock,
    now: u32,
    keep: impl Fn(usize, u32, u32) -> bool,
    dropped: &mut Dropped,
) -> usize {
    let (mut to_ones, to_twos) = shrunk;
    twos.retain_mut(|two| {
        dropped.add(two.expire(clock, now));
        if two.count() == 2 {
            return true;
        }
        let last_active = two.last_active(clock, now);
        to_ones.push(Small::with_peers(
            two.hash,
            two.completed(),
            last_active,
            two.peers(),
        ));
        false
    });
    add_all(twos, to_twos);
    add_all(ones, to_ones);
    let before = ones.len();
    ones.retain_mut(|one| {
        dropped.add(one.expire(clock, now));
        keep(one.count(), one.completed(), one.last_active(clock, now))
    });
    before - ones.len()
}

/// Moves each entry of `entries` to the leaf of its hash's next nibble.
fn distribute<T: Keyed>(
    entries: Vec<T>,
    leaves: &mut [Leaf],
    nibble: usize,
    kind: fn(&mut Leaf) -> &mut Vec<T>,
) {
    for entry in entries {
        let hash = entry.hash();
        let of = usize::from(hash[nibble / 2] >> (4 * (1 - nibble % 2)) & 15);
        kind(&mut leaves[of]).push(entry);
    }
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
        self.ones.len() + self.twos.len() + self.ones6.len() + self.twos6.len() + self.crowds.len()
    }

    /// Finds a torrent, looking first among crowds, which get most
    /// announces. Every kind's first probe is fetched from memory at once.
    pub fn find(&self, hash: &[u8; 20]) -> Option<Slot> {
        prefetch(&self.crowds, hash, self.prefix);
        prefetch(&self.twos, hash, self.prefix);
        prefetch(&self.ones, hash, self.prefix);
        prefetch(&self.twos6, hash, self.prefix);
        prefetch(&self.ones6, hash, self.prefix);
        if let Ok(at) = position(&self.crowds, hash, self.prefix) {
            return Some(Slot::Crowd(at));
        }
        if let Ok(at) = position(&self.twos, hash, self.prefix) {
            return Some(Slot::Two(at));
        }
        if let Ok(at) = position(&self.ones, hash, self.prefix) {
            return Some(Slot::One(at));
        }
        if let Ok(at) = position(&self.twos6, hash, self.prefix) {
            return Some(Slot::Two6(at));
        }
        position(&self.ones6, hash, self.prefix)
            .ok()
            .map(Slot::One6)
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
            Slot::One6(at) => Torrent::One6(&self.ones6[at]),
            Slot::Two6(at) => Torrent::Two6(&self.twos6[at]),
            Slot::Crowd(at) => Torrent::Crowd(&self.crowds[at]),
        }
    }

    /// Counts one more completed download, moving an inline torrent to a
    /// crowd when its count would overflow. Returns where it is now.
    pub fn add_completed(&mut self, slot: Slot, clock: PeerClock, now: u32) -> Slot {
        let crowd = match slot {
            Slot::Crowd(at) => {
                let t = &mut self.crowds[at];
                t.completed = t.completed.saturating_add(1);
                return slot;
            }
            Slot::One(at) => complete_inline(&mut self.ones, at, clock, now),
            Slot::Two(at) => complete_inline(&mut self.twos, at, clock, now),
            Slot::One6(at) => complete_inline(&mut self.ones6, at, clock, now),
            Slot::Two6(at) => complete_inline(&mut self.twos6, at, clock, now),
        };
        let Some(mut crowd) = crowd else {
            return slot;
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
        let now = visit.now;
        let Some(found) = self.find(hash) else {
            let (updated, slot) = match addr {
                Addr::V4(addr) => {
                    let mut one = Small::<1>::empty(*hash, 0, now);
                    let updated = one.update(addr, visit).unwrap_or_default();
                    (updated, Slot::One(insert(&mut self.ones, one, self.prefix)))
                }
                Addr::V6(addr) => {
                    let mut one = Small::<1, 18>::empty(*hash, 0, now);
                    let updated = one.update(addr, visit).unwrap_or_default();
                    (
                        updated,
                        Slot::One6(insert(&mut self.ones6, one, self.prefix)),
                    )
                }
            };
            return (updated, slot, true);
        };
        let prefix = self.prefix;
        let (updated, slot) = match (found, addr) {
            (Slot::Crowd(at), addr) => (self.crowds[at].update(addr, visit), found),
            (Slot::One(at), Addr::V4(addr)) => {
                match update_one(&mut self.ones, &mut self.twos, at, addr, visit, prefix) {
                    (updated, None) => (updated, found),
                    (updated, Some(two)) => (updated, Slot::Two(two)),
                }
            }
            (Slot::One6(at), Addr::V6(addr)) => {
                match update_one(&mut self.ones6, &mut self.twos6, at, addr, visit, prefix) {
                    (updated, None) => (updated, found),
                    (updated, Some(two)) => (updated, Slot::Two6(two)),
                }
            }
            (Slot::Two(at), Addr::V4(v4)) => match self.twos[at].update(v4, visit) {
                Some(updated) => (updated, found),
                None => self.crowd_with(found, addr, visit),
            },
            (Slot::Two6(at), Addr::V6(v6)) => match self.twos6[at].update(v6, visit) {
                Some(updated) => (updated, found),
                None => self.crowd_with(found, addr, visit),
            },
            // A peer of the other family.
            (Slot::One(_) | Slot::Two(_) | Slot::One6(_) | Slot::Two6(_), _) => {
                self.crowd_with(found, addr, visit)
            }
        };
        (updated, slot, false)
    }

    /// Moves the inline torrent at `slot` to the crowds, with the peer at
    /// `addr` added; returns the update and where the torrent is now.
    fn crowd_with(&mut self, slot: Slot, addr: Addr, visit: &Visit) -> (Updated, Slot) {
        let (clock, now) = (visit.clock, visit.now);
        let mut crowd = match slot {
            Slot::One(at) => Crowd::from_small(&self.ones.remove(at), clock, now),
            Slot::Two(at) => Crowd::from_small(&self.twos.remove(at), clock, now),
            Slot::One6(at) => Crowd::from_small(&self.ones6.remove(at), clock, now),
            Slot::Two6(at) => Crowd::from_small(&self.twos6.remove(at), clock, now),
            Slot::Crowd(_) => unreachable!("a crowd is no inline torrent"),
        };
        self.release();
        let updated = crowd.update(addr, visit);
        (
            updated,
            Slot::Crowd(insert(&mut self.crowds, crowd, self.prefix)),
        )
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
        let removed = match slot {
            Slot::One(at) => self.ones[at].stop(&addr, clock, now),
            Slot::Two(at) => self.twos[at].stop(&addr, clock, now),
            Slot::One6(at) => self.ones6[at].stop(&addr, clock, now),
            Slot::Two6(at) => self.twos6[at].stop(&addr, clock, now),
            Slot::Crowd(at) => self.crowds[at].stop(&addr),
        };
        Some((removed, self.get(slot).counts()))
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
        let (mut to_ones6, mut to_twos6) = (Vec::new(), Vec::new());
        self.crowds.retain_mut(|crowd| {
            dropped.add(crowd.expire(clock, now));
            match crowd.fit() {
                Fit::Crowd => {
                    let peers = crowd.v4.len() + crowd.v6_len();
                    let kept = keep(peers, crowd.completed, crowd.last_active);
                    dead_crowds += usize::from(!kept);
                    return kept;
                }
                Fit::One(one) => to_ones.push(one),
                Fit::Two(two) => to_twos.push(two),
                Fit::One6(one) => to_ones6.push(one),
                Fit::Two6(two) => to_twos6.push(two),
            }
            false
        });
        let (ones, twos, shrunk) = (&mut self.ones, &mut self.twos, (to_ones, to_twos));
        let mut dead = sweep_inline(ones, twos, shrunk, clock, now, keep, &mut dropped);
        let (ones, twos, shrunk) = (&mut self.ones6, &mut self.twos6, (to_ones6, to_twos6));
        dead += sweep_inline(ones, twos, shrunk, clock, now, keep, &mut dropped);
        self.trim();
        Swept {
            peers: u64::from(dropped.peers),
            seeders: u64::from(dropped.seeders),
            torrents: dead_crowds + dead,
        }
    }

    /// The torrent at `at` of each kind, in [`Self::visit_after`]'s order
    /// of kinds.
    fn nth_of_each(&self, at: [usize; 5]) -> [Option<Torrent<'_>>; 5] {
        [
            self.ones.get(at[0]).map(Torrent::One),
            self.twos.get(at[1]).map(Torrent::Two),
            self.ones6.get(at[2]).map(Torrent::One6),
            self.twos6.get(at[3]).map(Torrent::Two6),
            self.crowds.get(at[4]).map(Torrent::Crowd),
        ]
    }

    /// Calls `visit` for each torrent after `after` in ascending hash order
    /// until it returns false; returns true when it did.
    pub fn visit_after(
        &self,
        after: Option<&[u8; 20]>,
        visit: &mut dyn FnMut(Torrent<'_>) -> bool,
    ) -> bool {
        let start = |found: Result<usize, usize>| found.map_or_else(|at| at, |at| at + 1);
        let mut next = match after {
            None => [0; 5],
            Some(after) => [
                start(position(&self.ones, after, self.prefix)),
                start(position(&self.twos, after, self.prefix)),
                start(position(&self.ones6, after, self.prefix)),
                start(position(&self.twos6, after, self.prefix)),
                start(position(&self.crowds, after, self.prefix)),
            ],
        };
        loop {
            let first = self
                .nth_of_each(next)
                .into_iter()
                .enumerate()
                .filter_map(|(kind, t)| t.map(|t| (kind, t)))
                .min_by_key(|(_, t)| key(t.hash()));
            let Some((kind, torrent)) = first else {
                return false;
            };
            next[kind] += 1;
            if !visit(torrent) {
                return true;
            }
        }
    }

    /// Splits this leaf into 16 by the hash nibble after its prefix.
    pub fn split(self) -> Vec<Leaf> {
        let nibble = self.prefix;
        let mut leaves: Vec<Leaf> = (0..16).map(|_| Leaf::new(nibble + 1)).collect();
        distribute(self.ones, &mut leaves, nibble, |l| &mut l.ones);
        distribute(self.twos, &mut leaves, nibble, |l| &mut l.twos);
        distribute(self.ones6, &mut leaves, nibble, |l| &mut l.ones6);
        distribute(self.twos6, &mut leaves, nibble, |l| &mut l.twos6);
        distribute(self.crowds, &mut leaves, nibble, |l| &mut l.crowds);
        leaves.iter_mut().for_each(Leaf::trim);
        leaves
    }

    fn trim(&mut self) {
        capacity::trim(&mut self.ones);
        capacity::trim(&mut self.twos);
        capacity::trim(&mut self.ones6);
        capacity::trim(&mut self.twos6);
        capacity::trim(&mut self.crowds);
    }

    /// Gives back spare room of the inline kinds after a torrent left one.
    fn release(&mut self) {
        capacity::release(&mut self.ones);
        capacity::release(&mut self.twos);
        capacity::release(&mut self.ones6);
        capacity::release(&mut self.twos6);
    }

    /// Appends a leaf whose hashes all follow this one's.
    pub fn absorb(&mut self, other: Leaf) {
        self.ones.extend(other.ones);
        self.twos.extend(other.twos);
        self.ones6.extend(other.ones6);
        self.twos6.extend(other.twos6);
        self.crowds.extend(other.crowds);
        self.trim();
    }
}
