//! The UDP load: virtual clients, each a socket on its own loopback address
//! with one request in flight, driven by one mio loop per sender thread.

use std::io::{self, ErrorKind};
use std::net::{SocketAddr, UdpSocket as StdUdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};

use crate::phases::{self, Driver, Spec};
use crate::swarm::client_address;
use crate::tally::Tally;
use crate::udp_wire::{self, Announce, Reply};
use crate::workload::{Job, Phase, Workload};

/// BEP 15: a client may use a connection id for one minute.
const CONNECTION_ID_LIFETIME: Duration = Duration::from_secs(60);
/// A prefill announce is sent this many times before it is given up.
const PREFILL_TRIES: u32 = 5;

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
    socket: UdpSocket,
    connection: Option<ConnectionId>,
    pending: Option<Pending>,
    next_transaction: u32,
    cursor: u32,
}

impl Client {
    fn take_pending_if(&mut self, matches: impl FnOnce(&Pending) -> bool) -> Option<Pending> {
        if self.pending.as_ref().is_some_and(matches) {
            self.pending.take()
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
    clients: Vec<Client>,
    packet: Vec<u8>,
}

pub fn run(raw: &[String]) -> Result<(), String> {
    let spec = Spec {
        name: "udp",
        valued: &["reuse"],
        switches: &[],
    };
    phases::run(raw, spec, |workload, args, target, thread| {
        let reuse = args.get("reuse", 4)?;
        UdpDriver::new(workload, reuse, target, thread).map_err(|e| e.to_string())
    })
}

impl UdpDriver {
    fn new(
        workload: Arc<Workload>,
        reuse: u32,
        target: SocketAddr,
        thread: u32,
    ) -> io::Result<Self> {
        let poll = Poll::new()?;
        let mut clients = Vec::new();
        for index in workload.clients_of_thread(thread) {
            let socket = StdUdpSocket::bind((client_address(index), 0))?;
            socket.connect(target)?;
            socket.set_nonblocking(true)?;
            let mut socket = UdpSocket::from_std(socket);
            let token = Token(clients.len());
            poll.registry()
                .register(&mut socket, token, Interest::READABLE)?;
            clients.push(Client {
                index,
                socket,
                connection: None,
                pending: None,
                next_transaction: fastrand::u32(..),
                cursor: 0,
            });
        }
        Ok(UdpDriver {
            workload,
            reuse: reuse.max(1),
            poll,
            clients,
            packet: Vec::with_capacity(128),
        })
    }

    /// Sends `job`, preceded by a connect when the client has no usable id.
    fn send(&mut self, slot: usize, job: Job, tries: u32) {
        let workload = &*self.workload;
        let client = &mut self.clients[slot];
        client.next_transaction = client.next_transaction.wrapping_add(1);
        let transaction = client.next_transaction;
        let usable = client
            .connection
            .as_mut()
            .filter(|c| c.uses_left > 0 && c.obtained.elapsed() < CONNECTION_ID_LIFETIME);
        match (usable, job) {
            (None, _) => udp_wire::connect_request(&mut self.packet, transaction),
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
        // A failed send (full socket buffer, an earlier ICMP error) shows up
        // as a timeout, like a lost datagram would.
        let _ = client.socket.send(&self.packet);
        client.pending = Some(Pending {
            transaction,
            job,
            sent: Instant::now(),
            tries,
        });
    }

    fn start_next(&mut self, slot: usize, phase: Phase) {
        let client = &mut self.clients[slot];
        if let Some(job) = self
            .workload
            .next_job(phase, client.index, &mut client.cursor)
        {
            self.send(slot, job, 0);
        }
    }

    fn receive(&mut self, slot: usize, phase: Phase, tally: &mut Tally) -> io::Result<()> {
        let mut buffer = [0u8; 2048];
        loop {
            let length = match self.clients[slot].socket.recv(&mut buffer) {
                Ok(length) => length,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                // ICMP port unreachable: the request it answers times out.
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => continue,
                Err(e) => return Err(e),
            };
            let now = Instant::now();
            let Some((transaction, reply)) = udp_wire::parse_reply(&buffer[..length]) else {
                tally.io_errors += 1;
                continue;
            };
            let client = &mut self.clients[slot];
            // Anything else is a late answer to a request already timed out.
            let Some(pending) = client.take_pending_if(|p| p.transaction == transaction) else {
                continue;
            };
            tally.record(now - pending.sent);
            match reply {
                Reply::Connected(id) => {
                    tally.connects += 1;
                    client.connection = Some(ConnectionId {
                        id,
                        obtained: now,
                        uses_left: self.reuse,
                    });
                    self.send(slot, pending.job, pending.tries);
                    continue;
                }
                Reply::Announced => tally.announces += 1,
                Reply::Scraped => tally.scrapes += 1,
                Reply::Refused => tally.refused += 1,
                Reply::Error => {
                    tally.error_replies += 1;
                    client.connection = None;
                    if phase == Phase::Prefill && pending.tries + 1 < PREFILL_TRIES {
                        self.send(slot, pending.job, pending.tries + 1);
                        continue;
                    }
                }
            }
            self.start_next(slot, phase);
        }
    }
}

impl Driver for UdpDriver {
    fn start(&mut self, phase: Phase, _tally: &mut Tally) {
        for slot in 0..self.clients.len() {
            self.start_next(slot, phase);
        }
    }

    fn busy(&self) -> bool {
        self.clients.iter().any(|c| c.pending.is_some())
    }

    fn step(&mut self, events: &mut Events, phase: Phase, tally: &mut Tally) -> io::Result<()> {
        self.poll.poll(events, Some(Duration::from_millis(2)))?;
        for event in events.iter() {
            self.receive(event.token().0, phase, tally)?;
        }
        Ok(())
    }

    fn expire(&mut self, phase: Phase, tally: &mut Tally) {
        let timeout = self.workload.timeout;
        for slot in 0..self.clients.len() {
            let client = &mut self.clients[slot];
            let Some(pending) = client.take_pending_if(|p| p.sent.elapsed() > timeout) else {
                continue;
            };
            tally.timeouts += 1;
            if phase == Phase::Prefill {
                if pending.tries + 1 < PREFILL_TRIES {
                    self.send(slot, pending.job, pending.tries + 1);
                    continue;
                }
                tally.abandoned += 1;
            }
            self.start_next(slot, phase);
        }
    }

    fn abandon(&mut self) -> u64 {
        let mut dropped = 0;
        for client in &mut self.clients {
            dropped += u64::from(client.pending.take().is_some());
        }
        dropped
    }
}
