//! HTTP/1.1 as a tracker client needs it: GET requests, response heads,
//! and the chunked framing of full scrapes.

use std::fmt::Write;
use std::net::SocketAddr;

use crate::swarm::Swarm;
use crate::workload::{Event, Job};

/// Percent-encodes everything outside RFC 3986's unreserved set.
pub fn url_encode(bytes: &[u8], out: &mut String) {
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

pub struct RequestHead<'a> {
    pub target: SocketAddr,
    pub keep_alive: bool,
    pub extra_headers: &'a str,
}

/// Writes the GET request for `job` into `out`.
pub fn job_request(out: &mut Vec<u8>, swarm: &Swarm, numwant: u32, job: Job, head: &RequestHead) {
    let mut path = String::with_capacity(256);
    match job {
        Job::Announce { peer, event } => {
            path.push_str("/announce?info_hash=");
            url_encode(&swarm.info_hash(swarm.torrent_of(peer)), &mut path);
            path.push_str("&peer_id=");
            url_encode(&swarm.peer_id(peer), &mut path);
            let left = if swarm.is_seeder(peer) { 0 } else { 1 << 20 };
            let _ = write!(
                path,
                "&port={}&uploaded=0&downloaded=0&left={left}&numwant={numwant}&compact=1",
                swarm.port_of(peer)
            );
            if event == Event::Started {
                path.push_str("&event=started");
            }
        }
        Job::Scrape { torrent } => {
            path.push_str("/scrape?info_hash=");
            url_encode(&swarm.info_hash(torrent), &mut path);
        }
    }
    get_request(out, &path, head);
}

pub fn get_request(out: &mut Vec<u8>, path: &str, head: &RequestHead) {
    let connection = if head.keep_alive {
        "keep-alive"
    } else {
        "close"
    };
    out.clear();
    let _ = std::io::Write::write_fmt(
        out,
        format_args!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: opentracker-loadgen\r\n\
             Connection: {connection}\r\n{}\r\n",
            head.target, head.extra_headers
        ),
    );
}

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
}

#[derive(Debug, PartialEq, Eq)]
pub struct Head {
    pub status: u16,
    /// Bytes of the head, blank line included.
    pub size: usize,
    pub framing: Framing,
    pub content_encoding: Option<String>,
    /// The server said `Connection: close`.
    pub close: bool,
}

/// Parses the response head at the start of `buffer`: `Ok(None)` while it
/// is incomplete.
pub fn parse_head(buffer: &[u8]) -> Result<Option<Head>, String> {
    let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if buffer.len() > 16 * 1024 {
            Err("response head over 16 KiB".into())
        } else {
            Ok(None)
        };
    };
    let text = std::str::from_utf8(&buffer[..end]).map_err(|_| "response head is not UTF-8")?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .strip_prefix("HTTP/1.")
        .and_then(|rest| rest.get(2..5))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let mut framing = Framing::UntilClose;
    let mut content_encoding = None;
    let mut close = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            let length = value
                .parse()
                .map_err(|_| format!("bad Content-Length {value:?}"))?;
            framing = Framing::Length(length);
        } else if name.eq_ignore_ascii_case("transfer-encoding")
            && value.eq_ignore_ascii_case("chunked")
        {
            framing = Framing::Chunked;
        } else if name.eq_ignore_ascii_case("content-encoding") {
            content_encoding = Some(value.to_owned());
        } else if name.eq_ignore_ascii_case("connection") {
            close = value.eq_ignore_ascii_case("close");
        }
    }
    Ok(Some(Head {
        status,
        size: end + 4,
        framing,
        content_encoding,
        close,
    }))
}

enum ChunkState {
    /// Reading a chunk-size line.
    Size(Vec<u8>),
    Data(usize),
    /// Skipping the CRLF after a chunk's data.
    DataEnd,
    /// After the last chunk: reading trailer lines up to the blank one.
    Trailer(Vec<u8>),
    Done,
}

/// Removes chunked framing from a byte stream fed in pieces.
pub struct Dechunker {
    state: ChunkState,
}

