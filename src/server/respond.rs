//! One HTTP request head in, one response out: routing, parameters, the
//! tracker call, and the encoding. No socket in sight; the connection code
//! in [`super::http`] does the buffering and writing.

use std::net::{IpAddr, SocketAddr};

use super::sliced::{
    BodyKind, Rank, Ranking, SlicedBody, StreamTicket, StreamedBody, MAX_BODY_WITHOUT_PLACE,
};
use super::{ws, Context};
use crate::proto::http::{self, Handshake, RequestError, Route};
use crate::proto::params::{self, ParamError, StatsMode};
use crate::proto::peer_id::ClientTag;
use crate::proto::response::{self, Connection, HttpError};
use crate::proto::{bencode, SentHash};
use crate::stats::{self, HttpErrorKind};
use crate::sys;
use crate::tracker::{Announce, Announced, Families};

pub(super) const NOT_AUTHORIZED: &str =
    "Requested download is not authorized for use with this tracker.";
const NO_INFO_HASH: &str =
    "Your client forgot to send your torrent's info_hash. Please upgrade your client.";

/// What the connection does after writing the response.
pub struct Reply {
    pub close: bool,
    /// An HTTP error status: the client may still be sending.
    pub error: bool,
    /// A body still to be streamed after the head, or a whole response
    /// still to be gathered.
    pub body: Option<SlicedBody>,
    /// The place a large whole response holds until it is out.
    pub ticket: Option<StreamTicket>,
    /// The connection becomes a WebSocket once the head is written, for
    /// this client.
    pub upgrade: Option<ws::Admission>,
}

impl Reply {
    /// An error answer: the connection closes after it.
    const ERROR: Reply = Reply {
        close: true,
        error: true,
        body: None,
        ticket: None,
        upgrade: None,
    };
}

/// What was answered, for request log lines: the route, or the error.
pub type Outcome = &'static str;

enum Answer<'a> {
    /// A `text/plain` body, in `ctx.body`.
    Body,
    /// An `application/json` body, in `ctx.body`.
    Json,
    /// Either, larger than [`MAX_BODY_WITHOUT_PLACE`], with its place.
    Placed {
        json: bool,
        ticket: StreamTicket,
    },
    Error(HttpError, HttpErrorKind),
    /// 402: ask again in `wait` seconds; counted as `kind`, for a full
    /// scrape too soon or no room for another sliced body.
    PaymentRequired {
        wait: u32,
        kind: HttpErrorKind,
    },
    Redirect,
    Stream(BodyKind, StreamTicket),
    /// A `/stats` ranking, answered once gathered.
    Rank(Rank, StreamTicket),
    /// Switch to a WebSocket, answering this `Sec-WebSocket-Key`.
    Upgrade(&'a [u8]),
}

/// When [`super::sliced::MAX_STREAMS`] sliced bodies (or large whole ones)
/// are going out, the seconds a client asking for another is told to wait,
/// with upstream's answer to a full scrape too soon (402 and, here,
/// `Retry-After`), which scrapers heed.
const STREAMS_BUSY_RETRY: u32 = 30;

/// A body of `kind` streamed over many turns to the client at `ip`, if
/// there is room for one more.
fn stream(ctx: &Context, kind: BodyKind, ip: IpAddr) -> Answer<'static> {
    sliced(ctx, ip, |ticket| Answer::Stream(kind, ticket))
}

/// A ranking gathered over many turns for the client at `ip`, if there is
/// room for one more.
fn rank(ctx: &Context, rank: Rank, ip: IpAddr) -> Answer<'static> {
    sliced(ctx, ip, |ticket| Answer::Rank(rank, ticket))
}

fn sliced(
    ctx: &Context,
    ip: IpAddr,
    answer: impl FnOnce(StreamTicket) -> Answer<'static>,
) -> Answer<'static> {
    match ctx.stream_ticket(ip) {
        Some(ticket) => answer(ticket),
        None => Answer::PaymentRequired {
            wait: STREAMS_BUSY_RETRY,
            kind: HttpErrorKind::PaymentRequired,
        },
    }
}

