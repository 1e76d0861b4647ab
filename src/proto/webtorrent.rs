//! WebTorrent tracker messages: JSON text over a WebSocket, as spoken by the
//! `bittorrent-tracker` JavaScript client.
//!
//! Hashes and ids travel as "binary strings": 20 characters, each one of
//! U+0000..=U+00FF standing for one byte. WebRTC offers and answers are
//! opaque to the tracker, so they are borrowed from the message as raw JSON
//! and written out again verbatim, never re-serialised.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::{self, Write};

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::{Event, InfoHash, SwarmCounts};

pub type PeerId = [u8; 20];

/// A parsed client message.
#[derive(Clone, Debug)]
pub enum Request<'a> {
    Announce(Announce<'a>),
    /// Empty for a full scrape, which is not served.
    Scrape(Vec<InfoHash>),
}

#[derive(Clone, Debug)]
pub struct Announce<'a> {
    pub info_hash: InfoHash,
    pub peer_id: PeerId,
    pub event: Event,
    /// `left` is a number equal to 0.
    pub seeder: bool,
    /// Absent when missing or not a non-negative integer.
    pub numwant: Option<usize>,
    pub offers: Vec<Offer<'a>>,
    /// Set when the peer answers another peer's offer.
    pub answer: Option<Answer<'a>>,
}

/// A WebRTC offer, to be forwarded to some other peer of the swarm.
#[derive(Clone, Copy, Debug)]
pub struct Offer<'a> {
    pub offer_id: PeerId,
    pub sdp: &'a RawValue,
}

/// A WebRTC answer, to be forwarded to the peer whose offer it answers.
#[derive(Clone, Copy, Debug)]
pub struct Answer<'a> {
    pub to_peer_id: PeerId,
    pub offer_id: PeerId,
    pub sdp: &'a RawValue,
}

/// Why a message was refused; `Display` gives the text sent back as
/// "failure reason".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseError {
    NotJson,
    UnknownAction,
    BadInfoHash,
    BadPeerId,
    BadToPeerId,
    BadOfferId,
    /// `offers` is not an array of objects, or an offer or answer is not an
    /// object.
    Malformed(&'static str),
    MissingField(&'static str),
    TooManyHashes,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::NotJson => f.write_str("message is not a JSON object"),
            ParseError::UnknownAction => f.write_str("unknown action"),
            ParseError::BadInfoHash => f.write_str("info_hash is not 20 bytes"),
            ParseError::BadPeerId => f.write_str("peer_id is not 20 bytes"),
            ParseError::BadToPeerId => f.write_str("to_peer_id is not 20 bytes"),
            ParseError::BadOfferId => f.write_str("offer_id is not 20 bytes"),
            ParseError::Malformed(field) => write!(f, "malformed {field}"),
            ParseError::MissingField(field) => write!(f, "missing {field}"),
            ParseError::TooManyHashes => f.write_str("too many info hashes"),
        }
    }
}

impl std::error::Error for ParseError {}

/// An object's fields, each left as raw JSON until it is known which error
/// a bad one deserves. Keys are borrowed, so an escaped key is refused as
/// not JSON (clients never send one); a B-tree, as a hash map would seed
/// its hasher randomly.
struct Fields<'a>(BTreeMap<&'a str, &'a RawValue>);

impl<'a> Fields<'a> {
    fn of(json: &'a str) -> Option<Fields<'a>> {
        serde_json::from_str(json).ok().map(Fields)
    }

    /// The field `name`; `null` counts as absent, as JavaScript sends an
    /// undefined or infinite value.
    fn get(&self, name: &str) -> Option<&'a RawValue> {
        self.0.get(name).copied().filter(|raw| raw.get() != "null")
    }

