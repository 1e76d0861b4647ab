//! WebTorrent: HTTP connections that became WebSockets. Browsers announce
//! over them in JSON, and the tracker passes their WebRTC offers to other
//! peers of the swarm and the answers back ([`crate::proto::webtorrent`]
//! for the messages, [`crate::tracker::rtc`] for the swarms).
//!
//! A message may be for other connections than the one it came on, so the
//! answering here only says who gets what ([`Relay`]); the event loop,
//! which owns every connection, delivers.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use tungstenite::error::{CapacityError, ProtocolError};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::frame::CloseFrame;
use tungstenite::protocol::{Role, WebSocket, WebSocketConfig};
use tungstenite::{Error as WsError, Message, Utf8Bytes};

use super::context::{CLIENT_BLOCKED, RATE_LIMITED};
use super::respond::NOT_AUTHORIZED;
use super::Context;
use crate::config::Webtorrent;
use crate::proto::peer_id::ClientTag;
use crate::proto::webtorrent::{self, Request};
use crate::proto::{Event, InfoHash};
use crate::stats::WebtorrentGauges;
use crate::tracker::rtc::{ConnectionKey, PeerId, RtcSwarms};
use crate::tracker::Limits;

const PEER_ID_IN_USE: &str =
    "This peer_id is in use on another connection; announce it again once that one has closed.";
/// Torrents one scrape message may name: as many as a UDP scrape.
const MAX_SCRAPE_HASHES: usize = crate::proto::udp::MAX_SCRAPE_HASHES;
const NO_FULL_SCRAPE: &str = "Name the torrents to scrape: there is no full scrape here.";
const TOO_MANY_TORRENTS: &str =
    "This connection has announced as many torrents as the tracker allows.";

/// Bytes read from the socket at a time.
const READ_BUFFER: usize = 4096;

/// What a read found.
pub enum Read {
    /// A message to answer.
    Text(Utf8Bytes),
    /// A frame with nothing to answer (a ping, answered by the protocol
    /// code, a pong or a fragment).
    Frame,
    /// Nothing more for now.
    Drained,
}

/// Whom an upgrade request was admitted for.
#[derive(Clone, Debug)]
pub struct Admission {
    /// Whom rate limits count its messages against: the client, or the
    /// one a trusted proxy named.
    pub client: IpAddr,
    /// The passkey of its path, under `access.passkeys`.
    pub passkey: Option<Box<[u8]>>,
}

/// One WebSocket connection.
pub struct Connection {
    socket: WebSocket<TcpStream>,
    /// Whom rate limits count its messages against: the client, or the
    /// one a trusted proxy named.
    client: IpAddr,
    /// The address the connection comes from (a proxy's, behind one).
    via: IpAddr,
    /// The passkey it was admitted with, checked again on each reload.
    passkey: Option<Box<[u8]>>,
    /// Closed when nothing arrives before then.
    pub deadline: Instant,
    /// The torrents and peer ids announced here, to leave when it closes.
    announced: Vec<(InfoHash, PeerId)>,
    /// Why the tracker is ending it, for the Close frame: a browser then
    /// sees a reason rather than an abnormal closure (1006).
    goodbye: Option<CloseCode>,
}