impl Default for Dechunker {
    fn default() -> Self {
        Dechunker {
            state: ChunkState::Size(Vec::new()),
        }
    }
}

impl Dechunker {
    /// Feeds `input`, handing decoded data to `sink`; true once the
    /// terminating chunk and trailer have been read.
    pub fn feed(&mut self, mut input: &[u8], sink: &mut impl FnMut(&[u8])) -> Result<bool, String> {
        while !input.is_empty() {
            match &mut self.state {
                ChunkState::Size(line) | ChunkState::Trailer(line) => {
                    let Some(newline) = input.iter().position(|&b| b == b'\n') else {
                        line.extend_from_slice(input);
                        return Ok(false);
                    };
                    line.extend_from_slice(&input[..newline]);
                    input = &input[newline + 1..];
                    let text = String::from_utf8_lossy(line)
                        .trim_end_matches('\r')
                        .to_owned();
                    self.state = match self.state {
                        ChunkState::Size(_) => {
                            let digits = text.split(';').next().unwrap_or_default().trim();
                            match usize::from_str_radix(digits, 16) {
                                Ok(0) => ChunkState::Trailer(Vec::new()),
                                Ok(size) => ChunkState::Data(size),
                                Err(_) => return Err(format!("bad chunk size {text:?}")),
                            }
                        }
                        _ if text.is_empty() => ChunkState::Done,
                        _ => ChunkState::Trailer(Vec::new()),
                    };
                }
                ChunkState::Data(left) => {
                    let take = (*left).min(input.len());
                    sink(&input[..take]);
                    input = &input[take..];
                    *left -= take;
                    if *left == 0 {
                        self.state = ChunkState::DataEnd;
                    }
                }
                ChunkState::DataEnd => {
                    let Some(newline) = input.iter().position(|&b| b == b'\n') else {
                        return Ok(false);
                    };
                    input = &input[newline + 1..];
                    self.state = ChunkState::Size(Vec::new());
                }
                ChunkState::Done => return Ok(true),
            }
        }
        Ok(matches!(self.state, ChunkState::Done))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_unreserved_bytes_as_they_are() {
        let mut out = String::new();
        url_encode(b"aZ9-._~ \x00\xff", &mut out);
        assert_eq!(out, "aZ9-._~%20%00%FF");
    }

    #[test]
    fn parses_heads() {
        let response =
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\ncontent-length: 5\r\n\r\nhello";
        let head = parse_head(response).unwrap().unwrap();
        assert_eq!(head.status, 200);
        assert_eq!(head.framing, Framing::Length(5));
        assert_eq!(&response[head.size..], b"hello");
        assert!(!head.close);
        assert_eq!(parse_head(b"HTTP/1.1 200 OK\r\n").unwrap(), None);
        let chunked =
            b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\nConnection: Close\r\n\r\n";
        let head = parse_head(chunked).unwrap().unwrap();
        assert_eq!(head.framing, Framing::Chunked);
        assert_eq!(head.content_encoding.as_deref(), Some("gzip"));
        assert!(head.close);
        assert!(parse_head(b"HTTP/1.0 4x4 Oops\r\n\r\n").is_err());
        let error = parse_head(b"HTTP/1.0 404 Not Found\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!((error.status, error.framing), (404, Framing::UntilClose));
    }

    #[test]
    fn dechunks_across_arbitrary_splits() {
        let stream = b"5\r\nhello\r\na;ext=1\r\n, world!!!\r\n0\r\nX-Trailer: 1\r\n\r\n";
        for split in 0..stream.len() {
            let mut decoder = Dechunker::default();
            let mut body = Vec::new();
            let mut sink = |data: &[u8]| body.extend_from_slice(data);
            let first = decoder.feed(&stream[..split], &mut sink).unwrap();
            let done = decoder.feed(&stream[split..], &mut sink).unwrap();
            assert!(!first || split == stream.len());
            assert!(done, "split at {split}");
            assert_eq!(body, b"hello, world!!!");
        }
        assert!(Dechunker::default().feed(b"zz\r\n", &mut |_| {}).is_err());
    }
}
