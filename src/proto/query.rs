//! URL query strings with upstream opentracker's grammar.
//!
//! Parameters are `name=value` separated by `&`; `%xx` escapes are decoded in
//! either case and `+` stays a literal `+`. The bytes `" # $ [ \ ] ^ ` { | }`
//! make the whole query invalid (upstream answers 400). So do control bytes
//! and bytes >= 0x7f, unescaped, in a name or in a value the tracker reads;
//! in the value of a parameter it ignores they are let be (upstream's skip
//! steps over one of them). A query ends at a space, CR, LF or NUL.

use super::SentHash;

/// Why a query could not be used; the server answers 400 to either.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueryError {
    /// A forbidden byte or a broken `%xx` escape.
    Malformed,
    /// A parameter the handler needs was empty, too long or not a number.
    BadValue,
}

/// Returns the query part of `bytes`: everything up to the first space, CR,
/// LF or NUL.
pub fn query_end(bytes: &[u8]) -> &[u8] {
    let end = bytes
        .iter()
        .position(|&b| matches!(b, b' ' | b'\r' | b'\n' | 0))
        .unwrap_or(bytes.len());
    &bytes[..end]
}

/// What each byte means to the query scanner, as a table: this runs on every
/// byte of every request, so one lookup tells a plain byte from a separator,
/// an `=`, a byte that makes the query invalid, or one that only an ignored
/// value may hold.
const PLAIN: u8 = 0;
const SEPARATOR: u8 = 1;
const EQUALS: u8 = 2;
const FORBIDDEN: u8 = 3;
/// A control byte or a byte >= 0x7f: fine in a value the tracker ignores,
/// refused where a name is read or a value decoded.
const RAW: u8 = 4;
/// `@`: fine in any value, as upstream, but a name holding it is invalid.
const VALUE_ONLY: u8 = 5;
const CLASS: [u8; 256] = {
    let mut table = [PLAIN; 256];
    let mut byte = 0;
    while byte < 256 {
        if byte < 0x20 || byte >= 0x7f {
            table[byte] = RAW;
        }
        byte += 1;
    }
    let listed = b"\"#$[\\]^`{|}";
    let mut i = 0;
    while i < listed.len() {
        table[listed[i] as usize] = FORBIDDEN;
        i += 1;
    }
    table[b'&' as usize] = SEPARATOR;
    table[b'=' as usize] = EQUALS;
    table[b'@' as usize] = VALUE_ONLY;
    table
};

/// The raw `(name, value)` pairs of a query, found in one pass over it;
/// `value` is `None` for a parameter without `=`. Yields an error at the
/// first forbidden byte (or raw byte in a name) and nothing after it.
pub struct Pairs<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Pairs<'a> {
    type Item = Result<(&'a [u8], Option<&'a [u8]>), QueryError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.rest.is_empty() {
                return None;
            }
            let part = self.rest;
            let mut equals = None;
            let mut end = 0;
            while end < part.len() {
                match CLASS[usize::from(part[end])] {
                    PLAIN => {}
                    SEPARATOR => break,
                    EQUALS => {
                        equals.get_or_insert(end);
                    }
                    RAW | VALUE_ONLY if equals.is_some() => {}
                    _ => {
                        self.rest = &[];
                        return Some(Err(QueryError::Malformed));
                    }
                }
                end += 1;
            }
            self.rest = part.get(end + 1..).unwrap_or(&[]);
            let part = &part[..end];
            if part.is_empty() {
                continue;
            }
            return Some(Ok(match equals {
                Some(at) => (&part[..at], Some(&part[at + 1..])),
                None => (part, None),
            }));
        }
    }
}

/// Iterates over the raw `(name, value)` pairs of `query`.
pub fn pairs(query: &[u8]) -> Pairs<'_> {
    Pairs { rest: query }
}

/// The bytes a raw value stands for, its `%xx` escapes decoded; a broken
/// escape, or an unescaped byte that may not stand in a query, yields an
/// error.
struct Decoded<'a> {
    rest: &'a [u8],
}

impl Iterator for Decoded<'_> {
    type Item = Result<u8, QueryError>;

    fn next(&mut self) -> Option<Self::Item> {
        let (&first, tail) = self.rest.split_first()?;
        if matches!(CLASS[usize::from(first)], RAW | FORBIDDEN) {
            self.rest = &[];
            return Some(Err(QueryError::Malformed));
        }
        if first != b'%' {
            self.rest = tail;
            return Some(Ok(first));
        }
        let escaped = match tail {
            [hi, lo, after @ ..] => super::hex_value(*hi)
                .zip(super::hex_value(*lo))
                .map(|(hi, lo)| (hi << 4 | lo, after)),
            _ => None,
        };
        Some(match escaped {
            Some((byte, after)) => {
                self.rest = after;
                Ok(byte)
            }
            None => {
                self.rest = &[];
                Err(QueryError::Malformed)
            }
        })
    }
}

