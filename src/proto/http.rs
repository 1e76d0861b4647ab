//! HTTP/1.x request heads, the way upstream opentracker reads them.
//!
//! Only the request line is really parsed; headers are consulted for
//! `Connection`, `X-Forwarded-For`, `Accept-Encoding`, a WebSocket
//! handshake's `Upgrade`, `Sec-WebSocket-Key` and `-Version`, and the
//! framing of a body to skip (`Content-Length`, `Transfer-Encoding`). The grammar is kept
//! apart from buffering: [`head_len`] says whether a whole head is there
//! (`None` means "read more", which is no failure), [`parse`] routes it.

use std::net::IpAddr;

use super::passkey;

/// Upstream's request buffer: a head that grows past it gets a 500.
pub const MAX_HEAD: usize = 8192;
/// The longest path routed by its whole name (`access.stats_path`,
/// `metrics`); longer ones route by their first bytes as upstream's do.
pub const MAX_NAMED_PATH: usize = 64;

/// The length of the request head including its blank line, once complete.
/// Like upstream, `\n\n`, `\r\n\r\n` and `\r\n\n` all end a head, and
/// only within [`MAX_HEAD`] bytes: a longer head is never complete (the
/// server answers it 500 as upstream, also when its blank line has come).
pub fn head_len(buf: &[u8]) -> Option<usize> {
    let buf = &buf[..buf.len().min(MAX_HEAD)];
    let mut i = 0;
    while let Some(offset) = buf[i..].iter().position(|&b| b == b'\n') {
        let nl = i + offset;
        match buf.get(nl + 1) {
            Some(b'\n') => return Some(nl + 2),
            Some(b'\r') if buf.get(nl + 2) == Some(&b'\n') => return Some(nl + 3),
            _ => i = nl + 1,
        }
    }
    None
}

/// What the request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route<'a> {
    /// `GET /` (any number of slashes): redirect or 404.
    Root,
    /// Any path starting with `a`; the query still undecoded.
    Announce(&'a [u8]),
    /// Any path starting with `sc`, with a query.
    Scrape(&'a [u8]),
    /// Exactly `/scrape` with no query.
    FullScrape,
    /// The stats path; an empty query means the default mode.
    Stats(&'a [u8]),
    /// `/metrics`: the counters for Prometheus.
    Metrics,
    /// An announce path asked to become a WebSocket (WebTorrent): the
    /// handshake, and the query, if any, for a tracker that serves no
    /// WebSockets and so announces as upstream does, which never reads
    /// `Upgrade`.
    WebSocket {
        handshake: Handshake<'a>,
        query: Option<&'a [u8]>,
    },
    NotFound,
}

/// What a WebSocket upgrade request offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handshake<'a> {
    /// RFC 6455's version 13, as browsers speak it, with a usable key.
    Key(&'a [u8]),
    /// Another protocol version, or none: RFC 6455 answers 426 with the
    /// version it speaks.
    OtherVersion,
    /// Version 13 without the 16 bytes in base64 it needs as its key.
    BadKey,
}

/// Why a head could not be routed; either is answered 400.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestError {
    /// Not `GET /…`.
    Parse,
    /// An announce or scrape path without a query, which upstream counts
    /// as an invalid parameter.
    NoQuery,
}

/// A routed request head.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    pub route: Route<'a>,
    /// The request line says HTTP/1.1 (else 1.0 semantics).
    pub http11: bool,
    /// The whole head, for header look-ups.
    pub head: &'a [u8],
    /// The head after the query that follows the path's `?` (after the
    /// path when there is none): where upstream's stats handler looks for
    /// `gzip`.
    pub after_query: &'a [u8],
    /// The passkey in the path, when routing looked for one.
    pub passkey: Option<&'a [u8]>,
}

