//! Streamed bodies: the full scrape, `/stats?mode=tpbs` and
//! `/stats?mode=statedump`.
//!
//! The body is produced a slice of torrents at a time, as the socket drains,
//! walking the tracker in ascending hash order from a cursor. So memory stays
//! at one slice however many torrents there are, and the event loop keeps
//! serving others between slices. Like upstream's, the result is not an
//! atomic snapshot.

use std::io::Write;

use flate2::write::GzEncoder;
use flate2::Compression;

use crate::proto::params::TpbsFormat;
use crate::proto::{bencode, response, InfoHash};
use crate::state::torrent_line;
use crate::stats::tpbs_entry;
use crate::tracker::ShardedTracker;

/// Torrents encoded per slice: about 70 KB of bencode.
const TORRENTS_PER_SLICE: usize = 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyKind {
    FullScrape,
    Tpbs(TpbsFormat),
    StateDump,
}

impl BodyKind {
    /// JSON Lines say so; the other formats, upstream's, are served as
    /// opaque bytes, as upstream serves them.
    pub fn content_type(self) -> &'static [u8] {
        match self {
            BodyKind::Tpbs(TpbsFormat::Jsonl) => b"application/x-ndjson",
            _ => b"application/octet-stream",
        }
    }
}

pub struct StreamedBody {
    kind: BodyKind,
    cursor: Option<InfoHash>,
    started: bool,
    gzip: Option<GzEncoder<Vec<u8>>>,
    /// Sent in chunks (HTTP/1.1), or as is until the connection closes.
    chunked: bool,
    plain: Vec<u8>,
    /// Body bytes produced so far (after compression), for the stats.
    pub produced: u64,
}

impl StreamedBody {
    pub fn new(kind: BodyKind, gzip: bool, chunked: bool) -> Self {
        StreamedBody {
            kind,
            cursor: None,
            started: false,
            // Hashes do not compress; the fastest level saves nearly as much.
            gzip: gzip.then(|| GzEncoder::new(Vec::new(), Compression::fast())),
            chunked,
            plain: Vec::new(),
            produced: 0,
        }
    }

    /// Appends the next chunk(s) to `out`, at tracker second `now` and
    /// `unix_now` seconds since the Unix epoch. Returns true once the body,
    /// including the last chunk, is complete.
    pub fn fill(
        &mut self,
        tracker: &ShardedTracker,
        (now, unix_now): (u32, u64),
        out: &mut Vec<u8>,
    ) -> bool {
        self.plain.clear();
        if !self.started {
            self.started = true;
            if self.kind == BodyKind::FullScrape || self.kind == BodyKind::Tpbs(TpbsFormat::Ben) {
                self.plain.extend_from_slice(bencode::FILES_OPEN);
            }
        }
        let kind = self.kind;
        let plain = &mut self.plain;
        let finished = tracker.walk_on(
            &mut self.cursor,
            TORRENTS_PER_SLICE,
            now,
            |hash, listed| match kind {
                BodyKind::FullScrape => bencode::scrape_entry(plain, &hash.0, listed.counts),
                BodyKind::Tpbs(format) => tpbs_entry(plain, format, hash, listed.counts),
                BodyKind::StateDump => {
                    let minute = unix_now.saturating_sub(listed.idle.into()) / 60;
                    torrent_line(plain, hash, minute, listed.counts.completed)
                }
            },
        );
        if finished && (kind == BodyKind::FullScrape || kind == BodyKind::Tpbs(TpbsFormat::Ben)) {
            self.plain.extend_from_slice(bencode::FILES_CLOSE);
        }
        let before = out.len();
        let chunked = self.chunked;
        let frame = |out: &mut Vec<u8>, data: &[u8]| {
            if chunked {
                response::chunk(out, data);
            } else {
                out.extend_from_slice(data);
            }
        };
        match &mut self.gzip {
            Some(encoder) => {
                // Writing into a Vec cannot fail.
                let _ = encoder.write_all(&self.plain);
                if finished {
                    let _ = encoder.try_finish();
                }
                let compressed = std::mem::take(encoder.get_mut());
                frame(out, &compressed);
            }
            None => frame(out, &self.plain),
        }
        self.produced += (out.len() - before) as u64;
        if finished && chunked {
            out.extend_from_slice(response::LAST_CHUNK);
        }
        finished
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracker::{Announce, Families, Timeouts};
    use std::io::Read;

    /// `n` torrents spread over the hash space, so over all `shards`.
    fn tracker_with(n: u16, shards: usize) -> ShardedTracker {
        let timeouts = Timeouts {
            peer: 100,
            peer_longest: 100,
            torrent: 100,
        };
        let t = ShardedTracker::new(timeouts, shards, 1);
        for i in 0..n {
            let mut hash = [0; 20];
            hash[0] = (i % 256) as u8;
            hash[1..3].copy_from_slice(&i.to_be_bytes());
            let a = Announce {
                info_hash: InfoHash(hash),
                peer: "10.0.0.1:1".parse().unwrap(),
                seeding: true,
                event: crate::proto::Event::None,
                numwant: 0,
            };
            t.shard(&a.info_hash)
                .announce(&a, Families::Both, 0, &mut Vec::new(), &mut Vec::new());
        }
        t
    }

    fn unchunk(mut body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let line_end = body.windows(2).position(|w| w == b"\r\n").unwrap();
            let len =
                usize::from_str_radix(std::str::from_utf8(&body[..line_end]).unwrap(), 16).unwrap();
            if len == 0 {
                return out;
            }
            out.extend_from_slice(&body[line_end + 2..line_end + 2 + len]);
            body = &body[line_end + 4 + len..];
        }
    }

