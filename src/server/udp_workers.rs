//! UDP sockets served by threads of their own (`listen.udp.workers`), as
//! upstream: each socket gets N threads that block in the receive call on
//! it, and the kernel hands each waiting batch to one of them. The event
//! loop keeps HTTP, the sweep, signals and systemd; the tracker is shared,
//! sharded by info hash.
//!
//! The threads never stop on their own: they end with the process, which
//! loses nothing, as UDP has no answer in flight between datagrams.

use std::io;
use std::os::fd::AsFd;
use std::thread;
use std::time::Duration;

use mio::net::UdpSocket;

use super::udp;
use super::Context;
use crate::proto::udp::MAX_REPLY;
use crate::sys::datagrams::Datagrams;

/// How long a worker rests after an unexpected receive error, so that a
/// persistent one is logged now and then rather than spun on.
const ERROR_PAUSE: Duration = Duration::from_secs(1);

/// Starts `count` threads serving `socket` (the `index`th UDP listener).
pub fn spawn(socket: &UdpSocket, index: usize, count: usize, ctx: &Context) -> io::Result<()> {
    for n in 0..count {
        // Each thread holds its own descriptor for the same socket. Blocking
        // mode belongs to the socket, so the event loop never reads it.
        let shared = std::net::UdpSocket::from(socket.as_fd().try_clone_to_owned()?);
        shared.set_nonblocking(false)?;
        let socket = UdpSocket::from_std(shared);
        let ctx = ctx.for_worker();
        thread::Builder::new()
            .name(format!("udp{index}-worker{n}"))
            .spawn(move || serve(&socket, ctx))
            .map_err(|e| {
                // Most likely a task limit (TasksMax=, ulimit -u): say which.
                let what = format!("starting UDP worker thread {} of {count}: {e}", n + 1);
                io::Error::new(e.kind(), what)
            })?;
    }
    Ok(())
}

fn serve(socket: &UdpSocket, mut ctx: Context) {
    let mut batch = Datagrams::default();
    let mut reply = Vec::with_capacity(MAX_REPLY);
    loop {
        match batch.receive_waiting(socket) {
            Ok(_) => {
                ctx.tick();
                udp::answer_batch(&mut ctx, &mut batch, &mut reply);
                // Before the replies go: a client that reads /stats after
                // its answer finds itself counted.
                ctx.publish_counters();
                // Counted with the next batch's.
                ctx.counters.udp_unsent += batch.send_queued(socket);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                log::warn!("udp worker receive: {e}");
                thread::sleep(ERROR_PAUSE);
            }
        }
    }
}