/// Routes a complete head. `stats_path` is written without a leading slash.
/// With `keyed`, an announce or scrape path may carry a passkey
/// ([`passkey::split_path`]), which the request then names.
pub fn parse<'a>(
    head: &'a [u8],
    stats_path: &[u8],
    keyed: bool,
) -> Result<Request<'a>, RequestError> {
    let rest = head.strip_prefix(b"GET /").ok_or(RequestError::Parse)?;
    let slashes = rest.iter().take_while(|&&b| b == b'/').count();
    let rest = &rest[slashes..];
    let path_len = rest
        .iter()
        .position(|&b| matches!(b, b'?' | b' ' | b'\r' | b'\n' | 0))
        .unwrap_or(rest.len());
    let raw_path = &rest[..path_len];
    let line_end = head.iter().position(|&b| b == b'\n').unwrap_or(head.len());
    // The version is the request line's last word.
    let http11 = head[..line_end].trim_ascii_end().ends_with(b"HTTP/1.1");
    let after_path = &rest[path_len..];
    let (direct_query, after_query) = match after_path.first() {
        Some(b'?') => {
            let query = super::query::query_end(&after_path[1..]);
            (Some(query), &after_path[1 + query.len()..])
        }
        _ => (None, after_path),
    };
    let request = |route| {
        Ok(Request {
            route,
            http11,
            head,
            after_query,
            passkey: None,
        })
    };
    // Upstream tolerates `GET /announce ?info_hash=…` from broken clients by
    // looking for a `?` further along the request line (for announces and
    // scrapes only).
    let query = direct_query.or_else(|| {
        let line = &after_path[..after_path
            .iter()
            .position(|&b| b == b'\n')
            .unwrap_or(after_path.len())];
        line.iter()
            .position(|&b| b == b'?')
            .map(|q| super::query::query_end(&line[q + 1..]))
    });
    if keyed {
        // A key is never percent-encoded, so the raw path shows it.
        if let (Some(key), word) = passkey::split_path(raw_path) {
            let route = match query {
                _ if word.starts_with(b"a") && asks_websocket(head) => Route::WebSocket {
                    handshake: websocket_handshake(head),
                    query,
                },
                _ if word.starts_with(b"a") => Route::Announce(query.ok_or(RequestError::NoQuery)?),
                None if word == b"scrape" => Route::FullScrape,
                _ => Route::Scrape(query.ok_or(RequestError::NoQuery)?),
            };
            return Ok(Request {
                route,
                http11,
                head,
                after_query,
                passkey: Some(key),
            });
        }
    }

    // Upstream's path scan stops with an error (404) at a byte a query may
    // not hold (the decoder refuses those) and at `&`, `=` and `@`, which
    // only a query may.
    // Routes look at a path's first bytes, or at the whole of a short one
    // (the stats path, `metrics`); a longer path is still checked in full.
    let mut path_buf = [0u8; MAX_NAMED_PATH];
    let (path, whole) = match super::query::decode_prefix(raw_path, &mut path_buf) {
        Ok(len) if !raw_path.iter().any(|b| matches!(b, b'&' | b'=' | b'@')) => {
            (&path_buf[..len.min(MAX_NAMED_PATH)], len <= MAX_NAMED_PATH)
        }
        _ => return request(Route::NotFound),
    };
    if path.is_empty() {
        return request(Route::Root);
    }
    if path[0] == b'a' && asks_websocket(head) {
        return request(Route::WebSocket {
            handshake: websocket_handshake(head),
            query,
        });
    }
    if path[0] == b'a' {
        return request(Route::Announce(query.ok_or(RequestError::NoQuery)?));
    }
    if rest.starts_with(b"scrape HTTP/") {
        return request(Route::FullScrape);
    }
    if path.starts_with(b"sc") {
        return request(Route::Scrape(query.ok_or(RequestError::NoQuery)?));
    }
    if whole && path == stats_path {
        return request(Route::Stats(direct_query.unwrap_or(b"")));
    }
    if whole && path == b"metrics" {
        return request(Route::Metrics);
    }
    request(Route::NotFound)
}

/// The header fields of a head as `(name, trimmed value)`, in order.
fn fields(head: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    head.split(|&b| b == b'\n').skip(1).filter_map(|line| {
        let colon = line.iter().position(|&b| b == b':')?;
        Some((&line[..colon], line[colon + 1..].trim_ascii()))
    })
}

/// The trimmed values of every header called `name` (case-insensitive), in
/// order: a list header sent twice is one comma list (RFC 9110 section 5.3).
fn headers<'a, 'n>(head: &'a [u8], name: &'n str) -> impl Iterator<Item = &'a [u8]> + use<'a, 'n> {
    fields(head)
        .filter_map(|(field, value)| field.eq_ignore_ascii_case(name.as_bytes()).then_some(value))
}

