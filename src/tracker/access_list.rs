//! White- and blacklists of info hashes.
//!
//! The file format is upstream's: one hash per line, 40 hex digits (v1), and
//! here also 64 (v2, kept truncated to 20 bytes as clients announce it).
//! Blank lines and `#` comments are allowed, as is a comment after a hash;
//! comments and names may be in any encoding (a Latin-1 torrent name).
//! Unlike upstream, which skips anything it cannot read, any other line is an
//! error naming the line, as is a second hash on a line, so a typo never
//! silently drops a torrent.

use std::collections::HashSet;
use std::fmt;

use crate::proto::InfoHash;

type Hashes = HashSet<InfoHash, foldhash::fast::RandomState>;

/// Which list a file is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Only listed torrents are tracked.
    Whitelist,
    /// Listed torrents never are.
    Blacklist,
}

/// The access lists in force: none (every torrent is tracked), a
/// whitelist, a blacklist, or both, when a torrent must be on the first
/// and not on the second (an index's torrents less the ones taken down).
#[derive(Clone, Debug, Default)]
pub struct AccessList {
    whitelist: Option<Hashes>,
    blacklist: Option<Hashes>,
}

/// How many hashes each list in force holds; `None` for a list not set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sizes {
    pub whitelist: Option<usize>,
    pub blacklist: Option<usize>,
}

impl Sizes {
    /// No list is set: every torrent is tracked.
    pub fn is_open(&self) -> bool {
        self.whitelist.is_none() && self.blacklist.is_none()
    }

    /// A whitelist is set and empty: no torrent is tracked.
    pub fn refuses_everything(&self) -> bool {
        self.whitelist == Some(0)
    }

    /// The size of the list changesets edit (see [`AccessList::set_listed`]).
    pub fn edited_mut(&mut self) -> Option<&mut usize> {
        self.whitelist.as_mut().or(self.blacklist.as_mut())
    }
}

/// "whitelist of 3", "whitelist of 3 and blacklist of 1", "no access list".
impl fmt::Display for Sizes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.whitelist, self.blacklist) {
            (None, None) => f.write_str("no access list"),
            (Some(white), None) => write!(f, "whitelist of {white}"),
            (None, Some(black)) => write!(f, "blacklist of {black}"),
            (Some(white), Some(black)) => {
                write!(f, "whitelist of {white} and blacklist of {black}")
            }
        }
    }
}

impl AccessList {
    /// No list: every torrent is tracked.
    pub fn open() -> Self {
        AccessList::default()
    }

    /// These lists with `kind` set to `hashes`.
    pub fn with(mut self, kind: Kind, hashes: impl IntoIterator<Item = InfoHash>) -> Self {
        let hashes = Some(hashes.into_iter().collect());
        match kind {
            Kind::Whitelist => self.whitelist = hashes,
            Kind::Blacklist => self.blacklist = hashes,
        }
        self
    }

    pub fn sizes(&self) -> Sizes {
        Sizes {
            whitelist: self.whitelist.as_ref().map(HashSet::len),
            blacklist: self.blacklist.as_ref().map(HashSet::len),
        }
    }

    /// Splits the lists into `parts` with the same lists set, each hash
    /// going to part `part_of(hash)`.
    pub fn split(self, parts: usize, part_of: impl Fn(&InfoHash) -> usize) -> Vec<AccessList> {
        let mut split = vec![AccessList::default(); parts];
        for (kind, hashes) in [
            (Kind::Whitelist, self.whitelist),
            (Kind::Blacklist, self.blacklist),
        ] {
            let Some(hashes) = hashes else { continue };
            let mut shares: Vec<Vec<InfoHash>> = vec![Vec::new(); parts];
            for hash in hashes {
                shares[part_of(&hash)].push(hash);
            }
            for (list, share) in split.iter_mut().zip(shares) {
                *list = std::mem::take(list).with(kind, share);
            }
        }
        split
    }

