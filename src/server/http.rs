//! One HTTP connection: a capped input buffer, request heads answered one at
//! a time (pipelined ones wait their turn), output written as the socket
//! drains, and a deadline.
//!
//! The socket is edge-triggered, so every event runs the same loop until no
//! step makes progress: read while there is room, answer while the previous
//! response is out, write while the socket takes it.

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use mio::net::TcpStream;

use super::respond::{self, respond};
use super::sliced::{SlicedBody, StreamTicket};
use super::{ws, Context};
use crate::proto::http::{self, head_len, RequestBody, MAX_HEAD};
use crate::proto::proxy_protocol;
use crate::proto::response::{self, HttpError};
use crate::stats::HttpErrorKind;

/// The window in which a streamed body (a full scrape, a `/stats` dump or
/// ranking) must make progress, or its connection is closed. Progress is
/// [`STREAM_MIN_PER_WINDOW`] bytes handed to the socket, or a ranking
/// gathering another slice (the tracker at work, not the client waiting);
/// a body smaller than that minimum must be out within one window.
const STREAM_STALL: Duration = Duration::from_secs(60);

/// Bytes a streamed body must hand to the socket within one
/// [`STREAM_STALL`] window for the window to start anew: 1 MiB a minute,
/// about 17 KiB/s. A stream holds one of a few places (`sliced::MAX_STREAMS`)
/// with its buffers and encoder: counting any slice taken as progress let a
/// client reading a KB/s keep its place for as long as the body lasts, an
/// hour for a large full scrape. Upstream allows a full scrape 15 minutes
/// in all, so a client slower than this fails there too.
const STREAM_MIN_PER_WINDOW: usize = 1 << 20;

/// Slices of a streamed body produced per turn of the event loop. A client
/// that reads as fast as they come (an indexer next door) would otherwise
/// hold the loop for the whole body: seconds for a gzip full scrape of 10M
/// torrents, with every UDP request waiting. A slice takes about 75 µs
/// plain and 260 µs gzipped, against up to a burst of datagrams for UDP
/// in the same turn, so announces keep the larger share of a busy core.
const SLICES_PER_TURN: u32 = 1;

/// Reads and answers one connection gets per turn of the event loop, as a
/// UDP socket gets a burst of datagrams. A client sending without pause (an
/// endless body, requests pipelined as fast as they are answered) would
/// otherwise keep the socket from ever running dry and hold the loop: this
/// bounds a turn to 1 MiB of input read in 4 KiB chunks.
const STEPS_PER_TURN: u32 = 256;

pub struct Connection {
    pub stream: TcpStream,
    peer: SocketAddr,
    input: Vec<u8>,
    output: Vec<u8>,
    written: usize,
    body: Option<SlicedBody>,
    /// The place that a large whole response, or the last output of a
    /// sliced body, holds until `output` has gone to the socket.
    ticket: Option<StreamTicket>,
    /// Slices of `body` produced in this turn of the event loop.
    slices_this_turn: u32,
    /// Reads and answers left to this connection in this turn.
    steps_left: u32,
    /// When the connection is closed unless the client makes progress.
    pub deadline: Instant,
    /// Bytes of the streamed response going out handed to the socket since
    /// its [`STREAM_STALL`] window began; `None` for any other response.
    streamed_in_window: Option<usize>,
    served: u32,
    /// Bytes of the last request's body still to come, discarded as they
    /// arrive so that they are not taken for the next request.
    body_left: u64,
    /// Close once the output is written.
    closing: bool,
    /// Response written and our side shut down; discarding input until the
    /// client closes, so unread bytes do not turn our close into a reset
    /// that destroys the response in flight.
    lingering: bool,
    /// Linger rather than close at once: an error answered a request whose
    /// rest (a body, more junk) may still be arriving.
    linger_on_close: bool,
    /// The last read emptied the socket; until the next readable event a
    /// further read would only say EAGAIN, so it is skipped.
    drained: bool,
    eof: bool,
    /// The connection comes from an `access.proxy_protocol` balancer and
    /// its PROXY header has not been read yet.
    awaits_proxy_header: bool,
    /// Switching to a WebSocket once the response is out, for this client.
    upgrade: Option<ws::Admission>,
}