    fn string(&self, name: &str) -> Option<Cow<'a, str>> {
        self.get(name).and_then(string)
    }

    /// The field `name` if it is JSON for a `T`.
    fn parsed<T: DeserializeOwned>(&self, name: &str) -> Option<T> {
        serde_json::from_str(self.get(name)?.get()).ok()
    }

    /// The binary string the message must carry as `name`, else `bad`.
    fn id(&self, name: &'static str, bad: ParseError) -> Result<[u8; 20], ParseError> {
        binary(self.get(name).ok_or(ParseError::MissingField(name))?).ok_or(bad)
    }
}

/// A JSON string, borrowed from the message unless it has escapes.
#[derive(Deserialize)]
struct Text<'a>(#[serde(borrow)] Cow<'a, str>);

fn string(raw: &RawValue) -> Option<Cow<'_, str>> {
    let Text(text) = serde_json::from_str(raw.get()).ok()?;
    Some(text)
}

/// The bytes of a binary string.
fn binary(raw: &RawValue) -> Option<[u8; 20]> {
    let text = string(raw)?;
    let mut chars = text.chars();
    let mut bytes = [0u8; 20];
    for byte in &mut bytes {
        *byte = u8::try_from(chars.next()?).ok()?;
    }
    chars.next().is_none().then_some(bytes)
}

fn array(raw: &RawValue) -> Option<Vec<&RawValue>> {
    serde_json::from_str(raw.get()).ok()
}

/// An SDP is passed on unread, but must at least be an object.
fn sdp<'a>(raw: &'a RawValue, name: &'static str) -> Result<&'a RawValue, ParseError> {
    let is_object = raw.get().starts_with('{');
    is_object.then_some(raw).ok_or(ParseError::Malformed(name))
}

/// Parses a text message; `max_offers` caps how many offers are kept (the
/// rest are dropped unchecked), `max_scrape` how many hashes a scrape may
/// name.
pub fn parse(text: &str, max_offers: usize, max_scrape: usize) -> Result<Request<'_>, ParseError> {
    let fields = Fields::of(text).ok_or(ParseError::NotJson)?;
    match fields.string("action").as_deref() {
        Some("announce") => announce(&fields, max_offers).map(Request::Announce),
        Some("scrape") => scrape(fields.get("info_hash"), max_scrape).map(Request::Scrape),
        _ => Err(ParseError::UnknownAction),
    }
}

fn announce<'a>(fields: &Fields<'a>, max_offers: usize) -> Result<Announce<'a>, ParseError> {
    let info_hash = InfoHash(fields.id("info_hash", ParseError::BadInfoHash)?);
    let peer_id = fields.id("peer_id", ParseError::BadPeerId)?;
    let mut offers = Vec::new();
    if let Some(raw) = fields.get("offers") {
        let list = array(raw).ok_or(ParseError::Malformed("offers"))?;
        for raw in list.into_iter().take(max_offers) {
            offers.push(offer_of(raw)?);
        }
    }
    let answer = match fields.get("answer") {
        Some(raw) => Some(Answer {
            sdp: sdp(raw, "answer")?,
            to_peer_id: fields.id("to_peer_id", ParseError::BadToPeerId)?,
            offer_id: fields.id("offer_id", ParseError::BadOfferId)?,
        }),
        None => None,
    };
    Ok(Announce {
        info_hash,
        peer_id,
        event: match fields.string("event").as_deref() {
            Some("completed") => Event::Completed,
            Some("stopped") => Event::Stopped,
            _ => Event::None,
        },
        // Anything but a number (unknown, or sent as `null`) is leeching.
        seeder: fields.parsed::<f64>("left") == Some(0.0),
        numwant: fields.parsed("numwant"),
        offers,
        answer,
    })
}

fn offer_of(raw: &RawValue) -> Result<Offer<'_>, ParseError> {
    let fields = Fields::of(raw.get()).ok_or(ParseError::Malformed("offers"))?;
    let raw = fields
        .get("offer")
        .ok_or(ParseError::MissingField("offer"))?;
    Ok(Offer {
        sdp: sdp(raw, "offer")?,
        offer_id: fields.id("offer_id", ParseError::BadOfferId)?,
    })
}

