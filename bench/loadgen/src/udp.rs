//! The UDP load: virtual clients, each announcing from its own loopback
//! address with `--in-flight` requests outstanding. One socket per sender
//! thread carries all its clients' datagrams in batches (see `mmsg`), so the
//! generator stays cheaper than the server it measures.

use std::io::{self, ErrorKind};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};

use crate::mmsg::{Inbox, Outbox, BATCH};
use crate::phases::{self, Driver, Spec};
use crate::swarm::client_ip;
use crate::tally::Tally;
use crate::udp_wire::{self, Announce, Reply};
use crate::workload::{Job, Phase, Workload};

/// BEP 15: a client may use a connection id for one minute.
const CONNECTION_ID_LIFETIME: Duration = Duration::from_secs(60);
/// A prefill announce is sent this many times before it is given up.
const PREFILL_TRIES: u32 = 5;
/// A transaction id names the client (high 16 bits) and its in-flight slot
/// (next 8) a reply belongs to; the low 8 bits tell a late reply from the
/// current one.
const MAX_IN_FLIGHT: u32 = 256;
const MAX_CLIENTS_PER_THREAD: usize = 1 << 16;
/// Absorbs the replies to every request in flight.
const RECV_BUFFER: usize = 4 << 20;

fn transaction(client: usize, slot: usize, sequence: u32) -> u32 {
    (client as u32) << 16 | (slot as u32) << 8 | sequence & 0xff
}

/// The client and slot a transaction id names.
fn addressee(transaction: u32) -> (usize, usize) {
    (
        (transaction >> 16) as usize,
        (transaction >> 8 & 0xff) as usize,
    )
}

struct ConnectionId {
    id: u64,
    obtained: Instant,
    uses_left: u32,
}

struct Pending {
    transaction: u32,
    job: Job,
    sent: Instant,
    tries: u32,
}

struct Client {
    index: u32,
    address: IpAddr,
    connection: Option<ConnectionId>,
    /// The slot whose connect is in flight: a client asks for one id at a
    /// time, as a real one does, and its other requests wait for it.
    connecting: Option<usize>,
    /// (slot, job, tries) of requests waiting for that id.
    parked: Vec<(usize, Job, u32)>,
    /// One entry per request that may be in flight.
    slots: Vec<Option<Pending>>,
    next_sequence: u32,
    cursor: u32,
}

impl Client {
    fn take_pending_if(
        &mut self,
        slot: usize,
        matches: impl FnOnce(&Pending) -> bool,
    ) -> Option<Pending> {
        let pending = self.slots.get_mut(slot)?;
        if pending.as_ref().is_some_and(matches) {
            pending.take()
        } else {
            None
        }
    }
}

pub struct UdpDriver {
    workload: Arc<Workload>,
    /// Requests sent under one connection id before the client connects again.
    reuse: u32,
    poll: Poll,
    socket: UdpSocket,
    clients: Vec<Client>,
    packet: Vec<u8>,
    inbox: Inbox,
    outbox: Outbox,
}

pub fn run(raw: &[String]) -> Result<(), String> {
    let spec = Spec {
        name: "udp",
        valued: &["reuse", "in-flight"],
        switches: &[],
    };
    phases::run(raw, spec, |workload, args, target, thread| {
        let reuse = args.get("reuse", 4)?;
        let in_flight = args.get("in-flight", 4)?;
        if !(1..=MAX_IN_FLIGHT).contains(&in_flight) {
            return Err(format!("--in-flight must be between 1 and {MAX_IN_FLIGHT}"));
        }
        UdpDriver::new(workload, reuse, in_flight, target, thread).map_err(|e| e.to_string())
    })
}

