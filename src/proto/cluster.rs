//! Cluster sync datagrams (`[cluster]`): trackers that share a load pass
//! each other the announces their own clients made, so every tracker can
//! hand out every peer. This replaces upstream's live sync, which sent
//! unauthenticated multicast: here datagrams go to listed trackers and carry
//! an HMAC-SHA256 tag under a shared key, and a tag that does not verify, a
//! datagram too old or from the future, one heard before, or one from this
//! very tracker is dropped.
//!
//! Layout: `OTC2`, the sender's id (8 bytes, drawn at start), the Unix
//! second it was sent (8), its sequence number (8, counting from 0 at the
//! sender's start), entries, then the first 16 bytes of the tag over
//! everything before it. An entry is a flags byte (bit 0: IPv6; bit 1:
//! seeding; bits 2–3: 0 no event, 1 completed, 2 stopped), the info hash
//! (20), the peer's address (4 or 16) and port (2).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{Event, InfoHash};

// Changed from `OTC1` when the sequence number came in, so members of
// either layout refuse the other's datagrams as damaged.
const MAGIC: &[u8; 4] = b"OTC2";
const HEADER: usize = 4 + 8 + 8 + 8;
const TAG: usize = 16;
/// Datagrams stay below this, so they are never fragmented.
pub const MAX_DATAGRAM: usize = 1400;
/// The most an entry takes.
pub const MAX_ENTRY: usize = 1 + 20 + 16 + 2;
/// How far a datagram's time may be from the receiver's, in seconds.
pub const MAX_SKEW: u64 = 60;
/// How far behind a sender's newest datagram one may arrive and still be
/// applied: a tracker sends its second's datagrams back to back, and 1024
/// is five seconds of them at 10,000 announces per second. Reordering on a
/// network between trackers is far shorter.
const WINDOW: u64 = 1024;

/// One announce, as passed to the other trackers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    pub info_hash: InfoHash,
    pub peer: SocketAddr,
    pub seeding: bool,
    pub event: Event,
}

/// Appends `entry` to `out`.
pub fn push_entry(out: &mut Vec<u8>, entry: &Entry) {
    let event = match entry.event {
        Event::Completed => 1,
        Event::Stopped => 2,
        _ => 0,
    };
    let ip = entry.peer.ip().to_canonical();
    let flags = u8::from(ip.is_ipv6()) | u8::from(entry.seeding) << 1 | event << 2;
    out.push(flags);
    out.extend_from_slice(&entry.info_hash.0);
    match ip {
        IpAddr::V4(v4) => out.extend_from_slice(&v4.octets()),
        IpAddr::V6(v6) => out.extend_from_slice(&v6.octets()),
    }
    out.extend_from_slice(&entry.peer.port().to_be_bytes());
}

/// Seals this tracker's announces for the others.
pub struct Sealer {
    key: Vec<u8>,
    id: u64,
    sequence: u64,
}

impl Sealer {
    /// `id` is drawn at start, so a restarted tracker's sequence numbers
    /// never collide with those its peers heard before.
    pub fn new(key: Vec<u8>, id: u64) -> Self {
        Sealer {
            key,
            id,
            sequence: 0,
        }
    }

    /// Splits `entries` (as [`push_entry`] writes them) into sealed
    /// datagrams of at most [`MAX_DATAGRAM`] bytes, each passed to `send`.
    pub fn seal_all(&mut self, entries: &[u8], sent_at: u64, mut send: impl FnMut(&[u8])) {
        let mut datagram = Vec::with_capacity(MAX_DATAGRAM);
        let mut rest = entries;
        while !rest.is_empty() {
            datagram.clear();
            datagram.extend_from_slice(MAGIC);
            datagram.extend_from_slice(&self.id.to_be_bytes());
            datagram.extend_from_slice(&sent_at.to_be_bytes());
            datagram.extend_from_slice(&self.sequence.to_be_bytes());
            while let Some(len) = rest.first().map(|&flags| entry_len(flags)) {
                if datagram.len() + len + TAG > MAX_DATAGRAM || rest.len() < len {
                    break;
                }
                datagram.extend_from_slice(&rest[..len]);
                rest = &rest[len..];
            }
            if datagram.len() == HEADER {
                // Only a damaged entry is left: nothing to send.
                return;
            }
            let tag = tag(&self.key, &datagram);
            datagram.extend_from_slice(&tag[..TAG]);
            self.sequence += 1;
            send(&datagram);
        }
    }
}

