//! The parameters of HTTP announce, scrape and stats queries, validated with
//! upstream opentracker's rules (see the compatibility table in README.md).

use super::query::{self, QueryError};
use super::{Event, InfoHash, SentHash};

/// Why a query was refused. Each maps to one of upstream's answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamError {
    /// 400 "Invalid Parameter": a bad, empty or repeated value.
    Invalid,
    /// 400 "Invalid Parameter (compact=0)": non-compact replies are not served.
    CompactZero,
    /// A 200 bencoded failure: the announce has no info_hash.
    MissingInfoHash,
}

impl From<QueryError> for ParamError {
    fn from(_: QueryError) -> Self {
        ParamError::Invalid
    }
}

/// An HTTP announce's parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AnnounceParams {
    pub info_hash: InfoHash,
    /// The port the peer listens on (`port=`, 0 when missing).
    pub port: u16,
    /// `left=0` (or a `left` that is no number) makes the peer a seeder.
    pub seeding: bool,
    pub event: Event,
    /// `numwant=` as sent; `None` when missing. Clamping is the tracker's job.
    pub numwant: Option<i64>,
    /// `peer_id=`, which names the client software; `None` when missing.
    pub peer_id: Option<[u8; 20]>,
}

/// Parses an announce query.
pub fn announce(query_bytes: &[u8]) -> Result<AnnounceParams, ParamError> {
    let mut info_hash = None;
    let mut port = 0u16;
    let mut seeding = false;
    let mut event = Event::None;
    let mut numwant = None;
    let mut peer_id = None;
    for pair in query::pairs(query_bytes) {
        let (name, value) = pair?;
        let value_of = || value.filter(|v| !v.is_empty()).ok_or(ParamError::Invalid);
        match query::Name::decode(name)?.as_bytes() {
            b"info_hash" => {
                if info_hash.is_some() {
                    return Err(ParamError::Invalid);
                }
                info_hash = Some(query::decode_info_hash(value_of()?)?.info_hash());
            }
            b"peer_id" => peer_id = Some(query::decode_20(value_of()?)?),
            b"port" => {
                let number = query::decode_integer(value_of()?)?.ok_or(ParamError::Invalid)?;
                // Upstream accepts a leading minus and wraps it (-1 is 65535).
                if !(-65535..=65535).contains(&number) {
                    return Err(ParamError::Invalid);
                }
                port = (number & 0xffff) as u16;
            }
            // Upstream reads a `left` that is no number as 0. Repeated, as
            // upstream sets flags and never clears one, any 0 makes a seeder.
            b"left" => seeding |= query::decode_integer(value_of()?)?.unwrap_or(0) == 0,
            b"event" => {
                let mut buf = [0u8; 16];
                let named = match query::decode_into(value.unwrap_or(b""), &mut buf) {
                    Ok(n) if &buf[..n] == b"completed" => Event::Completed,
                    Ok(n) if &buf[..n] == b"stopped" => Event::Stopped,
                    Ok(_) | Err(QueryError::BadValue) => event,
                    Err(QueryError::Malformed) => return Err(ParamError::Invalid),
                };
                // A `stopped` anywhere wins, as upstream's flag does.
                if event != Event::Stopped {
                    event = named;
                }
            }
            b"numwant" => {
                numwant = Some(query::decode_integer(value_of()?)?.ok_or(ParamError::Invalid)?)
            }
            b"compact" | b"compact6" => match query::decode_integer(value_of()?)? {
                Some(0) => return Err(ParamError::CompactZero),
                Some(_) => {}
                None => return Err(ParamError::Invalid),
            },
            _ => {}
        }
    }
    Ok(AnnounceParams {
        info_hash: info_hash.ok_or(ParamError::MissingInfoHash)?,
        port,
        seeding,
        event,
        numwant,
        peer_id,
    })
}

/// Upstream answers at most this many hashes of one HTTP scrape.
pub const MAX_SCRAPE_HASHES: usize = 64;

