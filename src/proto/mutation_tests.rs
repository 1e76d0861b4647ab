//! Every codec fed damaged versions of valid input: a byte flipped, cut,
//! dropped or inserted, or a troublesome fragment spliced in. A parser that
//! panics would take the tracker down (release builds abort), so each must
//! answer with an error or a value that stays inside its input.

use super::*;

/// Fragments that sit on parsers' edges: escapes cut short, separators,
/// numbers past every width, header names the server looks for.
const FRAGMENTS: &[&[u8]] = &[
    b"%",
    b"%2",
    b"%zz",
    b"%41",
    b"%00",
    b"&",
    b"=",
    b"?",
    b"/",
    b"//",
    b" ",
    b"-",
    b"\r\n",
    b"\r\n\r\n",
    b"\xff\xff",
    b"\x00\x00\x00\x01",
    b"\x00\x00\x00\x02",
    b"99999999999999999999",
    b"65536",
    b"info_hash=",
    b"port=",
    b"numwant=",
    b"left=",
    b"event=",
    b"peer_id=",
    b"mode=",
    b"announce",
    b"scrape",
    b"stats",
    b"PROXY ",
    b"TCP4 ",
    b"TCP6 ",
    b"::1 ",
    b"1.2.3.4 ",
    b"X-Forwarded-For: ",
    b"Accept-Encoding: gzip",
    b"Connection: keep-alive\r\n",
];

fn damaged(rng: &mut fastrand::Rng, valid: &[u8]) -> Vec<u8> {
    let mut bytes = valid.to_vec();
    for _ in 0..rng.usize(..8) {
        let at = rng.usize(..=bytes.len());
        match rng.u8(..5) {
            0 if at < bytes.len() => bytes[at] = rng.u8(..),
            1 => bytes.truncate(at),
            2 if at < bytes.len() => drop(bytes.remove(at)),
            3 => bytes.insert(at, rng.u8(..)),
            _ => {
                let fragment = FRAGMENTS[rng.usize(..FRAGMENTS.len())];
                bytes.splice(at..at, fragment.iter().copied());
            }
        }
    }
    bytes
}

fn escaped_hash() -> String {
    "%AB".repeat(20)
}

#[test]
fn damaged_http_requests_are_refused_or_read_within_bounds() {
    let mut rng = fastrand::Rng::with_seed(3);
    let query = format!(
        "info_hash={}&peer_id=-TR2940-abcdefghijkl&port=6881&left=0&event=started&numwant=30&compact=1",
        escaped_hash()
    );
    let head = format!(
        "GET /announce?{query} HTTP/1.1\r\nHost: t\r\nX-Forwarded-For: 1.2.3.4, ::1\r\n\
         Accept-Encoding: gzip\r\n\r\n"
    );
    let mut hashes = Vec::new();
    for _ in 0..20_000 {
        let query = damaged(&mut rng, query.as_bytes());
        let _ = params::announce(&query);
        let _ = params::stats(&query);
        if params::scrape(&query, &mut hashes).is_ok() {
            assert!(hashes.iter().all(|h| matches!(h.as_sent().len(), 20 | 32)));
        }
        assert!(query::query_end(&query).len() <= query.len());

        let head = damaged(&mut rng, head.as_bytes());
        if let Some(len) = http::head_len(&head) {
            assert!(len <= head.len());
        }
        for keyed in [false, true] {
            if let Ok(request) = http::parse(&head, b"stats", keyed) {
                let _ = http::wants_keep_alive(&request);
                assert!(request.passkey.map_or(true, passkey::tests::is_key_shaped));
                let _ = http::accepts_gzip(&head, request.after_query);
            }
        }
        let _ = http::forwarded_for(&head);
        let _ = http::accepts_gzip(&head, &head);
    }
}

#[test]
fn damaged_udp_packets_are_dropped_or_read_within_bounds() {
    let mut rng = fastrand::Rng::with_seed(5);
    let mut announce = vec![0u8; udp::ANNOUNCE_LEN + 12];
    announce[11] = 1;
    // BEP 41 URL data after the announce: one option of 10 bytes.
    announce[udp::ANNOUNCE_LEN..].copy_from_slice(b"\x02\x0a/k3y/annou");
    let mut scrape = vec![0u8; 16 + 3 * 20];
    scrape[11] = 2;
    let mut url = [0u8; 256];
    for _ in 0..20_000 {
        for valid in [&announce, &scrape] {
            let packet = damaged(&mut rng, valid);
            match udp::parse(&packet) {
                Some(udp::Request::Scrape { hashes, .. }) => {
                    assert_eq!(hashes.len() % 20, 0);
                    assert!(hashes.len() <= udp::MAX_SCRAPE_HASHES * 20);
                }
                Some(udp::Request::Announce(_)) => {
                    assert!(packet.len() >= udp::ANNOUNCE_LEN);
                    let options = &packet[udp::ANNOUNCE_LEN..];
                    assert!(passkey::url_data(options, &mut url).len() <= options.len());
                }
                _ => {}
            }
        }
    }
}

#[test]
fn damaged_proxy_headers_are_refused_or_read_within_bounds() {
    let mut rng = fastrand::Rng::with_seed(9);
    let mut cluster_opener = cluster::Opener::new(b"key".to_vec(), 1);
    let v1 = b"PROXY TCP4 1.2.3.4 5.6.7.8 1000 2000\r\nGET /".to_vec();
    let mut v2 = proxy_protocol::SIGNATURE_V2.to_vec();
    v2.extend_from_slice(b"\x21\x11\x00\x0c\x01\x02\x03\x04\x05\x06\x07\x08\x00\x10\x00\x20body");
    for _ in 0..20_000 {
        for valid in [&v1, &v2] {
            let bytes = damaged(&mut rng, valid);
            if let Ok(header) = proxy_protocol::parse(&bytes) {
                assert!(header.len <= bytes.len());
            }
            if let Ok(header) = proxy_protocol::parse_datagram(&bytes) {
                assert!(header.len <= bytes.len());
            }
            let _ = InfoHash::from_hex(&bytes);
            assert!(cluster_opener.open(&bytes, 100).is_err());
        }
    }
}