impl Connection {
    /// The WebSocket on `stream`, whose first bytes, read already, are
    /// `read`.
    pub fn new(
        stream: TcpStream,
        read: Vec<u8>,
        via: IpAddr,
        admission: Admission,
        settings: &Webtorrent,
        now: Instant,
    ) -> Connection {
        let largest = settings.max_message_size as usize;
        // Each message goes out as it is made, and a peer that does not
        // read its offers gets cut off rather than hold them all.
        // Reads go through a small buffer that grows only for the message
        // at hand: an idle connection then holds a few KiB, not the
        // default's 128 KiB.
        let config = WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER)
            .max_message_size(Some(largest))
            .max_frame_size(Some(largest))
            .write_buffer_size(0)
            .max_write_buffer_size(4 * largest);
        Connection {
            socket: WebSocket::from_partially_read(stream, read, Role::Server, Some(config)),
            client: admission.client,
            via,
            passkey: admission.passkey,
            deadline: now + Duration::from_secs(settings.idle_timeout.into()),
            announced: Vec::new(),
            goodbye: None,
        }
    }

    /// Whom its messages count against.
    pub fn client(&self) -> IpAddr {
        self.client
    }

    pub fn stream(&mut self) -> &mut TcpStream {
        self.socket.get_mut()
    }

    /// Reads the next frame: a text message (binary ones must be UTF-8
    /// too), another frame, or nothing once the socket has no more for now.
    pub fn read(&mut self) -> Result<Read, Ended> {
        match self.socket.read() {
            Ok(Message::Text(text)) => Ok(Read::Text(text)),
            Ok(Message::Binary(bytes)) => Utf8Bytes::try_from(bytes)
                .map(Read::Text)
                .map_err(|e| self.ended(WsError::Utf8(e.to_string()))),
            Ok(_) => Ok(Read::Frame),
            Err(WsError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => Ok(Read::Drained),
            Err(e) => Err(self.ended(e)),
        }
    }

    /// Queues `text` and writes what the socket takes now; the rest goes
    /// out as it drains ([`Connection::flush`]).
    pub fn send(&mut self, text: String) -> Result<(), Ended> {
        let sent = self.socket.send(Message::Text(text.into()));
        self.would_block_is_fine(sent)
    }

    pub fn flush(&mut self) -> Result<(), Ended> {
        let flushed = self.socket.flush();
        self.would_block_is_fine(flushed)
    }

    /// It stayed silent past the idle timeout.
    pub fn expire(&mut self) {
        self.goodbye = Some(CloseCode::Away);
    }

    /// Whether the lists now in force would still admit it: a reload may
    /// have blocked its network or revoked its passkey. If not, it is told
    /// so when it closes.
    pub fn still_admitted(&mut self, ctx: &Context) -> bool {
        let admitted = ctx.admits(self.via, self.client, self.passkey.as_deref());
        if !admitted {
            self.goodbye = Some(CloseCode::Policy);
        }
        admitted
    }

    /// Writes the Close frame owed, if the tracker is the one ending the
    /// connection, as far as the socket takes it now: the socket is closed
    /// next either way.
    pub fn say_goodbye(&mut self) {
        if let Some(code) = self.goodbye.take() {
            let reason = match code {
                CloseCode::Away => "idle",
                CloseCode::Size => "message too big",
                CloseCode::Policy if self.socket.can_write() => "no longer allowed",
                CloseCode::Policy => "replies not read",
                _ => "protocol error",
            };
            let frame = CloseFrame {
                code,
                reason: Utf8Bytes::from_static(reason),
            };
            let _ = self.socket.close(Some(frame));
        }
    }

    fn would_block_is_fine(&mut self, result: Result<(), WsError>) -> Result<(), Ended> {
        match result {
            Err(WsError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            other => other.map_err(|e| self.ended(e)),
        }
    }

    /// Why `error` ends the connection; the browser is told, unless it is
    /// the one that ended it.
    fn ended(&mut self, error: WsError) -> Ended {
        let code = match &error {
            WsError::ConnectionClosed
            | WsError::AlreadyClosed
            | WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
                return Ended::HungUp
            }
            WsError::Io(e) if e.kind() != io::ErrorKind::InvalidData => return Ended::HungUp,
            WsError::Capacity(CapacityError::MessageTooLong { .. }) => CloseCode::Size,
            WsError::WriteBufferFull(_) => CloseCode::Policy,
            WsError::Utf8(_) => CloseCode::Invalid,
            _ => CloseCode::Protocol,
        };
        log::debug!("webtorrent connection dropped: {error}");
        self.goodbye = Some(code);
        Ended::Dropped
    }
}

/// Why a connection is over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// The browser closed it, or the network failed.
    HungUp,
    /// It broke the protocol, sent a message over the size limit, or did
    /// not read what it was sent: cut off, and counted.
    Dropped,
}

/// A message for another connection.
pub struct Relay {
    pub to: ConnectionKey,
    pub text: String,
}

