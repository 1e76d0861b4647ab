//! Cluster sync (`[cluster]`): the socket other trackers send to, this
//! tracker's announces sent to them every second, and theirs applied here
//! as if made here, so each tracker hands out every peer. The wire format
//! and its authentication are in [`crate::proto::cluster`].

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use mio::net::UdpSocket;
use mio::{Interest, Registry, Token};

use super::Context;
use crate::config::Config;
use crate::proto::cluster::{Opener, Refused, Sealer};
use crate::tracker::{Announce, Announced, Families};

/// Keys shorter than this are refused: a guessable key lets anyone add
/// peers to every swarm.
const MIN_KEY: usize = 16;

pub struct Cluster {
    socket: UdpSocket,
    peers: Vec<SocketAddr>,
    sealer: Sealer,
    opener: Opener,
}

/// The cluster's key, read from `cluster.key_file` (None without a
/// cluster); an error if it is unreadable or too short to authenticate.
pub fn read_key(config: &Config) -> Result<Option<Vec<u8>>, String> {
    let Some(key_file) = &config.cluster.key_file else {
        return Ok(None);
    };
    let key = crate::sys::read_regular_file(key_file)
        .map_err(|e| format!("cluster.key_file {}: {e}", key_file.display()))?;
    let key = key.trim_ascii().to_vec();
    if key.len() < MIN_KEY {
        return Err(format!(
            "cluster.key_file {}: the key has {} bytes; it needs at least {MIN_KEY} \
             (e.g. head -c 32 /dev/urandom | base64)",
            key_file.display(),
            key.len()
        ));
    }
    Ok(Some(key))
}

/// Binds the cluster socket and reads the key, before the privilege drop:
/// the key file may then be root's alone, and the port a privileged one.
pub fn bind(config: &Config) -> Result<Option<Cluster>, String> {
    let Some(listen) = config.cluster.listen else {
        return Ok(None);
    };
    let Some(key) = read_key(config)? else {
        return Ok(None);
    };
    // The other trackers send a second's announces at once: a burst.
    let socket = super::listeners::udp_socket_with_large_buffer(listen)
        .and_then(|socket| {
            socket.bind(&listen.into())?;
            Ok(std::net::UdpSocket::from(socket))
        })
        .map_err(|e| format!("bind cluster UDP {listen}: {e}"))?;
    // Drawn at start: datagrams carrying it are this tracker's own.
    let id = fastrand::u64(..);
    Ok(Some(Cluster {
        socket: UdpSocket::from_std(socket),
        peers: config.cluster.peers.clone(),
        sealer: Sealer::new(key.clone(), id),
        opener: Opener::new(key, id),
    }))
}

impl Cluster {
    pub fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        registry.register(&mut self.socket, token, Interest::READABLE)
    }

    /// The address the socket is bound to, for the start-up line.
    pub fn describe(&self) -> String {
        let local = self
            .socket
            .local_addr()
            .map_or("?".into(), |a| a.to_string());
        format!("cluster sync on {local} with {} trackers", self.peers.len())
    }

    /// Datagrams the kernel dropped on the socket for a full receive queue.
    pub fn dropped(&self) -> u64 {
        crate::sys::datagrams::dropped(&self.socket).map_or(0, u64::from)
    }

    /// Sends the announces waiting in the outbox to every other tracker.
    pub fn send(&mut self, ctx: &mut Context) {
        let Some(outbox) = &ctx.cluster_outbox else {
            return;
        };
        let entries = outbox.take();
        ctx.counters.cluster_overflowed += outbox.overflowed.swap(0, Ordering::Relaxed);
        if entries.is_empty() {
            return;
        }
        let (mut sent, mut failed) = (0, 0);
        let now = ctx.clock().1;
        self.sealer.seal_all(&entries, now, |datagram| {
            for peer in &self.peers {
                match self.socket.send_to(datagram, *peer) {
                    Ok(_) => sent += 1,
                    Err(e) => {
                        failed += 1;
                        log::debug!("cluster send to {peer}: {e}");
                    }
                }
            }
        });
        ctx.counters.cluster_sent += sent;
        ctx.counters.cluster_unsent += failed;
    }

    /// Applies every datagram waiting on the socket.
    pub fn receive(&mut self, ctx: &mut Context) {
        let mut buffer = [0u8; 2048];
        loop {
            let (len, from) = match self.socket.recv_from(&mut buffer) {
                Ok(received) => received,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::warn!("cluster receive: {e}");
                    return;
                }
            };
            match self.opener.open(&buffer[..len], ctx.clock().1) {
                Ok(entries) => {
                    for entry in entries {
                        let request = Announce {
                            info_hash: entry.info_hash,
                            peer: entry.peer,
                            seeding: entry.seeding,
                            event: entry.event,
                            numwant: 0,
                        };
                        // One the access lists here refuse is not applied.
                        if ctx.apply_announce(&request, Families::Both) != Announced::NotAuthorized
                        {
                            ctx.counters.cluster_received += 1;
                        }
                    }
                }
                // A tracker may list itself among the peers; nothing wrong.
                Err(Refused::Own) => {}
                Err(refused) => {
                    ctx.counters.cluster_refused += 1;
                    log::debug!("cluster datagram from {from} refused: {refused:?}");
                }
            }
        }
    }
}