    /// Puts `hash` on the list changesets edit (`listed`) or takes it off;
    /// true when that changed anything. Changesets edit the whitelist
    /// when there is one, where new torrents arrive often, and otherwise
    /// the blacklist, as upstream's edit its one list.
    pub fn set_listed(&mut self, hash: InfoHash, listed: bool) -> bool {
        let Some(hashes) = self.whitelist.as_mut().or(self.blacklist.as_mut()) else {
            return false;
        };
        if listed {
            hashes.insert(hash)
        } else {
            hashes.remove(&hash)
        }
    }

    /// Whether the blacklist names `hash`.
    pub fn blacklists(&self, hash: &InfoHash) -> bool {
        self.blacklist.as_ref().is_some_and(|b| b.contains(hash))
    }

    /// Whether announces for `hash` are accepted.
    pub fn allows(&self, hash: &InfoHash) -> bool {
        self.whitelist.as_ref().map_or(true, |w| w.contains(hash))
            && self.blacklist.as_ref().map_or(true, |b| !b.contains(hash))
    }
}

/// A line of a list file (access list, blocked networks) that is neither
/// an entry nor a comment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineError {
    /// 1-based line number.
    pub line: usize,
    /// The line, cut to 80 characters; empty for a secret one.
    pub text: String,
    /// What an entry looks like.
    pub expected: &'static str,
    /// Whether the line may hold a secret, which must not reach the log.
    secret: bool,
}

impl LineError {
    pub fn new(index: usize, line: &[u8], expected: &'static str) -> Self {
        LineError {
            line: index + 1,
            text: String::from_utf8_lossy(line).chars().take(80).collect(),
            expected,
            secret: false,
        }
    }

    /// This error without the line's text, for a line of secrets.
    pub fn hidden(self) -> Self {
        LineError {
            text: String::new(),
            secret: true,
            ..self
        }
    }

    /// An error on a line of secrets (passkeys): it names the line only.
    pub fn hiding_the_line(index: usize, expected: &'static str) -> Self {
        LineError::new(index, b"", expected).hidden()
    }
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let LineError {
            line,
            text,
            expected,
            secret,
        } = self;
        match secret {
            true => write!(
                f,
                "line {line}: expected {expected} (the line is not shown)"
            ),
            false => write!(f, "line {line}: expected {expected}, found {text:?}"),
        }
    }
}

/// A line of a list file (access list, blocked networks, passkeys,
/// hybrids), without its line end.
#[derive(Clone, Copy, Debug)]
pub struct Line<'a> {
    /// 0-based line number.
    pub index: usize,
    pub bytes: &'a [u8],
}

const NOT_UTF8: &str = "UTF-8 text (only a comment after '#' may be in another encoding)";

impl<'a> Line<'a> {
    /// The entry of a list whose comments start at any `#`: the text
    /// before it, trimmed. Comments may hold any bytes; the entry must be
    /// UTF-8.
    pub fn entry(&self) -> Result<&'a str, LineError> {
        let before_comment = self.bytes.split(|&b| b == b'#').next().unwrap_or_default();
        std::str::from_utf8(before_comment.trim_ascii()).map_err(|_| self.error(NOT_UTF8))
    }

    pub fn error(&self, expected: &'static str) -> LineError {
        LineError::new(self.index, self.bytes, expected)
    }
}

/// The lines of a list file. A leading UTF-8 byte-order mark, which
/// Windows editors write, is dropped; LF, CRLF and a lone CR each end a
/// line, so a file saved with old Mac line ends is not one long line.
pub fn lines(file: &[u8]) -> impl Iterator<Item = Line<'_>> {
    let mut rest = file.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(file);
    let mut index = 0;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let end = rest
            .iter()
            .position(|&b| b == b'\n' || b == b'\r')
            .unwrap_or(rest.len());
        let line = Line {
            index,
            bytes: &rest[..end],
        };
        let line_end = match &rest[end..] {
            [b'\r', b'\n', ..] => 2,
            [] => 0,
            _ => 1,
        };
        rest = &rest[end + line_end..];
        index += 1;
        Some(line)
    })
}

