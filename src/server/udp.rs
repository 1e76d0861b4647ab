//! BEP 15 requests: one datagram in, at most one datagram out.
//!
//! Anti-amplification rule: nothing but a 16-byte connect reply goes to a
//! source that has not proven its address with a valid connection id, and
//! the error reply for a wrong id is only sent when it is no larger than the
//! request that provoked it.

use std::net::{IpAddr, SocketAddr};

use super::context::CLIENT_BLOCKED;
use super::respond::Outcome;
use super::Context;
use crate::proto::peer_id::ClientTag;
use crate::proto::{passkey, proxy_protocol, udp, InfoHash};
use crate::sys::datagrams::Datagrams;
use crate::tracker::{Announce, Announced, Families};

/// Peers per reply, as upstream: 200 IPv4 peers, or 66 IPv6 ones so the
/// reply stays about 1200 bytes and is never fragmented.
const MAX_PEERS_V4: u32 = 200;
const MAX_PEERS_V6: u32 = 66;
/// URL data (BEP 41) read from an announce: room for a path with the
/// longest passkey, and a query besides.
const URL_DATA_MAX: usize = 256;

/// Answers every datagram of a received batch, queueing the replies.
pub fn answer_batch(ctx: &mut Context, batch: &mut Datagrams, reply: &mut Vec<u8>) {
    for i in 0..batch.len() {
        let (packet, source) = batch.get(i);
        handle(ctx, packet, source, reply);
        if !reply.is_empty() {
            batch.queue_reply(i, reply);
        }
    }
}

/// Handles one datagram from `source`, writing the reply (if any) to `out`.
/// The reply goes back to `source`, which may be a balancer relaying the
/// client its PROXY header names.
pub fn handle(ctx: &mut Context, packet: &[u8], source: SocketAddr, out: &mut Vec<u8>) {
    out.clear();
    ctx.counters.udp_packets += 1;
    let (packet, client) = if ctx.expects_proxy_header(source.ip().to_canonical()) {
        match proxy_protocol::parse_datagram(packet) {
            Ok(header) => (&packet[header.len..], header.source.unwrap_or(source)),
            Err(_) => {
                ctx.counters.proxy_header_errors += 1;
                if let Some(log) = &ctx.request_log {
                    let balancer = source.ip().to_canonical();
                    log.request(balancer, balancer, "udp bad proxy header");
                }
                return;
            }
        }
    } else {
        (packet, source)
    };
    let ip = client.ip().to_canonical();
    let outcome = answer(ctx, packet, ip, out);
    // As over HTTP, a PROXY protocol balancer is not named: it is the
    // same for every line, and its header is checked.
    if let Some(log) = &ctx.request_log {
        log.request(ip, ip, outcome);
    }
}

/// Answers the request in `packet` from `ip`; what it got, for the request
/// log.
fn answer(ctx: &mut Context, packet: &[u8], ip: IpAddr, out: &mut Vec<u8>) -> Outcome {
    // Silence is the cheapest answer to a network an operator has shut out.
    if ctx.blocks_network(ip) {
        ctx.counters.blocked_networks += 1;
        return "udp blocked network";
    }
    let Some(request) = udp::parse(packet) else {
        return "udp malformed";
    };
    let now = ctx.now;
    let transaction_id = request.transaction_id();
    if let Some(connection_id) = request.connection_id() {
        if !ctx.connection_ids.check(ip, now.into(), connection_id) {
            ctx.counters.udp_mismatches += 1;
            if packet.len() >= 8 + udp::MISMATCH_MESSAGE.len() {
                udp::mismatch_reply(out, transaction_id);
            }
            return "udp connection id mismatch";
        }
        // Only requests whose source has proven its address count against
        // its network's rate: anyone can send connects, or junk, from a
        // forged address, and would use up that network's allowance.
        // Beyond the rate, silence: an answer costs what the limit saves.
        if ctx.over_rate(ip) {
            return "udp rate limited";
        }
    }
    if let Some(reason) = passkey_refusal(ctx, &request, packet) {
        udp::error_reply(out, transaction_id, reason);
        return "udp passkey refused";
    }
    match request {
        udp::Request::Connect { transaction_id } => {
            ctx.counters.udp_connects += 1;
            udp::connect_reply(out, transaction_id, ctx.connection_ids.make(ip, now.into()));
            "udp connect"
        }
        udp::Request::Announce(announce) if ctx.blocks_client(&announce.peer_id) => {
            ctx.counters.blocked_clients += 1;
            udp::error_reply(out, transaction_id, CLIENT_BLOCKED);
            "udp blocked client"
        }
        udp::Request::Announce(announce) => {
            let cap = if ip.is_ipv4() {
                MAX_PEERS_V4
            } else {
                MAX_PEERS_V6
            };
            let request = Announce {
                info_hash: announce.info_hash,
                peer: SocketAddr::new(ip, announce.port),
                seeding: announce.seeding,
                event: announce.event,
                numwant: announce.numwant.min(cap) as usize,
            };
            let outcome = ctx.announce(&request, Families::Own);
            // As over HTTP, an announce the access lists refuse is counted
            // there alone (upstream counts it as a successful one too).
            if outcome != Announced::NotAuthorized {
                ctx.counters.udp_announces += 1;
                (ctx.counters.clients).count(ClientTag::of(&announce.peer_id));
            }
            let interval = ctx.interval();
            match outcome {
                Announced::Ok { counts, completed } => {
                    udp::announce_reply_head(out, transaction_id, interval, counts);
                    out.extend_from_slice(if ip.is_ipv4() {
                        &ctx.peers4
                    } else {
                        &ctx.peers6
                    });
                    if completed {
                        ctx.log_completed(&request.info_hash, Some(&announce.peer_id), ip);
                    }
                }
                Announced::Stopped { counts } => {
                    udp::announce_reply_head(out, transaction_id, interval, counts)
                }
                Announced::NotAuthorized => {
                    ctx.counters.not_authorized += 1;
                    udp::not_authorized_reply(out, transaction_id);
                }
            }
            "udp announce"
        }
        udp::Request::Scrape {
            transaction_id,
            hashes,
            ..
        } => {
            ctx.counters.udp_scrapes += 1;
            udp::scrape_reply_head(out, transaction_id);
            for raw in hashes.chunks_exact(20) {
                let mut hash = InfoHash::default();
                hash.0.copy_from_slice(raw);
                let counts = ctx.tracker.scrape(&ctx.swarm_of(hash));
                udp::scrape_reply_entry(out, counts.unwrap_or_default());
            }
            "udp scrape"
        }
    }
}

/// Why `request` is refused under `access.passkeys`, if it is. Connects
/// need no key. An announce carries it in its BEP 41 URL data; a scrape has
/// no room for any (its hashes run to the end of the datagram), so UDP
/// scrapes are refused.
fn passkey_refusal(
    ctx: &mut Context,
    request: &udp::Request<'_>,
    packet: &[u8],
) -> Option<&'static str> {
    if !ctx.settings.needs_passkeys {
        return None;
    }
    match request {
        udp::Request::Connect { .. } => None,
        udp::Request::Announce(_) => {
            let mut url = [0u8; URL_DATA_MAX];
            let url = passkey::url_data(&packet[udp::ANNOUNCE_LEN..], &mut url);
            ctx.passkey_refusal(passkey::in_url(url))
        }
        udp::Request::Scrape { .. } => ctx.passkey_refusal(None),
    }
}
