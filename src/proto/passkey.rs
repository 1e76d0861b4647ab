//! Passkeys in announce URLs, as private trackers put them: in the path,
//! before the announce or scrape word (`/KEY/announce`, as Gazelle, Ocelot
//! and XBT Tracker do) or after it (`/announce/KEY`, as UNIT3D and Torrust
//! do). Over HTTP the path is the request's; over UDP it is the URL data of
//! BEP 41, which clients append to an announce.

/// The longest passkey accepted.
pub const MAX_LEN: usize = 64;

/// BEP 41 option types; 0 ends the options.
const NOP: u8 = 1;
const URL_DATA: u8 = 2;

/// Whether `key` can be a passkey: 1 to [`MAX_LEN`] characters that stand
/// in a URL path as they are (letters, digits, `-`, `.`, `_`, `~`), so the
/// key a client sends is the key the file holds, never percent-encoded.
pub fn is_valid(key: &[u8]) -> bool {
    (1..=MAX_LEN).contains(&key.len())
        && key
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// Whether a path segment names the announce or the scrape (`announce`,
/// `announce.php`, `scrape`…). Stricter than upstream's routing, which
/// takes any word starting with `a`: beside a key, that would make a key
/// starting with `a` look like the word.
fn is_tracker_word(segment: &[u8]) -> bool {
    segment.starts_with(b"announce") || segment.starts_with(b"scrape")
}

/// Splits a path (without its leading slashes and its query) into the
/// passkey and the word that routes it: `KEY/announce` and `announce/KEY`
/// give `(Some(KEY), announce)`, as does either with a trailing slash;
/// anything else is `(None, path)`. Should both segments look like words (a
/// key `announce1`), the one that is exactly a word is the word. The key is
/// given as sent, even when it cannot be one ([`is_valid`]): such a client
/// is told its passkey is not valid, not that it sent none.
pub fn split_path(path: &[u8]) -> (Option<&[u8]>, &[u8]) {
    let trimmed = path.strip_suffix(b"/").unwrap_or(path);
    let Some(slash) = trimmed.iter().position(|&b| b == b'/') else {
        return (None, path);
    };
    let (first, second) = (&trimmed[..slash], &trimmed[slash + 1..]);
    if second.contains(&b'/') {
        return (None, path);
    }
    let key_first = match (is_tracker_word(first), is_tracker_word(second)) {
        (false, true) => true,
        (true, false) => false,
        (true, true) => matches!(second, b"announce" | b"scrape"),
        (false, false) => return (None, path),
    };
    let (key, word) = if key_first {
        (first, second)
    } else {
        (second, first)
    };
    match key.is_empty() {
        true => (None, path),
        false => (Some(key), word),
    }
}

/// The passkey in a BEP 41 URL (path and query, as a client appends it to a
/// UDP announce), if its path has one.
pub fn in_url(url: &[u8]) -> Option<&[u8]> {
    let path = url.split(|&b| b == b'?').next().unwrap_or(url);
    let slashes = path.iter().take_while(|&&b| b == b'/').count();
    split_path(&path[slashes..]).0
}

/// Joins the URL data options (BEP 41) after a UDP announce's fixed part
/// into `out`, up to its size, and returns what was written. Options end at
/// an end-of-options byte, at an option that does not fit the datagram, or
/// at an unknown type (whose length cannot be known).
pub fn url_data<'a>(options: &[u8], out: &'a mut [u8]) -> &'a [u8] {
    let (mut at, mut written) = (0, 0);
    while let Some(&kind) = options.get(at) {
        match kind {
            NOP => at += 1,
            URL_DATA => {
                let Some(&len) = options.get(at + 1) else {
                    break;
                };
                let Some(data) = options.get(at + 2..at + 2 + usize::from(len)) else {
                    break;
                };
                let room = (out.len() - written).min(data.len());
                out[written..written + room].copy_from_slice(&data[..room]);
                written += room;
                at += 2 + usize::from(len);
            }
            // END_OF_OPTIONS, or a type whose length is unknown.
            _ => break,
        }
    }
    &out[..written]
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// What a key found in a path always is: a whole, non-empty segment.
    pub(crate) fn is_key_shaped(key: &[u8]) -> bool {
        !key.is_empty() && !key.contains(&b'/')
    }

    #[test]
    fn keys_are_url_safe_and_bounded() {
        assert!(is_valid(b"0123456789abcdef0123456789ABCDEF"));
        assert!(is_valid(b"a-b.c_d~e"));
        assert!(!is_valid(b""));
        assert!(!is_valid(&[b'k'; MAX_LEN + 1]));
        assert!(is_valid(&[b'k'; MAX_LEN]));
        for bad in [&b"a%20b"[..], b"a b", b"a/b", b"a?b", b"\xc3\xa9"] {
            assert!(!is_valid(bad), "{bad:?}");
        }
    }

    #[test]
    fn both_places_in_the_path() {
        assert_eq!(
            split_path(b"s3cret/announce"),
            (Some(&b"s3cret"[..]), &b"announce"[..])
        );
        assert_eq!(
            split_path(b"announce/s3cret"),
            (Some(&b"s3cret"[..]), &b"announce"[..])
        );
        assert_eq!(
            split_path(b"s3cret/scrape"),
            (Some(&b"s3cret"[..]), &b"scrape"[..])
        );
        assert_eq!(
            split_path(b"scrape/s3cret"),
            (Some(&b"s3cret"[..]), &b"scrape"[..])
        );
        // Keys that start like words are still keys.
        for (path, key, word) in [
            (&b"abc/announce"[..], &b"abc"[..], &b"announce"[..]),
            (b"announce/abc", b"abc", b"announce"),
            (b"announce/sc0ff", b"sc0ff", b"announce"),
            (b"announce.php/a1", b"a1", b"announce.php"),
            (b"announce1/announce", b"announce1", b"announce"),
            (b"announce/announce1", b"announce1", b"announce"),
            (b"scrape/scrape2", b"scrape2", b"scrape"),
        ] {
            assert_eq!(split_path(path), (Some(key), word), "{path:?}");
        }
        for plain in [
            &b"announce"[..],
            b"announce/",
            b"announce//",
            b"/announce",
            b"a/b/announce",
            b"stats",
            b"k3y/a",
            b"k3y/metrics",
        ] {
            assert_eq!(split_path(plain), (None, plain), "{plain:?}");
        }
        // A trailing slash, as some announce URLs have.
        for path in [&b"s3cret/announce/"[..], b"announce/s3cret/"] {
            assert_eq!(split_path(path), (Some(&b"s3cret"[..]), &b"announce"[..]));
        }
        // Keys that cannot be are still keys, to be refused as not valid.
        let long = [b'k'; MAX_LEN + 1];
        for key in [&long[..], b"%7Ek3y", b"x y"] {
            let path = [key, b"/announce"].concat();
            assert_eq!(split_path(&path), (Some(key), &b"announce"[..]));
        }
    }

    #[test]
    fn keys_in_bep41_urls() {
        assert_eq!(in_url(b"/k3y/announce"), Some(&b"k3y"[..]));
        assert_eq!(in_url(b"/announce/k3y?x=1"), Some(&b"k3y"[..]));
        assert_eq!(in_url(b"//k3y/announce?passkey=other"), Some(&b"k3y"[..]));
        assert_eq!(in_url(b"/announce"), None);
        assert_eq!(in_url(b""), None);
    }

    #[test]
    fn random_bytes_never_panic_and_stay_in_bounds() {
        let mut rng = fastrand::Rng::with_seed(41);
        let alphabet = b"\x00\x01\x02\x03/announce?k3y-_.~%a";
        for _ in 0..100_000 {
            let len = rng.usize(..64);
            let options: Vec<u8> = (0..len)
                .map(|_| match rng.u8(..4) {
                    0 => rng.u8(..),
                    _ => alphabet[rng.usize(..alphabet.len())],
                })
                .collect();
            let mut out = vec![0u8; rng.usize(..300)];
            let room = out.len();
            let url = url_data(&options, &mut out);
            assert!(url.len() <= room.min(options.len()));
            if let Some(key) = in_url(url) {
                assert!(is_key_shaped(key));
            }
            let (key, word) = split_path(&options);
            assert!(key.map_or(true, is_key_shaped));
            assert!(word.len() <= options.len());
        }
    }

    #[test]
    fn url_data_options_are_joined() {
        let mut out = [0u8; 64];
        // NOP, two URL data pieces, end of options, then junk.
        let options = b"\x01\x02\x05/k3y/\x02\x08announce\x00\x02\x03xyz";
        assert_eq!(url_data(options, &mut out), b"/k3y/announce");
        // Cut short: what fits is kept.
        assert_eq!(url_data(b"\x02\x05/k3y/\x02\x20announ", &mut out), b"/k3y/");
        assert_eq!(url_data(b"\x02", &mut out), b"");
        assert_eq!(url_data(b"\x07\x02\x01x", &mut out), b"", "unknown type");
        let mut small = [0u8; 4];
        assert_eq!(url_data(b"\x02\x05/k3y/", &mut small), b"/k3y");
        assert_eq!(url_data(b"", &mut out), b"");
    }
}