const HASH: &str = "40 or 64 hex digits";
const ONE_HASH: &str = "one hash a line (two hashes on one line)";

/// How many hex digits `bytes` starts with.
fn hex_digits(bytes: &[u8]) -> usize {
    bytes.iter().take_while(|b| b.is_ascii_hexdigit()).count()
}

/// Parses an access-list file.
pub fn parse(file: &[u8]) -> Result<Vec<InfoHash>, LineError> {
    let mut hashes = Vec::new();
    for line in lines(file) {
        let trimmed = line.bytes.trim_ascii();
        if trimmed.is_empty() || trimmed.starts_with(b"#") {
            continue;
        }
        // As upstream, whatever follows the hash's last digit is the
        // operator's (`HASH name`, `HASH:name`, `HASH,name`), in any
        // encoding: only a hash of the wrong length is an error, or a
        // second hash, which upstream would drop.
        let (digits, after) = trimmed.split_at(hex_digits(trimmed));
        let hash = InfoHash::from_hex(digits).ok_or_else(|| line.error(HASH))?;
        let separators = after.iter().take_while(|b| b" \t,:;".contains(b)).count();
        if matches!(hex_digits(&after[separators..]), 40 | 64) {
            return Err(line.error(ONE_HASH));
        }
        hashes.push(hash);
    }
    Ok(hashes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: &str = "0123456789abcdef0123456789ABCDEF01234567";

    #[test]
    fn parses_upstream_format_and_v2() {
        let v2 = "ab".repeat(32);
        let text = format!("# comment\n\n{V1}\n{V1} # trailing\n{v2}\n{V1}:name\n{V1},x\n");
        let hashes = parse(text.as_bytes()).unwrap();
        assert_eq!(hashes.len(), 5);
        assert_eq!(hashes[2].0, [0xab; 20]);
    }

    #[test]
    fn reports_bad_line() {
        let err = parse(format!("{V1}\nnot a hash\n").as_bytes()).unwrap_err();
        assert_eq!(err.line, 2);
        assert!(parse(format!("{V1}0\n").as_bytes()).is_err());
        assert!(parse(b"0123\n").is_err());
    }

    #[test]
    fn lines_drop_a_bom_and_end_at_lf_crlf_or_a_lone_cr() {
        let file = b"\xEF\xBB\xBFone\r\ntwo\rthree\n\nfive";
        let numbered: Vec<(usize, &[u8])> = lines(file).map(|l| (l.index, l.bytes)).collect();
        let expected: [(usize, &[u8]); 5] = [
            (0, b"one"),
            (1, b"two"),
            (2, b"three"),
            (3, b""),
            (4, b"five"),
        ];
        assert_eq!(numbered, expected);
        assert_eq!(lines(b"a\r\r\nb\n").count(), 3, "CR, then CRLF");
        assert_eq!(lines(b"").count(), 0);
    }

    #[test]
    fn any_bytes_in_comments_and_names() {
        let latin1 = [b"# Caf\xe9\n".as_slice(), V1.as_bytes(), b" Caf\xe9\n"].concat();
        assert_eq!(parse(&latin1).unwrap().len(), 1);
        let bad = parse(b"# ok\nCaf\xe9\n").unwrap_err();
        assert_eq!(bad.line, 2);
        assert!(
            bad.to_string().starts_with("line 2: expected 40 or 64"),
            "{bad}"
        );
    }

    #[test]
    fn bom_and_crs_do_not_hide_hashes() {
        let v2 = "ab".repeat(32);
        let bom = format!("\u{feff}{V1}\r\n{v2}\r\n");
        assert_eq!(parse(bom.as_bytes()).unwrap().len(), 2);
        let old_mac = format!("{V1}\r{v2}\r");
        assert_eq!(parse(old_mac.as_bytes()).unwrap().len(), 2);
    }

    #[test]
    fn two_hashes_on_a_line_are_an_error() {
        let v2 = "ab".repeat(32);
        for second in [
            format!(" {V1}"),
            format!(",{V1}"),
            format!(":{v2}"),
            format!("\t, {V1} name"),
        ] {
            let error = parse(format!("{V1}\n{V1}{second}\n").as_bytes()).unwrap_err();
            assert_eq!(error.line, 2, "{second:?}");
            assert!(error.to_string().contains("two hashes"), "{error}");
        }
        // A name may start with hex digits, as long as they are no hash.
        let names = format!("{V1} cafe\n{V1}:{V1}0 long\n{V1},deadbeef\n");
        assert_eq!(parse(names.as_bytes()).unwrap().len(), 3);
    }

    #[test]
    fn entry_stops_at_a_comment_and_must_be_utf8() {
        let line = |bytes| Line { index: 2, bytes };
        assert_eq!(line(b" 10.0.0.1 # Caf\xe9").entry().unwrap(), "10.0.0.1");
        let error = line(b"10.0.0.\xe9 # x").entry().unwrap_err();
        assert_eq!(error.line, 3);
        assert!(
            error.to_string().starts_with("line 3: expected UTF-8"),
            "{error}"
        );
        let hidden = error.hidden().to_string();
        assert!(hidden.ends_with("(the line is not shown)"), "{hidden}");
    }

    #[test]
    fn white_black_both_and_none() {
        let [a, b, c] = [1, 2, 3].map(|n| InfoHash([n; 20]));
        let white = AccessList::open().with(Kind::Whitelist, [a, b]);
        assert!(white.allows(&a) && white.allows(&b) && !white.allows(&c));
        let black = AccessList::open().with(Kind::Blacklist, [b]);
        assert!(black.allows(&a) && !black.allows(&b) && black.allows(&c));
        let both = white.with(Kind::Blacklist, [b]);
        assert!(both.allows(&a), "listed, not taken down");
        assert!(!both.allows(&b), "the blacklist wins");
        assert!(!both.allows(&c), "not listed");
        assert!(AccessList::open().allows(&c));
        assert_eq!(
            both.sizes().to_string(),
            "whitelist of 2 and blacklist of 1"
        );
        assert_eq!(AccessList::open().sizes().to_string(), "no access list");
        assert!(AccessList::open().sizes().is_open());
        let empty = AccessList::open().with(Kind::Blacklist, []);
        assert_eq!(empty.sizes().blacklist, Some(0), "set, though empty");
    }

    #[test]
    fn changesets_edit_the_whitelist_when_there_is_one() {
        let [a, b] = [1, 2].map(|n| InfoHash([n; 20]));
        let mut both = AccessList::open()
            .with(Kind::Whitelist, [])
            .with(Kind::Blacklist, [b]);
        assert!(both.set_listed(a, true));
        assert!(!both.set_listed(a, true), "already listed");
        assert!(both.allows(&a));
        assert!(both.set_listed(b, true));
        assert!(!both.allows(&b), "still blacklisted");
        let mut black = AccessList::open().with(Kind::Blacklist, []);
        assert!(black.set_listed(a, true));
        assert!(!black.allows(&a));
        assert!(!AccessList::open().set_listed(a, true), "no list to edit");
    }

    #[test]
    fn split_keeps_every_list_set() {
        let hashes: Vec<InfoHash> = (0..10).map(|n| InfoHash([n; 20])).collect();
        let both = AccessList::open()
            .with(Kind::Whitelist, hashes.clone())
            .with(Kind::Blacklist, []);
        let parts = both.split(3, |hash| usize::from(hash.0[0]) % 3);
        assert_eq!(parts.len(), 3);
        for (i, part) in parts.iter().enumerate() {
            assert_eq!(part.sizes().blacklist, Some(0));
            for hash in &hashes {
                assert_eq!(part.allows(hash), usize::from(hash.0[0]) % 3 == i);
            }
        }
        let open = AccessList::open().split(2, |_| 0);
        assert!(open.iter().all(|part| part.sizes().is_open()));
    }
}
