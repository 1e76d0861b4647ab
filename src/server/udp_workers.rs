//! UDP sockets served by threads of their own (`listen.udp.workers`), as
//! upstream: each socket gets N threads that block in the receive call on
//! it, and the kernel hands each waiting batch to one of them. The event
//! loop keeps HTTP, the sweep, signals and systemd; the tracker is shared,
//! sharded by info hash.
//!
//! The threads never stop on their own: they end with the process, which
//! loses nothing, as UDP has no answer in flight between datagrams.
//!
//! Each worker keeps a [`Beat`]: when the batch it is answering began. The
//! event loop reads them before it pings systemd's watchdog, so a worker
//! stuck in one batch gets the service restarted as a stuck loop does.

use std::io;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use mio::net::UdpSocket;

use super::udp;
use super::{thread_start_error, Context};
use crate::proto::udp::MAX_REPLY;
use crate::sys::datagrams::Datagrams;

/// How long a worker rests after an unexpected receive error, so that a
/// persistent one is logged now and then rather than spun on.
const ERROR_PAUSE: Duration = Duration::from_secs(1);

/// A worker's sign of life: when the batch it is answering began, in
/// milliseconds after `origin`, plus one; 0 while it waits for datagrams,
/// which may rightly last forever on a quiet socket.
pub struct Beat {
    pub name: String,
    origin: Instant,
    busy_since: AtomicU64,
}

impl Beat {
    fn new(name: String, origin: Instant) -> Beat {
        Beat {
            name,
            origin,
            busy_since: AtomicU64::new(0),
        }
    }

    fn begin(&self, at: Instant) {
        let millis = at.saturating_duration_since(self.origin).as_millis();
        let millis = u64::try_from(millis).unwrap_or(u64::MAX - 1);
        self.busy_since.store(millis + 1, Ordering::Relaxed);
    }

    fn end(&self) {
        self.busy_since.store(0, Ordering::Relaxed);
    }

    /// How long the worker has been answering its current batch, if it is.
    pub fn busy_for(&self, now: Instant) -> Option<Duration> {
        match self.busy_since.load(Ordering::Relaxed) {
            0 => None,
            since => {
                let began = self.origin + Duration::from_millis(since - 1);
                Some(now.saturating_duration_since(began))
            }
        }
    }
}

/// The first of `beats` whose worker has spent longer than `limit` on one
/// batch (a batch takes microseconds), with how long.
pub fn stuck(beats: &[Arc<Beat>], now: Instant, limit: Duration) -> Option<(&str, Duration)> {
    beats.iter().find_map(|beat| {
        let busy = beat.busy_for(now)?;
        (busy > limit).then_some((beat.name.as_str(), busy))
    })
}

/// Starts `count` threads serving `socket` (the `index`th UDP listener),
/// adding their beats to `beats`.
pub fn spawn(
    socket: &UdpSocket,
    index: usize,
    count: usize,
    ctx: &Context,
    beats: &mut Vec<Arc<Beat>>,
) -> io::Result<()> {
    let addr = match socket.local_addr() {
        Ok(addr) => addr.to_string(),
        Err(_) => format!("socket {index}"),
    };
    for n in 0..count {
        // Each thread holds its own descriptor for the same socket. Blocking
        // mode belongs to the socket, so the event loop never reads it.
        let shared = std::net::UdpSocket::from(socket.as_fd().try_clone_to_owned()?);
        shared.set_nonblocking(false)?;
        let socket = UdpSocket::from_std(shared);
        let ctx = ctx.for_worker();
        let name = format!("udp{index}-worker{n}");
        let beat = Arc::new(Beat::new(name.clone(), ctx.instant));
        beats.push(Arc::clone(&beat));
        thread::Builder::new()
            .name(name)
            .spawn(move || serve(&socket, ctx, &beat))
            .map_err(|e| {
                let what = format!("UDP {addr}: starting worker thread {} of {count}", n + 1);
                thread_start_error(&what, e)
            })?;
    }
    Ok(())
}

fn serve(socket: &UdpSocket, mut ctx: Context, beat: &Beat) {
    let mut batch = Datagrams::default();
    let mut reply = Vec::with_capacity(MAX_REPLY);
    loop {
        match batch.receive_waiting(socket) {
            Ok(_) => {
                ctx.begin_turn();
                beat.begin(ctx.instant);
                udp::answer_batch(&mut ctx, &mut batch, &mut reply);
                // Before the replies go: a client that reads /stats after
                // its answer finds itself counted.
                ctx.publish_counters();
                // Counted with the next batch's.
                ctx.counters.udp_unsent += batch.send_queued(socket);
                beat.end();
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                log::warn!("udp worker receive: {e}");
                thread::sleep(ERROR_PAUSE);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_beat_tells_how_long_the_current_batch_has_taken() {
        let origin = Instant::now();
        let beat = Arc::new(Beat::new("udp0-worker0".into(), origin));
        let later = |secs| origin + Duration::from_secs(secs);
        assert_eq!(beat.busy_for(later(100)), None, "waiting is not busy");
        beat.begin(later(3));
        assert_eq!(beat.busy_for(later(10)), Some(Duration::from_secs(7)));
        let beats = [Arc::clone(&beat)];
        let limit = Duration::from_secs(15);
        assert_eq!(stuck(&beats, later(10), limit), None);
        assert_eq!(
            stuck(&beats, later(20), limit),
            Some(("udp0-worker0", Duration::from_secs(17)))
        );
        beat.end();
        assert_eq!(stuck(&beats, later(1000), limit), None);
        // A batch begun at the origin itself still counts as busy.
        beat.begin(origin);
        assert_eq!(beat.busy_for(origin), Some(Duration::ZERO));
    }
}