fn decoded(raw: &[u8]) -> Decoded<'_> {
    Decoded { rest: raw }
}

/// Percent-decodes `raw` into `out`, returning the decoded length. Fails on a
/// broken escape or when the result does not fit.
pub fn decode_into(raw: &[u8], out: &mut [u8]) -> Result<usize, QueryError> {
    match decode_prefix(raw, out)? {
        len if len <= out.len() => Ok(len),
        _ => Err(QueryError::BadValue),
    }
}

/// Percent-decodes as much of `raw` as fits into `out`, checking all of it,
/// and returns the whole decoded length, which may exceed `out`'s. Fails on
/// a broken escape.
pub fn decode_prefix(raw: &[u8], out: &mut [u8]) -> Result<usize, QueryError> {
    let mut len = 0;
    for byte in decoded(raw) {
        let byte = byte?;
        if let Some(slot) = out.get_mut(len) {
            *slot = byte;
        }
        len += 1;
    }
    Ok(len)
}

/// Decodes a value that must be exactly 20 bytes (info_hash, peer_id).
pub fn decode_20(raw: &[u8]) -> Result<[u8; 20], QueryError> {
    let mut out = [0u8; 20];
    match decode_into(raw, &mut out) {
        Ok(20) => Ok(out),
        Err(QueryError::Malformed) => Err(QueryError::Malformed),
        _ => Err(QueryError::BadValue),
    }
}

/// Decodes an `info_hash` value: 20 bytes, or a whole 32-byte v2 hash.
pub fn decode_info_hash(raw: &[u8]) -> Result<SentHash, QueryError> {
    let mut out = [0u8; 32];
    match decode_into(raw, &mut out) {
        Ok(len) => SentHash::new(&out[..len]).ok_or(QueryError::BadValue),
        Err(QueryError::Malformed) => Err(QueryError::Malformed),
        Err(_) => Err(QueryError::BadValue),
    }
}

/// A parameter name with its escapes decoded, kept on the stack. Names
/// longer than any keyword decode to nothing and match no keyword (such
/// parameters are skipped, as unknown ones are); a broken escape is a
/// malformed query, as upstream's scan finds it.
pub struct Name {
    bytes: [u8; 16],
    len: usize,
}