/// A whole body in `ctx.body` for the client at `ip`, as JSON or text,
/// as it may go out: one larger than [`MAX_BODY_WITHOUT_PLACE`] takes a
/// place for as long as it waits to be read, and when none is free the
/// client is told to come back, as for a streamed body. Not where only
/// the networks in `access.stats` may ask: the operator's monitoring keeps
/// its answers while strangers' full scrapes hold every place.
fn whole(ctx: &Context, ip: IpAddr, json: bool) -> Answer<'static> {
    let trusted = !ctx.settings.stats_allowed.is_empty();
    if trusted || ctx.body.len() <= MAX_BODY_WITHOUT_PLACE {
        return if json { Answer::Json } else { Answer::Body };
    }
    sliced(ctx, ip, |ticket| Answer::Placed { json, ticket })
}

fn param_error(error: ParamError) -> Answer<'static> {
    match error {
        ParamError::CompactZero => Answer::Error(HttpError::BadRequest, HttpErrorKind::CompactZero),
        _ => Answer::Error(HttpError::BadRequest, HttpErrorKind::InvalidParameter),
    }
}

/// Answers the request in `head` from a client at `client`.
pub fn respond(
    ctx: &mut Context,
    head: &[u8],
    client: IpAddr,
    may_keep_alive: bool,
    out: &mut Vec<u8>,
) -> (Reply, Outcome) {
    let settings = &ctx.settings;
    let request = match http::parse(
        head,
        settings.stats_path.as_bytes(),
        settings.needs_passkeys,
    ) {
        Ok(request) => request,
        Err(error) => {
            ctx.counters.http_error(match error {
                RequestError::Parse => HttpErrorKind::ParseError,
                RequestError::NoQuery => HttpErrorKind::InvalidParameter,
            });
            response::error(out, HttpError::BadRequest);
            return (Reply::ERROR, HttpError::BadRequest.status_line());
        }
    };
    ctx.body.clear();
    let (answer, outcome) = match request.route {
        Route::Announce(_) | Route::Scrape(_) | Route::FullScrape | Route::WebSocket { .. }
            if refuses_network(ctx, &request, client) =>
        {
            ctx.counters.blocked_networks += 1;
            bencode::failure(&mut ctx.body, super::context::NETWORK_BLOCKED);
            (Answer::Body, "blocked network")
        }
        Route::Announce(_) | Route::Scrape(_) | Route::FullScrape | Route::WebSocket { .. }
            if ctx.over_rate(peer_ip(ctx, request.head, client)) =>
        {
            bencode::failure(&mut ctx.body, super::context::RATE_LIMITED);
            (Answer::Body, "rate limited")
        }
        Route::Announce(_) | Route::Scrape(_) | Route::FullScrape | Route::WebSocket { .. }
            if refuses_passkey(ctx, request.passkey) =>
        {
            (Answer::Body, "passkey refused")
        }
        Route::Announce(query) => (announce(ctx, query, &request, client), "announce"),
        Route::Scrape(query) => (scrape(ctx, query), "scrape"),
        Route::FullScrape if ctx.settings.full_scrape => {
            let ip = peer_ip(ctx, request.head, client);
            match ctx.full_scrape_wait(ip) {
                None => (stream(ctx, BodyKind::FullScrape, ip), "full scrape"),
                Some(wait) => {
                    let kind = HttpErrorKind::NotModest;
                    (Answer::PaymentRequired { wait, kind }, "")
                }
            }
        }
        Route::WebSocket {
            handshake: Handshake::Key(key),
            ..
        } if ctx.settings.webtorrent.is_some() => (Answer::Upgrade(key), "websocket"),
        Route::WebSocket {
            handshake: Handshake::OtherVersion,
            ..
        } if ctx.settings.webtorrent.is_some() => (
            Answer::Error(HttpError::UpgradeRequired, HttpErrorKind::UpgradeRequired),
            "",
        ),
        // Off, upstream's answer: it never reads `Upgrade`, so a query is
        // an announce.
        Route::WebSocket {
            query: Some(query), ..
        } if ctx.settings.webtorrent.is_none() => {
            (announce(ctx, query, &request, client), "announce")
        }
        // Off without a query (upstream's 400 for an announce path without
        // one), or not a handshake browsers make.
        Route::WebSocket { .. } => (
            Answer::Error(HttpError::BadRequest, HttpErrorKind::InvalidParameter),
            "",
        ),
        Route::Stats(query) => (stats(ctx, query, client), "stats"),
        Route::Metrics => (metrics(ctx, client), "metrics"),
        Route::Root if ctx.settings.redirect_url.is_some() => (Answer::Redirect, "redirect"),
        Route::Root | Route::NotFound | Route::FullScrape => (
            Answer::Error(HttpError::NotFound, HttpErrorKind::NotFound),
            "",
        ),
    };
    let keep_alive = may_keep_alive && http::wants_keep_alive(&request);
    let outcome = match &answer {
        Answer::Error(error, _) => error.status_line(),
        Answer::PaymentRequired { .. } => HttpError::PaymentRequired.status_line(),
        Answer::Redirect => "302 Found",
        Answer::Body
        | Answer::Json
        | Answer::Placed { .. }
        | Answer::Stream(..)
        | Answer::Rank(..)
        | Answer::Upgrade(_) => outcome,
    };
    let reply = match answer {
        Answer::Body | Answer::Json | Answer::Placed { .. } => {
            let connection = Connection::of(keep_alive, request.http11);
            let (json, ticket) = match answer {
                Answer::Json => (true, None),
                Answer::Placed { json, ticket } => (json, Some(ticket)),
                _ => (false, None),
            };
            let content_type: &[u8] = if json {
                b"application/json"
            } else {
                b"text/plain"
            };
            response::ok_head_of_type(out, content_type, ctx.body.len(), connection);
            out.extend_from_slice(&ctx.body);
            Reply {
                close: !keep_alive,
                error: false,
                body: None,
                ticket,
                upgrade: None,
            }
        }
        Answer::Rank(rank, ticket) => {
            let connection = Connection::of(keep_alive, request.http11);
            Reply {
                close: !keep_alive,
                error: false,
                body: Some(SlicedBody::Ranking(Ranking::new(
                    rank,
                    &ctx.networks_turn,
                    connection,
                    ticket,
                ))),
                ticket: None,
                upgrade: None,
            }
        }
        Answer::Error(error, kind) => {
            ctx.counters.http_error(kind);
            response::error(out, error);
            Reply::ERROR
        }
        Answer::PaymentRequired { wait, kind } => {
            ctx.counters.http_error(kind);
            response::error_retry_after(out, HttpError::PaymentRequired, wait);
            Reply::ERROR
        }
        Answer::Redirect => {
            ctx.counters.http_error(HttpErrorKind::Redirect);
            response::redirect(out, ctx.settings.redirect_url.as_deref().unwrap_or("/"));
            Reply {
                close: true,
                error: false,
                body: None,
                ticket: None,
                upgrade: None,
            }
        }
        Answer::Upgrade(key) => {
            ctx.counters.webtorrent.upgrades += 1;
            response::switching_to_websocket(out, key);
            Reply {
                close: false,
                error: false,
                body: None,
                ticket: None,
                upgrade: Some(ws::Admission {
                    client: peer_ip(ctx, request.head, client),
                    passkey: request.passkey.map(Box::from),
                }),
            }
        }
        Answer::Stream(kind, ticket) => {
            // Upstream's full scrape looks for `gzip` in the whole request,
            // its stats handler only after the query.
            let loose_scope = match kind {
                BodyKind::FullScrape => head,
                _ => request.after_query,
            };
            let gzip = http::accepts_gzip(head, loose_scope);
            // Logged, as every request, under `log.requests` with the
            // client labelled as `log.client_ip` says.
            if kind == BodyKind::FullScrape {
                ctx.counters.full_scrapes += 1;
            }
            response::streamed_head(out, kind.content_type(), gzip, request.http11);
            Reply {
                close: true,
                error: false,
                body: Some(SlicedBody::Streamed(StreamedBody::new(
                    kind,
                    ticket,
                    gzip,
                    request.http11,
                ))),
                ticket: None,
                upgrade: None,
            }
        }
    };
    (reply, outcome)
}

