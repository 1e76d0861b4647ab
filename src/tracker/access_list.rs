//! White- and blacklists of info hashes.
//!
//! The file format is upstream's: one hash per line, 40 hex digits (v1), and
//! here also 64 (v2, kept truncated to 20 bytes as clients announce it).
//! Blank lines and `#` comments are allowed, as is a comment after a hash.
//! Unlike upstream, which skips anything it cannot read, any other line is an
//! error naming the line, so a typo never silently drops a torrent.

use std::collections::HashSet;
use std::fmt;

use crate::proto::InfoHash;

/// What the list means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// No list: every torrent is tracked.
    Open,
    /// Only listed torrents.
    Whitelist,
    /// Every torrent but the listed ones.
    Blacklist,
}

/// The access list in force.
#[derive(Clone, Debug)]
pub struct AccessList {
    mode: Mode,
    hashes: HashSet<InfoHash, foldhash::fast::RandomState>,
}

impl Default for AccessList {
    fn default() -> Self {
        AccessList::open()
    }
}

impl AccessList {
    pub fn open() -> Self {
        AccessList {
            mode: Mode::Open,
            hashes: HashSet::default(),
        }
    }

    pub fn new(mode: Mode, hashes: impl IntoIterator<Item = InfoHash>) -> Self {
        AccessList {
            mode,
            hashes: hashes.into_iter().collect(),
        }
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// The listed hashes, in no particular order.
    pub fn into_hashes(self) -> impl Iterator<Item = InfoHash> {
        self.hashes.into_iter()
    }

    /// Puts `hash` on the list (`listed`) or takes it off; true when that
    /// changed anything.
    pub fn set_listed(&mut self, hash: InfoHash, listed: bool) -> bool {
        if listed {
            self.hashes.insert(hash)
        } else {
            self.hashes.remove(&hash)
        }
    }

    /// Whether announces for `hash` are accepted.
    pub fn allows(&self, hash: &InfoHash) -> bool {
        match self.mode {
            Mode::Open => true,
            Mode::Whitelist => self.hashes.contains(hash),
            Mode::Blacklist => !self.hashes.contains(hash),
        }
    }
}

/// A line of a list file (access list, blocked networks) that is neither
/// an entry nor a comment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineError {
    /// 1-based line number.
    pub line: usize,
    /// The line, cut to 80 characters.
    pub text: String,
    /// What an entry looks like.
    pub expected: &'static str,
}

impl LineError {
    pub fn new(index: usize, line: &str, expected: &'static str) -> Self {
        LineError {
            line: index + 1,
            text: line.chars().take(80).collect(),
            expected,
        }
    }
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let LineError {
            line,
            text,
            expected,
        } = self;
        write!(f, "line {line}: expected {expected}, found {text:?}")
    }
}

/// Parses the text of an access-list file.
pub fn parse(text: &str) -> Result<Vec<InfoHash>, LineError> {
    let mut hashes = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let digits = trimmed.bytes().take_while(u8::is_ascii_hexdigit).count();
        let rest = &trimmed[digits..];
        let clean_end =
            rest.is_empty() || rest.starts_with(|c: char| c.is_whitespace() || c == '#');
        match InfoHash::from_hex(&trimmed.as_bytes()[..digits]) {
            Some(hash) if clean_end => hashes.push(hash),
            _ => return Err(LineError::new(index, line, "40 or 64 hex digits")),
        }
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
        let text = format!("# comment\n\n{V1}\n{V1} # trailing\n{v2}\n");
        let hashes = parse(&text).unwrap();
        assert_eq!(hashes.len(), 3);
        assert_eq!(hashes[2].0, [0xab; 20]);
    }

    #[test]
    fn reports_bad_line() {
        let err = parse(&format!("{V1}\nnot a hash\n")).unwrap_err();
        assert_eq!(err.line, 2);
        assert!(parse(&format!("{V1}0\n")).is_err());
        assert!(parse("0123\n").is_err());
    }

    #[test]
    fn modes() {
        let hash = InfoHash::from_hex(V1.as_bytes()).unwrap();
        let other = InfoHash([9; 20]);
        let white = AccessList::new(Mode::Whitelist, [hash]);
        assert!(white.allows(&hash) && !white.allows(&other));
        let black = AccessList::new(Mode::Blacklist, [hash]);
        assert!(!black.allows(&hash) && black.allows(&other));
        assert!(AccessList::open().allows(&other));
    }
}