/// The output buffer's capacity a connection keeps between responses:
/// room for an announce answer of 200 peers (`tracker.numwant_max`'s
/// default), or a scrape of 50 hashes. A buffer grown larger is given back
/// once its response is out, so that 16384 idle connections hold at most
/// 64 MB of it.
const KEPT_OUTPUT_CAPACITY: usize = 4 << 10;

/// How long a lingering close waits for the client to hang up.
const LINGER: Duration = Duration::from_secs(2);

/// Send flags for a connection's last bytes before a plain close: on Linux
/// `MSG_MORE` holds them back so that the close sends them together with
/// the FIN, one segment fewer for both ends to process.
#[cfg(target_os = "linux")]
const LAST_WRITE_FLAGS: libc::c_int = libc::MSG_MORE;
#[cfg(not(target_os = "linux"))]
const LAST_WRITE_FLAGS: libc::c_int = 0;

/// Whether the connection lives on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    Keep,
    Close,
    /// The response switching to a WebSocket is out: hand the socket over
    /// ([`Connection::into_websocket`]).
    Upgrade,
    /// The connection has more to do than one turn allows (a streamed body
    /// the socket takes faster than slices are produced, input beyond
    /// [`STEPS_PER_TURN`]): drive it again after the other work of this turn.
    Yield,
}

impl Connection {
    /// `awaits_proxy_header`: the first bytes are a PROXY protocol header
    /// naming the client to serve in `peer`'s place.
    pub fn new(
        stream: TcpStream,
        peer: SocketAddr,
        deadline: Instant,
        awaits_proxy_header: bool,
    ) -> Self {
        Connection {
            stream,
            peer,
            input: Vec::new(),
            output: Vec::new(),
            written: 0,
            body: None,
            ticket: None,
            slices_this_turn: 0,
            steps_left: STEPS_PER_TURN,
            deadline,
            streamed_in_window: None,
            served: 0,
            body_left: 0,
            closing: false,
            lingering: false,
            linger_on_close: false,
            drained: false,
            eof: false,
            awaits_proxy_header,
            upgrade: None,
        }
    }

    /// The socket, the bytes read past the request that switched it to a
    /// WebSocket, the address it comes from, and whom it was admitted for.
    pub fn into_websocket(self) -> (TcpStream, Vec<u8>, IpAddr, ws::Admission) {
        let via = self.peer.ip();
        let admission = self.upgrade.unwrap_or(ws::Admission {
            client: via,
            passkey: None,
        });
        (self.stream, self.input, via, admission)
    }

    /// Whether a response is still being written (for a graceful stop).
    pub fn is_writing(&self) -> bool {
        self.written < self.output.len() || self.body.is_some()
    }

    /// The socket reported new data (or a hang-up): reading is worth a try.
    pub fn on_readable(&mut self) {
        self.drained = false;
    }

    /// Runs read → answer → write until nothing more can happen now.
    pub fn drive(&mut self, ctx: &mut Context) -> Next {
        self.slices_this_turn = 0;
        self.steps_left = STEPS_PER_TURN;
        loop {
            let read = match self.read(&mut ctx.read_buffer) {
                Ok(read) => read,
                Err(_) => return Next::Close,
            };
            let answered = self.answer(ctx);
            let wrote = match self.write(ctx) {
                Ok(wrote) => wrote,
                Err(_) => return Next::Close,
            };
            if self.upgrade.is_some() && !self.is_writing() {
                return Next::Upgrade;
            }
            if self.closing && !self.is_writing() {
                if self.eof || !self.linger_on_close {
                    return Next::Close;
                }
                if !self.lingering {
                    self.lingering = true;
                    self.input.clear();
                    self.deadline = ctx.instant + LINGER;
                    if self.stream.shutdown(std::net::Shutdown::Write).is_err() {
                        return Next::Close;
                    }
                    continue;
                }
            }
            if self.eof && !self.is_writing() && head_len(&self.input).is_none() {
                return Next::Close;
            }
            if !read && !answered && !wrote {
                return if self.turn_used_up() || self.steps_left == 0 {
                    Next::Yield
                } else {
                    Next::Keep
                };
            }
        }
    }

