//! The HTTP load: virtual clients on their own loopback addresses, each with
//! one request in flight, either one request per connection or keep-alive.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use socket2::{Domain, Protocol, Socket, Type};

use crate::http_wire::{self, Framing, Head, RequestHead};
use crate::phases::{self, Driver, Spec};
use crate::swarm::client_ip;
use crate::tally::Tally;
use crate::workload::{Job, Phase, Workload};

/// A prefill announce is sent this many times before it is given up.
const PREFILL_TRIES: u32 = 5;

#[derive(PartialEq, Eq, Clone, Copy)]
enum Stage {
    Connecting,
    Writing,
    Reading,
    /// Answered; waiting for the server to close (one request per connection).
    Draining,
    /// Answered; the connection waits for the next request (keep-alive).
    Idle,
}

struct Connection {
    stream: TcpStream,
    stage: Stage,
    written: usize,
    /// Requests answered on this connection so far.
    served: u32,
}

struct Client {
    index: u32,
    address: IpAddr,
    connection: Option<Connection>,
    job: Option<Job>,
    /// When the current job was first sent, or (draining) answered.
    since: Instant,
    tries: u32,
    cursor: u32,
    request: Vec<u8>,
    response: Vec<u8>,
}

pub struct HttpDriver {
    workload: Arc<Workload>,
    target: SocketAddr,
    keep_alive: bool,
    poll: Poll,
    clients: Vec<Client>,
}

pub fn run(raw: &[String]) -> Result<(), String> {
    let keep_alive = raw.iter().any(|a| a == "--keep-alive");
    let spec = Spec {
        name: if keep_alive { "http-keepalive" } else { "http" },
        valued: &[],
        switches: &["keep-alive"],
    };
    phases::run(raw, spec, |workload, args, target, thread| {
        HttpDriver::new(workload, target, args.flag("keep-alive"), thread)
            .map_err(|e| e.to_string())
    })
}

/// What became of a request, once it is over.
enum Outcome {
    Answered(Head),
    /// The connection failed; try the job again on a new one.
    Retry,
    Failed,
}

