//! One full scrape (`GET /scrape` without a query): time to first and last
//! byte, size, torrents listed, and the server's extra memory while it ran.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::args::Args;
use crate::http_wire::{self, Dechunker, Framing, RequestHead};
use crate::procfs;

/// Each torrent's entry in a full scrape holds this once.
const ENTRY_MARK: &[u8] = b"8:completei";

/// Counts a pattern in a stream fed in pieces.
#[derive(Default)]
struct PatternCounter {
    tail: Vec<u8>,
    count: u64,
}

impl PatternCounter {
    fn feed(&mut self, data: &[u8], pattern: &[u8]) {
        self.tail.extend_from_slice(data);
        self.count += self
            .tail
            .windows(pattern.len())
            .filter(|w| *w == pattern)
            .count() as u64;
        // Keep too little for a whole match, so none is counted twice.
        let keep = self.tail.len().min(pattern.len() - 1);
        self.tail.drain(..self.tail.len() - keep);
    }
}

struct Transfer {
    status: u16,
    encoding: String,
    first_byte: Duration,
    last_byte: Duration,
    wire_bytes: u64,
    body_bytes: u64,
    entries: u64,
    /// False when the server closed before the end of the body.
    complete: bool,
}

pub fn run(raw: &[String]) -> Result<(), String> {
    let args = Args::parse(raw, &["target", "server-pid", "timeout"], &["gzip"])?;
    let target: SocketAddr = args.require("target")?;
    if !target.ip().is_loopback() {
        return Err("--target must be a loopback address".into());
    }
    let gzip = args.flag("gzip");
    let timeout = Duration::from_secs_f64(args.get("timeout", 300.0)?);
    let pid: Option<u32> = if args.has("server-pid") {
        Some(args.require("server-pid")?)
    } else {
        None
    };
    let before = match pid {
        Some(pid) => {
            let memory = procfs::memory(pid).map_err(|e| e.to_string())?;
            procfs::reset_peak(pid).map_err(|e| format!("clear_refs: {e}"))?;
            Some(memory)
        }
        None => None,
    };
    let transfer = fetch(target, gzip, timeout)?;
    let scenario = if gzip {
        "fullscrape-gzip"
    } else {
        "fullscrape"
    };
    let mut result = format!(
        "RESULT scenario={scenario} status={} encoding={} ttfb_ms={:.1} ttlb_ms={:.1} \
         wire_bytes={} body_bytes={} complete={}",
        transfer.status,
        transfer.encoding,
        transfer.first_byte.as_secs_f64() * 1e3,
        transfer.last_byte.as_secs_f64() * 1e3,
        transfer.wire_bytes,
        transfer.body_bytes,
        u8::from(transfer.complete)
    );
    println!(
        "{scenario}: status {} ({}), first byte {:.1} ms, last byte {:.1} ms, {} bytes on the wire",
        transfer.status,
        transfer.encoding,
        transfer.first_byte.as_secs_f64() * 1e3,
        transfer.last_byte.as_secs_f64() * 1e3,
        transfer.wire_bytes
    );
    if !transfer.complete {
        println!("  TRUNCATED: the server closed before the end of the body");
    }
    if transfer.encoding == "identity" {
        println!("  {} torrents listed", transfer.entries);
        result += &format!(" entries={}", transfer.entries);
    }
    if let (Some(pid), Some(before)) = (pid, before) {
        let after = procfs::memory(pid).map_err(|e| e.to_string())?;
        let extra = after.hwm_kb.saturating_sub(before.rss_kb);
        println!(
            "  server RSS {} kB before, peak {} kB during: {extra} kB extra",
            before.rss_kb, after.hwm_kb
        );
        result += &format!(" rss_before_kb={} extra_rss_kb={extra}", before.rss_kb);
    }
    println!("{result}");
    Ok(())
}

fn fetch(target: SocketAddr, gzip: bool, timeout: Duration) -> Result<Transfer, String> {
    let io = |e: std::io::Error| e.to_string();
    let start = Instant::now();
    let mut stream = TcpStream::connect_timeout(&target, timeout).map_err(io)?;
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    let mut request = Vec::new();
    let head = RequestHead {
        target,
        keep_alive: false,
        extra_headers: if gzip {
            "Accept-Encoding: gzip\r\n"
        } else {
            ""
        },
    };
    http_wire::get_request(&mut request, "/scrape", &head);
    stream.write_all(&request).map_err(io)?;

    let mut buffer = vec![0u8; 256 * 1024];
    let mut pending_head = Vec::new();
    let mut parsed = None;
    let mut first_byte = None;
    let mut wire_bytes = 0u64;
    let mut body_bytes = 0u64;
    let mut counter = PatternCounter::default();
    let mut dechunker = Dechunker::default();
    let mut sink = |data: &[u8]| {
        body_bytes += data.len() as u64;
        counter.feed(data, ENTRY_MARK);
    };
    loop {
        if start.elapsed() > timeout {
            return Err("full scrape timed out".into());
        }
        let n = stream.read(&mut buffer).map_err(io)?;
        first_byte.get_or_insert_with(|| start.elapsed());
        wire_bytes += n as u64;
        let closed = n == 0;
        let mut data = &buffer[..n];
        if parsed.is_none() {
            pending_head.extend_from_slice(data);
            match http_wire::parse_head(&pending_head)? {
                Some(head) => {
                    data = &pending_head[head.size..];
                    parsed = Some(head);
                }
                None if closed => return Err("closed before the response head".into()),
                None => continue,
            }
        }
        let head = parsed.as_ref().expect("head parsed above");
        let done = match head.framing {
            Framing::Chunked => dechunker.feed(data, &mut sink)?,
            Framing::Length(length) => {
                sink(data);
                wire_bytes - head.size as u64 >= length as u64
            }
            Framing::UntilClose => {
                sink(data);
                closed
            }
        };
        if done || closed {
            let head = parsed.expect("head parsed above");
            return Ok(Transfer {
                status: head.status,
                encoding: head.content_encoding.unwrap_or_else(|| "identity".into()),
                first_byte: first_byte.unwrap_or_default(),
                last_byte: start.elapsed(),
                wire_bytes,
                body_bytes,
                entries: counter.count,
                complete: done,
            });
        }
        pending_head.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_patterns_split_across_pieces() {
        let stream =
            b"d5:filesd20:aaaaaaaaaaaaaaaaaaaad8:completei1e10:downloadedi0e10:incompletei0ee\
                       20:bbbbbbbbbbbbbbbbbbbbd8:completei2e10:downloadedi0e10:incompletei0eeee";
        for split in 0..stream.len() {
            let mut counter = PatternCounter::default();
            counter.feed(&stream[..split], ENTRY_MARK);
            counter.feed(&stream[split..], ENTRY_MARK);
            assert_eq!(counter.count, 2, "split at {split}");
        }
    }
}