/// The WebTorrent swarms and what answering needs besides the context.
pub struct Signalling {
    pub settings: Webtorrent,
    /// `tracker.torrent_timeout`: how long a peerless swarm with
    /// downloads is kept.
    torrent_timeout: u32,
    swarms: RtcSwarms,
    /// The client of each open connection: a peer id moves to another
    /// connection only from its own address.
    clients: HashMap<ConnectionKey, IpAddr>,
    rng: fastrand::Rng,
    targets: Vec<(PeerId, ConnectionKey)>,
}

impl Signalling {
    pub fn new(settings: Webtorrent, torrent_timeout: u32, limits: Limits) -> Signalling {
        Signalling {
            settings,
            torrent_timeout,
            swarms: RtcSwarms::new(limits),
            clients: HashMap::new(),
            rng: fastrand::Rng::new(),
            targets: Vec::new(),
        }
    }

    /// Connection `key`, from `client`, was opened.
    pub fn opened(&mut self, key: ConnectionKey, client: IpAddr) {
        self.clients.insert(key, client);
    }

    /// Connection `key` closed: its peers leave their swarms.
    pub fn closed(&mut self, key: ConnectionKey, connection: &Connection) {
        self.clients.remove(&key);
        for (hash, id) in &connection.announced {
            self.swarms.leave(hash, id, key);
        }
    }

    /// Forgets peers that stopped announcing, and swarms left empty.
    pub fn sweep(&mut self, now: u32) {
        let (peer_timeout, torrent_timeout) = (self.settings.idle_timeout, self.torrent_timeout);
        self.swarms.sweep(now, peer_timeout, torrent_timeout);
    }

    pub fn gauges(&self) -> WebtorrentGauges {
        WebtorrentGauges {
            connections: self.clients.len(),
            swarms: self.swarms.totals(),
        }
    }

    /// Notes that `connection` sent a frame, a message or a ping: it is
    /// alive, and its idle timeout starts again.
    pub fn heard(&self, ctx: &Context, connection: &mut Connection) {
        connection.deadline = ctx.instant + Duration::from_secs(self.settings.idle_timeout.into());
    }