    fn stream(tracker: &ShardedTracker, gzip: bool) -> Vec<u8> {
        let mut body = StreamedBody::new(BodyKind::FullScrape, gzip, true);
        let mut out = Vec::new();
        while !body.fill(tracker, (0, 0), &mut out) {}
        unchunk(&out)
    }

    #[test]
    fn unchunked_for_http_10_is_the_same_body() {
        let tracker = tracker_with(3000, 4);
        for gzip in [false, true] {
            let mut body = StreamedBody::new(BodyKind::FullScrape, gzip, false);
            let mut out = Vec::new();
            while !body.fill(&tracker, (0, 0), &mut out) {}
            if gzip {
                let mut unzipped = Vec::new();
                flate2::read::GzDecoder::new(&out[..])
                    .read_to_end(&mut unzipped)
                    .unwrap();
                out = unzipped;
            }
            assert_eq!(out, stream(&tracker, false), "gzip {gzip}");
        }
    }

    #[test]
    fn plain_and_gzip_agree() {
        let tracker = tracker_with(3, 1);
        let plain = stream(&tracker, false);
        assert!(plain.starts_with(b"d5:filesd20:"));
        assert!(plain.ends_with(b"ee"));
        let mut unzipped = Vec::new();
        flate2::read::GzDecoder::new(&stream(&tracker, true)[..])
            .read_to_end(&mut unzipped)
            .unwrap();
        assert_eq!(unzipped, plain);
    }

    #[test]
    fn empty_tracker() {
        assert_eq!(stream(&tracker_with(0, 1), false), b"d5:filesdee");
    }

    #[test]
    fn every_torrent_of_every_shard_once_in_ascending_order() {
        let plain = stream(&tracker_with(3000, 16), false);
        // Each entry is "20:" + hash + "d8:complete...": pick out the hashes.
        let mut hashes = Vec::new();
        let mut rest = &plain[b"d5:filesd".len()..];
        while rest.starts_with(b"20:") {
            hashes.push(rest[3..23].to_vec());
            let counts = &rest[23..];
            let end = counts.windows(2).position(|w| w == b"ee").unwrap();
            rest = &counts[end + 2..];
        }
        assert_eq!(rest, b"ee");
        assert_eq!(hashes.len(), 3000);
        assert!(hashes.windows(2).all(|w| w[0] < w[1]));
    }
}