/// A non-blocking connection from `source` (any port) to `target`.
fn open(source: IpAddr, target: SocketAddr) -> io::Result<TcpStream> {
    let kind = Type::STREAM.nonblocking().cloexec();
    let socket = Socket::new(Domain::for_address(target), kind, Some(Protocol::TCP))?;
    if source.is_ipv6() {
        // The IPv6 client prefix is routed here but no address of this host.
        socket.set_freebind_v6(true)?;
    }
    // Leave the port choice to connect(), which knows the whole 4-tuple and
    // so can reuse ports: one address alone would run out after ~28k.
    let enable: libc::c_int = 1;
    // SAFETY: a valid socket, option value and length.
    let status = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&enable as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if status != 0 {
        return Err(io::Error::last_os_error());
    }
    socket.bind(&SocketAddr::from((source, 0)).into())?;
    match socket.connect(&target.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    Ok(TcpStream::from_std(socket.into()))
}

impl HttpDriver {
    fn new(
        workload: Arc<Workload>,
        target: SocketAddr,
        keep_alive: bool,
        thread: u32,
    ) -> io::Result<Self> {
        let clients = workload
            .clients_of_thread(thread)
            .map(|index| Client {
                index,
                address: client_ip(index, target.is_ipv6()),
                connection: None,
                job: None,
                since: Instant::now(),
                tries: 0,
                cursor: 0,
                request: Vec::with_capacity(512),
                response: Vec::with_capacity(1024),
            })
            .collect();
        Ok(HttpDriver {
            workload,
            target,
            keep_alive,
            poll: Poll::new()?,
            clients,
        })
    }

    fn start_next(&mut self, slot: usize, phase: Phase, tally: &mut Tally) {
        let client = &mut self.clients[slot];
        client.job = self
            .workload
            .next_job(phase, client.index, &mut client.cursor);
        let Some(job) = client.job else {
            return;
        };
        let head = RequestHead {
            target: self.target,
            keep_alive: self.keep_alive,
            extra_headers: "",
        };
        let workload = &*self.workload;
        http_wire::job_request(
            &mut client.request,
            &workload.swarm,
            workload.numwant,
            job,
            &head,
        );
        client.since = Instant::now();
        client.tries = 0;
        self.dispatch(slot, tally);
    }

    /// Sends the client's request: on its idle keep-alive connection, or a
    /// new one. A connection that cannot even be opened counts as an error
    /// and is tried again when the request would time out.
    fn dispatch(&mut self, slot: usize, tally: &mut Tally) {
        let client = &mut self.clients[slot];
        client.response.clear();
        if let Some(connection) = client.connection.as_mut() {
            if connection.stage == Stage::Idle {
                connection.stage = Stage::Writing;
                connection.written = 0;
                if let Ok(None) = self.advance(slot) {
                    return;
                }
                // The server had closed it: open another.
                tally.reconnects += 1;
            }
        }
        let client = &mut self.clients[slot];
        // Dropping the old stream closes it, which also takes it off epoll.
        client.connection = None;
        let Ok(mut stream) = open(client.address, self.target) else {
            tally.io_errors += 1;
            return;
        };
        let interest = Interest::READABLE | Interest::WRITABLE;
        if self
            .poll
            .registry()
            .register(&mut stream, Token(slot), interest)
            .is_err()
        {
            tally.io_errors += 1;
            return;
        }
        client.connection = Some(Connection {
            stream,
            stage: Stage::Connecting,
            written: 0,
            served: 0,
        });
    }

    /// Moves the client's connection on as far as it goes without blocking.
    fn advance(&mut self, slot: usize) -> io::Result<Option<Outcome>> {
        let client = &mut self.clients[slot];
        let Some(connection) = client.connection.as_mut() else {
            return Ok(None);
        };
        loop {
            match connection.stage {
                Stage::Connecting => {
                    if let Some(error) = connection.stream.take_error()? {
                        return Err(error);
                    }
                    // Writing tells whether the connection is up: not yet
                    // gives WouldBlock, refused gives the error.
                    connection.stage = Stage::Writing;
                }
                Stage::Writing => {
                    match connection
                        .stream
                        .write(&client.request[connection.written..])
                    {
                        Ok(n) => connection.written += n,
                        Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(None),
                        Err(_) if connection.served > 0 => return Ok(Some(Outcome::Retry)),
                        Err(e) => return Err(e),
                    }
                    if connection.written == client.request.len() {
                        connection.stage = Stage::Reading;
                    }
                }
                Stage::Reading => {
                    let mut buffer = [0u8; 4096];
                    let closed = match connection.stream.read(&mut buffer) {
                        Ok(0) => true,
                        Ok(n) => {
                            client.response.extend_from_slice(&buffer[..n]);
                            false
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(None),
                        Err(e) if e.kind() == ErrorKind::ConnectionReset => true,
                        Err(e) => return Err(e),
                    };
                    if let Some(head) = complete_head(&client.response, closed) {
                        let Ok(head) = head else {
                            return Ok(Some(Outcome::Failed));
                        };
                        connection.served += 1;
                        let reusable = self.keep_alive && !head.close && !closed;
                        connection.stage = if reusable {
                            Stage::Idle
                        } else {
                            Stage::Draining
                        };
                        return Ok(Some(Outcome::Answered(head)));
                    }
                    if closed {
                        // A keep-alive connection the server closed between
                        // requests: send again on a fresh one.
                        let reused = connection.served > 0 && client.response.is_empty();
                        return Ok(Some(if reused {
                            Outcome::Retry
                        } else {
                            Outcome::Failed
                        }));
                    }
                }
                Stage::Draining | Stage::Idle => {
                    let mut buffer = [0u8; 512];
                    match connection.stream.read(&mut buffer) {
                        Ok(0) => {
                            client.connection = None;
                            return Ok(None);
                        }
                        Ok(_) => {}
                        Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(None),
                        Err(_) => {
                            client.connection = None;
                            return Ok(None);
                        }
                    }
                }
            }
        }
    }

    /// Handles readiness of the client in `slot`.
    fn handle(&mut self, slot: usize, phase: Phase, tally: &mut Tally) {
        let stage = self.clients[slot].connection.as_ref().map(|c| c.stage);
        let outcome = self.advance(slot);
        if stage == Some(Stage::Draining) {
            self.next_if_closed(slot, phase, tally);
            return;
        }
        match outcome {
            Ok(None) => {}
            Ok(Some(Outcome::Answered(head))) => {
                let client = &mut self.clients[slot];
                tally.record(client.since.elapsed());
                classify(&head, &client.response[head.size..], client.job, tally);
                client.since = Instant::now();
                if self.keep_alive {
                    // Closing a keep-alive connection the server is done with.
                    if client.connection.as_ref().map(|c| c.stage) == Some(Stage::Draining) {
                        tally.reconnects += 1;
                    }
                    self.start_next(slot, phase, tally);
                } else {
                    // The close may already be here: edge-triggered
                    // readiness will not report it again.
                    let _ = self.advance(slot);
                    self.next_if_closed(slot, phase, tally);
                }
            }
            Ok(Some(Outcome::Retry)) => {
                tally.reconnects += 1;
                self.clients[slot].connection = None;
                self.dispatch(slot, tally);
            }
            Ok(Some(Outcome::Failed)) | Err(_) => {
                tally.io_errors += 1;
                self.fail(slot, phase, tally);
            }
        }
    }

    /// One request per connection: the next starts once the server closed.
    fn next_if_closed(&mut self, slot: usize, phase: Phase, tally: &mut Tally) {
        if self.clients[slot].connection.is_none() {
            self.start_next(slot, phase, tally);
        }
    }

    /// Gives up the current attempt: a prefill announce is retried a few
    /// times, anything else makes way for the next job.
    fn fail(&mut self, slot: usize, phase: Phase, tally: &mut Tally) {
        let client = &mut self.clients[slot];
        client.connection = None;
        if phase == Phase::Prefill {
            client.tries += 1;
            if client.tries < PREFILL_TRIES {
                client.since = Instant::now();
                self.dispatch(slot, tally);
                return;
            }
            tally.abandoned += 1;
        }
        self.start_next(slot, phase, tally);
    }
}

/// The head of `response` once the whole answer is in (`closed`: the server
/// has closed the connection).
fn complete_head(response: &[u8], closed: bool) -> Option<Result<Head, String>> {
    match http_wire::parse_head(response) {
        Ok(Some(head)) => {
            let complete = match head.framing {
                Framing::Length(length) => response.len() >= head.size + length,
                // Tracker answers are never chunked; read until close.
                Framing::Chunked | Framing::UntilClose => closed,
            };
            complete.then_some(Ok(head))
        }
        Ok(None) => None,
        Err(e) => Some(Err(e)),
    }
}

/// Counts an answer by what it says.
fn classify(head: &Head, body: &[u8], job: Option<Job>, tally: &mut Tally) {
    if head.status != 200 {
        tally.error_replies += 1;
    } else if body.starts_with(b"d14:failure reason") {
        if body.windows(14).any(|w| w == b"not authorized") {
            tally.refused += 1;
        } else {
            tally.error_replies += 1;
        }
    } else {
        match job {
            Some(Job::Announce { .. }) => tally.announces += 1,
            Some(Job::Scrape { .. }) => tally.scrapes += 1,
            None => tally.io_errors += 1,
        }
    }
}

impl Driver for HttpDriver {
    fn start(&mut self, phase: Phase, tally: &mut Tally) {
        for slot in 0..self.clients.len() {
            self.start_next(slot, phase, tally);
        }
    }

    fn busy(&self) -> bool {
        self.clients.iter().any(|c| c.job.is_some())
    }

    fn step(&mut self, events: &mut Events, phase: Phase, tally: &mut Tally) -> io::Result<()> {
        self.poll.poll(events, Some(Duration::from_millis(2)))?;
        for event in events.iter() {
            self.handle(event.token().0, phase, tally);
        }
        Ok(())
    }

    fn expire(&mut self, phase: Phase, tally: &mut Tally) {
        let timeout = self.workload.timeout;
        for slot in 0..self.clients.len() {
            let client = &self.clients[slot];
            if client.job.is_none() || client.since.elapsed() <= timeout {
                continue;
            }
            match client.connection.as_ref().map(|c| c.stage) {
                // Answered, but the server kept the connection open.
                Some(Stage::Draining) => {
                    self.clients[slot].connection = None;
                    self.start_next(slot, phase, tally);
                }
                Some(Stage::Idle) => {}
                // The connection could not be opened: try again.
                None => {
                    self.clients[slot].since = Instant::now();
                    self.dispatch(slot, tally);
                }
                Some(_) => {
                    tally.timeouts += 1;
                    self.fail(slot, phase, tally);
                }
            }
        }
    }

    fn abandon(&mut self) -> u64 {
        let mut dropped = 0;
        for client in &mut self.clients {
            let answered = client
                .connection
                .as_ref()
                .is_some_and(|c| matches!(c.stage, Stage::Draining | Stage::Idle));
            dropped += u64::from(client.job.is_some() && !answered);
            client.job = None;
            if !self.keep_alive || !answered {
                client.connection = None;
            }
        }
        dropped
    }
}
