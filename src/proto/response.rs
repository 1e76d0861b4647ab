//! HTTP response heads in upstream opentracker's framing: `HTTP/1.1 200`
//! with Content-Length for answers, `HTTP/1.0 <code>` with a tiny HTML body
//! for errors, and chunked transfer for streamed bodies.

use super::bencode::push_decimal;

/// The HTTP errors the tracker sends. Each closes the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpError {
    BadRequest,
    Forbidden,
    NotFound,
    Internal,
    /// Upstream's answer to a full scrape too soon after the last one.
    PaymentRequired,
    /// A WebSocket handshake in a protocol version other than RFC 6455's.
    UpgradeRequired,
}

impl HttpError {
    pub fn status_line(self) -> &'static str {
        match self {
            HttpError::BadRequest => "400 Invalid Request",
            HttpError::Forbidden => "403 Access Denied",
            HttpError::NotFound => "404 Not Found",
            HttpError::Internal => "500 Internal Server Error",
            HttpError::PaymentRequired => "402 Payment Required",
            HttpError::UpgradeRequired => "426 Upgrade Required",
        }
    }
}

/// What to say about the connection after this response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Connection {
    /// Say nothing: HTTP/1.1 keep-alive is implied.
    Implicit,
    KeepAlive,
    Close,
}

impl Connection {
    /// What to say for a response that keeps the connection open or not,
    /// to an HTTP/1.1 request or an older one.
    pub fn of(keep_alive: bool, http11: bool) -> Self {
        match (keep_alive, http11) {
            (false, _) => Connection::Close,
            (true, true) => Connection::Implicit,
            (true, false) => Connection::KeepAlive,
        }
    }
}

fn push_connection(out: &mut Vec<u8>, connection: Connection) {
    match connection {
        Connection::Implicit => {}
        Connection::KeepAlive => out.extend_from_slice(b"Connection: keep-alive\r\n"),
        Connection::Close => out.extend_from_slice(b"Connection: close\r\n"),
    }
}

/// `200 OK` with a `text/plain` body of `body_len` bytes to follow.
pub fn ok_head(out: &mut Vec<u8>, body_len: usize, connection: Connection) {
    ok_head_of_type(out, b"text/plain", body_len, connection);
}

/// `200 OK` with a body of `content_type` and `body_len` bytes to follow.
pub fn ok_head_of_type(
    out: &mut Vec<u8>,
    content_type: &[u8],
    body_len: usize,
    connection: Connection,
) {
    out.extend_from_slice(b"HTTP/1.1 200 OK\r\nContent-Type: ");
    out.extend_from_slice(content_type);
    out.extend_from_slice(b"\r\nContent-Length: ");
    push_decimal(out, body_len as u64);
    out.extend_from_slice(b"\r\n");
    push_connection(out, connection);
    out.extend_from_slice(b"\r\n");
}

/// A complete error response: `<title>Not Found</title>` and the like.
pub fn error(out: &mut Vec<u8>, error: HttpError) {
    // RFC 6455 has a 426 name the version the server speaks.
    let header: &[u8] = match error {
        HttpError::UpgradeRequired => b"Sec-WebSocket-Version: 13\r\n",
        _ => b"",
    };
    error_with_header(out, error, header);
}

/// An error response that says when to ask again (`Retry-After`).
pub fn error_retry_after(out: &mut Vec<u8>, error: HttpError, seconds: u32) {
    let mut header = b"Retry-After: ".to_vec();
    push_decimal(&mut header, u64::from(seconds));
    header.extend_from_slice(b"\r\n");
    error_with_header(out, error, &header);
}

fn error_with_header(out: &mut Vec<u8>, error: HttpError, header: &[u8]) {
    let status = error.status_line();
    let text = &status[4..];
    out.extend_from_slice(b"HTTP/1.0 ");
    out.extend_from_slice(status.as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(header);
    out.extend_from_slice(b"Content-Type: text/html\r\nContent-Length: ");
    push_decimal(out, (text.len() + 16) as u64);
    out.extend_from_slice(b"\r\nConnection: close\r\n\r\n<title>");
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(b"</title>\n");
}

/// A complete `302 Found` to `url`.
pub fn redirect(out: &mut Vec<u8>, url: &str) {
    out.extend_from_slice(b"HTTP/1.0 302 Found\r\nContent-Length: 0\r\nLocation: ");
    out.extend_from_slice(url.as_bytes());
    out.extend_from_slice(b"\r\nConnection: close\r\n\r\n");
}

/// `101 Switching Protocols` to a WebSocket, answering the client's
/// `Sec-WebSocket-Key`.
pub fn switching_to_websocket(out: &mut Vec<u8>, key: &[u8]) {
    out.extend_from_slice(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Accept: ",
    );
    let accept = tungstenite::handshake::derive_accept_key(key);
    out.extend_from_slice(accept.as_bytes());
    out.extend_from_slice(b"\r\n\r\n");
}

/// The head of a streamed body of `content_type`, whose length is not
/// known in advance: chunked for HTTP/1.1 clients; an HTTP/1.0 client
/// cannot read chunks, and its body ends where the connection does.
pub fn streamed_head(out: &mut Vec<u8>, content_type: &[u8], gzip: bool, chunked: bool) {
    out.extend_from_slice(b"HTTP/1.1 200 OK\r\nContent-Type: ");
    out.extend_from_slice(content_type);
    out.extend_from_slice(b"\r\n");
    if gzip {
        out.extend_from_slice(b"Content-Encoding: gzip\r\n");
    }
    if chunked {
        out.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
    }
    out.extend_from_slice(b"Connection: close\r\n\r\n");
}

/// One chunk of a chunked body; empty data writes nothing (an empty chunk
/// would end the body).
pub fn chunk(out: &mut Vec<u8>, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    out.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// The chunk that ends a chunked body.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_match_upstream_lengths() {
        for (err, len) in [
            (HttpError::BadRequest, 31),
            (HttpError::NotFound, 25),
            (HttpError::Internal, 37),
        ] {
            let mut out = Vec::new();
            error(&mut out, err);
            let body_at = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
            assert_eq!(out.len() - body_at, len);
            assert!(String::from_utf8_lossy(&out).contains(&format!("Content-Length: {len}\r\n")));
        }
    }

    #[test]
    fn chunks() {
        let mut out = Vec::new();
        chunk(&mut out, b"hello world, 17 b");
        assert_eq!(out, b"11\r\nhello world, 17 b\r\n");
    }

    #[test]
    fn websocket_accept_key_is_rfc_6455s() {
        let mut out = Vec::new();
        // The example of RFC 6455, section 1.3.
        switching_to_websocket(&mut out, b"dGhlIHNhbXBsZSBub25jZQ==");
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
        assert!(text.ends_with("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"));
    }
}
