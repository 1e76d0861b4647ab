//! The state file `-l` / `tracker.state_file` loads, in two forms:
//!
//! * upstream's state dump (`/stats?mode=statedump`): one
//!   `HASH:MINUTE:DOWNLOADED` line per torrent, with the Unix minute of its
//!   last announce;
//! * this tracker's saved state (`tracker.save_state`): a `#` header, then
//!   the same torrent lines, each followed by its peers, one line each:
//!   a tab, then `ADDRESS PORT FLAGS SECOND`. FLAGS is `s` (seeding) or `l`
//!   (leeching), plus `c` once its completed download was counted; SECOND is
//!   the Unix second of its last announce.
//!
//! Times are absolute, so a peer's age runs on while the tracker is down
//! and it expires when it would have, had the tracker kept running.

use std::net::{IpAddr, SocketAddr};

use crate::proto::InfoHash;
use crate::tracker::SavedPeer;

/// The version of the saved state's format this build writes, and the
/// only one it reads.
const FORMAT: u32 = 1;

/// How the header starts; the format's version follows.
const HEADER_START: &str = "# opentracker state ";

/// The first line of a saved state.
pub const HEADER: &str =
    "# opentracker state 1: HASH:MINUTE:DOWNLOADED, then \\tADDRESS PORT FLAGS SECOND per peer";

/// One torrent's line: the minute (since the Unix epoch) of its last
/// announce and its completed count.
pub fn torrent_line(out: &mut Vec<u8>, hash: &InfoHash, minute: u64, downloaded: u32) {
    let line = format!("{}:{minute}:{downloaded}\n", hash.to_hex_upper());
    out.extend_from_slice(line.as_bytes());
}

/// One peer's line, at Unix second `unix_now`.
pub fn peer_line(out: &mut Vec<u8>, peer: &SavedPeer, unix_now: u64) {
    let flags = match (peer.seeding, peer.completed) {
        (true, false) => "s",
        (true, true) => "sc",
        (false, false) => "l",
        (false, true) => "lc",
    };
    let second = unix_now.saturating_sub(peer.age.into());
    let (ip, port) = (peer.addr.ip(), peer.addr.port());
    out.extend_from_slice(format!("\t{ip} {port} {flags} {second}\n").as_bytes());
}

/// A line of a state file.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// Info hash, minute of the last announce, completed count.
    Torrent(InfoHash, u64, u32),
    /// A peer of the torrent above, with its age at the Unix second the
    /// file is read.
    Peer(SavedPeer),
    Comment,
}

/// Reads one line (without its newline) at Unix second `unix_now`.
pub fn parse_line(line: &str, unix_now: u64) -> Result<Line, String> {
    if let Some(header) = line.strip_prefix(HEADER_START) {
        check_format(header).map(|()| Line::Comment)
    } else if line.is_empty() || line.starts_with('#') {
        Ok(Line::Comment)
    } else if let Some(peer) = line.strip_prefix('\t') {
        parse_peer(peer, unix_now).map(Line::Peer)
    } else {
        let (hash, minute, downloaded) = parse_torrent(line)?;
        Ok(Line::Torrent(hash, minute, downloaded))
    }
}

/// Refuses a header of another format than this build's (what follows
/// `# opentracker state `): its lines may mean something else, and would
/// fail later with a puzzling error, or load wrong.
fn check_format(header: &str) -> Result<(), String> {
    let version = header.split([':', ' ']).next().unwrap_or_default();
    match version.parse() {
        Ok(FORMAT) => Ok(()),
        _ => Err(format!(
            "state format {version} is not supported by this version of opentracker \
             (it reads format {FORMAT})"
        )),
    }
}

fn parse_torrent(line: &str) -> Result<(InfoHash, u64, u32), String> {
    let mut fields = line.split(':');
    let (Some(hex), Some(minute), Some(downloaded), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err("expected HASH:MINUTE:DOWNLOADED".into());
    };
    let mut hash = InfoHash::default();
    if hex.len() != 40 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("{hex:?} is not 40 hex digits"));
    }
    for (byte, pair) in hash.0.iter_mut().zip(hex.as_bytes().chunks(2)) {
        let digits = std::str::from_utf8(pair).unwrap_or_default();
        *byte = u8::from_str_radix(digits, 16).unwrap_or_default();
    }
    let minute = minute
        .parse()
        .map_err(|_| format!("minute {minute:?} is not a number"))?;
    let downloaded = downloaded
        .parse()
        .map_err(|_| format!("downloaded {downloaded:?} is not a number"))?;
    Ok((hash, minute, downloaded))
}

