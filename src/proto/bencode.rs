//! The bencoded bodies the tracker sends: announce, stopped, scrape and
//! failure replies, and the pieces of a full scrape. Compact form only
//! (BEP 23 `peers`, BEP 7 `peers6`), in upstream's key order.

use std::net::IpAddr;

use super::SwarmCounts;

/// Appends the decimal form of `value`.
pub fn push_decimal(out: &mut Vec<u8>, value: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = value;
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

fn push_int(out: &mut Vec<u8>, key: &[u8], value: u64) {
    out.extend_from_slice(key);
    out.push(b'i');
    push_decimal(out, value);
    out.push(b'e');
}

fn push_bytes(out: &mut Vec<u8>, key: &[u8], bytes: &[u8]) {
    out.extend_from_slice(key);
    push_decimal(out, bytes.len() as u64);
    out.push(b':');
    out.extend_from_slice(bytes);
}

/// A successful announce. `peers4`/`peers6` hold 6- and 18-byte compact
/// entries; each key is present only when it has peers, as upstream does.
/// `external_ip` is the requester's address as the tracker sees it (BEP 24).
pub fn announce(
    out: &mut Vec<u8>,
    counts: SwarmCounts,
    interval: u32,
    (peers4, peers6): (&[u8], &[u8]),
    external_ip: Option<IpAddr>,
) {
    out.push(b'd');
    push_int(out, b"8:complete", counts.seeders.into());
    push_int(out, b"10:downloaded", counts.completed.into());
    match external_ip {
        Some(IpAddr::V4(ip)) => push_bytes(out, b"11:external ip", &ip.octets()),
        Some(IpAddr::V6(ip)) => push_bytes(out, b"11:external ip", &ip.octets()),
        None => {}
    }
    push_int(out, b"10:incomplete", counts.leechers.into());
    push_int(out, b"8:interval", interval.into());
    push_int(out, b"12:min interval", (interval / 2).into());
    if !peers4.is_empty() {
        push_bytes(out, b"5:peers", peers4);
    }
    if !peers6.is_empty() {
        push_bytes(out, b"6:peers6", peers6);
    }
    out.push(b'e');
}

/// The reply to `event=stopped`: counts, interval and an empty peer list of
/// the requester's family, without `downloaded` (as upstream).
pub fn stopped(out: &mut Vec<u8>, counts: SwarmCounts, interval: u32, ipv6: bool) {
    out.push(b'd');
    push_int(out, b"8:complete", counts.seeders.into());
    push_int(out, b"10:incomplete", counts.leechers.into());
    push_int(out, b"8:interval", interval.into());
    push_int(out, b"12:min interval", (interval / 2).into());
    out.extend_from_slice(if ipv6 { b"6:peers60:" } else { b"5:peers0:" });
    out.push(b'e');
}

/// A bencoded failure, sent with HTTP status 200.
pub fn failure(out: &mut Vec<u8>, reason: &str) {
    out.push(b'd');
    push_bytes(out, b"14:failure reason", reason.as_bytes());
    out.push(b'e');
}

/// Opens the `files` dictionary of a scrape or full scrape.
pub const FILES_OPEN: &[u8] = b"d5:filesd";
/// Closes it again.
pub const FILES_CLOSE: &[u8] = b"ee";

/// One torrent's entry in a scrape's `files` dictionary.
pub fn scrape_entry(out: &mut Vec<u8>, hash: &[u8], counts: SwarmCounts) {
    // Whole v2 hashes (32 bytes) are rare; v1 ones fill full scrapes.
    if hash.len() == 20 {
        out.extend_from_slice(b"20:");
    } else {
        out.extend_from_slice(hash.len().to_string().as_bytes());
        out.push(b':');
    }
    out.extend_from_slice(hash);
    out.push(b'd');
    push_int(out, b"8:complete", counts.seeders.into());
    push_int(out, b"10:downloaded", counts.completed.into());
    push_int(out, b"10:incomplete", counts.leechers.into());
    out.push(b'e');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announce_layout() {
        let mut out = Vec::new();
        let counts = SwarmCounts {
            seeders: 1,
            leechers: 2,
            completed: 3,
        };
        announce(&mut out, counts, 1800, (&[1, 2, 3, 4, 0, 80], &[]), None);
        assert_eq!(
            out,
            b"d8:completei1e10:downloadedi3e10:incompletei2e8:intervali1800e12:min intervali900e5:peers6:\x01\x02\x03\x04\x00\x50e"
        );
        out.clear();
        announce(&mut out, counts, 1801, (&[], &[]), None);
        assert!(out.ends_with(b"12:min intervali900ee"));
        // BEP 24, between "downloaded" and "incomplete" in key order.
        out.clear();
        announce(
            &mut out,
            counts,
            1800,
            (&[], &[]),
            Some([192, 0, 2, 1].into()),
        );
        assert!(out.starts_with(
            b"d8:completei1e10:downloadedi3e11:external ip4:\xc0\x00\x02\x0110:incomplete"
        ));
        out.clear();
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        announce(&mut out, counts, 1800, (&[], &[]), Some(v6));
        let mut expected = b"11:external ip16:".to_vec();
        expected.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        assert!(out.windows(expected.len()).any(|w| w == expected));
    }

    #[test]
    fn stopped_and_failure() {
        let mut out = Vec::new();
        stopped(&mut out, SwarmCounts::default(), 1700, true);
        assert_eq!(
            out,
            b"d8:completei0e10:incompletei0e8:intervali1700e12:min intervali850e6:peers60:e"
        );
        out.clear();
        failure(&mut out, "nope");
        assert_eq!(out, b"d14:failure reason4:nopee");
    }

    #[test]
    fn decimals() {
        for value in [0u64, 7, 10, 65535, u64::MAX] {
            let mut out = Vec::new();
            push_decimal(&mut out, value);
            assert_eq!(out, value.to_string().as_bytes());
        }
    }
}