/// One socket that receives for every client address and may send from
/// any: 127.x, or over IPv6 the client prefix, which is no address of this
/// host (hence freebind) but routed to it.
fn shared_socket(ipv6: bool) -> io::Result<UdpSocket> {
    let (domain, any) = if ipv6 {
        (socket2::Domain::IPV6, SocketAddr::from(([0u16; 8], 0)))
    } else {
        (socket2::Domain::IPV4, SocketAddr::from(([0u8; 4], 0)))
    };
    let socket = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    socket.set_recv_buffer_size(RECV_BUFFER)?;
    socket.set_nonblocking(true)?;
    if ipv6 {
        socket.set_freebind_v6(true)?;
    }
    socket.bind(&any.into())?;
    Ok(UdpSocket::from_std(socket.into()))
}

impl UdpDriver {
    fn new(
        workload: Arc<Workload>,
        reuse: u32,
        in_flight: u32,
        target: SocketAddr,
        thread: u32,
    ) -> io::Result<Self> {
        let poll = Poll::new()?;
        let mut socket = shared_socket(target.is_ipv6())?;
        poll.registry()
            .register(&mut socket, Token(0), Interest::READABLE)?;
        let clients: Vec<Client> = workload
            .clients_of_thread(thread)
            .map(|index| Client {
                index,
                address: client_ip(index, target.is_ipv6()),
                connection: None,
                connecting: None,
                parked: Vec::new(),
                slots: (0..in_flight).map(|_| None).collect(),
                next_sequence: fastrand::u32(..),
                cursor: 0,
            })
            .collect();
        if clients.len() > MAX_CLIENTS_PER_THREAD {
            return Err(io::Error::other("too many clients for one sender thread"));
        }
        Ok(UdpDriver {
            workload,
            reuse: reuse.max(1),
            poll,
            socket,
            clients,
            packet: Vec::with_capacity(128),
            inbox: Inbox::default(),
            outbox: Outbox::new(target),
        })
    }

    /// Queues `job` in `slot` of client `at`, preceded by a connect when the
    /// client has no usable id, or parks it while another slot's connect is
    /// in flight.
    fn send(&mut self, at: usize, slot: usize, job: Job, tries: u32) {
        let workload = &*self.workload;
        let client = &mut self.clients[at];
        let usable = client
            .connection
            .as_mut()
            .filter(|c| c.uses_left > 0 && c.obtained.elapsed() < CONNECTION_ID_LIFETIME);
        if usable.is_none() && client.connecting.is_some() {
            client.parked.push((slot, job, tries));
            return;
        }
        client.next_sequence = client.next_sequence.wrapping_add(1);
        let transaction = transaction(at, slot, client.next_sequence);
        match (usable, job) {
            (None, _) => {
                client.connecting = Some(slot);
                udp_wire::connect_request(&mut self.packet, transaction)
            }
            (Some(conn), Job::Announce { peer, event }) => {
                conn.uses_left -= 1;
                let request = Announce {
                    connection: conn.id,
                    transaction,
                    peer,
                    event,
                    numwant: workload.numwant,
                };
                udp_wire::announce_request(&mut self.packet, &workload.swarm, &request);
            }
            (Some(conn), Job::Scrape { torrent }) => {
                conn.uses_left -= 1;
                let hash = workload.swarm.info_hash(torrent);
                udp_wire::scrape_request(&mut self.packet, conn.id, transaction, &hash);
            }
        }
        self.outbox.push(&self.packet, client.address);
        client.slots[slot] = Some(Pending {
            transaction,
            job,
            sent: Instant::now(),
            tries,
        });
    }

    fn start_next(&mut self, at: usize, slot: usize, phase: Phase) {
        let client = &mut self.clients[at];
        if let Some(job) = self
            .workload
            .next_job(phase, client.index, &mut client.cursor)
        {
            self.send(at, slot, job, 0);
        }
    }

    /// Reads every waiting reply, then sends what they led to.
    fn receive(&mut self, phase: Phase, tally: &mut Tally) -> io::Result<()> {
        loop {
            let count = match self.inbox.receive(&self.socket) {
                Ok(count) => count,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                // ICMP port unreachable: the request it answers times out.
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => continue,
                Err(e) => return Err(e),
            };
            let now = Instant::now();
            for i in 0..count {
                let reply = udp_wire::parse_reply(self.inbox.get(i));
                self.answered(reply, now, phase, tally);
            }
            // Requests go out a batch at a time, replies keep coming.
            if self.outbox.len() >= BATCH {
                self.outbox.flush(&self.socket);
            }
            if count < BATCH {
                break;
            }
        }
        self.flush();
        Ok(())
    }

