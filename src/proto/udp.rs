//! BEP 15 UDP tracker packets.
//!
//! [`parse`] returns `None` for anything to be dropped silently: shorter than
//! 16 bytes, an unknown action (3 and up, so error packets never loop), a
//! connect without the protocol magic, or a short announce. Whether a reply
//! may be sent at all (the connection id must check out first) is decided by
//! the server, which holds the key; see [`super::connection_id`].

use super::{Event, InfoHash, SwarmCounts};

/// The magic number every connect request starts with.
pub const PROTOCOL_ID: u64 = 0x0417_2710_1980;
/// The shortest announce upstream accepts (BEP 15's 98 bytes).
pub const ANNOUNCE_LEN: usize = 98;
/// The most hashes read from one scrape (as upstream: as many as fit in 75).
pub const MAX_SCRAPE_HASHES: usize = 75;
/// Largest reply: 20-byte header plus 200 IPv4 peers.
pub const MAX_REPLY: usize = 20 + 200 * 6;

const ACTION_CONNECT: u32 = 0;
const ACTION_ANNOUNCE: u32 = 1;
const ACTION_SCRAPE: u32 = 2;
const ACTION_ERROR: u32 = 3;

/// A UDP announce, with the fields the tracker uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Announce {
    pub connection_id: u64,
    pub transaction_id: u32,
    pub info_hash: InfoHash,
    /// `left == 0`.
    pub seeding: bool,
    pub event: Event,
    /// As sent; -1 (all bits set) means "the default", i.e. the cap.
    pub numwant: u32,
    pub port: u16,
    /// Names the client software.
    pub peer_id: [u8; 20],
}

/// A parsed request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request<'a> {
    Connect {
        transaction_id: u32,
    },
    Announce(Announce),
    /// `hashes` holds whole 20-byte hashes only (a trailing partial one is
    /// ignored, where upstream padded it with stale bytes).
    Scrape {
        connection_id: u64,
        transaction_id: u32,
        hashes: &'a [u8],
    },
}

impl Request<'_> {
    /// The connection id a non-connect request carries.
    pub fn connection_id(&self) -> Option<u64> {
        match *self {
            Request::Connect { .. } => None,
            Request::Announce(a) => Some(a.connection_id),
            Request::Scrape { connection_id, .. } => Some(connection_id),
        }
    }

    pub fn transaction_id(&self) -> u32 {
        match *self {
            Request::Connect { transaction_id } => transaction_id,
            Request::Announce(a) => a.transaction_id,
            Request::Scrape { transaction_id, .. } => transaction_id,
        }
    }
}

fn be_u32(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_be_bytes(word)
}

fn be_u64(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_be_bytes(word)
}

/// Parses one datagram; `None` means drop it without a reply.
pub fn parse(packet: &[u8]) -> Option<Request<'_>> {
    if packet.len() < 16 {
        return None;
    }
    let connection_id = be_u64(packet, 0);
    let transaction_id = be_u32(packet, 12);
    match be_u32(packet, 8) {
        ACTION_CONNECT if connection_id == PROTOCOL_ID => Some(Request::Connect { transaction_id }),
        ACTION_ANNOUNCE if packet.len() >= ANNOUNCE_LEN => {
            let mut hash = [0u8; 20];
            hash.copy_from_slice(&packet[16..36]);
            let mut peer_id = [0u8; 20];
            peer_id.copy_from_slice(&packet[36..56]);
            let event = match be_u32(packet, 80) {
                1 => Event::Completed,
                3 => Event::Stopped,
                _ => Event::None,
            };
            Some(Request::Announce(Announce {
                connection_id,
                transaction_id,
                info_hash: InfoHash(hash),
                seeding: be_u64(packet, 64) == 0,
                event,
                numwant: be_u32(packet, 92),
                port: u16::from_be_bytes([packet[96], packet[97]]),
                peer_id,
            }))
        }
        ACTION_SCRAPE => {
            let whole = ((packet.len() - 16) / 20).min(MAX_SCRAPE_HASHES);
            Some(Request::Scrape {
                connection_id,
                transaction_id,
                hashes: &packet[16..16 + whole * 20],
            })
        }
        _ => None,
    }
}

fn push_header(out: &mut Vec<u8>, action: u32, transaction_id: u32) {
    out.extend_from_slice(&action.to_be_bytes());
    out.extend_from_slice(&transaction_id.to_be_bytes());
}

/// The 16-byte connect reply.
pub fn connect_reply(out: &mut Vec<u8>, transaction_id: u32, connection_id: u64) {
    push_header(out, ACTION_CONNECT, transaction_id);
    out.extend_from_slice(&connection_id.to_be_bytes());
}