/// The trimmed value of the first header called `name` (case-insensitive).
pub fn header<'a>(head: &'a [u8], name: &str) -> Option<&'a [u8]> {
    headers(head, name).next()
}

/// The items of every header called `name`, a comma list, trimmed.
fn list_items<'a, 'n>(
    head: &'a [u8],
    name: &'n str,
) -> impl Iterator<Item = &'a [u8]> + use<'a, 'n> {
    headers(head, name).flat_map(|value| value.split(|&b| b == b',').map(<[u8]>::trim_ascii))
}

/// What follows a request head before the next request can start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestBody {
    None,
    /// `Content-Length` bytes, which the tracker has no use for.
    Length(u64),
    /// A `Transfer-Encoding`, or a `Content-Length` that is no number (or
    /// several that disagree): where the next request would start is not
    /// worth finding out, so the connection ends after the answer.
    Unframed,
}

/// How the request in `head` frames its body (RFC 9112 section 6.3).
pub fn request_body(head: &[u8]) -> RequestBody {
    if header(head, "transfer-encoding").is_some() {
        return RequestBody::Unframed;
    }
    let mut length = None;
    let lengths = fields(head).filter(|(field, _)| field.eq_ignore_ascii_case(b"content-length"));
    for (_, value) in lengths {
        let parsed = std::str::from_utf8(value)
            .ok()
            .filter(|text| text.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|text| text.parse::<u64>().ok());
        match (parsed, length) {
            (None, _) => return RequestBody::Unframed,
            (Some(new), Some(old)) if new != old => return RequestBody::Unframed,
            (Some(new), _) => length = Some(new),
        }
    }
    match length {
        None | Some(0) => RequestBody::None,
        Some(bytes) => RequestBody::Length(bytes),
    }
}

/// Whether a header's comma-separated value list holds `token`
/// (case-insensitive).
fn has_token(head: &[u8], name: &str, token: &[u8]) -> bool {
    list_items(head, name).any(|t| t.eq_ignore_ascii_case(token))
}

/// Whether the head asks to switch to the WebSocket protocol.
fn asks_websocket(head: &[u8]) -> bool {
    has_token(head, "upgrade", b"websocket")
}

/// The handshake of an upgrade request: the `Sec-WebSocket-Key`, when it
/// is the protocol version browsers speak (13) and the key is the 16 bytes
/// in base64 that RFC 6455 asks for.
fn websocket_handshake(head: &[u8]) -> Handshake<'_> {
    if header(head, "sec-websocket-version") != Some(b"13") {
        return Handshake::OtherVersion;
    }
    let base64 = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=');
    match header(head, "sec-websocket-key") {
        Some(key) if key.len() == 24 && key.iter().all(base64) => Handshake::Key(key),
        _ => Handshake::BadKey,
    }
}

/// Whether the client wants the connection kept open after the response.
pub fn wants_keep_alive(request: &Request<'_>) -> bool {
    // `close` ends the connection whatever else the header says.
    !has_token(request.head, "connection", b"close")
        && (request.http11 || has_token(request.head, "connection", b"keep-alive"))
}

/// The leftmost address of `X-Forwarded-For`, as upstream reads it, if it
/// is an IP literal: `a.b.c.d`, an IPv6 address bare or in brackets, or
/// either with the port some proxies add (`a.b.c.d:port`, `[v6]:port`).
/// One no peer could be reached at (`::`, `ff02::1`, `255.255.255.255`)
/// counts as none, as an unreadable one does.
pub fn forwarded_for(head: &[u8]) -> Option<IpAddr> {
    let value = header(head, "x-forwarded-for")?;
    let first = value.split(|&b| b == b',').next()?.trim_ascii();
    let text = std::str::from_utf8(first).ok()?;
    let bracketed = text.strip_prefix('[').and_then(|t| t.strip_suffix(']'));
    (bracketed.unwrap_or(text).parse().ok())
        .or_else(|| text.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()))
        .filter(|&ip| super::is_peer_address(ip))
}

