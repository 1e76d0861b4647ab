//! BEP 15 packets: the requests a client sends and the replies it reads.

use crate::swarm::Swarm;
use crate::workload::Event;

const PROTOCOL_ID: u64 = 0x0417_2710_1980;
pub const ACTION_CONNECT: u32 = 0;
pub const ACTION_ANNOUNCE: u32 = 1;
pub const ACTION_SCRAPE: u32 = 2;
const ACTION_ERROR: u32 = 3;

pub fn connect_request(out: &mut Vec<u8>, transaction: u32) {
    out.clear();
    out.extend_from_slice(&PROTOCOL_ID.to_be_bytes());
    out.extend_from_slice(&ACTION_CONNECT.to_be_bytes());
    out.extend_from_slice(&transaction.to_be_bytes());
}

pub struct Announce {
    pub connection: u64,
    pub transaction: u32,
    pub peer: u32,
    pub event: Event,
    pub numwant: u32,
}

pub fn announce_request(out: &mut Vec<u8>, swarm: &Swarm, a: &Announce) {
    let left: u64 = if swarm.is_seeder(a.peer) { 0 } else { 1 << 20 };
    out.clear();
    out.extend_from_slice(&a.connection.to_be_bytes());
    out.extend_from_slice(&ACTION_ANNOUNCE.to_be_bytes());
    out.extend_from_slice(&a.transaction.to_be_bytes());
    out.extend_from_slice(&swarm.info_hash(swarm.torrent_of(a.peer)));
    out.extend_from_slice(&swarm.peer_id(a.peer));
    out.extend_from_slice(&0u64.to_be_bytes()); // downloaded
    out.extend_from_slice(&left.to_be_bytes());
    out.extend_from_slice(&0u64.to_be_bytes()); // uploaded
    out.extend_from_slice(&(a.event as u32).to_be_bytes());
    out.extend_from_slice(&0u32.to_be_bytes()); // ip: use the source address
    out.extend_from_slice(&a.peer.to_be_bytes()); // key
    out.extend_from_slice(&a.numwant.to_be_bytes());
    out.extend_from_slice(&swarm.port_of(a.peer).to_be_bytes());
}

pub fn scrape_request(out: &mut Vec<u8>, connection: u64, transaction: u32, hash: &[u8; 20]) {
    out.clear();
    out.extend_from_slice(&connection.to_be_bytes());
    out.extend_from_slice(&ACTION_SCRAPE.to_be_bytes());
    out.extend_from_slice(&transaction.to_be_bytes());
    out.extend_from_slice(hash);
}

#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    Connected(u64),
    Announced,
    /// opentracker's answer to a torrent that its access list refuses:
    /// an announce header with nothing after the transaction id.
    Refused,
    Scraped,
    Error,
}

/// The transaction id and meaning of a reply, or `None` for junk.
pub fn parse_reply(packet: &[u8]) -> Option<(u32, Reply)> {
    let word = |at: usize| -> Option<u32> {
        Some(u32::from_be_bytes(packet.get(at..at + 4)?.try_into().ok()?))
    };
    let action = word(0)?;
    let transaction = word(4)?;
    let reply = match action {
        ACTION_CONNECT => Reply::Connected(u64::from_be_bytes(packet.get(8..16)?.try_into().ok()?)),
        ACTION_ANNOUNCE if packet.len() == 8 => Reply::Refused,
        ACTION_ANNOUNCE if packet.len() >= 20 => Reply::Announced,
        ACTION_SCRAPE => Reply::Scraped,
        ACTION_ERROR => Reply::Error,
        _ => return None,
    };
    Some((transaction, reply))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::Args;

    #[test]
    fn announce_has_bep15_layout() {
        let swarm = Swarm::from_args(&Args::parse(&[], &[], &[]).unwrap()).unwrap();
        let mut out = Vec::new();
        let request = Announce {
            connection: 7,
            transaction: 9,
            peer: 1_500_000,
            event: Event::Started,
            numwant: 30,
        };
        announce_request(&mut out, &swarm, &request);
        assert_eq!(out.len(), 98);
        assert_eq!(&out[8..12], &1u32.to_be_bytes());
        assert_eq!(&out[80..84], &2u32.to_be_bytes());
        assert_eq!(&out[92..96], &30u32.to_be_bytes());
        assert_eq!(&out[96..98], &swarm.port_of(1_500_000).to_be_bytes());
        connect_request(&mut out, 5);
        assert_eq!(out.len(), 16);
        assert_eq!(&out[..8], &0x41727101980u64.to_be_bytes());
    }

    #[test]
    fn parses_replies() {
        let mut connect = vec![0, 0, 0, 0, 0, 0, 0, 9];
        connect.extend_from_slice(&42u64.to_be_bytes());
        assert_eq!(parse_reply(&connect), Some((9, Reply::Connected(42))));
        assert_eq!(
            parse_reply(&[0, 0, 0, 1, 0, 0, 0, 3]),
            Some((3, Reply::Refused))
        );
        assert_eq!(parse_reply(&[0, 0, 0, 1, 0, 0, 0, 3, 0]), None);
        assert_eq!(
            parse_reply(&[0, 0, 0, 1, 0, 0, 0, 3].repeat(3)),
            Some((3, Reply::Announced))
        );
        assert_eq!(
            parse_reply(b"\0\0\0\x03\0\0\0\x01oops"),
            Some((1, Reply::Error))
        );
        assert_eq!(parse_reply(&[0, 0, 0, 0, 0, 0, 0, 1]), None);
    }
}