/// Parses a multi-hash scrape query into `hashes` (request order, duplicates
/// kept, more than [`MAX_SCRAPE_HASHES`] dropped). At least one is required.
pub fn scrape(query_bytes: &[u8], hashes: &mut Vec<SentHash>) -> Result<(), ParamError> {
    hashes.clear();
    for pair in query::pairs(query_bytes) {
        let (name, value) = pair?;
        if query::Name::decode(name)?.as_bytes() == b"info_hash" {
            let hash = query::decode_info_hash(value.unwrap_or(b""))?;
            if hashes.len() < MAX_SCRAPE_HASHES {
                hashes.push(hash);
            }
        }
    }
    if hashes.is_empty() {
        return Err(ParamError::Invalid);
    }
    Ok(())
}

/// The `/stats` views.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatsMode {
    Peer,
    Torrents,
    Conn,
    Udp4,
    Tcp4,
    Scrape,
    FullScrape,
    Completed,
    Syncs,
    HttpErrors,
    Renew,
    Version,
    Busy,
    Top10,
    Top100,
    /// The networks holding the most peers (upstream's "slash 24s").
    BusyNetworks,
    /// Announces by client software (not upstream's).
    Clients,
    /// Announces by numwant, 0 to 200.
    Numwants,
    Everything,
    /// The counters and totals as one JSON object (not upstream's).
    Json,
    /// Every torrent as `hash:seeders:leechers`, in the given format.
    Tpbs(TpbsFormat),
    /// Every torrent as `HASH:base minute:downloaded`, the lines `-l`
    /// loads.
    StateDump,
}

/// Output formats of `mode=tpbs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TpbsFormat {
    Bin,
    Ben,
    Url,
    Txt,
    Txtp,
    /// JSON Lines: one object per torrent (not upstream's).
    Jsonl,
}

/// Parses a stats query. Any `info_hash` is refused (clients that mistake
/// the stats URL for an announce URL), as are unknown modes and formats.
pub fn stats(query_bytes: &[u8]) -> Result<StatsMode, ParamError> {
    let mut mode = None;
    let mut format = None;
    for pair in query::pairs(query_bytes) {
        let (name, value) = pair?;
        match query::Name::decode(name)?.as_bytes() {
            b"info_hash" => return Err(ParamError::Invalid),
            b"mode" => {
                let mut buf = [0u8; 16];
                let len = query::decode_into(value.unwrap_or(b""), &mut buf)?;
                // Every mode given must be one upstream knows, as upstream
                // checks each; the last one is served.
                named_mode(&buf[..len], None).ok_or(ParamError::Invalid)?;
                mode = Some((buf, len));
            }
            b"format" => {
                let mut buf = [0u8; 8];
                let len = query::decode_into(value.unwrap_or(b""), &mut buf)?;
                format = Some(match &buf[..len] {
                    b"bin" => TpbsFormat::Bin,
                    b"ben" => TpbsFormat::Ben,
                    b"url" => TpbsFormat::Url,
                    b"txt" => TpbsFormat::Txt,
                    b"txtp" => TpbsFormat::Txtp,
                    b"jsonl" => TpbsFormat::Jsonl,
                    _ => return Err(ParamError::Invalid),
                });
            }
            _ => {}
        }
    }
    // No mode is upstream's default; an empty one is no mode it knows.
    let Some((mode, len)) = mode else {
        return Ok(StatsMode::Peer);
    };
    named_mode(&mode[..len], format).ok_or(ParamError::Invalid)
}