fn entry_len(flags: u8) -> usize {
    1 + 20 + if flags & 1 == 1 { 16 } else { 4 } + 2
}

fn tag(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256>>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// Why a datagram was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// Not a cluster datagram, or a damaged one.
    Malformed,
    /// The tag does not verify: another key, or forged.
    BadTag,
    /// Sent more than [`MAX_SKEW`] seconds from now.
    Stale,
    /// Heard before (replayed by someone on the path, or sent twice), or
    /// further behind its sender's newest than [`WINDOW`] datagrams.
    Replayed,
    /// Sent by this tracker.
    Own,
}

/// Opens the other trackers' datagrams, each once.
pub struct Opener {
    key: Vec<u8>,
    own_id: u64,
    senders: HashMap<u64, Heard>,
}

/// The sequence numbers heard from one sender.
struct Heard {
    newest: u64,
    /// Bit `n % WINDOW` is set once `n`, within `WINDOW` of `newest`, is heard.
    window: [u64; (WINDOW / 64) as usize],
    /// The latest time any of its datagrams was sent: once that is more
    /// than [`MAX_SKEW`] ago, every datagram it sent is refused as stale
    /// anyway, and the record can go.
    latest_sent_at: u64,
}

impl Heard {
    fn first(sequence: u64, sent_at: u64) -> Self {
        let mut heard = Heard {
            newest: sequence,
            window: [0; (WINDOW / 64) as usize],
            latest_sent_at: sent_at,
        };
        heard.mark(sequence);
        heard
    }

    fn mark(&mut self, sequence: u64) {
        let bit = sequence % WINDOW;
        self.window[(bit / 64) as usize] |= 1 << (bit % 64);
    }

    fn is_marked(&self, sequence: u64) -> bool {
        let bit = sequence % WINDOW;
        self.window[(bit / 64) as usize] & 1 << (bit % 64) != 0
    }

    /// Records `sequence`; false if it was heard before or is too far behind.
    fn admit(&mut self, sequence: u64, sent_at: u64) -> bool {
        if sequence > self.newest {
            if sequence - self.newest >= WINDOW {
                self.window = [0; (WINDOW / 64) as usize];
            } else {
                for skipped in self.newest + 1..sequence {
                    let bit = skipped % WINDOW;
                    self.window[(bit / 64) as usize] &= !(1 << (bit % 64));
                }
            }
            self.newest = sequence;
        } else if self.newest - sequence >= WINDOW || self.is_marked(sequence) {
            return false;
        }
        self.mark(sequence);
        self.latest_sent_at = self.latest_sent_at.max(sent_at);
        true
    }
}

impl Opener {
    pub fn new(key: Vec<u8>, own_id: u64) -> Self {
        Opener {
            key,
            own_id,
            senders: HashMap::new(),
        }
    }

    /// Checks `datagram`, received at Unix second `now`, and returns its
    /// entries.
    pub fn open(&mut self, datagram: &[u8], now: u64) -> Result<Vec<Entry>, Refused> {
        let opened = open(datagram, &self.key, self.own_id, now)?;
        let fresh = match self.senders.get_mut(&opened.sender) {
            Some(heard) => heard.admit(opened.sequence, opened.sent_at),
            None => {
                // Senders are few and new ones rare (a member's restart):
                // this is when the records of those gone quiet are dropped.
                self.senders
                    .retain(|_, heard| now <= heard.latest_sent_at + MAX_SKEW);
                let heard = Heard::first(opened.sequence, opened.sent_at);
                self.senders.insert(opened.sender, heard);
                true
            }
        };
        if fresh {
            Ok(opened.entries)
        } else {
            Err(Refused::Replayed)
        }
    }
}

/// A datagram whose tag verified.
struct Opened {
    sender: u64,
    sent_at: u64,
    sequence: u64,
    entries: Vec<Entry>,
}