    /// Reads what the socket has, up to one byte past the head limit. A
    /// short read means the socket is empty: TCP hands over everything
    /// queued, and data arriving later raises a new edge-triggered event.
    fn read(&mut self, chunk: &mut [u8]) -> io::Result<bool> {
        let mut progress = false;
        while !self.eof && !self.drained && self.input.len() <= MAX_HEAD && self.steps_left > 0 {
            self.steps_left -= 1;
            let room = (MAX_HEAD + 1 - self.input.len()).min(chunk.len());
            match self.stream.read(&mut chunk[..room]) {
                Ok(0) => {
                    self.eof = true;
                    progress = true;
                }
                Ok(n) => {
                    let body = self.take_body(n);
                    if !self.lingering {
                        self.input.extend_from_slice(&chunk[body..n]);
                    }
                    self.drained = n < room;
                    progress = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.drained = true;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(progress)
    }

    /// Answers the next complete request once the previous response is out.
    fn answer(&mut self, ctx: &mut Context) -> bool {
        if self.is_writing() || self.closing || self.upgrade.is_some() || self.steps_left == 0 {
            return false;
        }
        self.output.clear();
        self.written = 0;
        self.streamed_in_window = None;
        if self.awaits_proxy_header {
            match proxy_protocol::parse(&self.input) {
                Ok(header) => {
                    self.input.drain(..header.len);
                    self.peer = header.source.unwrap_or(self.peer);
                    self.awaits_proxy_header = false;
                }
                Err(proxy_protocol::Error::Incomplete)
                    if !self.eof && self.input.len() <= MAX_HEAD =>
                {
                    return false
                }
                Err(_) => {
                    ctx.counters.proxy_header_errors += 1;
                    ctx.counters.http_error(HttpErrorKind::ParseError);
                    response::error(&mut self.output, HttpError::BadRequest);
                    self.closing = true;
                    self.linger_on_close = true;
                    return true;
                }
            }
        }
        let Some(len) = head_len(&self.input) else {
            if self.input.len() > MAX_HEAD {
                ctx.counters.http_error(HttpErrorKind::Internal);
                response::error(&mut self.output, HttpError::Internal);
                self.closing = true;
                self.linger_on_close = true;
                return true;
            }
            return false;
        };
        self.served += 1;
        self.steps_left -= 1;
        let body = http::request_body(&self.input[..len]);
        let may_keep_alive = ctx.settings.keep_alive
            && self.served < ctx.settings.max_requests
            && !ctx.stopping
            && body != RequestBody::Unframed;
        let client = self.peer.ip().to_canonical();
        let (reply, outcome) = respond(
            ctx,
            &self.input[..len],
            client,
            may_keep_alive,
            &mut self.output,
        );
        if let Some(log) = &ctx.request_log {
            let peer = respond::peer_ip(ctx, &self.input[..len], client);
            log.request(peer, client, outcome);
        }
        self.input.drain(..len);
        if let RequestBody::Length(length) = body {
            self.body_left = length;
            let buffered = self.take_body(self.input.len());
            self.input.drain(..buffered);
        }
        self.closing = reply.close;
        // Closing with input unread would reset the connection, and the
        // reset throws away answers still queued: lingering reads it away.
        // Requests already read past this one (pipelined beyond
        // `max_requests_per_connection`, or behind a `Connection: close`)
        // say more may wait in the socket.
        let more_pipelined = !self.input.is_empty() && !self.eof;
        self.linger_on_close = reply.error
            || self.body_left > 0
            || body == RequestBody::Unframed
            || (self.closing && more_pipelined);
        self.body = reply.body;
        self.ticket = reply.ticket;
        self.upgrade = reply.upgrade;
        if self.body.is_some() {
            self.start_stream_window(ctx.instant);
        } else {
            self.deadline = ctx.instant + Duration::from_secs(ctx.settings.request_timeout.into());
        }
        true
    }

    /// How many of `available` bytes at the front of the input belong to
    /// the body being skipped; they are counted off.
    fn take_body(&mut self, available: usize) -> usize {
        let body = usize::try_from(self.body_left).map_or(available, |left| left.min(available));
        self.body_left -= body as u64;
        body
    }

    /// Gives the streamed response going out a new [`STREAM_STALL`] window
    /// from `now`.
    fn start_stream_window(&mut self, now: Instant) {
        self.streamed_in_window = Some(0);
        self.deadline = now + STREAM_STALL;
    }

    /// Counts `sent` bytes handed to the socket against the streamed
    /// response's window, if one is going out, and starts a new window once
    /// the window's minimum is reached.
    fn count_streamed(&mut self, sent: usize, now: Instant) {
        let Some(in_window) = &mut self.streamed_in_window else {
            return;
        };
        *in_window += sent;
        if *in_window >= STREAM_MIN_PER_WINDOW {
            self.start_stream_window(now);
        }
    }

    /// Whether a streamed body waits only for the next turn: all produced
    /// so far is written and this turn's slices are spent.
    fn turn_used_up(&self) -> bool {
        self.body.is_some()
            && self.written == self.output.len()
            && self.slices_this_turn >= SLICES_PER_TURN
    }

    /// The whole response is out: a large one gives its place back, and
    /// a buffer grown past [`KEPT_OUTPUT_CAPACITY`] is given back too, so
    /// that a connection kept alive (or one whose client never reads what
    /// the kernel has queued for it) holds no more than one that asked for
    /// nothing: 46 KB of `/metrics` capacity kept by each of 2000 such
    /// connections was 88 MB. A small answer (an announce, a scrape) pays
    /// two comparisons and keeps its buffer.
    fn output_sent(&mut self) {
        if self.ticket.is_some() || self.output.capacity() > KEPT_OUTPUT_CAPACITY {
            self.ticket = None;
            self.output = Vec::new();
            self.written = 0;
        }
    }

    /// Writes pending output, producing streamed body slices as it drains,
    /// up to [`SLICES_PER_TURN`] in one turn.
    fn write(&mut self, ctx: &mut Context) -> io::Result<bool> {
        let mut progress = false;
        loop {
            if self.written == self.output.len() {
                if self.turn_used_up() {
                    break;
                }
                let Some(body) = &mut self.body else {
                    self.output_sent();
                    break;
                };
                self.slices_this_turn += 1;
                self.output.clear();
                self.written = 0;
                let finished = body.fill(&ctx.tracker, ctx.clock(), &mut self.output);
                // Counted as produced: a client may hang up before the end.
                ctx.counters.full_scrape_bytes += body.take_full_scrape_bytes();
                if finished {
                    // Its last output (a whole ranking, a small body's
                    // every slice) keeps the place until it is out.
                    self.ticket = self.body.take().map(SlicedBody::into_ticket);
                } else if self.output.is_empty() {
                    // A ranking being gathered (or a slice the encoder
                    // kept) is the tracker at work, not the client waiting.
                    self.start_stream_window(ctx.instant);
                }
                continue;
            }
            let pending = &self.output[self.written..];
            let closes_next = self.closing && self.body.is_none() && !self.linger_on_close;
            let sent = if closes_next {
                socket2::SockRef::from(&self.stream).send_with_flags(pending, LAST_WRITE_FLAGS)
            } else {
                self.stream.write(pending)
            };
            match sent {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.written += n;
                    self.count_streamed(n, ctx.instant);
                    progress = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(progress),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        if progress && !self.closing && self.served > 0 && self.body.is_none() {
            // The response is out: the client may now idle until its next request.
            self.deadline =
                ctx.instant + Duration::from_secs(ctx.settings.keep_alive_timeout.into());
        }
        Ok(progress)
    }
}

#[cfg(test)]
mod tests {
    use super::super::sliced::MAX_BODY_WITHOUT_PLACE;
    use super::*;

    /// A connection over loopback with `input` waiting in its socket, and
    /// the client end.
    fn connection_with(input: &[u8]) -> (Connection, std::net::TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, peer) = listener.accept().unwrap();
        server.set_nonblocking(true).unwrap();
        client.write_all(input).unwrap();
        let stream = TcpStream::from_std(server);
        let mut queued = vec![0; input.len() + 1];
        let deadline = Instant::now() + Duration::from_secs(10);
        while stream.peek(&mut queued).unwrap_or(0) < input.len() {
            assert!(Instant::now() < deadline, "the input never arrived");
            std::thread::sleep(Duration::from_millis(5));
        }
        let connection = Connection::new(stream, peer, deadline, false);
        (connection, client)
    }

    #[test]
    fn a_ranking_being_gathered_restarts_the_stall_window_with_each_slice() {
        let mut ctx = Context::for_tests();
        for i in 0..3000u16 {
            let mut hash = [0; 20];
            hash[..2].copy_from_slice(&i.to_be_bytes());
            ctx.tracker.restore(&crate::proto::InfoHash(hash), 1, 0, 0);
        }
        let (mut connection, _client) = connection_with(b"GET /stats?mode=top10 HTTP/1.0\r\n\r\n");
        assert_eq!(connection.drive(&mut ctx), Next::Yield);
        // A slice of torrents per turn, none of it output yet: the tracker
        // is at work, so the window starts anew with each.
        ctx.instant += STREAM_STALL - Duration::from_secs(1);
        assert_eq!(connection.drive(&mut ctx), Next::Yield);
        assert_eq!(connection.deadline, ctx.instant + STREAM_STALL);
    }

    #[test]
    fn a_large_answer_holds_a_place_and_its_buffer_only_until_it_is_out() {
        let mut ctx = Context::for_tests();
        for n in 0..512 {
            let id = format!("-Zz{n:04}-abcdefghijkl");
            let tag = crate::proto::peer_id::ClientTag::of(id.as_bytes().try_into().unwrap());
            ctx.counters.clients.count(tag);
        }
        let request = b"GET /metrics HTTP/1.1\r\n\r\nGET /stats?mode=version HTTP/1.1\r\n\r\n";
        // Small buffers at both ends, so that the answer waits in ours.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None);
        let client = client.unwrap();
        client.set_recv_buffer_size(4096).unwrap();
        client
            .connect(&listener.local_addr().unwrap().into())
            .unwrap();
        let mut client = std::net::TcpStream::from(client);
        let (server, peer) = listener.accept().unwrap();
        socket2::SockRef::from(&server)
            .set_send_buffer_size(4096)
            .unwrap();
        server.set_nonblocking(true).unwrap();
        client.write_all(request).unwrap();
        let stream = TcpStream::from_std(server);
        let mut queued = vec![0; request.len()];
        let deadline = Instant::now() + Duration::from_secs(10);
        while stream.peek(&mut queued).unwrap_or(0) < request.len() {
            assert!(Instant::now() < deadline, "the input never arrived");
            std::thread::sleep(Duration::from_millis(5));
        }
        let mut connection = Connection::new(stream, peer, deadline, false);
        assert_eq!(connection.drive(&mut ctx), Next::Keep);
        assert!(connection.output.len() > MAX_BODY_WITHOUT_PLACE);
        assert!(connection.is_writing());
        assert!(connection.ticket.is_some(), "no place for a large answer");
        // Read by the client, both answers go out: the large one's place
        // and buffer are given back, the small one needs neither.
        let reader = std::thread::spawn(move || io::copy(&mut client, &mut io::sink()));
        for _ in 0..1000 {
            connection.on_readable();
            connection.drive(&mut ctx);
            if connection.served == 2 && !connection.is_writing() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(connection.served, 2);
        assert!(!connection.is_writing());
        assert!(connection.ticket.is_none());
        assert!(connection.output.capacity() < 1024, "the large buffer kept");
        drop(connection);
        assert!(reader.join().unwrap().unwrap() > MAX_BODY_WITHOUT_PLACE as u64);
    }

    #[test]
    fn pipelined_requests_are_answered_a_turns_worth_at_a_time() {
        let mut ctx = Context::for_tests();
        let scrape = b"GET /scrape?info_hash=aaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\n\r\n";
        let (mut connection, mut client) = connection_with(&scrape.repeat(600));
        std::thread::spawn(move || io::copy(&mut client, &mut io::sink()));
        // Everything is there to be answered, but the loop has other
        // sockets to serve: each turn reads and answers its share, yields,
        // and is driven again after the others.
        let mut turns = 1;
        while connection.drive(&mut ctx) == Next::Yield {
            assert!(connection.served < turns * STEPS_PER_TURN);
            turns += 1;
            assert!(turns < 20, "{} answered", connection.served);
        }
        assert!(turns >= 3, "{turns} turns");
        assert_eq!(connection.served, 600);
        assert_eq!(ctx.counters.tcp_scrapes, 600);
    }
}