/// The address the peer announces from: the connection's, or the one a
/// trusted proxy forwards. Only a trusted proxy's header counts; it is not
/// even looked for otherwise.
pub fn peer_ip(ctx: &Context, head: &[u8], client: IpAddr) -> IpAddr {
    let trusted_proxy = ctx.settings.proxy.iter().any(|net| net.contains(client));
    match trusted_proxy.then(|| http::forwarded_for(head)).flatten() {
        Some(forwarded) => forwarded.to_canonical(),
        None => client,
    }
}

/// Whether the peer behind `request` is in `access.blocked_networks`.
fn refuses_network(ctx: &Context, request: &http::Request<'_>, client: IpAddr) -> bool {
    ctx.blocks_networks()
        && (ctx.blocks_network(client) || ctx.blocks_network(peer_ip(ctx, request.head, client)))
}

/// Under `access.passkeys`, answers a request without a known passkey with
/// a failure reason; true when it did.
fn refuses_passkey(ctx: &mut Context, key: Option<&[u8]>) -> bool {
    match ctx.passkey_refusal(key) {
        Some(reason) => {
            bencode::failure(&mut ctx.body, reason);
            true
        }
        None => false,
    }
}

fn announce(
    ctx: &mut Context,
    query: &[u8],
    request: &http::Request<'_>,
    client: IpAddr,
) -> Answer<'static> {
    let params = match params::announce(query) {
        Ok(params) => params,
        Err(ParamError::MissingInfoHash) => {
            bencode::failure(&mut ctx.body, NO_INFO_HASH);
            return Answer::Body;
        }
        Err(error) => return param_error(error),
    };
    if params.peer_id.is_some_and(|id| ctx.blocks_client(&id)) {
        ctx.counters.blocked_clients += 1;
        bencode::failure(&mut ctx.body, super::context::CLIENT_BLOCKED);
        return Answer::Body;
    }
    let ip = peer_ip(ctx, request.head, client);
    let numwant = match params.numwant {
        Some(n) if n >= 0 => (n as u64).min(ctx.settings.numwant_max.into()) as usize,
        _ => ctx.settings.numwant as usize,
    };
    let announce = Announce {
        info_hash: params.info_hash,
        peer: SocketAddr::new(ip, params.port),
        seeding: params.seeding,
        event: params.event,
        numwant,
    };
    let outcome = ctx.announce(&announce, Families::Both);
    let interval = ctx.interval();
    if outcome != Announced::NotAuthorized {
        ctx.counters.tcp_announces += 1;
        let client = params
            .peer_id
            .map_or_else(ClientTag::default, |id| ClientTag::of(&id));
        ctx.counters.clients.count(client);
    }
    match outcome {
        Announced::Ok { counts, completed } => {
            let external_ip = ctx.settings.external_ip.then_some(ip);
            let peers = (&ctx.peers4[..], &ctx.peers6[..]);
            bencode::announce(&mut ctx.body, counts, interval, peers, external_ip);
            if completed {
                ctx.log_completed(&announce.info_hash, params.peer_id.as_ref(), ip);
            }
        }
        Announced::Stopped { counts } => {
            bencode::stopped(&mut ctx.body, counts, interval, ip.is_ipv6());
        }
        Announced::NotAuthorized => {
            ctx.counters.not_authorized += 1;
            bencode::failure(&mut ctx.body, NOT_AUTHORIZED);
        }
    }
    Answer::Body
}