fn parse_peer(line: &str, unix_now: u64) -> Result<SavedPeer, String> {
    let expected = || "expected a tab, then ADDRESS PORT FLAGS SECOND".to_string();
    let mut fields = line.split(' ');
    let (Some(ip), Some(port), Some(flags), Some(second), None) = (
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
    ) else {
        return Err(expected());
    };
    let ip: IpAddr = ip
        .parse()
        .map_err(|_| format!("{ip:?} is not an IP address"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("port {port:?} is not a number up to 65535"))?;
    let (seeding, completed) = match flags {
        "s" => (true, false),
        "sc" => (true, true),
        "l" => (false, false),
        "lc" => (false, true),
        _ => return Err(format!("flags {flags:?} are not s, sc, l or lc")),
    };
    let second: u64 = second
        .parse()
        .map_err(|_| format!("second {second:?} is not a number"))?;
    let age = unix_now.saturating_sub(second).min(u32::MAX.into()) as u32;
    Ok(SavedPeer {
        addr: SocketAddr::new(ip.to_canonical(), port),
        seeding,
        completed,
        age,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torrent_lines_read_back() {
        let mut out = Vec::new();
        torrent_line(&mut out, &InfoHash([0xab; 20]), 29_000_000, 7);
        let line = String::from_utf8(out).unwrap();
        assert_eq!(line, format!("{}:29000000:7\n", "AB".repeat(20)));
        assert_eq!(
            parse_line(line.trim_end(), 0),
            Ok(Line::Torrent(InfoHash([0xab; 20]), 29_000_000, 7))
        );
        for (bad, why) in [
            ("ab:1:2", "not 40 hex digits"),
            (&format!("{}:1:2:3", "ab".repeat(20)), "expected"),
            (&format!("{}:x:2", "ab".repeat(20)), "minute \"x\""),
            (&format!("{}:1:-2", "ab".repeat(20)), "downloaded \"-2\""),
        ] {
            let error = parse_line(bad, 0).unwrap_err();
            assert!(error.contains(why), "{bad:?}: {error}");
        }
    }

    #[test]
    fn peer_lines_read_back_with_the_time_gone_by() {
        let peers = [
            SavedPeer {
                addr: "192.0.2.7:6881".parse().unwrap(),
                seeding: true,
                completed: true,
                age: 30,
            },
            SavedPeer {
                addr: "[2001:db8::1]:51413".parse().unwrap(),
                seeding: false,
                completed: false,
                age: 0,
            },
        ];
        let mut out = Vec::new();
        for peer in &peers {
            peer_line(&mut out, peer, 1_000_000);
        }
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "\t192.0.2.7 6881 sc 999970\n\t2001:db8::1 51413 l 1000000\n"
        );
        // Read 100 s later, each peer is 100 s older.
        let read: Vec<Line> = text
            .lines()
            .map(|line| parse_line(line, 1_000_100).unwrap())
            .collect();
        let older = peers.map(|p| {
            Line::Peer(SavedPeer {
                age: p.age + 100,
                ..p
            })
        });
        assert_eq!(read, older);
    }

    #[test]
    fn bad_peer_lines_are_named() {
        for (bad, why) in [
            ("\t192.0.2.7 6881 s", "expected a tab"),
            ("\t192.0.2.7 6881 s 1 2", "expected a tab"),
            ("\t192.0.2.300 6881 s 1", "not an IP address"),
            ("\t192.0.2.7 65536 s 1", "port \"65536\""),
            ("\t192.0.2.7 6881 x 1", "flags \"x\""),
            ("\t192.0.2.7 6881 s -1", "second \"-1\""),
        ] {
            let error = parse_line(bad, 0).unwrap_err();
            assert!(error.contains(why), "{bad:?}: {error}");
        }
        assert_eq!(parse_line(HEADER, 0), Ok(Line::Comment));
        assert_eq!(parse_line("", 0), Ok(Line::Comment));
    }

    #[test]
    fn a_header_of_another_format_is_refused() {
        assert!(HEADER.starts_with(&format!("{HEADER_START}{FORMAT}: ")));
        assert_eq!(parse_line("# opentracker state 1", 0), Ok(Line::Comment));
        assert_eq!(parse_line("# another comment", 0), Ok(Line::Comment));
        for (header, version) in [
            ("# opentracker state 2: HASH:MINUTE:DOWNLOADED:MORE", "2"),
            ("# opentracker state 10", "10"),
            ("# opentracker state v2", "v2"),
        ] {
            assert_eq!(
                parse_line(header, 0),
                Err(format!(
                    "state format {version} is not supported by this version of opentracker \
                     (it reads format 1)"
                ))
            );
        }
    }
}