/// The stats mode called `name`, `tpbs` in `format` (text by default).
fn named_mode(name: &[u8], format: Option<TpbsFormat>) -> Option<StatsMode> {
    Some(match name {
        b"peer" => StatsMode::Peer,
        b"torr" => StatsMode::Torrents,
        b"conn" => StatsMode::Conn,
        b"udp4" => StatsMode::Udp4,
        b"tcp4" => StatsMode::Tcp4,
        b"scrp" => StatsMode::Scrape,
        b"fscr" => StatsMode::FullScrape,
        b"completed" => StatsMode::Completed,
        b"syncs" => StatsMode::Syncs,
        b"herr" => StatsMode::HttpErrors,
        b"renew" => StatsMode::Renew,
        b"version" => StatsMode::Version,
        b"busy" => StatsMode::Busy,
        b"top10" => StatsMode::Top10,
        b"json" => StatsMode::Json,
        b"top100" => StatsMode::Top100,
        b"s24s" => StatsMode::BusyNetworks,
        b"clients" => StatsMode::Clients,
        b"numwants" => StatsMode::Numwants,
        b"everything" => StatsMode::Everything,
        // Upstream never answers tpbs without a format; text is the evident intent.
        b"tpbs" => StatsMode::Tpbs(format.unwrap_or(TpbsFormat::Txt)),
        b"statedump" => StatsMode::StateDump,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "%01%02%03%04%05%06%07%08%09%0a%0b%0c%0d%0e%0f%10%11%12%13%14";

    #[test]
    fn announce_defaults_and_values() {
        let p = announce(
            format!("info_hash={HASH}&port=6881&left=0&event=completed&numwant=5").as_bytes(),
        )
        .unwrap();
        assert_eq!(p.port, 6881);
        assert!(p.seeding);
        assert_eq!(p.event, Event::Completed);
        assert_eq!(p.numwant, Some(5));
        let p = announce(format!("info_hash={HASH}").as_bytes()).unwrap();
        assert_eq!(
            (p.port, p.seeding, p.numwant, p.peer_id),
            (0, false, None, None)
        );
        let p = announce(format!("info_hash={HASH}&peer_id=-XL0012-%01bcdefghijkl").as_bytes())
            .unwrap();
        assert_eq!(p.peer_id, Some(*b"-XL0012-\x01bcdefghijkl"));
        let p = announce(format!("info_hash={HASH}&left=abc&port=-1&event=started").as_bytes())
            .unwrap();
        assert!(p.seeding);
        assert_eq!(p.port, 65535);
        assert_eq!(p.event, Event::None);
        let p = announce(format!("info_hash={HASH}&left=5abc&port=%31%32").as_bytes()).unwrap();
        assert!(p.seeding, "left with junk after its digits is 0");
        assert_eq!(p.port, 12);
        let p = announce(format!("info_hash={HASH}&left=4294967296&numwant=4294967297").as_bytes())
            .unwrap();
        assert!(!p.seeding, "not wrapped to 0");
        assert_eq!(p.numwant, Some(4294967297));
    }

    #[test]
    fn repeated_left_and_event_set_flags_as_upstream_never_clears_them() {
        let p = announce(format!("info_hash={HASH}&left=0&left=5").as_bytes()).unwrap();
        assert!(p.seeding);
        let p =
            announce(format!("info_hash={HASH}&event=stopped&event=completed").as_bytes()).unwrap();
        assert_eq!(p.event, Event::Stopped);
        let p =
            announce(format!("info_hash={HASH}&event=completed&event=started").as_bytes()).unwrap();
        assert_eq!(p.event, Event::Completed);
    }

    #[test]
    fn announce_errors() {
        assert_eq!(announce(b"port=1"), Err(ParamError::MissingInfoHash));
        assert_eq!(announce(b"info_hash=short"), Err(ParamError::Invalid));
        let twice = format!("info_hash={HASH}&info_hash={HASH}");
        assert_eq!(announce(twice.as_bytes()), Err(ParamError::Invalid));
        assert_eq!(
            announce(format!("info_hash={HASH}&compact=0").as_bytes()),
            Err(ParamError::CompactZero)
        );
        assert_eq!(
            announce(format!("info_hash={HASH}&port=70000").as_bytes()),
            Err(ParamError::Invalid)
        );
        assert_eq!(
            announce(format!("info_hash={HASH}&numwant=").as_bytes()),
            Err(ParamError::Invalid)
        );
        assert_eq!(
            announce(format!("info_hash={HASH}&left=").as_bytes()),
            Err(ParamError::Invalid)
        );
        assert_eq!(
            announce(format!("info_hash={HASH}&peer_id=x").as_bytes()),
            Err(ParamError::Invalid)
        );
        // Anything after the digits, as upstream; past 32 bits no wrapping.
        for bad in [
            "port=12a",
            "port=12+",
            "port=12%20",
            "port=-",
            "port=-70000",
            "port=4294967297",
            "numwant=1.5",
            "numwant=-",
            "compact=1x",
            "left=5%zz",
        ] {
            assert_eq!(
                announce(format!("info_hash={HASH}&{bad}").as_bytes()),
                Err(ParamError::Invalid),
                "{bad}"
            );
        }
        assert_eq!(
            announce(format!("info_hash={HASH}&x=\"").as_bytes()),
            Err(ParamError::Invalid)
        );
        // A control or high byte: only in a value the tracker ignores.
        let with =
            |extra: &[u8]| announce(&[format!("info_hash={HASH}&").as_bytes(), extra].concat());
        assert!(with(b"x=a\x01\x01b&key=\xff\t").is_ok());
        for used in [
            &b"port=1\x01"[..],
            b"left=\x7f",
            b"numwant=\t5",
            b"compact=1\xff",
            b"event=stopped\x01",
            b"peer_id=\x01bcdefghijklmnopqrs",
            b"info_hash=\x01bcdefghijklmnopqrs",
            b"a\x01b=1",
        ] {
            assert_eq!(with(used), Err(ParamError::Invalid), "{used:?}");
        }
    }

    #[test]
    fn scrape_limits() {
        let mut hashes = Vec::new();
        let many = vec![format!("info_hash={HASH}"); 70].join("&");
        scrape(many.as_bytes(), &mut hashes).unwrap();
        assert_eq!(hashes.len(), MAX_SCRAPE_HASHES);
        assert_eq!(scrape(b"", &mut hashes), Err(ParamError::Invalid));
        assert_eq!(
            scrape(b"info_hash=abc", &mut hashes),
            Err(ParamError::Invalid)
        );
        let ignored = format!("info_hash={HASH}&x=\u{7f}");
        assert_eq!(scrape(ignored.as_bytes(), &mut hashes), Ok(()));
    }

    #[test]
    fn stats_modes() {
        assert_eq!(stats(b""), Ok(StatsMode::Peer));
        assert_eq!(stats(b"x=1&format=txt"), Ok(StatsMode::Peer));
        assert_eq!(stats(b"mode="), Err(ParamError::Invalid));
        assert_eq!(stats(b"mode"), Err(ParamError::Invalid));
        assert_eq!(stats(b"mode&x=1"), Err(ParamError::Invalid));
        assert_eq!(stats(b"mode=peer&mode="), Err(ParamError::Invalid));
        assert_eq!(stats(b"mode=top10"), Ok(StatsMode::Top10));
        assert_eq!(stats(b"mode=s24s"), Ok(StatsMode::BusyNetworks));
        assert_eq!(stats(b"mode=clients"), Ok(StatsMode::Clients));
        assert_eq!(stats(b"mode=numwants"), Ok(StatsMode::Numwants));
        assert_eq!(
            stats(b"mode=tpbs&format=bin"),
            Ok(StatsMode::Tpbs(TpbsFormat::Bin))
        );
        assert_eq!(stats(b"mode=nope"), Err(ParamError::Invalid));
        // Each mode is checked, as upstream does; the last one is served.
        assert_eq!(stats(b"mode=nope&mode=peer"), Err(ParamError::Invalid));
        assert_eq!(stats(b"mode=tpbs&mode=torr"), Ok(StatsMode::Torrents));
        assert_eq!(
            stats(b"format=url&mode=tpbs"),
            Ok(StatsMode::Tpbs(TpbsFormat::Url))
        );
        assert_eq!(stats(b"mode=torr&x=a\x01b"), Ok(StatsMode::Torrents));
        assert_eq!(stats(b"mode=to\x01rr"), Err(ParamError::Invalid));
        assert_eq!(stats(b"mode=peer&info_hash=x"), Err(ParamError::Invalid));
    }
}