/// The 20-byte announce reply header; compact peers are appended after it.
pub fn announce_reply_head(
    out: &mut Vec<u8>,
    transaction_id: u32,
    interval: u32,
    counts: SwarmCounts,
) {
    push_header(out, ACTION_ANNOUNCE, transaction_id);
    out.extend_from_slice(&interval.to_be_bytes());
    out.extend_from_slice(&counts.leechers.to_be_bytes());
    out.extend_from_slice(&counts.seeders.to_be_bytes());
}

/// The 8-byte reply upstream gives to an announce the access list refuses.
pub fn not_authorized_reply(out: &mut Vec<u8>, transaction_id: u32) {
    push_header(out, ACTION_ANNOUNCE, transaction_id);
}

/// The scrape reply header; one [`scrape_reply_entry`] per hash follows.
pub fn scrape_reply_head(out: &mut Vec<u8>, transaction_id: u32) {
    push_header(out, ACTION_SCRAPE, transaction_id);
}

pub fn scrape_reply_entry(out: &mut Vec<u8>, counts: SwarmCounts) {
    out.extend_from_slice(&counts.seeders.to_be_bytes());
    out.extend_from_slice(&counts.completed.to_be_bytes());
    out.extend_from_slice(&counts.leechers.to_be_bytes());
}

/// Upstream's error text, spelling and trailing NUL included.
pub const MISMATCH_MESSAGE: &[u8] = b"Connection ID missmatch.\0";

/// An error reply carrying `message`, which clients show their users.
pub fn error_reply(out: &mut Vec<u8>, transaction_id: u32, message: &str) {
    push_header(out, ACTION_ERROR, transaction_id);
    out.extend_from_slice(message.as_bytes());
}

/// The 33-byte error reply to a request whose connection id is wrong.
pub fn mismatch_reply(out: &mut Vec<u8>, transaction_id: u32) {
    push_header(out, ACTION_ERROR, transaction_id);
    out.extend_from_slice(MISMATCH_MESSAGE);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn announce_packet(len: usize) -> Vec<u8> {
        let mut p = vec![0u8; len];
        p[0..8].copy_from_slice(&7u64.to_be_bytes());
        p[8..12].copy_from_slice(&1u32.to_be_bytes());
        p[12..16].copy_from_slice(&99u32.to_be_bytes());
        p[16..36].copy_from_slice(&[0xab; 20]);
        p[36..56].copy_from_slice(b"-qB4650-abcdefghijkl");
        p[64..72].copy_from_slice(&5u64.to_be_bytes());
        p[80..84].copy_from_slice(&3u32.to_be_bytes());
        p[92..96].copy_from_slice(&u32::MAX.to_be_bytes());
        p[96..98].copy_from_slice(&6881u16.to_be_bytes());
        p
    }

    #[test]
    fn parses_announce() {
        let packet = announce_packet(98);
        let Some(Request::Announce(a)) = parse(&packet) else {
            panic!("not an announce")
        };
        assert_eq!((a.connection_id, a.transaction_id, a.port), (7, 99, 6881));
        assert_eq!(&a.peer_id, b"-qB4650-abcdefghijkl");
        assert_eq!(a.event, Event::Stopped);
        assert!(!a.seeding);
        assert_eq!(a.numwant, u32::MAX);
        assert_eq!(parse(&packet[..97]), None);
    }

    #[test]
    fn connect_needs_magic_and_junk_is_dropped() {
        let mut p = [0u8; 16];
        p[0..8].copy_from_slice(&PROTOCOL_ID.to_be_bytes());
        p[12..16].copy_from_slice(&5u32.to_be_bytes());
        assert_eq!(parse(&p), Some(Request::Connect { transaction_id: 5 }));
        p[0] = 1;
        assert_eq!(parse(&p), None);
        assert_eq!(parse(&p[..15]), None);
        p[11] = 3;
        assert_eq!(parse(&p), None);
    }

    #[test]
    fn scrape_takes_whole_hashes() {
        let mut p = vec![0u8; 16 + 45];
        p[11] = 2;
        let Some(Request::Scrape { hashes, .. }) = parse(&p) else {
            panic!()
        };
        assert_eq!(hashes.len(), 40);
        let big = vec![0u8; 16 + 20 * 80];
        let mut big = big;
        big[11] = 2;
        let Some(Request::Scrape { hashes, .. }) = parse(&big) else {
            panic!()
        };
        assert_eq!(hashes.len(), 20 * MAX_SCRAPE_HASHES);
    }

    #[test]
    fn replies() {
        let mut out = Vec::new();
        mismatch_reply(&mut out, 1);
        assert_eq!(out.len(), 33);
        out.clear();
        connect_reply(&mut out, 1, 2);
        assert_eq!(out.len(), 16);
        out.clear();
        announce_reply_head(
            &mut out,
            1,
            1800,
            SwarmCounts {
                seeders: 2,
                leechers: 3,
                completed: 0,
            },
        );
        assert_eq!(&out[12..20], &[0, 0, 0, 3, 0, 0, 0, 2]);
    }
}