impl Name {
    pub fn decode(raw: &[u8]) -> Result<Name, QueryError> {
        let mut name = Name {
            bytes: [0; 16],
            len: 0,
        };
        if raw.len() <= name.bytes.len() && !raw.contains(&b'%') {
            name.bytes[..raw.len()].copy_from_slice(raw);
            name.len = raw.len();
        } else {
            let len = decode_prefix(raw, &mut name.bytes)?;
            name.len = if len <= name.bytes.len() { len } else { 0 };
        }
        Ok(name)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// A decimal integer the way upstream reads one (`scan_fixed_int` on the
/// decoded value): an optional `-`, then digits, and nothing after them.
/// `Ok(None)` when the value is anything else: no digits, a lone `-` (which
/// upstream reads as 0), or anything after the digits (`12a`, `1.5`, `12+`,
/// an escaped space), which each parameter treats as upstream does. Beyond
/// `i64` the value saturates (upstream wraps at 32 bits).
pub fn decode_integer(raw: &[u8]) -> Result<Option<i64>, QueryError> {
    let mut negative = false;
    let mut value = None;
    let mut junk = false;
    for (at, byte) in decoded(raw).enumerate() {
        match byte? {
            b'-' if at == 0 => negative = true,
            digit @ b'0'..=b'9' if !junk => {
                let digits: i64 = value.unwrap_or(0);
                value = Some(
                    digits
                        .saturating_mul(10)
                        .saturating_add(i64::from(digit - b'0')),
                );
            }
            _ => junk = true,
        }
    }
    Ok(value
        .filter(|_| !junk)
        .map(|value| if negative { -value } else { value }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_and_decodes() {
        let q = b"info_hash=%41%42c&flag&port=80";
        let got: Vec<_> = pairs(q).collect::<Result<_, _>>().unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(got[1], (&b"flag"[..], None));
        let mut out = [0u8; 8];
        let n = decode_into(got[0].1.unwrap(), &mut out).unwrap();
        assert_eq!(&out[..n], b"ABc");
    }

    #[test]
    fn plus_stays_literal_and_bad_escape_fails() {
        let mut out = [0u8; 8];
        assert_eq!(decode_into(b"a+b", &mut out), Ok(3));
        assert_eq!(&out[..3], b"a+b");
        assert_eq!(decode_into(b"%4", &mut out), Err(QueryError::Malformed));
        assert_eq!(decode_into(b"%zz", &mut out), Err(QueryError::Malformed));
    }

    #[test]
    fn forbidden_bytes_fail() {
        assert!(pairs(b"a=\"x").any(|p| p.is_err()));
        assert!(pairs(b"a={").any(|p| p.is_err()));
        assert!(pairs(b"a=b&c=@?").all(|p| p.is_ok()));
        for name_with_at in [&b"a=b&x@=1"[..], b"a=b&x@", b"@=1"] {
            assert!(pairs(name_with_at).any(|p| p.is_err()));
        }
    }

    #[test]
    fn raw_bytes_only_in_values_that_are_not_decoded() {
        for raw in [b'\x01', b'\t', b'\x7f', b'\xff'] {
            let value = [b'a', raw, b'b'];
            let query = [&b"x="[..], &value, b"&y=1"].concat();
            let got: Vec<_> = pairs(&query).collect::<Result<_, _>>().unwrap();
            assert_eq!(got, [(&b"x"[..], Some(&value[..])), (b"y", Some(b"1"))]);
            let mut out = [0u8; 8];
            assert_eq!(decode_into(&value, &mut out), Err(QueryError::Malformed));
            assert_eq!(decode_integer(&[b'1', raw]), Err(QueryError::Malformed));
            let name = [&[b'a', raw][..], b"=1"].concat();
            assert!(pairs(&name).any(|p| p.is_err()), "{raw} in a name");
            assert!(pairs(&[b'a', raw]).any(|p| p.is_err()), "{raw} without =");
        }
        // Escaped, they are plain bytes.
        let mut out = [0u8; 8];
        assert_eq!(decode_into(b"%01%ff", &mut out), Ok(2));
    }

    #[test]
    fn info_hashes_of_twenty_or_thirty_two_bytes() {
        let v1 = decode_info_hash(b"aaaaaaaaaaaaaaaaaaaa").unwrap();
        assert_eq!(v1.as_sent(), b"aaaaaaaaaaaaaaaaaaaa");
        let whole = "%AB".repeat(32);
        let v2 = decode_info_hash(whole.as_bytes()).unwrap();
        assert_eq!(v2.as_sent(), [0xab; 32]);
        assert_eq!(v2.info_hash().0, [0xab; 20]);
        for bad in [&b"short"[..], &[b'a'; 21], &[b'a'; 31], &[b'a'; 33], b""] {
            assert_eq!(decode_info_hash(bad), Err(QueryError::BadValue), "{bad:?}");
        }
        assert_eq!(decode_info_hash(b"%zz"), Err(QueryError::Malformed));
    }

    #[test]
    fn twenty_byte_values() {
        assert!(decode_20(b"aaaaaaaaaaaaaaaaaaaa").is_ok());
        assert_eq!(decode_20(b"short"), Err(QueryError::BadValue));
        assert_eq!(
            decode_20(b"aaaaaaaaaaaaaaaaaaaaa"),
            Err(QueryError::BadValue)
        );
    }

    #[test]
    fn integers() {
        assert_eq!(decode_integer(b"50"), Ok(Some(50)));
        assert_eq!(decode_integer(b"-1"), Ok(Some(-1)));
        assert_eq!(decode_integer(b"%31%32"), Ok(Some(12)));
        assert_eq!(decode_integer(b"%2d7"), Ok(Some(-7)));
        assert_eq!(
            decode_integer(b"00000000000000000000000000080"),
            Ok(Some(80))
        );
        assert_eq!(
            decode_integer(b"99999999999999999999999"),
            Ok(Some(i64::MAX))
        );
        for junk in [
            &b"12abc"[..],
            b"1.5",
            b"12+",
            b"+12",
            b"12%20",
            b"1-2",
            b"--1",
            b"-",
            b"abc",
            b"",
        ] {
            assert_eq!(decode_integer(junk), Ok(None), "{junk:?}");
        }
        assert_eq!(decode_integer(b"1x%zz"), Err(QueryError::Malformed));
        let name = |raw: &[u8]| Name::decode(raw).map(|n| n.as_bytes().to_vec());
        assert_eq!(name(b"info%5fhash"), Ok(b"info_hash".to_vec()));
        assert_eq!(name(b"port"), Ok(b"port".to_vec()));
        assert_eq!(name(b"a_name_longer_than_any_keyword"), Ok(Vec::new()));
        assert_eq!(name(b"a_name_longer%41than_any_keyword"), Ok(Vec::new()));
        for broken in [
            &b"x%zz"[..],
            b"x%4",
            b"%",
            b"a_name_longer_than_any_keyword%z",
        ] {
            assert_eq!(name(broken), Err(QueryError::Malformed), "{broken:?}");
        }
    }
}
