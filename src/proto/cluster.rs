//! Cluster sync datagrams (`[cluster]`): trackers that share a load pass
//! each other the announces their own clients made, so every tracker can
//! hand out every peer. This replaces upstream's live sync, which sent
//! unauthenticated multicast: here datagrams go to listed trackers and carry
//! an HMAC-SHA256 tag under a shared key, and a tag that does not verify, a
//! datagram too old or from the future, or one from this very tracker is
//! dropped.
//!
//! Layout: `OTC1`, the sender's id (8 bytes, drawn at start), the Unix
//! second it was sent (8), entries, then the first 16 bytes of the tag over
//! everything before it. An entry is a flags byte (bit 0: IPv6; bit 1:
//! seeding; bits 2–3: 0 no event, 1 completed, 2 stopped), the info hash
//! (20), the peer's address (4 or 16) and port (2).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{Event, InfoHash};

const MAGIC: &[u8; 4] = b"OTC1";
const HEADER: usize = 4 + 8 + 8;
const TAG: usize = 16;
/// Datagrams stay below this, so they are never fragmented.
pub const MAX_DATAGRAM: usize = 1400;
/// The most an entry takes.
pub const MAX_ENTRY: usize = 1 + 20 + 16 + 2;
/// How far a datagram's time may be from the receiver's, in seconds.
pub const MAX_SKEW: u64 = 60;

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

/// Splits `entries` (as [`push_entry`] writes them) into sealed datagrams
/// of at most [`MAX_DATAGRAM`] bytes, each passed to `send`.
pub fn seal_all(
    entries: &[u8],
    key: &[u8],
    sender: u64,
    sent_at: u64,
    mut send: impl FnMut(&[u8]),
) {
    let mut datagram = Vec::with_capacity(MAX_DATAGRAM);
    let mut rest = entries;
    while !rest.is_empty() {
        datagram.clear();
        datagram.extend_from_slice(MAGIC);
        datagram.extend_from_slice(&sender.to_be_bytes());
        datagram.extend_from_slice(&sent_at.to_be_bytes());
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
        let tag = tag(key, &datagram);
        datagram.extend_from_slice(&tag[..TAG]);
        send(&datagram);
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
    /// Sent by this tracker.
    Own,
}

/// Checks `datagram` and returns its entries.
pub fn open(datagram: &[u8], key: &[u8], own_id: u64, now: u64) -> Result<Vec<Entry>, Refused> {
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
    Ok(entries)
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
        seal_all(&encoded, KEY, sender, at, |d| datagrams.push(d.to_vec()));
        datagrams
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
        let opened: Vec<Entry> = datagrams
            .iter()
            .flat_map(|d| open(d, KEY, 8, 1010).unwrap())
            .collect();
        assert_eq!(opened, many);
    }

    #[test]
    fn forged_stale_own_and_damaged_datagrams_are_refused() {
        let one = sealed(&[entry(2, "192.0.2.1:6881", Event::None)], 7, 1000).remove(0);
        assert_eq!(open(&one, b"another key", 8, 1000), Err(Refused::BadTag));
        let mut flipped = one.clone();
        flipped[25] ^= 1;
        assert_eq!(open(&flipped, KEY, 8, 1000), Err(Refused::BadTag));
        assert_eq!(open(&one, KEY, 7, 1000), Err(Refused::Own));
        assert_eq!(open(&one, KEY, 8, 1000 + MAX_SKEW + 1), Err(Refused::Stale));
        assert_eq!(open(&one, KEY, 8, 1000 - MAX_SKEW - 1), Err(Refused::Stale));
        assert!(open(&one, KEY, 8, 1000 + MAX_SKEW).is_ok());
        assert_eq!(open(&one[..20], KEY, 8, 1000), Err(Refused::Malformed));
        assert_eq!(
            open(b"GET / HTTP/1.1\r\n\r\n0123456789ab", KEY, 8, 1000),
            Err(Refused::Malformed)
        );
    }
}