/// One hash or an array of them; none at all asks for a full scrape.
fn scrape(raw: Option<&RawValue>, max: usize) -> Result<Vec<InfoHash>, ParseError> {
    let hashes = match raw {
        Some(raw) if raw.get().starts_with('[') => array(raw).ok_or(ParseError::BadInfoHash)?,
        Some(raw) => vec![raw],
        None => Vec::new(),
    };
    if hashes.len() > max {
        return Err(ParseError::TooManyHashes);
    }
    let hash = |raw| binary(raw).map(InfoHash).ok_or(ParseError::BadInfoHash);
    hashes.into_iter().map(hash).collect()
}

/// The info hash of a message that failed to parse, when it names a valid
/// one: the client ignores an announce failure that does not name its
/// torrent.
pub fn info_hash_of(text: &str) -> Option<InfoHash> {
    let raw = Fields::of(text)?.get("info_hash")?;
    binary(raw).map(InfoHash)
}

/// The action a refusal of `text` answers: "scrape" for a scrape, else
/// "announce". A client hands a reply to the request of its action, so a
/// scrape refused as an announce would never reach the one waiting.
pub fn action_of(text: &str) -> &'static str {
    let action = Fields::of(text).and_then(|fields| fields.string("action"));
    match action.as_deref() {
        Some("scrape") => "scrape",
        _ => "announce",
    }
}

/// Displays its characters as a JSON string literal.
struct Quoted<I>(I);

impl<I: Iterator<Item = char> + Clone> fmt::Display for Quoted<I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_char('"')?;
        for c in self.0.clone() {
            match c {
                '"' => f.write_str("\\\"")?,
                '\\' => f.write_str("\\\\")?,
                '\0'..='\u{1f}' => write!(f, "\\u{:04x}", u32::from(c))?,
                _ => f.write_char(c)?,
            }
        }
        f.write_char('"')
    }
}

fn binary_str(bytes: &[u8; 20]) -> Quoted<impl Iterator<Item = char> + Clone + '_> {
    Quoted(bytes.iter().map(|&byte| char::from(byte)))
}

// The encoders ignore `write!` results: writing to a String cannot fail.

pub fn announce_reply(out: &mut String, info_hash: &InfoHash, interval: u32, counts: SwarmCounts) {
    let (hash, seeders, leechers) = (binary_str(&info_hash.0), counts.seeders, counts.leechers);
    let _ = write!(
        out,
        r#"{{"action":"announce","interval":{interval},"info_hash":{hash},"complete":{seeders},"incomplete":{leechers}}}"#
    );
}

/// `offer` from peer `from`, as forwarded to another peer.
pub fn offer(out: &mut String, info_hash: &InfoHash, from: &PeerId, offer: &Offer<'_>) {
    let ids = [&info_hash.0, from, &offer.offer_id];
    forward(out, ids, "offer", offer.sdp);
}

/// `answer` from peer `from`, as forwarded to the peer that made the offer.
pub fn answer(out: &mut String, info_hash: &InfoHash, from: &PeerId, answer: &Answer<'_>) {
    let ids = [&info_hash.0, from, &answer.offer_id];
    forward(out, ids, "answer", answer.sdp);
}

fn forward(out: &mut String, [hash, from, offer_id]: [&[u8; 20]; 3], kind: &str, sdp: &RawValue) {
    let _ = write!(
        out,
        r#"{{"action":"announce","info_hash":{},"peer_id":{},"offer_id":{},"{kind}":{}}}"#,
        binary_str(hash),
        binary_str(from),
        binary_str(offer_id),
        sdp.get(),
    );
}