fn scrape(ctx: &mut Context, query: &[u8]) -> Answer<'static> {
    let mut hashes: Vec<SentHash> = std::mem::take(&mut ctx.scrape_hashes);
    let answer = match params::scrape(query, &mut hashes) {
        Ok(()) => {
            ctx.counters.tcp_scrapes += 1;
            ctx.body.extend_from_slice(bencode::FILES_OPEN);
            for sent in &hashes {
                if let Some(counts) = ctx.tracker.scrape(&ctx.swarm_of(sent.info_hash())) {
                    bencode::scrape_entry(&mut ctx.body, sent.as_sent(), counts);
                }
            }
            ctx.body.extend_from_slice(bencode::FILES_CLOSE);
            Answer::Body
        }
        Err(error) => param_error(error),
    };
    ctx.scrape_hashes = hashes;
    answer
}

/// `access.stats` guards `/stats` and `/metrics` alike; empty allows all.
fn may_see_stats(ctx: &Context, client: IpAddr) -> bool {
    let allowed = &ctx.settings.stats_allowed;
    allowed.is_empty() || allowed.iter().any(|net| net.contains(client))
}

const STATS_DENIED: Answer<'static> =
    Answer::Error(HttpError::Forbidden, HttpErrorKind::AccessDenied);

fn metrics(ctx: &mut Context, client: IpAddr) -> Answer<'static> {
    if !may_see_stats(ctx, client) {
        return STATS_DENIED;
    }
    let mut text = String::new();
    stats::prometheus(&mut text, &ctx.all_counters(), &ctx.tracker, &readings(ctx));
    ctx.body.extend_from_slice(text.as_bytes());
    whole(ctx, client, false)
}

