//! Wire formats, pure: bytes in, values out, and values in, bytes out.
//!
//! Nothing here touches a socket, a clock, a random generator or a global.
//! Time and keys come in as arguments, so every codec is unit-testable and
//! ready for fuzzing.

pub mod bencode;
pub mod cluster;
pub mod connection_id;
pub mod http;
pub mod params;
pub mod passkey;
pub mod peer_id;
pub mod proxy_protocol;
pub mod query;
pub mod response;
pub mod udp;
pub mod webtorrent;

#[cfg(test)]
mod mutation_tests;

use std::fmt;
use std::net::IpAddr;

/// A torrent's 20-byte info hash (BitTorrent v1, or a v2 hash truncated to
/// 20 bytes as BEP 52 asks clients to announce it).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct InfoHash(pub [u8; 20]);

/// Upper-case hex of `bytes`, as upstream prints hashes and peer ids.
pub fn hex_upper(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(2 * bytes.len());
    for byte in bytes {
        out.push(char::from(b"0123456789ABCDEF"[usize::from(byte >> 4)]));
        out.push(char::from(b"0123456789ABCDEF"[usize::from(byte & 15)]));
    }
    out
}

impl InfoHash {
    /// Upper-case hex, as upstream prints hashes in `/stats`.
    pub fn to_hex_upper(&self) -> String {
        hex_upper(&self.0)
    }

    /// Parses 40 hex digits (v1) or 64 hex digits (v2, truncated to 20 bytes).
    pub fn from_hex(text: &[u8]) -> Option<InfoHash> {
        if text.len() != 40 && text.len() != 64 {
            return None;
        }
        let mut hash = [0u8; 20];
        for (i, pair) in text.chunks_exact(2).enumerate() {
            let value = (hex_value(pair[0])? << 4) | hex_value(pair[1])?;
            if let Some(slot) = hash.get_mut(i) {
                *slot = value;
            }
        }
        Some(InfoHash(hash))
    }
}

/// An info hash as an HTTP client sent it: 20 bytes, or a whole 32-byte
/// BitTorrent v2 hash. BEP 52 has clients announce a v2 hash truncated to
/// 20 bytes; one sent whole stands for that truncation, so both reach the
/// same swarm, but a scrape reply names it as it was sent, where the client
/// will look it up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SentHash {
    bytes: [u8; 32],
    len: usize,
}

impl SentHash {
    /// Lengths a sent hash may have: v1 (or v2 truncated), and v2 whole.
    pub const LENGTHS: [usize; 2] = [20, 32];

    /// The hash in `bytes`, if their length is one of [`SentHash::LENGTHS`].
    pub fn new(bytes: &[u8]) -> Option<SentHash> {
        if !Self::LENGTHS.contains(&bytes.len()) {
            return None;
        }
        let mut sent = SentHash {
            bytes: [0; 32],
            len: bytes.len(),
        };
        sent.bytes[..bytes.len()].copy_from_slice(bytes);
        Some(sent)
    }

    /// The swarm's hash: the first 20 bytes.
    pub fn info_hash(&self) -> InfoHash {
        let mut hash = [0u8; 20];
        hash.copy_from_slice(&self.bytes[..20]);
        InfoHash(hash)
    }

    pub fn as_sent(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl fmt::Debug for InfoHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex_upper())
    }
}

pub(crate) fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

/// Whether a peer could be reached at `ip`: an address a proxy or balancer
/// forwards must be one, or it would be stored and handed out to other
/// peers. Unspecified, multicast and the IPv4 broadcast address are not
/// (nor their v4-mapped forms).
pub fn is_peer_address(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => !v4.is_unspecified() && !v4.is_multicast() && !v4.is_broadcast(),
        IpAddr::V6(v6) => !v6.is_unspecified() && !v6.is_multicast(),
    }
}

/// What an announce says about the peer's state change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// No event, `started`, `paused` or anything unknown: a plain update.
    None,
    Completed,
    Stopped,
}

/// Seeders, leechers and completed downloads of one torrent, summed over both
/// address families.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SwarmCounts {
    pub seeders: u32,
    pub leechers: u32,
    pub completed: u32,
}
