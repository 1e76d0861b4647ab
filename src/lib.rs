//! opentracker: a BitTorrent tracker compatible with upstream opentracker,
//! serving HTTP and UDP on IPv4 and IPv6 from one event loop, peers in RAM.
//!
//! # Layout
//! Data flows one way: socket → parse → tracker → encode → socket.
//! - [`proto`]: wire formats, pure (HTTP heads and queries, bencode, BEP 15,
//!   connection ids). No sockets, clocks or randomness.
//! - [`tracker`]: swarm state, pure; time comes in as an argument and peers
//!   go out in compact form into caller buffers.
//! - [`stats`]: counters, upstream's `/stats` formats, announces by client.
//! - [`state`]: the state file's lines, for warm restarts.
//! - [`rate_limit`]: requests per network and second, shared by threads.
//! - [`keyed_hash`]: the secret hash that spreads client-chosen values.
//! - [`config`]: defaults, TOML, upstream's `opentracker.conf`, the CLI.
//! - [`server`]: the only code that opens and serves the tracker's sockets —
//!   the mio loop, HTTP connections, UDP, streamed full scrapes, listeners.
//! - [`sys`]: OS integration that knows nothing of BitTorrent — signals,
//!   logging, sd_notify, socket activation, privilege drop, and the batch
//!   system calls (`recvmmsg`/`sendmmsg`) the server moves datagrams with.
//!
//! `main.rs` runs the start-up in one straight line: configuration → log →
//! listeners → privilege drop → access list → READY → serve.

pub mod config;
pub mod keyed_hash;
pub mod proto;
pub mod rate_limit;
pub mod server;
pub mod state;
pub mod stats;
pub mod sys;
pub mod tracker;