pub fn scrape_reply(out: &mut String, files: impl IntoIterator<Item = (InfoHash, SwarmCounts)>) {
    out.push_str(r#"{"action":"scrape","files":{"#);
    for (i, (hash, counts)) in files.into_iter().enumerate() {
        let (hash, separator) = (binary_str(&hash.0), if i == 0 { "" } else { "," });
        let (seeders, leechers, completed) = (counts.seeders, counts.leechers, counts.completed);
        let _ = write!(
            out,
            r#"{separator}{hash}:{{"complete":{seeders},"incomplete":{leechers},"downloaded":{completed}}}"#
        );
    }
    out.push_str("}}");
}

/// A refusal; `action` is "announce" or "scrape" ("announce" when unknown).
pub fn failure(out: &mut String, action: &str, info_hash: Option<&InfoHash>, reason: &str) {
    let (action, reason) = (Quoted(action.chars()), Quoted(reason.chars()));
    let _ = write!(out, r#"{{"action":{action},"failure reason":{reason}"#);
    if let Some(hash) = info_hash {
        let _ = write!(out, r#","info_hash":{}"#, binary_str(&hash.0));
    }
    out.push('}');
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = r#"{"type":"offer","sdp":"v=0\r\na=\"q\" \u00e9\\","x":[1,{"k":null}]}"#;
    const ANSWER: &str = r#"{"type":"answer","sdp":"v=0\r\na=ice-ufrag:Ab/+"}"#;

    /// Twenty bytes counting up from `first`.
    fn id(first: u8) -> [u8; 20] {
        std::array::from_fn(|i| first.wrapping_add(i as u8))
    }

    fn latin1(bytes: &[u8]) -> String {
        bytes.iter().map(|&byte| char::from(byte)).collect()
    }

    /// A binary string as JSON, written by serde_json rather than this module.
    fn quoted(bytes: &[u8]) -> String {
        serde_json::to_string(&latin1(bytes)).unwrap()
    }

    /// An announce of hash `id(0)` by peer `id(b'-')`, with `extra` fields
    /// (a repeated field replaces the earlier one).
    fn message(extra: &str) -> String {
        let (hash, peer) = (quoted(&id(0)), quoted(&id(b'-')));
        format!(r#"{{"action":"announce","info_hash":{hash},"peer_id":{peer}{extra}}}"#)
    }

    fn announce_of(text: &str, max_offers: usize) -> Announce<'_> {
        match parse(text, max_offers, 2) {
            Ok(Request::Announce(announce)) => announce,
            other => panic!("{other:?}"),
        }
    }

    fn offers_of<'a>(announce: &Announce<'a>) -> Vec<(PeerId, &'a str)> {
        let pair = |offer: &Offer<'a>| (offer.offer_id, offer.sdp.get());
        announce.offers.iter().map(pair).collect()
    }

    fn written(encode: impl FnOnce(&mut String)) -> String {
        let mut out = String::new();
        encode(&mut out);
        out
    }

    #[test]
    fn reads_an_announce_with_offers() {
        let (a, b) = (quoted(&id(200)), quoted(&id(0x50)));
        let text = message(&format!(
            r#","numwant":5,"left":0,"event":"started","uploaded":9,"x":[],"offers":[
                {{"offer":{OFFER},"offer_id":{a}}}, {{"offer_id":{b}, "offer": {ANSWER} }}]"#
        ));
        let announce = announce_of(&text, 10);
        assert_eq!(announce.info_hash, InfoHash(id(0)));
        assert_eq!(announce.peer_id, id(b'-'));
        assert_eq!((announce.event, announce.seeder), (Event::None, true));
        assert_eq!(announce.numwant, Some(5));
        let offers = [(id(200), OFFER), (id(0x50), ANSWER)];
        assert_eq!(offers_of(&announce), offers);
        assert!(announce.answer.is_none());
    }

    #[test]
    fn reads_left_event_and_numwant() {
        let read = |field: &str, value: &str| {
            let text = message(&format!(r#","{field}":{value}"#));
            let announce = announce_of(&text, 0);
            (announce.seeder, announce.event, announce.numwant)
        };
        assert!(read("left", "0").0 && read("left", "0.0").0 && read("left", "-0").0);
        for left in ["1234", "1e9", "null", r#""0""#, "[0]"] {
            assert!(!read("left", left).0, "{left}");
        }
        assert!(!read("absent", "0").0);
        assert_eq!(read("event", r#""completed""#).1, Event::Completed);
        assert_eq!(read("event", r#""stopped""#).1, Event::Stopped);
        for event in [r#""started""#, r#""paused""#, r#""update""#, "null"] {
            assert_eq!(read("event", event).1, Event::None);
        }
        assert_eq!(read("numwant", "50").2, Some(50));
        for numwant in ["-1", "2.5", r#""9""#] {
            assert_eq!(read("numwant", numwant).2, None);
        }
    }

    #[test]
    fn keeps_only_max_offers() {
        // Offers past the cap are dropped unchecked, even a broken one.
        let ids = [quoted(&id(1)), quoted(&id(2)), "5".into()];
        let offer = |id: &String| format!(r#"{{"offer":{{}},"offer_id":{id}}}"#);
        let list: Vec<_> = ids.iter().map(offer).collect();
        let text = message(&format!(r#","offers":[{}]"#, list.join(",")));
        let kept = [(id(1), "{}"), (id(2), "{}")];
        assert_eq!(offers_of(&announce_of(&text, 2)), kept);
        assert!(announce_of(&text, 0).offers.is_empty());
        assert_eq!(parse(&text, 3, 0).unwrap_err(), ParseError::BadOfferId);
    }

    #[test]
    fn reads_scrapes() {
        let scrape = |hashes: &str| {
            let text = format!(r#"{{"action":"scrape"{hashes}}}"#);
            parse(&text, 0, 2).map(|request| match request {
                Request::Scrape(hashes) => hashes,
                other => panic!("{other:?}"),
            })
        };
        let (a, b) = (quoted(&id(1)), quoted(&id(2)));
        let one = scrape(&format!(r#","info_hash":{a}"#));
        assert_eq!(one, Ok(vec![InfoHash(id(1))]));
        let two = scrape(&format!(r#","info_hash":[{a},{b}]"#));
        assert_eq!(two, Ok(vec![InfoHash(id(1)), InfoHash(id(2))]));
        let three = scrape(&format!(r#","info_hash":[{a},{b},{a}]"#));
        assert_eq!(three, Err(ParseError::TooManyHashes));
        let short = scrape(&format!(r#","info_hash":[{a},"short"]"#));
        assert_eq!(short, Err(ParseError::BadInfoHash));
        assert_eq!(scrape(""), Ok(vec![]));
    }

    #[test]
    fn refuses_invalid_messages() {
        use ParseError::*;
        for (text, error) in [
            (r#"{"action":"#, NotJson),
            (r#"["announce"]"#, NotJson),
            (r#"{"action":"connect"}"#, UnknownAction),
            (r#"{"action":1}"#, UnknownAction),
            (r#"{"action":"announce"}"#, MissingField("info_hash")),
        ] {
            assert_eq!(parse(text, 10, 10).unwrap_err(), error, "{text}");
        }
        for (extra, error) in [
            (r#","info_hash":"0123456789012345678""#, BadInfoHash),
            (r#","info_hash":"012345678901234567890""#, BadInfoHash),
            (r#","info_hash":"\u0100123456789012345678""#, BadInfoHash),
            (r#","info_hash":7"#, BadInfoHash),
            (r#","peer_id":null"#, MissingField("peer_id")),
            (r#","offers":[{"offer":{},"offer_id":"x"}]"#, BadOfferId),
            (r#","offers":[{"offer":{}}]"#, MissingField("offer_id")),
            (r#","offers":{}"#, Malformed("offers")),
            (r#","offers":[{"offer":"sdp"}]"#, Malformed("offer")),
            (r#","answer":[]"#, Malformed("answer")),
            (r#","answer":{}"#, MissingField("to_peer_id")),
        ] {
            let text = message(extra);
            assert_eq!(parse(&text, 10, 10).unwrap_err(), error, "{text}");
        }
        assert_eq!(BadInfoHash.to_string(), "info_hash is not 20 bytes");
    }

    #[test]
    fn names_the_hash_of_a_refused_message() {
        let text = message(r#","peer_id":"x""#);
        assert_eq!(parse(&text, 10, 10).unwrap_err(), ParseError::BadPeerId);
        assert_eq!(info_hash_of(&text), Some(InfoHash(id(0))));
        assert_eq!(info_hash_of(r#"{"info_hash":"short"}"#), None);
    }

    #[test]
    fn every_byte_value_survives_encoding() {
        let sdp: &RawValue = serde_json::from_str(ANSWER).unwrap();
        for start in (0..=255).step_by(20) {
            let hash = InfoHash(id(start));
            let (mut from, mut offer_id) = (hash.0, hash.0);
            from.reverse();
            offer_id.rotate_left(7);
            let text = written(|out| offer(out, &hash, &from, &Offer { offer_id, sdp }));
            let value: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(value["offer_id"].as_str(), Some(&*latin1(&offer_id)));
            let announce = announce_of(&text, 1);
            assert_eq!((announce.info_hash, announce.peer_id), (hash, from));
            let text = written(|out| scrape_reply(out, [(hash, SwarmCounts::default())]));
            let value: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert!(value["files"].get(latin1(&hash.0)).is_some(), "{text}");
        }
    }

    #[test]
    fn writes_replies() {
        let counts = SwarmCounts {
            seeders: 3,
            leechers: 4,
            completed: 5,
        };
        let hash = InfoHash(*b"abcdefghij\"\\\n\x01klmnop");
        let expected = r#"{"action":"announce","interval":120,"info_hash":"abcdefghij\"\\\u000a\u0001klmnop","complete":3,"incomplete":4}"#;
        let reply = written(|out| announce_reply(out, &hash, 120, counts));
        assert_eq!(reply, expected);

        let (a, b) = (InfoHash([b'a'; 20]), InfoHash([b'b'; 20]));
        let files = [(a, counts), (b, SwarmCounts::default())];
        let expected = r#"{"action":"scrape","files":{"aaaaaaaaaaaaaaaaaaaa":{"complete":3,"incomplete":4,"downloaded":5},"bbbbbbbbbbbbbbbbbbbb":{"complete":0,"incomplete":0,"downloaded":0}}}"#;
        assert_eq!(written(|out| scrape_reply(out, files)), expected);

        let refusal = written(|out| failure(out, "scrape", None, "no \"full\""));
        let expected = r#"{"action":"scrape","failure reason":"no \"full\""}"#;
        assert_eq!(refusal, expected);
        let refusal = written(|out| failure(out, "announce", Some(&a), "go away"));
        let expected = r#"{"action":"announce","failure reason":"go away","info_hash":"aaaaaaaaaaaaaaaaaaaa"}"#;
        assert_eq!(refusal, expected);
    }

    #[test]
    fn reads_and_forwards_an_answer_and_offers_verbatim() {
        let (offer_id, to, answer_id) = (quoted(&id(b'a')), quoted(&id(b'A')), quoted(&id(b'0')));
        let text = message(&format!(
            r#","offers":[{{"offer":{OFFER},"offer_id":{offer_id}}}],
            "answer":{ANSWER},"to_peer_id":{to},"offer_id":{answer_id}"#
        ));
        let announce = announce_of(&text, 10);
        let reply = announce.answer.unwrap();
        assert_eq!((reply.to_peer_id, reply.offer_id), (id(b'A'), id(b'0')));
        assert_eq!(reply.sdp.get(), ANSWER);

        let (hash, from) = (InfoHash(id(b'h')), id(b'f'));
        let head = r#"{"action":"announce","info_hash":"hijklmnopqrstuvwxyz{","peer_id":"fghijklmnopqrstuvwxy""#;
        let sent = written(|out| offer(out, &hash, &from, &announce.offers[0]));
        let expected = format!(r#"{head},"offer_id":{offer_id},"offer":{OFFER}}}"#);
        assert_eq!(sent, expected);
        let sent = written(|out| answer(out, &hash, &from, &reply));
        let expected = format!(r#"{head},"offer_id":{answer_id},"answer":{ANSWER}}}"#);
        assert_eq!(sent, expected);
    }
}