    /// Answers `text`, which came on connection `key`: the reply for it,
    /// if any, and what was answered, with messages for other connections
    /// added to `relays`.
    pub fn answer(
        &mut self,
        ctx: &mut Context,
        key: ConnectionKey,
        connection: &mut Connection,
        text: &str,
        relays: &mut Vec<Relay>,
    ) -> (Option<String>, Outcome) {
        self.heard(ctx, connection);
        let max_offers = self.settings.max_offers as usize;
        let reason: Cow<'static, str> = if ctx.over_rate(connection.client) {
            RATE_LIMITED.into()
        } else {
            match webtorrent::parse(text, max_offers, MAX_SCRAPE_HASHES) {
                Ok(Request::Announce(announce)) => {
                    return self.announce(ctx, key, connection, &announce, relays)
                }
                Ok(Request::Scrape(hashes)) if !hashes.is_empty() => {
                    ctx.counters.webtorrent.scrapes += 1;
                    let mut out = String::new();
                    let counts = hashes.iter().map(|h| (*h, self.swarms.counts(h)));
                    webtorrent::scrape_reply(&mut out, counts);
                    return (Some(out), "webtorrent scrape");
                }
                Ok(Request::Scrape(_)) => NO_FULL_SCRAPE.into(),
                Err(error) => error.to_string().into(),
            }
        };
        let (action, hash) = (webtorrent::action_of(text), webtorrent::info_hash_of(text));
        (Some(refuse(ctx, action, hash.as_ref(), &reason)), REFUSED)
    }

    fn announce(
        &mut self,
        ctx: &mut Context,
        key: ConnectionKey,
        connection: &mut Connection,
        announce: &webtorrent::Announce<'_>,
        relays: &mut Vec<Relay>,
    ) -> (Option<String>, Outcome) {
        let hash = announce.info_hash;
        let known = connection
            .announced
            .iter()
            .position(|(h, id)| *h == hash && *id == announce.peer_id);
        let most = self.settings.max_torrents_per_connection as usize;
        if known.is_none() && connection.announced.len() >= most {
            // Torrents whose peer the sweep has forgotten no longer count.
            let swarms = &self.swarms;
            (connection.announced).retain(|(h, id)| swarms.connection_of(h, id) == Some(key));
        }
        let full = known.is_none() && connection.announced.len() >= most;
        let refusal = if !ctx.tracker.allows(&hash) {
            ctx.counters.not_authorized += 1;
            Some(NOT_AUTHORIZED)
        } else if ctx.blocks_client(&announce.peer_id) {
            ctx.counters.blocked_clients += 1;
            Some(CLIENT_BLOCKED)
        } else if full && announce.event != Event::Stopped {
            Some(TOO_MANY_TORRENTS)
        } else if self.held_elsewhere(&hash, &announce.peer_id, key, connection.client) {
            Some(PEER_ID_IN_USE)
        } else {
            None
        };
        if let Some(reason) = refusal {
            return (Some(refuse(ctx, "announce", Some(&hash), reason)), REFUSED);
        }
        ctx.counters.webtorrent.announces += 1;
        ctx.counters.clients.count(ClientTag::of(&announce.peer_id));
        let id = &announce.peer_id;
        let announced =
            self.swarms
                .announce(hash, id, key, announce.seeder, announce.event, ctx.now);
        if announced.completed {
            ctx.counters.webtorrent.completed += 1;
            ctx.log_completed(&hash, Some(id), connection.client);
        }
        if !announced.stored {
            ctx.counters.webtorrent.unstored += 1;
        }
        match (announce.event, known) {
            (Event::Stopped, Some(at)) => {
                connection.announced.swap_remove(at);
            }
            (Event::Stopped, None) | (_, Some(_)) => {}
            (_, None) if announced.stored => connection.announced.push((hash, *id)),
            (_, None) => {}
        }
        // A peer not stored could not be answered: its offers go nowhere.
        if announced.stored && announce.event != Event::Stopped && !announce.offers.is_empty() {
            let wanted = announce.numwant.unwrap_or(usize::MAX);
            let wanted = wanted.min(announce.offers.len());
            let rng = &mut self.rng;
            let targets = &mut self.targets;
            (self.swarms).offer_targets(&hash, id, announce.seeder, wanted, rng, targets);
            for ((_, to), offer) in targets.iter().zip(&announce.offers) {
                let mut text = String::new();
                webtorrent::offer(&mut text, &hash, id, offer);
                relays.push(Relay { to: *to, text });
                ctx.counters.webtorrent.offers_relayed += 1;
            }
        }
        if let Some(answer) = &announce.answer {
            if let Some(to) = self.swarms.connection_of(&hash, &answer.to_peer_id) {
                let mut text = String::new();
                webtorrent::answer(&mut text, &hash, id, answer);
                relays.push(Relay { to, text });
                ctx.counters.webtorrent.answers_relayed += 1;
            }
            // The answering peer expects nothing back.
            return (None, "webtorrent answer");
        }
        let mut out = String::new();
        webtorrent::announce_reply(&mut out, &hash, self.settings.interval, announced.counts);
        (Some(out), "webtorrent announce")
    }

    /// Whether peer `id` of the torrent belongs to another open connection,
    /// from another address than `client`. Peer ids travel in every relayed
    /// offer: taking one over would let anyone receive a peer's answers and
    /// stop it. A browser that reconnects from the same address takes its
    /// id over at once; from another, once its old connection has closed
    /// (it leaves its swarms then).
    fn held_elsewhere(
        &self,
        hash: &InfoHash,
        id: &PeerId,
        key: ConnectionKey,
        client: IpAddr,
    ) -> bool {
        self.swarms.connection_of(hash, id).is_some_and(|owner| {
            owner != key && self.clients.get(&owner).is_some_and(|c| *c != client)
        })
    }
}

/// What a message got, for request log lines.
pub type Outcome = &'static str;

const REFUSED: Outcome = "webtorrent refused";

/// Counts a refused message; the failure reply to its `action`, naming
/// `hash`, if known.
fn refuse(ctx: &mut Context, action: &str, hash: Option<&InfoHash>, reason: &str) -> String {
    ctx.counters.webtorrent.refused += 1;
    let mut out = String::new();
    webtorrent::failure(&mut out, action, hash, reason);
    out
}