    fn answered(
        &mut self,
        reply: Option<(u32, Reply)>,
        now: Instant,
        phase: Phase,
        tally: &mut Tally,
    ) {
        let Some((transaction, reply)) = reply else {
            tally.io_errors += 1;
            return;
        };
        let (at, slot) = addressee(transaction);
        let Some(client) = self.clients.get_mut(at) else {
            tally.io_errors += 1;
            return;
        };
        // Anything else is a late answer to a request already timed out.
        let Some(pending) = client.take_pending_if(slot, |p| p.transaction == transaction) else {
            return;
        };
        tally.record(now - pending.sent);
        match reply {
            Reply::Connected(id) => {
                tally.connects += 1;
                client.connecting = None;
                client.connection = Some(ConnectionId {
                    id,
                    obtained: now,
                    uses_left: self.reuse,
                });
                let parked = std::mem::take(&mut client.parked);
                self.send(at, slot, pending.job, pending.tries);
                for (slot, job, tries) in parked {
                    self.send(at, slot, job, tries);
                }
                return;
            }
            Reply::Announced => tally.announces += 1,
            Reply::Scraped => tally.scrapes += 1,
            Reply::Refused => tally.refused += 1,
            Reply::Error => {
                tally.error_replies += 1;
                client.connection = None;
                if phase == Phase::Prefill && pending.tries + 1 < PREFILL_TRIES {
                    self.send(at, slot, pending.job, pending.tries + 1);
                    return;
                }
            }
        }
        self.start_next(at, slot, phase);
    }

    fn flush(&mut self) {
        if !self.outbox.is_empty() {
            self.outbox.flush(&self.socket);
        }
    }
}

impl Driver for UdpDriver {
    fn start(&mut self, phase: Phase, _tally: &mut Tally) {
        for at in 0..self.clients.len() {
            for slot in 0..self.clients[at].slots.len() {
                self.start_next(at, slot, phase);
            }
        }
        self.flush();
    }

    fn busy(&self) -> bool {
        self.clients
            .iter()
            .any(|c| !c.parked.is_empty() || c.slots.iter().any(Option::is_some))
    }

    fn step(&mut self, events: &mut Events, phase: Phase, tally: &mut Tally) -> io::Result<()> {
        self.poll.poll(events, Some(Duration::from_millis(2)))?;
        if !events.is_empty() {
            self.receive(phase, tally)?;
        }
        Ok(())
    }

    fn expire(&mut self, phase: Phase, tally: &mut Tally) {
        let timeout = self.workload.timeout;
        for at in 0..self.clients.len() {
            for slot in 0..self.clients[at].slots.len() {
                let client = &mut self.clients[at];
                let Some(pending) = client.take_pending_if(slot, |p| p.sent.elapsed() > timeout)
                else {
                    continue;
                };
                tally.timeouts += 1;
                if client.connecting == Some(slot) {
                    // The connect was lost: the next send asks again.
                    client.connecting = None;
                }
                if phase == Phase::Prefill {
                    if pending.tries + 1 < PREFILL_TRIES {
                        self.send(at, slot, pending.job, pending.tries + 1);
                        continue;
                    }
                    tally.abandoned += 1;
                }
                self.start_next(at, slot, phase);
            }
        }
        self.flush();
    }

    fn abandon(&mut self) -> u64 {
        let mut dropped = 0;
        for client in &mut self.clients {
            for pending in &mut client.slots {
                dropped += u64::from(pending.take().is_some());
            }
            dropped += client.parked.len() as u64;
            client.parked.clear();
            client.connecting = None;
        }
        dropped
    }
}
