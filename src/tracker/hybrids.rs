//! Hybrid torrents (BEP 52): one torrent with a v1 and a v2 info hash.
//!
//! Clients announce a hybrid torrent under either hash, or both, so its
//! peers split into two swarms: a v1-only client never meets a v2-only one,
//! and every count is halved. The operator, who knows both hashes, lists
//! them as pairs; an announce or scrape of the v2 hash (truncated to 20
//! bytes, as clients send it) is then served from the v1 hash's swarm, and
//! a client announcing both hashes is one peer there.
//!
//! The file has a pair per line, the v1 hash (40 hex digits) first and the
//! v2 hash (64 hex digits, or its 40-digit truncation) second, with blank
//! lines and `#` comments as in access lists. A hash may be in one pair
//! only, so no swarm is linked to two others.

use std::collections::HashMap;

use super::access_list::{self, LineError};
use crate::proto::InfoHash;

const PAIR: &str = "a v1 hash (40 hex digits), then a v2 hash (64 hex digits)";
const UNLINKED: &str = "hashes in no other pair";

/// The listed pairs, (v1, v2), under each of their two hashes.
#[derive(Clone, Debug, Default)]
pub struct HybridLinks {
    pairs: HashMap<InfoHash, (InfoHash, InfoHash), foldhash::fast::RandomState>,
}

impl HybridLinks {
    /// Parses the text of a hybrids file.
    pub fn parse(file: &[u8]) -> Result<Self, LineError> {
        let mut links = HybridLinks::default();
        for line in access_list::lines(file) {
            let mut words = line.entry()?.split_whitespace();
            let (v1, v2) = match (words.next(), words.next(), words.next()) {
                (None, ..) => continue,
                (Some(v1), Some(v2), None) if v1.len() == 40 => (v1, v2),
                _ => return Err(line.error(PAIR)),
            };
            let (Some(v1), Some(v2)) = (hash(v1), hash(v2)) else {
                return Err(line.error(PAIR));
            };
            let taken = |h: &InfoHash| links.pairs.contains_key(h);
            if v1 == v2 || taken(&v1) || taken(&v2) {
                return Err(line.error(UNLINKED));
            }
            links.pairs.insert(v1, (v1, v2));
            links.pairs.insert(v2, (v1, v2));
        }
        Ok(links)
    }

    /// How many pairs are listed.
    pub fn len(&self) -> usize {
        self.pairs.len() / 2
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The hash whose swarm serves `hash`: its v1 hash if it is a listed v2
    /// hash, otherwise itself.
    pub fn swarm_of(&self, hash: InfoHash) -> InfoHash {
        self.pair_of(&hash).map_or(hash, |(v1, _)| v1)
    }

    /// The pair, (v1, v2), that `hash` is either hash of.
    pub fn pair_of(&self, hash: &InfoHash) -> Option<(InfoHash, InfoHash)> {
        if self.is_empty() {
            return None;
        }
        self.pairs.get(hash).copied()
    }
}

fn hash(hex: &str) -> Option<InfoHash> {
    InfoHash::from_hex(hex.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: &str = "0123456789abcdef0123456789abcdef01234567";
    const OTHER_V1: &str = "89abcdef0123456789abcdef0123456789abcdef";

    fn v2(byte: &str) -> String {
        byte.repeat(32)
    }

    #[test]
    fn links_whole_and_truncated_v2_hashes_to_their_v1() {
        let text = format!(
            "# hybrids\n\n{V1} {} # a comment\n{OTHER_V1}\t{}\n",
            v2("ab"),
            &v2("cd")[..40]
        );
        let links = HybridLinks::parse(text.as_bytes()).unwrap();
        assert_eq!(links.len(), 2);
        let v1 = hash(V1).unwrap();
        assert_eq!(links.swarm_of(InfoHash([0xab; 20])), v1);
        assert_eq!(
            links.swarm_of(InfoHash([0xcd; 20])),
            hash(OTHER_V1).unwrap()
        );
        assert_eq!(links.swarm_of(v1), v1, "a v1 hash is its own swarm");
        let whole_pair = Some((v1, InfoHash([0xab; 20])));
        assert_eq!(links.pair_of(&v1), whole_pair);
        assert_eq!(links.pair_of(&InfoHash([0xab; 20])), whole_pair);
        let unlisted = InfoHash([7; 20]);
        assert_eq!(links.swarm_of(unlisted), unlisted);
        assert_eq!(links.pair_of(&unlisted), None);
        assert_eq!(HybridLinks::default().swarm_of(unlisted), unlisted);
    }

    #[test]
    fn reads_a_bom_crlf_and_latin1_comments() {
        let text = format!("\u{feff}{V1} {}\r\n{OTHER_V1} {} # ", v2("ab"), v2("cd"));
        let file = [text.as_bytes(), b"Caf\xe9\r\n"].concat();
        assert_eq!(HybridLinks::parse(&file).unwrap().len(), 2);
    }

    #[test]
    fn bad_lines_are_named() {
        let bad = [
            format!("{V1}\n"),
            format!("{V1} {} {}\n", v2("ab"), v2("cd")),
            format!("{} {V1}\n", v2("ab")),
            format!("{V1} {}0\n", v2("ab")),
            format!("{V1} zz{}\n", &v2("ab")[2..]),
        ];
        for text in bad {
            let error = HybridLinks::parse(format!("# ok\n{text}").as_bytes()).unwrap_err();
            assert_eq!((error.line, error.expected), (2, PAIR), "{text}");
        }
    }

    #[test]
    fn a_hash_is_in_one_pair_only() {
        let truncated_v1 = format!("{V1}{}", "0".repeat(24));
        let linked_twice = [
            format!("{V1} {truncated_v1}\n"),
            format!("{V1} {}\n{OTHER_V1} {}\n", v2("ab"), v2("ab")),
            format!("{V1} {}\n{V1} {}\n", v2("ab"), v2("cd")),
            format!("{V1} {}\n{OTHER_V1} {V1}\n", v2("ab")),
            format!("{V1} {OTHER_V1}\n{OTHER_V1} {}\n", v2("ab")),
        ];
        for text in linked_twice {
            let error = HybridLinks::parse(text.as_bytes()).unwrap_err();
            assert_eq!(error.expected, UNLINKED, "{text}");
        }
    }
}
