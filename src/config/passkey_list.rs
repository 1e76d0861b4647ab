//! A file of passkeys, one a line, for `access.passkeys`: with it, every
//! announce and scrape must carry one of them in its URL.

use std::collections::HashSet;

use crate::proto::passkey;
use crate::tracker::access_list::{self, LineError};

#[derive(Clone, Debug, Default)]
pub struct PasskeyList {
    keys: HashSet<Box<[u8]>, foldhash::fast::RandomState>,
}

impl PasskeyList {
    /// Parses a file's text: one key a line, with blank lines, `#` comments
    /// and a comment after a key (whose user, say) allowed. A key listed
    /// twice counts once.
    pub fn parse(file: &[u8]) -> Result<PasskeyList, LineError> {
        let mut keys = HashSet::default();
        for line in access_list::lines(file) {
            // It may be a key with a typo, or a key and a comment without
            // its '#': keys never go to the log.
            let entry = line.entry().map_err(LineError::hidden)?;
            if entry.is_empty() {
                continue;
            }
            if !passkey::is_valid(entry.as_bytes()) {
                return Err(LineError::hiding_the_line(
                    line.index,
                    "a passkey: 1 to 64 letters, digits, '-', '.', '_' or '~'",
                ));
            }
            keys.insert(entry.as_bytes().into());
        }
        Ok(PasskeyList { keys })
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn contains(&self, key: &[u8]) -> bool {
        self.keys.contains(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_comments_and_errors() {
        let text = "# site users\n\n0123456789abcdef0123456789abcdef  # alice\nbob-key\nbob-key\n";
        let list = PasskeyList::parse(text.as_bytes()).unwrap();
        assert_eq!(list.len(), 2);
        assert!(list.contains(b"0123456789abcdef0123456789abcdef"));
        assert!(list.contains(b"bob-key"));
        assert!(!list.contains(b"bob"));
        let error = PasskeyList::parse(b"good\nBobsSecretKey42 bob\n").unwrap_err();
        assert_eq!(error.line, 2);
        assert!(!error.to_string().contains("Bobs"), "{error}");
        assert!(PasskeyList::parse("k".repeat(65).as_bytes()).is_err());
        assert!(PasskeyList::parse(b"").unwrap().is_empty());
    }

    #[test]
    fn latin1_comments_are_read_and_a_latin1_key_is_not_shown() {
        let list = PasskeyList::parse(b"\xEF\xBB\xBFalice-key # Ren\xe9e\r\nbob-key\r").unwrap();
        assert_eq!(list.len(), 2);
        assert!(list.contains(b"alice-key") && list.contains(b"bob-key"));
        let error = PasskeyList::parse(b"good\nRen\xe9eSecret\n").unwrap_err();
        assert_eq!(error.line, 2);
        assert!(!error.to_string().contains("Secret"), "{error}");
        assert!(error.to_string().contains("UTF-8"), "{error}");
    }
}