/// What `/metrics` and `mode=json` report besides counters and swarms.
fn readings(ctx: &Context) -> stats::Readings {
    stats::Readings {
        pace: ctx.pace(),
        uptime: stats::Uptime {
            seconds: ctx.uptime_secs(),
            started_unix: ctx.started_unix,
        },
        kernel: ctx.kernel,
        process: sys::process::usage(),
        blocked_networks: (ctx.settings.has_blocked_networks_list)
            .then(|| ctx.blocked_networks.current().1.len()),
        passkeys: (ctx.settings.needs_passkeys).then(|| ctx.passkeys.current().1.len()),
        hybrids: (ctx.settings.has_hybrids_list).then(|| ctx.hybrids.current().1.len()),
        webtorrent: ctx.settings.webtorrent.as_ref().map(|_| ctx.webtorrent_now),
        tcp_connections: ctx.open_connections,
        tcp_connections_limit: ctx.settings.max_connections,
    }
}

fn stats(ctx: &mut Context, query: &[u8], client: IpAddr) -> Answer<'static> {
    if !may_see_stats(ctx, client) {
        return STATS_DENIED;
    }
    let mode = match params::stats(query) {
        Ok(mode) => mode,
        Err(error) => return param_error(error),
    };
    match mode {
        StatsMode::Tpbs(format) => return stream(ctx, BodyKind::Tpbs(format), client),
        StatsMode::StateDump => return stream(ctx, BodyKind::StateDump, client),
        StatsMode::Top10 => return rank(ctx, Rank::Torrents(10), client),
        StatsMode::Top100 => return rank(ctx, Rank::Torrents(100), client),
        StatsMode::BusyNetworks => return rank(ctx, Rank::Networks, client),
        StatsMode::Json => {
            let json = stats::json(&ctx.all_counters(), &ctx.tracker, &readings(ctx));
            ctx.body.extend_from_slice(json.as_bytes());
            return whole(ctx, client, true);
        }
        _ => {}
    }
    let mut text = String::new();
    let uptime = ctx.uptime_secs();
    if !stats::render(mode, &ctx.all_counters(), &ctx.tracker, uptime, &mut text) {
        return Answer::Error(HttpError::BadRequest, HttpErrorKind::InvalidParameter);
    }
    ctx.body.extend_from_slice(text.as_bytes());
    whole(ctx, client, false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_start_time_stays_put_when_the_wall_clock_is_stepped() {
        let mut ctx = Context::for_tests();
        let started = readings(&ctx).uptime.started_unix;
        // An hour of uptime while the wall clock barely moves: a step back
        // by NTP, as far as the two clocks can tell.
        ctx.instant += Duration::from_secs(3600);
        let later = readings(&ctx);
        assert_eq!(later.uptime.seconds, 3600);
        assert_eq!(later.uptime.started_unix, started);
    }
}