/// Checks `datagram`'s layout, tag, sender and time.
fn open(datagram: &[u8], key: &[u8], own_id: u64, now: u64) -> Result<Opened, Refused> {
    if datagram.len() < HEADER + TAG || !datagram.starts_with(MAGIC) {
        return Err(Refused::Malformed);
    }
    let (signed, given) = datagram.split_at(datagram.len() - TAG);
    let mut mac = <Hmac<Sha256>>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(signed);
    mac.verify_truncated_left(given)
        .map_err(|_| Refused::BadTag)?;
    let sender = u64::from_be_bytes(signed[4..12].try_into().unwrap());
    let sent_at = u64::from_be_bytes(signed[12..20].try_into().unwrap());
    let sequence = u64::from_be_bytes(signed[20..28].try_into().unwrap());
    if sender == own_id {
        return Err(Refused::Own);
    }
    if sent_at.abs_diff(now) > MAX_SKEW {
        return Err(Refused::Stale);
    }
    let mut entries = Vec::new();
    let mut rest = &signed[HEADER..];
    while let Some(&flags) = rest.first() {
        let len = entry_len(flags);
        let entry = rest.get(..len).ok_or(Refused::Malformed)?;
        let info_hash = InfoHash(entry[1..21].try_into().unwrap());
        let (ip, port): (IpAddr, &[u8]) = if flags & 1 == 1 {
            let octets: [u8; 16] = entry[21..37].try_into().unwrap();
            (Ipv6Addr::from(octets).into(), &entry[37..39])
        } else {
            let octets: [u8; 4] = entry[21..25].try_into().unwrap();
            (Ipv4Addr::from(octets).into(), &entry[25..27])
        };
        let event = match flags >> 2 & 3 {
            0 => Event::None,
            1 => Event::Completed,
            2 => Event::Stopped,
            _ => return Err(Refused::Malformed),
        };
        entries.push(Entry {
            info_hash,
            peer: SocketAddr::new(ip, u16::from_be_bytes([port[0], port[1]])),
            seeding: flags & 2 == 2,
            event,
        });
        rest = &rest[len..];
    }
    Ok(Opened {
        sender,
        sent_at,
        sequence,
        entries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"a shared secret of the cluster";

    fn entry(n: u8, peer: &str, event: Event) -> Entry {
        Entry {
            info_hash: InfoHash([n; 20]),
            peer: peer.parse().unwrap(),
            seeding: n % 2 == 0,
            event,
        }
    }

    fn sealed(entries: &[Entry], sender: u64, at: u64) -> Vec<Vec<u8>> {
        let mut encoded = Vec::new();
        for e in entries {
            push_entry(&mut encoded, e);
        }
        let mut datagrams = Vec::new();
        let mut sealer = Sealer::new(KEY.to_vec(), sender);
        sealer.seal_all(&encoded, at, |d| datagrams.push(d.to_vec()));
        datagrams
    }

    fn opener(own_id: u64) -> Opener {
        Opener::new(KEY.to_vec(), own_id)
    }

    #[test]
    fn entries_round_trip_in_datagrams_that_fit() {
        let many: Vec<Entry> = (0..120u8)
            .map(|n| match n % 3 {
                0 => entry(n, "192.0.2.1:6881", Event::None),
                1 => entry(n, "[2001:db8::1]:51413", Event::Completed),
                _ => entry(n, "198.51.100.7:1", Event::Stopped),
            })
            .collect();
        let datagrams = sealed(&many, 7, 1000);
        assert!(datagrams.len() > 1);
        assert!(datagrams.iter().all(|d| d.len() <= MAX_DATAGRAM));
        let mut opener = opener(8);
        let opened: Vec<Entry> = datagrams
            .iter()
            .flat_map(|d| opener.open(d, 1010).unwrap())
            .collect();
        assert_eq!(opened, many);
    }

    #[test]
    fn forged_stale_own_and_damaged_datagrams_are_refused() {
        let one = sealed(&[entry(2, "192.0.2.1:6881", Event::None)], 7, 1000).remove(0);
        let mut elsewhere = Opener::new(b"another key".to_vec(), 8);
        assert_eq!(elsewhere.open(&one, 1000), Err(Refused::BadTag));
        let mut flipped = one.clone();
        flipped[25] ^= 1;
        assert_eq!(opener(8).open(&flipped, 1000), Err(Refused::BadTag));
        assert_eq!(opener(7).open(&one, 1000), Err(Refused::Own));
        assert_eq!(
            opener(8).open(&one, 1000 + MAX_SKEW + 1),
            Err(Refused::Stale)
        );
        assert_eq!(
            opener(8).open(&one, 1000 - MAX_SKEW - 1),
            Err(Refused::Stale)
        );
        assert!(opener(8).open(&one, 1000 + MAX_SKEW).is_ok());
        assert_eq!(opener(8).open(&one[..28], 1000), Err(Refused::Malformed));
        let mut old_layout = one.clone();
        old_layout[..4].copy_from_slice(b"OTC1");
        assert_eq!(opener(8).open(&old_layout, 1000), Err(Refused::Malformed));
        assert_eq!(
            opener(8).open(b"GET / HTTP/1.1\r\n\r\n0123456789abcdefghij", 1000),
            Err(Refused::Malformed)
        );
    }

    /// One datagram per sealing, sent at `at`, numbered 0, 1, 2, … by
    /// `sealer`.
    fn next_datagram(sealer: &mut Sealer, at: u64) -> Vec<u8> {
        let mut encoded = Vec::new();
        push_entry(&mut encoded, &entry(1, "192.0.2.1:6881", Event::Completed));
        let mut datagram = Vec::new();
        sealer.seal_all(&encoded, at, |d| datagram = d.to_vec());
        datagram
    }

    #[test]
    fn each_datagram_is_applied_once_in_whatever_order_it_comes() {
        let mut sealer = Sealer::new(KEY.to_vec(), 7);
        let sent: Vec<Vec<u8>> = (0..3).map(|_| next_datagram(&mut sealer, 1000)).collect();
        let mut opener = opener(8);
        for i in [2, 0, 1] {
            assert!(opener.open(&sent[i], 1000).is_ok(), "datagram {i}");
        }
        for i in [1, 0, 2] {
            assert_eq!(opener.open(&sent[i], 1001), Err(Refused::Replayed));
        }
        // Far ahead: the window moves on, and what it left behind is refused
        // whether heard or not, while what it still covers is taken once.
        let later: Vec<Vec<u8>> = (0..WINDOW + 10)
            .map(|_| next_datagram(&mut sealer, 1001))
            .collect();
        let newest = later.len() - 1;
        assert!(opener.open(&later[newest], 1002).is_ok());
        assert_eq!(opener.open(&later[5], 1002), Err(Refused::Replayed));
        assert_eq!(opener.open(&sent[2], 1002), Err(Refused::Replayed));
        assert!(opener.open(&later[newest - 5], 1002).is_ok());
        assert_eq!(
            opener.open(&later[newest - 5], 1002),
            Err(Refused::Replayed)
        );
        // A restarted sender draws a new id, and counts from 0 again.
        let mut restarted = Sealer::new(KEY.to_vec(), 9);
        assert!(opener
            .open(&next_datagram(&mut restarted, 1002), 1003)
            .is_ok());
    }

    #[test]
    fn senders_gone_quiet_are_forgotten_once_their_datagrams_are_stale() {
        let mut opener = opener(8);
        let first = next_datagram(&mut Sealer::new(KEY.to_vec(), 7), 1000);
        assert!(opener.open(&first, 1000).is_ok());
        // A newcomer while 7's datagram could still be replayed: both kept.
        let then = 1000 + MAX_SKEW;
        let second = next_datagram(&mut Sealer::new(KEY.to_vec(), 9), then);
        assert!(opener.open(&second, then).is_ok());
        assert_eq!(opener.senders.len(), 2);
        // A second later it would be refused as stale: 7 is forgotten.
        let third = next_datagram(&mut Sealer::new(KEY.to_vec(), 10), then + 1);
        assert!(opener.open(&third, then + 1).is_ok());
        assert_eq!(opener.senders.len(), 2);
        assert!(!opener.senders.contains_key(&7));
        assert_eq!(opener.open(&first, then + 1), Err(Refused::Stale));
    }
}