/// Whether a gzip body is acceptable. `Accept-Encoding` headers, if any,
/// are honoured exactly (`gzip;q=0` refuses, a second header counts as
/// much as the first); without one, upstream's loose rule
/// applies: `gzip` anywhere in `loose_scope`, the part of the head where
/// upstream looks (all of it for a full scrape, [`Request::after_query`]
/// for `/stats`).
pub fn accepts_gzip(head: &[u8], loose_scope: &[u8]) -> bool {
    if header(head, "accept-encoding").is_none() {
        return loose_scope.windows(4).any(|w| w == b"gzip");
    }
    let mut gzip = None;
    let mut wildcard = None;
    for item in list_items(head, "accept-encoding") {
        let mut parts = item.split(|&b| b == b';');
        let coding = parts.next().unwrap_or(b"").trim_ascii();
        let allowed = parts.filter_map(|p| quality(p.trim_ascii())).all(|q| {
            std::str::from_utf8(q)
                .ok()
                .and_then(|q| q.parse::<f32>().ok())
                != Some(0.0)
        });
        if coding.eq_ignore_ascii_case(b"gzip") || coding.eq_ignore_ascii_case(b"x-gzip") {
            gzip = Some(allowed);
        } else if coding == b"*" {
            wildcard = Some(allowed);
        }
    }
    gzip.or(wildcard).unwrap_or(false)
}

/// The value of a `q=` parameter; parameter names are case-insensitive
/// (RFC 9110 section 5.6.6), so `Q=0` refuses too.
fn quality(parameter: &[u8]) -> Option<&[u8]> {
    let (name, value) = parameter.split_at_checked(2)?;
    name.eq_ignore_ascii_case(b"q=").then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(head: &str) -> Result<Route<'_>, RequestError> {
        parse(head.as_bytes(), b"stats", false).map(|r| r.route)
    }

    fn keyed(head: &str) -> Result<(Route<'_>, Option<&[u8]>), RequestError> {
        parse(head.as_bytes(), b"stats", true).map(|r| (r.route, r.passkey))
    }

    #[test]
    fn random_request_lines_never_panic() {
        let mut rng = fastrand::Rng::with_seed(7);
        let pieces: [&[u8]; 12] = [
            b"/",
            b"announce",
            b"scrape",
            b"k3y",
            b"?",
            b"&",
            b"=",
            b"%",
            b"%4",
            b" ",
            b"\r\n",
            b"stats",
        ];
        for _ in 0..50_000 {
            let mut head = b"GET /".to_vec();
            for _ in 0..rng.usize(..12) {
                match rng.u8(..5) {
                    0 => head.push(rng.u8(..)),
                    _ => head.extend_from_slice(pieces[rng.usize(..pieces.len())]),
                }
            }
            head.extend_from_slice(b" HTTP/1.1\r\n\r\n");
            for keyed in [false, true] {
                if let Ok(request) = parse(&head, b"stats", keyed) {
                    assert!(keyed || request.passkey.is_none());
                    assert!(request.passkey.map_or(true, passkey::tests::is_key_shaped));
                }
            }
        }
    }

    #[test]
    fn passkeys_in_the_path_when_keyed() {
        let key = Some(&b"k3y"[..]);
        assert_eq!(
            keyed("GET /k3y/announce?x=1 HTTP/1.0\r\n\r\n"),
            Ok((Route::Announce(b"x=1"), key))
        );
        assert_eq!(
            keyed("GET /announce/k3y?x=1 HTTP/1.0\r\n\r\n"),
            Ok((Route::Announce(b"x=1"), key))
        );
        assert_eq!(
            keyed("GET /k3y/scrape?info_hash=a HTTP/1.1\r\n\r\n"),
            Ok((Route::Scrape(b"info_hash=a"), key))
        );
        assert_eq!(
            keyed("GET /scrape/k3y HTTP/1.1\r\n\r\n"),
            Ok((Route::FullScrape, key))
        );
        let long = "k".repeat(64);
        let head = format!("GET /{long}/announce?x HTTP/1.0\r\n\r\n");
        assert_eq!(
            parse(head.as_bytes(), b"stats", true).map(|r| r.passkey),
            Ok(Some(long.as_bytes()))
        );
        assert_eq!(
            keyed("GET /k3y/announce HTTP/1.0\r\n\r\n"),
            Err(RequestError::NoQuery),
            "no query"
        );
        // Without a key, routing is upstream's.
        assert_eq!(
            keyed("GET /announce?x=1 HTTP/1.0\r\n\r\n"),
            Ok((Route::Announce(b"x=1"), None))
        );
        assert_eq!(
            keyed("GET /metrics HTTP/1.1\r\n\r\n"),
            Ok((Route::Metrics, None))
        );
        // Unkeyed, a key is just part of the path.
        assert_eq!(
            route("GET /k3y/announce?x HTTP/1.0\r\n\r\n"),
            Ok(Route::NotFound)
        );
    }

    #[test]
    fn head_terminators() {
        assert_eq!(head_len(b"GET / HTTP/1.0\r\n\r\nrest"), Some(18));
        assert_eq!(head_len(b"GET / HTTP/1.0\n\n"), Some(16));
        assert_eq!(head_len(b"GET / HTTP/1.0\r\n\n"), Some(17));
        assert_eq!(head_len(b"GET / HTTP/1.0\r\n"), None);
        let at_limit = |padding: usize| {
            let mut head = b"GET /".to_vec();
            head.resize(MAX_HEAD - padding, b'a');
            head.extend_from_slice(b"\r\n\r\n");
            head_len(&head)
        };
        assert_eq!(at_limit(4), Some(MAX_HEAD));
        assert_eq!(at_limit(3), None, "one byte past the limit");
    }

    #[test]
    fn routes_like_upstream() {
        assert_eq!(
            route("GET /announce?x=1 HTTP/1.0\r\n\r\n"),
            Ok(Route::Announce(b"x=1"))
        );
        assert_eq!(
            route("GET //announce.php?a HTTP/1.0\r\n\r\n"),
            Ok(Route::Announce(b"a"))
        );
        assert_eq!(
            route("GET /announce ?x=1 HTTP/1.0\r\n\r\n"),
            Ok(Route::Announce(b"x=1"))
        );
        assert_eq!(
            route("GET /announce HTTP/1.0\r\n\r\n"),
            Err(RequestError::NoQuery)
        );
        for no_query in ["/scrapeXYZ", "/scrape%3F", "/sc"] {
            assert_eq!(
                route(&format!("GET {no_query} HTTP/1.0\r\n\r\n")),
                Err(RequestError::NoQuery)
            );
        }
        assert_eq!(
            route("GET /Announce?x HTTP/1.0\r\n\r\n"),
            Ok(Route::NotFound)
        );
        assert_eq!(route("GET /scrape HTTP/1.1\r\n\r\n"), Ok(Route::FullScrape));
        assert_eq!(
            route("GET /scrape?info_hash=a HTTP/1.1\r\n\r\n"),
            Ok(Route::Scrape(b"info_hash=a"))
        );
        assert_eq!(
            route("GET /stats?mode=peer HTTP/1.1\r\n\r\n"),
            Ok(Route::Stats(b"mode=peer"))
        );
        assert_eq!(route("GET /stats HTTP/1.1\r\n\r\n"), Ok(Route::Stats(b"")));
        assert_eq!(
            route("GET /stats ?mode=conn HTTP/1.1\r\n\r\n"),
            Ok(Route::Stats(b""))
        );
        assert_eq!(route("GET /metrics HTTP/1.1\r\n\r\n"), Ok(Route::Metrics));
        assert_eq!(route("GET / HTTP/1.1\r\n\r\n"), Ok(Route::Root));
        assert_eq!(route("GET /?info_hash=x HTTP/1.1\r\n\r\n"), Ok(Route::Root));
        assert_eq!(route("GET /x%zz HTTP/1.1\r\n\r\n"), Ok(Route::NotFound));
        for path in [
            "/announce\x01",
            "/announce\"",
            "/sc{",
            "/stats|",
            "/a@",
            "/a=",
            "/a&",
        ] {
            let head = format!("GET {path}?x=1 HTTP/1.1\r\n\r\n");
            assert_eq!(route(&head), Ok(Route::NotFound), "{path}");
        }
        assert_eq!(
            route("GET /announce%01?x=1 HTTP/1.1\r\n\r\n"),
            Ok(Route::Announce(b"x=1"))
        );
        assert_eq!(
            route("POST /announce HTTP/1.1\r\n\r\n"),
            Err(RequestError::Parse)
        );
        assert_eq!(route("GET"), Err(RequestError::Parse));
    }

    #[test]
    fn headers() {
        let head = b"GET / HTTP/1.1\r\nX-Forwarded-For:  10.9.8.7, 1.1.1.1\r\nAccept-Encoding: br, gzip;q=0\r\n\r\n";
        assert_eq!(forwarded_for(head), Some("10.9.8.7".parse().unwrap()));
        for (value, ip) in [
            ("10.9.8.7:5000", "10.9.8.7"),
            ("[2001:db8::1]:5000, 10.0.0.1", "2001:db8::1"),
            ("[2001:db8::1]", "2001:db8::1"),
            ("2001:db8::1", "2001:db8::1"),
        ] {
            let head = format!("GET / HTTP/1.1\r\nX-Forwarded-For: {value}\r\n\r\n");
            assert_eq!(forwarded_for(head.as_bytes()), Some(ip.parse().unwrap()));
        }
        let unknown = b"GET / HTTP/1.1\r\nX-Forwarded-For: unknown\r\n\r\n";
        assert_eq!(forwarded_for(unknown), None);
        for unreachable in [
            "::",
            "[::]:80",
            "ff02::1",
            "0.0.0.0",
            "224.0.0.1:80",
            "255.255.255.255",
            "::ffff:0.0.0.0",
            "::ffff:239.1.2.3",
            "::ffff:255.255.255.255",
        ] {
            let head = format!("GET / HTTP/1.1\r\nX-Forwarded-For: {unreachable}\r\n\r\n");
            assert_eq!(forwarded_for(head.as_bytes()), None, "{unreachable}");
        }
        assert!(!accepts_gzip(head, head));
        let gzip = b"GET / HTTP/1.1\r\naccept-encoding: gzip, deflate\r\n\r\n";
        assert!(accepts_gzip(gzip, gzip));
        let loose = b"GET / HTTP/1.1\r\nX-Whatever: gzip\r\n\r\n";
        assert!(accepts_gzip(loose, loose));
        assert!(!accepts_gzip(loose, b""), "only where upstream looks");
        let none = b"GET / HTTP/1.1\r\n\r\n";
        assert!(!accepts_gzip(none, none));
        let upper_q = b"GET / HTTP/1.1\r\nAccept-Encoding: gzip;Q=0\r\n\r\n";
        assert!(
            !accepts_gzip(upper_q, upper_q),
            "parameter names are case-insensitive"
        );
        let upper_q_one = b"GET / HTTP/1.1\r\nAccept-Encoding: gzip; Q=1\r\n\r\n";
        assert!(accepts_gzip(upper_q_one, upper_q_one));
        let repeated =
            b"GET / HTTP/1.1\r\nAccept-Encoding: identity\r\nAccept-Encoding: gzip\r\n\r\n";
        assert!(accepts_gzip(repeated, b""), "repeated headers are one list");
        let refused_later =
            b"GET / HTTP/1.1\r\nAccept-Encoding: *\r\nAccept-Encoding: gzip;q=0\r\n\r\n";
        assert!(!accepts_gzip(refused_later, refused_later));
        let stats = |head: &'static str| {
            let request = parse(head.as_bytes(), b"stats", false).unwrap();
            (
                request.after_query,
                accepts_gzip(request.head, request.after_query),
            )
        };
        assert_eq!(
            stats("GET /stats?mode=tpbs&x=gzip HTTP/1.1\r\n\r\n"),
            (&b" HTTP/1.1\r\n\r\n"[..], false)
        );
        assert!(stats("GET /stats?mode=tpbs HTTP/1.1\r\nX: gzip\r\n\r\n").1);
        assert_eq!(stats("GET /stats HTTP/1.0\r\n\r\n").0, b" HTTP/1.0\r\n\r\n");
        let keeps =
            |head: &str| wants_keep_alive(&parse(head.as_bytes(), b"stats", false).unwrap());
        assert!(!keeps("GET / HTTP/1.1\r\nConnection: close\r\n\r\n"));
        assert!(keeps("GET / HTTP/1.1\r\n\r\n"));
        assert!(keeps("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
        assert!(!keeps("GET / HTTP/1.0\r\n\r\n"));
        // `close` wins over `keep-alive` in either version.
        assert!(!keeps(
            "GET / HTTP/1.0\r\nConnection: close, keep-alive\r\n\r\n"
        ));
        assert!(!keeps(
            "GET / HTTP/1.1\r\nConnection: keep-alive, close\r\n\r\n"
        ));
    }

    #[test]
    fn long_paths_route_by_their_first_bytes_as_upstream() {
        let long = |path: &str| format!("GET /{path}?info_hash=a HTTP/1.0\r\n\r\n");
        let announce = long(&format!("a{}", "x".repeat(200)));
        assert_eq!(route(&announce), Ok(Route::Announce(b"info_hash=a")));
        let scrape = long(&format!("sc{}", "%41".repeat(100)));
        assert_eq!(route(&scrape), Ok(Route::Scrape(b"info_hash=a")));
        // Named routes match their whole name only.
        let stats = long(&format!("stats{}", "s".repeat(100)));
        assert_eq!(route(&stats), Ok(Route::NotFound));
        let metrics = long(&format!("metrics{}", "s".repeat(100)));
        assert_eq!(route(&metrics), Ok(Route::NotFound));
        // A broken escape anywhere, even past the first bytes, is refused.
        let broken = long(&format!("a{}%zz", "x".repeat(100)));
        assert_eq!(route(&broken), Ok(Route::NotFound));
    }

    #[test]
    fn request_body_framing() {
        let body =
            |headers: &str| request_body(format!("GET / HTTP/1.1\r\n{headers}\r\n").as_bytes());
        assert_eq!(body(""), RequestBody::None);
        assert_eq!(body("Content-Length: 0\r\n"), RequestBody::None);
        assert_eq!(body("content-length:  7 \r\n"), RequestBody::Length(7));
        assert_eq!(
            body("Content-Length: 7\r\nContent-Length: 7\r\n"),
            RequestBody::Length(7)
        );
        for unframed in [
            "Transfer-Encoding: chunked\r\n",
            "Transfer-Encoding: gzip\r\nContent-Length: 3\r\n",
            "Content-Length: 7\r\nContent-Length: 8\r\n",
            "Content-Length: -1\r\n",
            "Content-Length: +7\r\n",
            "Content-Length: 99999999999999999999999\r\n",
        ] {
            assert_eq!(body(unframed), RequestBody::Unframed, "{unframed}");
        }
    }

    #[test]
    fn websocket_upgrades_on_announce_paths() {
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        let upgrade = |path: &str, extra: &str| {
            format!(
                "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: keep-alive, Upgrade\r\n\
                 Upgrade: WebSocket\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
            )
        };
        let head = upgrade("/announce", &format!("Sec-WebSocket-Key: {key}\r\n"));
        assert_eq!(
            route(&head),
            Ok(Route::WebSocket {
                handshake: Handshake::Key(key.as_bytes()),
                query: None
            })
        );
        // No query needed; an unusable key is still the WebSocket route.
        assert_eq!(
            route(&upgrade("/announce", "")),
            Ok(Route::WebSocket {
                handshake: Handshake::BadKey,
                query: None
            })
        );
        let bad_key = upgrade("/a", "Sec-WebSocket-Key: short\r\n");
        assert_eq!(
            route(&bad_key),
            Ok(Route::WebSocket {
                handshake: Handshake::BadKey,
                query: None
            })
        );
        for old in [
            head.replace("Version: 13", "Version: 8"),
            head.replace("Sec-WebSocket-Version: 13\r\n", ""),
        ] {
            assert_eq!(
                route(&old),
                Ok(Route::WebSocket {
                    handshake: Handshake::OtherVersion,
                    query: None
                })
            );
        }
        // The query comes along, for a tracker that announces instead.
        let with_query = upgrade("/announce?info_hash=a", "");
        assert_eq!(
            route(&with_query),
            Ok(Route::WebSocket {
                handshake: Handshake::BadKey,
                query: Some(&b"info_hash=a"[..])
            })
        );
        // Other paths stay what they were.
        assert_eq!(route(&upgrade("/stats", "")), Ok(Route::Stats(b"")));
        let keyed_head = head.replace("/announce", "/k3y/announce");
        let keyed = parse(keyed_head.as_bytes(), b"stats", true).unwrap();
        assert_eq!(
            keyed.route,
            Route::WebSocket {
                handshake: Handshake::Key(key.as_bytes()),
                query: None
            }
        );
        assert_eq!(keyed.passkey, Some(&b"k3y"[..]));
    }
}
