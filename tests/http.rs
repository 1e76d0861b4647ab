//! HTTP announce, scrape, full scrape, stats, redirect and bad input, over
//! the wire against the real binary.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::bencode::Value;
use common::*;

fn announce(tracker: &Tracker, info_hash: &[u8; 20], port: u16, extra: &str) -> Value {
    let response = tracker.get(&announce_path(info_hash, port, extra));
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.header("content-type"), Some("text/plain"));
    response.bencode()
}

#[test]
fn announce_reply_has_upstream_keys_and_returns_self() {
    let tracker = Tracker::start("");
    let reply = announce(&tracker, &hash(1), 6881, "");
    let keys: Vec<&[u8]> = reply.dict().keys().map(|k| k.as_slice()).collect();
    assert_eq!(
        keys,
        [
            &b"complete"[..],
            b"downloaded",
            b"incomplete",
            b"interval",
            b"min interval",
            b"peers"
        ]
    );
    let interval = reply.int("interval");
    assert!((1620..1980).contains(&interval), "interval {interval}");
    assert_eq!(reply.int("min interval"), interval / 2);
    assert_eq!(reply.bytes("peers"), &[127, 0, 0, 1, 0x1a, 0xe1]);
    assert_eq!((reply.int("complete"), reply.int("incomplete")), (0, 1));
}

#[test]
fn both_families_in_one_reply() {
    let tracker = Tracker::start("");
    announce(&tracker, &hash(2), 1000, "");
    let response = http(
        tracker.v6(),
        &format!(
            "GET {} HTTP/1.0\r\n\r\n",
            announce_path(&hash(2), 2000, "&left=0")
        ),
    );
    let reply = response.bencode();
    assert_eq!(reply.bytes("peers"), &[127, 0, 0, 1, 0x03, 0xe8]);
    let mut v6 = std::net::Ipv6Addr::LOCALHOST.octets().to_vec();
    v6.extend_from_slice(&2000u16.to_be_bytes());
    assert_eq!(reply.bytes("peers6"), v6.as_slice());
    assert_eq!((reply.int("complete"), reply.int("incomplete")), (1, 1));
}

#[test]
fn numwant_default_cap_and_zero() {
    let tracker = Tracker::start("");
    for port in 1..=230u16 {
        announce(&tracker, &hash(3), port, "");
    }
    assert_eq!(
        announce(&tracker, &hash(3), 1, "").bytes("peers").len(),
        50 * 6
    );
    assert_eq!(
        announce(&tracker, &hash(3), 1, "&numwant=500")
            .bytes("peers")
            .len(),
        200 * 6
    );
    assert_eq!(
        announce(&tracker, &hash(3), 1, "&numwant=-5")
            .bytes("peers")
            .len(),
        50 * 6
    );
    let none = announce(&tracker, &hash(3), 1, "&numwant=0");
    assert!(none.get("peers").is_none() && none.get("peers6").is_none());
    assert_eq!(none.int("incomplete"), 230);
    // A sample has no duplicates.
    let peers = announce(&tracker, &hash(3), 1, "&numwant=100");
    let mut ports: Vec<&[u8]> = peers.bytes("peers").chunks(6).collect();
    ports.sort();
    ports.dedup();
    assert_eq!(ports.len(), 100);
}

#[test]
fn completed_counts_once_and_stopped_leaves() {
    let tracker = Tracker::start("");
    announce(&tracker, &hash(4), 10, "");
    let done = announce(&tracker, &hash(4), 10, "&left=0&event=completed");
    assert_eq!(
        (
            done.int("complete"),
            done.int("incomplete"),
            done.int("downloaded")
        ),
        (1, 0, 1)
    );
    let again = announce(&tracker, &hash(4), 10, "&left=0&event=completed");
    assert_eq!(again.int("downloaded"), 1);
    // Completed while still leeching is not a download.
    assert_eq!(
        announce(&tracker, &hash(4), 11, "&event=completed").int("downloaded"),
        1
    );
    let stopped = announce(&tracker, &hash(4), 10, "&event=stopped");
    assert!(stopped.get("downloaded").is_none());
    assert_eq!(stopped.bytes("peers"), b"");
    assert_eq!((stopped.int("complete"), stopped.int("incomplete")), (0, 1));
    // left=garbage counts as a seeder, as upstream, also after digits.
    assert_eq!(
        announce(&tracker, &hash(4), 12, "&left=abc").int("complete"),
        1
    );
    assert_eq!(
        announce(&tracker, &hash(4), 13, "&left=5abc").int("complete"),
        2
    );
}

#[test]
fn bad_announces_get_upstream_answers() {
    let tracker = Tracker::start("");
    let forgot = tracker.get("/announce?port=1");
    assert_eq!(forgot.status, 200);
    assert_eq!(forgot.text(), "d14:failure reason80:Your client forgot to send your torrent's info_hash. Please upgrade your client.e");
    for target in [
        "/announce?info_hash=tooshort".to_string(),
        announce_path(&hash(5), 1, "&compact=0"),
        announce_path(&hash(5), 1, "").replace("port=1", "port=99999"),
        announce_path(&hash(5), 1, "&numwant="),
        // Anything after a number's digits.
        announce_path(&hash(5), 1, "&port=12a"),
        announce_path(&hash(5), 1, "&numwant=1.5"),
        announce_path(&hash(5), 1, "&compact=1x"),
        announce_path(&hash(5), 1, "&peer_id=x"),
        announce_path(&hash(5), 1, "&x=\"quoted\""),
        // A broken escape in a name, as upstream's scan finds it.
        announce_path(&hash(5), 1, "&x%zz=1"),
        announce_path(&hash(5), 1, "&%=1"),
        format!(
            "{}&info_hash={}",
            announce_path(&hash(5), 1, ""),
            urlencode(&hash(5))
        ),
        "/announce".to_string(),
    ] {
        let response = tracker.get(&target);
        assert_eq!(response.status, 400, "{target}: {response:?}");
        assert_eq!(response.status_line, "HTTP/1.0 400 Invalid Request");
        assert_eq!(response.text(), "<title>Invalid Request</title>\n");
    }
    let not_found = tracker.get("/Announce?info_hash=x");
    assert_eq!(not_found.status, 404);
    assert_eq!(not_found.text(), "<title>Not Found</title>\n");
    // A path byte upstream's path scan refuses.
    for refused in ["\"", "@", "{", "\x01", "\x7f"] {
        let target = announce_path(&hash(5), 1, "").replacen('?', &format!("{refused}?"), 1);
        assert_eq!(tracker.get(&target).status, 404, "{target}");
    }
    assert_eq!(tracker.get("/").status, 404);
    let post = http(tracker.v4(), "POST /announce HTTP/1.0\r\n\r\n");
    assert_eq!(post.status, 400);
    // Broken clients' "GET /announce ?info_hash=" is tolerated.
    let lenient = tracker.get(&announce_path(&hash(5), 7, "").replacen('?', " ?", 1));
    assert_eq!(lenient.status, 200);
    // A path starting with "a" is an announce however long, as upstream.
    let token = format!("/announce/{}?", "t".repeat(100));
    let long = tracker.get(&announce_path(&hash(5), 8, "").replacen("/announce?", &token, 1));
    assert_eq!(long.status, 200, "{long:?}");
    assert!(long.text().contains("8:intervali"), "{long:?}");
    // Still serving after all that.
    assert_eq!(tracker.get(&announce_path(&hash(5), 1, "")).status, 200);
}

#[test]
fn control_and_high_bytes_only_in_values_the_tracker_ignores() {
    let tracker = Tracker::start("");
    let get = |target: &[u8]| {
        let request = [&b"GET "[..], target, b" HTTP/1.0\r\n\r\n"].concat();
        http_bytes(tracker.v4(), &request).status
    };
    let announce = announce_path(&hash(7), 1, "");
    let announce = announce.as_bytes();
    for raw in [b'\x01', b'\t', b'\x7f', b'\xff'] {
        // Upstream takes one such byte in an ignored value; two as well here.
        assert_eq!(get(&[announce, b"&x=a", &[raw], b"b"].concat()), 200);
        assert_eq!(get(&[announce, b"&x=a", &[raw, raw], b"b"].concat()), 200);
        assert_eq!(get(&[b"/stats?mode=torr&x=", &[raw][..]].concat()), 200);
        // Never in a name or a value the tracker reads.
        assert_eq!(get(&[announce, b"&numwant=5", &[raw]].concat()), 400);
        assert_eq!(get(&[announce, b"&event=stopped", &[raw]].concat()), 400);
        assert_eq!(get(&[announce, b"&x", &[raw], b"=1"].concat()), 400);
        assert_eq!(get(&[b"/stats?mode=torr", &[raw][..]].concat()), 400);
    }
}

#[test]
fn oversized_request_gets_500() {
    let tracker = Tracker::start("");
    let huge = format!("GET /announce?{} HTTP/1.0\r\n", "a".repeat(9000));
    let response = http(tracker.v4(), &huge);
    assert_eq!(response.status, 500);
    assert_eq!(response.text(), "<title>Internal Server Error</title>\n");
    assert_eq!(tracker.get(&announce_path(&hash(6), 1, "")).status, 200);
    // Upstream's limit to the byte: a head may end at 8192, not at 8193,
    // whether it comes in one piece or two.
    let head_of = |len: usize| {
        let start = "GET /stats?mode=version&x=";
        let end = " HTTP/1.0\r\n\r\n";
        format!("{start}{}{end}", "a".repeat(len - start.len() - end.len()))
    };
    for (len, status) in [(8192, 200), (8193, 500)] {
        let head = head_of(len);
        assert_eq!(http(tracker.v4(), &head).status, status, "{len}");
        let mut stream = TcpStream::connect(tracker.v4()).unwrap();
        stream.write_all(&head.as_bytes()[..4000]).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        stream.write_all(&head.as_bytes()[4000..]).unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).unwrap();
        let (response, _) = parse_response(&raw).expect("a response");
        assert_eq!(response.status, status, "{len} in two pieces");
    }
}

#[test]
fn scrape_known_hashes_in_request_order() {
    let tracker = Tracker::start("");
    announce(&tracker, &hash(8), 1, "&left=0");
    announce(&tracker, &hash(7), 1, "");
    let target = format!(
        "/scrape?info_hash={}&info_hash={}&info_hash={}",
        urlencode(&hash(8)),
        urlencode(&hash(99)),
        urlencode(&hash(7))
    );
    let response = tracker.get(&target);
    assert_eq!(response.status, 200);
    let mut expected = b"d5:filesd20:".to_vec();
    expected.extend_from_slice(&hash(8));
    expected.extend_from_slice(b"d8:completei1e10:downloadedi0e10:incompletei0ee20:");
    expected.extend_from_slice(&hash(7));
    expected.extend_from_slice(b"d8:completei0e10:downloadedi0e10:incompletei1eeee");
    assert_eq!(response.body, expected);
    assert_eq!(tracker.get("/scrape?").status, 400);
    assert_eq!(tracker.get("/scrape?info_hash=short").status, 400);
}

#[test]
fn whole_v2_info_hashes_stand_for_their_truncation() {
    // A BitTorrent v2 hash: the swarm is its first 20 bytes (BEP 52).
    let mut v2 = [0u8; 32];
    v2[..20].copy_from_slice(&hash(5));
    v2[20..].copy_from_slice(b"v2 tail byte");
    let tracker = Tracker::start("");
    announce(&tracker, &hash(5), 1, "&left=0");
    let whole = tracker.get(&format!(
        "/announce?info_hash={}&port=2&left=9",
        urlencode(&v2)
    ));
    assert_eq!(whole.status, 200, "{whole:?}");
    let reply = whole.bencode();
    assert_eq!((reply.int("complete"), reply.int("incomplete")), (1, 1));
    // A scrape names each hash as it was sent, where the client looks.
    let scraped = tracker.get(&format!(
        "/scrape?info_hash={}&info_hash={}",
        urlencode(&v2),
        urlencode(&hash(5))
    ));
    let mut expected = b"d5:filesd32:".to_vec();
    expected.extend_from_slice(&v2);
    expected.extend_from_slice(b"d8:completei1e10:downloadedi0e10:incompletei1ee20:");
    expected.extend_from_slice(&hash(5));
    expected.extend_from_slice(b"d8:completei1e10:downloadedi0e10:incompletei1eeee");
    assert_eq!(scraped.body, expected, "{}", scraped.text());
    // Other lengths stay refused.
    let odd = tracker.get(&format!(
        "/announce?info_hash={}&port=2",
        urlencode(&v2[..31])
    ));
    assert_eq!(odd.status, 400);
    let odd = tracker.get(&format!("/scrape?info_hash={}", urlencode(&[7u8; 33])));
    assert_eq!(odd.status, 400);
}

fn full_scrape(tracker: &Tracker, accept: &str) -> common::Response {
    http(
        tracker.v4(),
        &format!("GET /scrape HTTP/1.1\r\nHost: x\r\n{accept}\r\n"),
    )
}

/// A tracker holding torrents 30, 10 and 20 (`hash(n)`), announced in
/// that order.
fn tracker_with_three_torrents() -> Tracker {
    let tracker = Tracker::start("");
    for n in [30u8, 10, 20] {
        announce(&tracker, &hash(n), 1, "");
    }
    tracker
}

#[test]
fn full_scrape_plain_and_gzip() {
    let tracker = tracker_with_three_torrents();
    // Other streamed bodies are not full scrapes, and count as none.
    for stats in ["/stats?mode=statedump", "/stats?mode=tpbs&format=txt"] {
        assert_eq!(tracker.get(stats).status, 200);
    }
    let bytes = "opentracker_full_scrape_bytes_total";
    assert_eq!(tracker.metric(bytes), 0);
    let plain = full_scrape(&tracker, "");
    assert_eq!(plain.status, 200);
    assert_eq!(plain.header("transfer-encoding"), Some("chunked"));
    assert_eq!(
        plain.header("content-type"),
        Some("application/octet-stream")
    );
    assert!(plain.header("content-encoding").is_none());
    let files = plain.bencode();
    let names: Vec<Vec<u8>> = files.get("files").unwrap().dict().keys().cloned().collect();
    assert_eq!(
        names,
        vec![hash(10).to_vec(), hash(20).to_vec(), hash(30).to_vec()]
    );

    let zipped = full_scrape(&tracker, "Accept-Encoding: gzip, deflate\r\n");
    assert_eq!(zipped.header("content-encoding"), Some("gzip"));
    let mut unzipped = Vec::new();
    flate2::read::GzDecoder::new(&zipped.body[..])
        .read_to_end(&mut unzipped)
        .unwrap();
    assert_eq!(unzipped, plain.body);

    let refused = full_scrape(&tracker, "Accept-Encoding: gzip;q=0\r\n");
    assert!(refused.header("content-encoding").is_none());
    assert_eq!(refused.body, plain.body);
    // The bodies as sent, without their chunks' framing.
    let sent = 2 * plain.body.len() + zipped.body.len();
    assert_eq!(tracker.metric(bytes), sent as u64);
    let fscr = tracker.get("/stats?mode=fscr").text();
    assert!(fscr.starts_with(&format!("3000\n{sent}\n")), "{fscr}");
}

#[test]
fn without_accept_encoding_gzip_is_looked_for_where_upstream_looks() {
    let tracker = tracker_with_three_torrents();
    let gzipped = |target: &str, headers: &str| {
        let response = http(
            tracker.v4(),
            &format!("GET {target} HTTP/1.1\r\n{headers}\r\n"),
        );
        assert_eq!(response.status, 200, "{target}");
        response.header("content-encoding") == Some("gzip")
    };
    // The full scrape: anywhere in the request.
    assert!(gzipped("/scrape", "User-Agent: gzipper\r\n"));
    assert!(!gzipped("/scrape", "User-Agent: zipper\r\n"));
    // tpbs and statedump: after the query only.
    for stats in ["/stats?mode=tpbs&format=txt", "/stats?mode=statedump"] {
        assert!(!gzipped(&format!("{stats}&x=gzip"), ""), "{stats}");
        assert!(!gzipped(&format!("{stats}&gzip"), ""), "{stats}");
        assert!(gzipped(stats, "User-Agent: gzipper\r\n"), "{stats}");
    }
}

#[test]
fn stats_modes() {
    let mut tracker = Tracker::start("");
    announce(&tracker, &hash(40), 1, "&left=0");
    announce(&tracker, &hash(40), 2, "");
    let udp = Udp::new(tracker.v4());
    udp.connect();
    let text = |mode: &str| {
        let response = tracker.get(&format!("/stats?mode={mode}"));
        assert_eq!(response.status, 200, "{mode}");
        response.text()
    };
    assert_eq!(
        text("peer"),
        "2\n1\nopentracker serving 1 torrents\nopentracker"
    );
    // No mode is upstream's default, peer; an empty one is refused.
    for target in ["/stats", "/stats?x=1", "/stats ?mode=torr"] {
        assert_eq!(
            tracker.get(target).text(),
            "2\n1\nopentracker serving 1 torrents\nopentracker",
            "{target}"
        );
    }
    for target in ["/stats?mode=", "/stats?mode", "/stats?mode&x=1"] {
        assert_eq!(tracker.get(target).status, 400, "{target}");
    }
    assert_eq!(
        text("torr"),
        "1\n0\nopentracker serving 1 torrents\nopentracker"
    );
    for (mode, label) in [
        ("conn", "opentracker connections, "),
        ("udp4", "opentracker udp4 stats, "),
        ("tcp4", "opentracker tcp4 stats, "),
        ("scrp", "opentracker scrape stats, "),
        ("fscr", "opentracker full scrape stats, "),
        ("completed", "opentracker, "),
    ] {
        let body = text(mode);
        let lines: Vec<&str> = body.split('\n').collect();
        assert_eq!(lines.len(), 4, "{mode}: {body:?}");
        assert!(
            lines[0].parse::<u64>().is_ok() && lines[1].parse::<u64>().is_ok(),
            "{mode}: {body:?}"
        );
        assert!(lines[2].ends_with(" hours)"), "{mode}: {body:?}");
        assert!(lines[3].starts_with(label), "{mode}: {body:?}");
    }
    assert!(text("udp4").starts_with("1\n1\n"));
    assert!(text("version").starts_with("opentracker "));
    let top = text("top10");
    assert!(
        top.contains(&format!(
            "Top 10 torrents by peers:\n\t2\t{}\n",
            hex_upper(&hash(40))
        )),
        "{top}"
    );
    assert!(top.contains("Top 10 torrents by leechers:\n\t1\t"));
    let everything = text("everything");
    assert!(
        everything.starts_with("<?xml") && everything.contains("<peers>\n    <count>2</count>")
    );
    assert_eq!(
        text("tpbs&format=txt"),
        format!("{}:1:1\n", hex_upper(&hash(40)))
    );
    assert_eq!(
        text("tpbs&format=jsonl"),
        format!(
            "{{\"info_hash\":\"{}\",\"complete\":1,\"incomplete\":1,\"downloaded\":0}}\n",
            hex_upper(&hash(40))
        )
    );
    let content_type = |mode: &str| {
        let response = tracker.get(&format!("/stats?mode={mode}"));
        response.header("content-type").map(str::to_owned)
    };
    assert_eq!(
        content_type("tpbs&format=jsonl").as_deref(),
        Some("application/x-ndjson")
    );
    assert_eq!(
        content_type("tpbs&format=txt").as_deref(),
        Some("application/octet-stream")
    );
    assert!(text("herr").contains("404 INV 0\n"));
    assert_eq!(tracker.get("/stats?mode=nonsense").status, 400);
    assert_eq!(
        tracker
            .get(&format!("/stats?info_hash={}", urlencode(&hash(1))))
            .status,
        400
    );
    assert!(tracker.is_alive());
}

#[test]
fn tpbs_url_format_escapes_hashes_byte_for_byte_as_upstream() {
    let tracker = Tracker::start("");
    // Letters, digits and `$/.=~-_` stay; the rest as lower-case `%xx`.
    let info_hash = *b"$/.=~-_Az0!*'()\xab\xff\x00 +";
    announce(&tracker, &info_hash, 1, "");
    let response = tracker.get("/stats?mode=tpbs&format=url");
    assert_eq!(response.status, 200);
    assert_eq!(
        response.text(),
        "$/.=~-_Az0%21%2a%27%28%29%ab%ff%00%20%2b:0:1\n"
    );
}

#[test]
fn everything_shows_a_random_tracker_id_that_lasts_the_process() {
    let tracker_id = |tracker: &Tracker| {
        let xml = tracker.get("/stats?mode=everything").text();
        let id = xml
            .split_once("<tracker_id>")
            .and_then(|(_, rest)| rest.split_once("</tracker_id>"))
            .map(|(id, _)| id.parse::<u32>().unwrap())
            .unwrap_or_else(|| panic!("no tracker_id: {xml}"));
        assert!(id < 1 << 31, "as upstream's random()");
        id
    };
    let one = Tracker::start("");
    let another = Tracker::start("");
    let id = tracker_id(&one);
    assert_eq!(tracker_id(&one), id);
    assert_ne!(tracker_id(&another), id);
}

fn hex_upper(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

#[test]
fn stats_numwants_counts_announces_by_the_peers_they_asked_for() {
    let tracker = Tracker::start("[tracker]\nnumwant_max = 100\n");
    announce(&tracker, &hash(1), 1, "&numwant=5");
    announce(&tracker, &hash(1), 2, "");
    announce(&tracker, &hash(1), 3, "&numwant=1000");
    announce(&tracker, &hash(1), 4, "&numwant=-3");
    let udp = Udp::new(tracker.v4());
    let connection = udp.connect();
    for numwant in [10, -1] {
        let packet = Udp::announce_packet(connection, (&hash(1), 5, 0, 0, numwant));
        assert!(udp.exchange(&packet).is_some(), "no reply");
    }
    let response = tracker.get("/stats?mode=numwants");
    assert_eq!(response.status, 200);
    let text = response.text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 201, "{text}");
    assert_eq!(lines[0], "000 => 0");
    // The default for a missing or negative numwant, HTTP's cap, and
    // UDP's -1, which asks for as many as fit (200 IPv4 peers).
    let counted: Vec<&str> = lines.into_iter().filter(|l| !l.ends_with(" 0")).collect();
    assert_eq!(
        counted,
        ["005 => 1", "010 => 1", "050 => 2", "100 => 1", "200 => 1"]
    );
}

#[test]
fn log_completed_logs_each_completed_download_over_http_and_udp() {
    let complete = |tracker: &Tracker| {
        for extra in ["left=5", "left=0&event=completed"] {
            let path = format!(
                "/announce?info_hash={}&peer_id={}&port=1&{extra}",
                urlencode(&hash(7)),
                urlencode(b"-TR4050-abcdefghijkl")
            );
            assert_eq!(tracker.get(&path).status, 200);
        }
        let udp = Udp::new(tracker.v4());
        let connection = udp.connect();
        for left in [5, 0] {
            let packet = Udp::announce_packet(connection, (&hash(8), 2, left, 1, 10));
            assert!(udp.exchange(&packet).is_some(), "no reply");
        }
    };
    let tracker = Tracker::start(
        "[log]\ntarget = \"stderr\"\nlevel = \"info\"\ncompleted = true\nclient_ip = \"full\"\n",
    );
    complete(&tracker);
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02X}")).collect::<String>();
    for line in [
        format!(
            "completed info_hash={} peer_id={} ip=127.0.0.1",
            hex(&hash(7)),
            hex(b"-TR4050-abcdefghijkl")
        ),
        format!(
            "completed info_hash={} peer_id={} ip=127.0.0.1",
            hex(&hash(8)),
            hex(&[b'U'; 20])
        ),
    ] {
        tracker.wait_for_log(&line);
    }
    assert_eq!(tracker.stderr().matches("completed info_hash=").count(), 2);

    // Off by default, at every level.
    let tracker = Tracker::start("");
    complete(&tracker);
    assert_eq!(
        tracker.get("/stats?mode=completed").text().lines().next(),
        Some("2")
    );
    assert!(!tracker.stderr().contains("completed info_hash="));
}

#[test]
fn stats_restricted_to_configured_networks() {
    let tracker = Tracker::start("[access]\nstats = [\"10.0.0.0/8\"]\nstats_path = \"secret\"\n");
    let denied = tracker.get("/secret?mode=peer");
    assert_eq!(denied.status, 403);
    assert_eq!(denied.status_line, "HTTP/1.0 403 Access Denied");
    assert_eq!(tracker.get("/stats").status, 404);
    let open = Tracker::start("[access]\nstats = [\"127.0.0.0/8\"]\n");
    assert_eq!(open.get("/stats").status, 200);
}

#[test]
fn metrics_for_prometheus_count_both_protocols_and_obey_the_stats_networks() {
    let tracker = Tracker::start("");
    announce(&tracker, &hash(1), 1000, "&left=0");
    Udp::new(tracker.v4()).announce(&hash(2), 2000, 5, 0, 10);
    assert_eq!(tracker.get("/nothing-here").status, 404);
    let response = tracker.get("/metrics");
    assert_eq!(response.status, 200);
    let text = response.text();
    for line in [
        "opentracker_torrents 2",
        "opentracker_peers 2",
        "opentracker_seeders 1",
        "opentracker_requests_total{protocol=\"http\",request=\"announce\"} 1",
        "opentracker_requests_total{protocol=\"udp\",request=\"connect\"} 1",
        "opentracker_requests_total{protocol=\"udp\",request=\"announce\"} 1",
        "opentracker_http_errors_total{error=\"404 Not found\"} 1",
        "# TYPE opentracker_udp_datagrams_dropped_total counter",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "{line} missing from:\n{text}"
        );
    }
    // The process's own readings, as Prometheus client libraries name them.
    let value = |name: &str| -> f64 {
        let line = text.lines().find(|l| l.starts_with(&format!("{name} ")));
        let line = line.unwrap_or_else(|| panic!("{name} missing from:\n{text}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    let resident = value("process_resident_memory_bytes");
    assert!((1e5..1e9).contains(&resident), "{resident}");
    assert!(value("process_virtual_memory_bytes") >= resident);
    assert!(value("process_cpu_seconds_total") >= 0.0);
    // Listeners, epoll, the connection asking, and more.
    assert!(value("process_open_fds") >= 5.0);
    assert!(value("process_max_fds") >= value("process_open_fds"));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!((now - value("process_start_time_seconds")).abs() < 60.0);
    let guarded = Tracker::start("[access]\nstats = [\"10.0.0.0/8\"]\n");
    assert_eq!(guarded.get("/metrics").status, 403);
}

#[test]
fn stats_as_json_for_status_pages() {
    let tracker = Tracker::start("");
    announce(&tracker, &hash(1), 1000, "&left=0");
    Udp::new(tracker.v4()).announce(&hash(2), 2000, 5, 0, 10);
    let response = tracker.get("/stats?mode=json");
    assert_eq!(response.status, 200);
    assert_eq!(response.header("Content-Type"), Some("application/json"));
    let stats: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(
        (
            &stats["torrents"],
            &stats["peers"],
            &stats["seeders"],
            &stats["leechers"]
        ),
        (&2.into(), &2.into(), &1.into(), &1.into())
    );
    assert_eq!(stats["requests"]["http"]["announce"], 1);
    assert_eq!(stats["requests"]["udp"]["connect"], 1);
    assert_eq!(stats["requests"]["udp"]["announce"], 1);
    assert_eq!(stats["announce_interval_seconds"], 1800);
    assert_eq!(stats["lists"], serde_json::json!({}), "no list set");
    assert!(stats["resident_memory_bytes"].as_u64().unwrap() > 100_000);
    assert_eq!(stats["version"], env!("CARGO_PKG_VERSION"));
    let guarded = Tracker::start("[access]\nstats = [\"10.0.0.0/8\"]\n");
    assert_eq!(guarded.get("/stats?mode=json").status, 403);
}

#[test]
fn root_redirects_when_configured() {
    let tracker = Tracker::start("[tracker]\nredirect_url = \"https://example.org/tracker\"\n");
    let response = tracker.get("/");
    assert_eq!(response.status, 302);
    assert_eq!(
        response.header("location"),
        Some("https://example.org/tracker")
    );
    assert_eq!(tracker.get("///").status, 302);
    // Also with a query (upstream: 404), as the README says.
    assert_eq!(tracker.get("/?x=1").status, 302);
}

#[test]
fn forwarded_for_only_from_trusted_proxies() {
    let trusted = Tracker::start(
        "[access]\nproxy = [\"127.0.0.1\"]\n\
         [log]\ntarget = \"stderr\"\nrequests = true\nclient_ip = \"full\"\n",
    );
    let request = format!(
        "GET {} HTTP/1.0\r\nX-Forwarded-For: 10.9.8.7, 1.1.1.1\r\n\r\n",
        announce_path(&hash(50), 80, "")
    );
    assert_eq!(
        http(trusted.v4(), &request).bencode().bytes("peers"),
        &[10, 9, 8, 7, 0, 80]
    );
    // The request log names the client the proxy speaks for, and the proxy.
    trusted.wait_for_log("10.9.8.7 via 127.0.0.1 announce");
    trusted.get("/scrape?info_hash=aaaaaaaaaaaaaaaaaaaa");
    trusted.wait_for_log("127.0.0.1 scrape");
    // An address no peer has counts as none: the proxy's own is stored,
    // as for an unreadable one.
    for (n, unreachable) in [
        "::",
        "ff02::1",
        "0.0.0.0",
        "224.0.0.1",
        "255.255.255.255",
        "::ffff:239.1.2.3",
    ]
    .into_iter()
    .enumerate()
    {
        let request = format!(
            "GET {} HTTP/1.0\r\nX-Forwarded-For: {unreachable}\r\n\r\n",
            announce_path(&hash(51 + n as u8), 80, "")
        );
        let reply = http(trusted.v4(), &request).bencode();
        assert_eq!(
            reply.bytes("peers"),
            &[127, 0, 0, 1, 0, 80],
            "{unreachable}"
        );
        assert!(reply.get("peers6").is_none(), "{unreachable}");
    }
    let untrusted = Tracker::start("");
    assert_eq!(
        http(untrusted.v4(), &request).bencode().bytes("peers"),
        &[127, 0, 0, 1, 0, 80]
    );
}

#[test]
fn busy_networks_are_listed_per_prefix_across_torrents() {
    // A trusted proxy lets the test announce peers from any network.
    let tracker = Tracker::start("[access]\nproxy = [\"127.0.0.1\"]\n");
    let peers = [
        (60, "10.1.2.3"),
        (61, "10.1.2.4"),
        (60, "10.1.2.20"),
        (61, "192.0.2.9"),
        (60, "2001:db8:5:6::1"),
        (61, "2001:db8:5:6::2"),
        (61, "2001:db8:5:7::1"),
    ];
    for (torrent, address) in peers {
        let request = format!(
            "GET {} HTTP/1.0\r\nX-Forwarded-For: {address}\r\n\r\n",
            announce_path(&hash(torrent), 6881, "")
        );
        assert_eq!(http(tracker.v4(), &request).status, 200);
    }
    let response = tracker.get("/stats?mode=s24s");
    assert_eq!(response.status, 200);
    assert_eq!(
        response.text(),
        "Networks, limit /28:\n00000002: 10.1.2.0\n00000001: 10.1.2.16\n00000001: 192.0.2.0\n\n\
         Networks, limit /24:\n00000003: 10.1.2.0\n00000001: 192.0.2.0\n\n\
         Networks, limit /64:\n00000002: 2001:db8:5:6::\n00000001: 2001:db8:5:7::\n\n\
         Networks, limit /48:\n00000003: 2001:db8:5::\n\n"
    );
}

fn read_one(stream: &mut TcpStream, pending: &mut Vec<u8>) -> common::Response {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some((response, used)) = parse_response(pending) {
            pending.drain(..used);
            return response;
        }
        assert!(Instant::now() < deadline, "no response");
        let mut buf = [0u8; 4096];
        let n = stream.read(&mut buf).expect("read");
        assert!(n > 0, "connection closed early");
        pending.extend_from_slice(&buf[..n]);
    }
}

#[test]
fn keep_alive_pipelining_and_request_cap() {
    let tracker = Tracker::start("[http]\nmax_requests_per_connection = 3\n");
    let mut stream = TcpStream::connect(tracker.v4()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let one = format!(
        "GET {} HTTP/1.1\r\nHost: t\r\n\r\n",
        announce_path(&hash(60), 1, "")
    );
    stream.write_all(format!("{one}{one}").as_bytes()).unwrap();
    let mut pending = Vec::new();
    for _ in 0..2 {
        let response = read_one(&mut stream, &mut pending);
        assert_eq!(response.status, 200);
        assert!(response.header("connection").is_none());
    }
    stream.write_all(one.as_bytes()).unwrap();
    let last = read_one(&mut stream, &mut pending);
    assert_eq!(last.header("connection"), Some("close"));
    let mut rest = Vec::new();
    assert_eq!(stream.read_to_end(&mut rest).unwrap(), 0);

    // Far more pipelined than the cap: the answers up to it all arrive, and
    // the connection ends cleanly. Closing with the rest unread reset it,
    // and the reset threw away answers the kernel still held.
    let mut stream = TcpStream::connect(tracker.v4()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let flood = one.repeat(2000);
    let sender = std::thread::spawn(move || {
        // The tracker may stop reading before the last of it.
        let _ = writer.write_all(flood.as_bytes());
    });
    let mut answers = Vec::new();
    stream
        .read_to_end(&mut answers)
        .expect("a clean end, not a reset");
    let text = String::from_utf8_lossy(&answers);
    assert_eq!(text.matches("HTTP/1.1 200").count(), 3, "{text}");
    assert!(text.contains("Connection: close\r\n"), "{text}");
    sender.join().unwrap();

    // HTTP/1.0 closes unless asked; Connection: close is honoured.
    let response = http(
        tracker.v4(),
        &format!(
            "GET {} HTTP/1.1\r\nConnection: close\r\n\r\n",
            announce_path(&hash(60), 1, "")
        ),
    );
    assert_eq!(response.header("connection"), Some("close"));
}

/// What a new connection that sends `request` receives before it ends,
/// if anything.
fn whatever_comes(tracker: &Tracker, request: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(tracker.v4()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let _ = stream.write_all(request);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    answer
}

#[test]
fn connections_over_max_connections_are_closed_counted_and_told() {
    let mut tracker = Tracker::start("[http]\nmax_connections = 2\n");
    // Each sends a byte: accepted, and held open waiting for the rest.
    let mut held: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut stream = TcpStream::connect(tracker.v4()).unwrap();
            stream.write_all(b"G").unwrap();
            stream
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    let refused = loop {
        let answer = whatever_comes(&tracker, b"GET /stats HTTP/1.0\r\n\r\n");
        // Until both held ones are accepted, this one may take a place.
        if answer.is_empty() || Instant::now() > deadline {
            break answer;
        }
    };
    assert!(refused.is_empty(), "closed unanswered");
    assert!(
        tracker.wait_for_message(
            "HTTP connections closed unanswered",
            Duration::from_secs(15)
        ),
        "no STATUS= about it"
    );
    assert!(tracker.stderr().contains(
        "HTTP connections closed unanswered in 10 s: http.max_connections (2) were open"
    ));
    // Once one held goes, the next to ask is answered, and counted open
    // with the one left.
    held.pop();
    let deadline = Instant::now() + Duration::from_secs(10);
    let metrics = loop {
        let answer = whatever_comes(&tracker, b"GET /metrics HTTP/1.0\r\n\r\n");
        if !answer.is_empty() {
            break String::from_utf8_lossy(&answer).into_owned();
        }
        assert!(Instant::now() < deadline, "no place came free");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(metric_in(&metrics, "opentracker_tcp_connections_refused_total") >= 1);
    assert_eq!(metric_in(&metrics, "opentracker_tcp_connections"), 2);
    assert_eq!(metric_in(&metrics, "opentracker_tcp_connections_limit"), 2);
}

/// The `400 ...` (parse error) line of `/stats?mode=herr`.
fn parse_errors(tracker: &Tracker) -> String {
    herr_line(tracker, 1)
}

fn herr_line(tracker: &Tracker, line: usize) -> String {
    let herr = tracker.get("/stats?mode=herr").text();
    herr.lines().nth(line).unwrap_or_default().to_string()
}

#[test]
fn announce_and_scrape_paths_without_a_query_count_as_invalid_parameters() {
    let tracker = Tracker::start("");
    for target in ["/announce", "/scrapeXYZ", "/scrape%3F"] {
        assert_eq!(tracker.get(target).status, 400, "{target}");
    }
    assert_eq!(parse_errors(&tracker), "400 ... 0");
    assert_eq!(herr_line(&tracker, 2), "400 PAR 3");
    assert_eq!(http(tracker.v4(), "POST / HTTP/1.0\r\n\r\n").status, 400);
    assert_eq!(parse_errors(&tracker), "400 ... 1");
}

#[test]
fn request_bodies_are_skipped_and_the_connection_kept() {
    let tracker = Tracker::start("");
    let mut stream = TcpStream::connect(tracker.v4()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let version = "GET /stats?mode=version HTTP/1.1\r\n";
    let mut pending = Vec::new();
    let mut expect_version = |stream: &mut TcpStream| {
        let response = read_one(stream, &mut pending);
        assert_eq!(response.status, 200, "{response:?}");
        assert!(response.text().starts_with("opentracker "), "{response:?}");
        assert!(response.header("connection").is_none(), "{response:?}");
    };
    // A body that looks like a blank line, then the next request.
    let blank_line_body = format!("{version}Content-Length: 7\r\n\r\nabc\r\n\r\n");
    stream.write_all(blank_line_body.as_bytes()).unwrap();
    expect_version(&mut stream);
    stream
        .write_all(format!("{version}\r\n").as_bytes())
        .unwrap();
    expect_version(&mut stream);
    // A body with a request pipelined right after it.
    let glued = format!("{version}Content-Length: 3\r\n\r\nabc{version}\r\n");
    stream.write_all(glued.as_bytes()).unwrap();
    expect_version(&mut stream);
    expect_version(&mut stream);
    // A body that arrives after its answer, over several reads.
    stream
        .write_all(format!("{version}Content-Length: 10\r\n\r\n").as_bytes())
        .unwrap();
    expect_version(&mut stream);
    for part in ["01234", "5678", "9"] {
        std::thread::sleep(Duration::from_millis(50));
        stream.write_all(part.as_bytes()).unwrap();
    }
    stream
        .write_all(format!("{version}\r\n").as_bytes())
        .unwrap();
    expect_version(&mut stream);
    assert_eq!(parse_errors(&tracker), "400 ... 0");
}

#[test]
fn a_chunked_request_body_is_answered_then_the_connection_closes() {
    let tracker = Tracker::start("");
    let mut stream = TcpStream::connect(tracker.v4()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    // More body than one read takes, so some is unread when the answer is
    // out: a plain close then would reset the connection.
    let mut request =
        b"GET /stats?mode=version HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    request.extend_from_slice(b"8000\r\n");
    request.extend_from_slice(&[b'x'; 0x8000]);
    request.extend_from_slice(b"\r\n0\r\n\r\nGET /stats?mode=version HTTP/1.1\r\n\r\n");
    stream.write_all(&request).unwrap();
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .expect("an answer, then the end");
    let (response, used) = parse_response(&raw).expect("one response");
    assert_eq!(response.status, 200, "{response:?}");
    assert!(response.text().starts_with("opentracker "));
    assert_eq!(response.header("connection"), Some("close"));
    assert_eq!(used, raw.len(), "nothing after the answer");
    assert_eq!(parse_errors(&tracker), "400 ... 0");
}

#[test]
fn keep_alive_can_be_turned_off() {
    let tracker = Tracker::start("[http]\nkeep_alive = false\n");
    let response = http(
        tracker.v4(),
        &format!(
            "GET {} HTTP/1.1\r\nHost: t\r\n\r\n",
            announce_path(&hash(61), 1, "")
        ),
    );
    assert_eq!(response.header("connection"), Some("close"));
}

#[test]
fn slow_and_half_open_connections_time_out_without_blocking_others() {
    let tracker = Tracker::start("[http]\nrequest_timeout = 1\n");
    let open_fds = || {
        std::fs::read_dir(format!("/proc/{}/fd", tracker.child.id()))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    let fds_before = open_fds();
    let mut idle: Vec<TcpStream> = (0..200)
        .map(|_| TcpStream::connect(tracker.v4()).unwrap())
        .collect();
    let mut slow = TcpStream::connect(tracker.v4()).unwrap();
    slow.write_all(b"GET /announce?info_hash=").unwrap();
    // Others are served meanwhile.
    assert_eq!(tracker.get(&announce_path(&hash(70), 1, "")).status, 200);
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let started = Instant::now();
    let mut buf = Vec::new();
    assert_eq!(
        slow.read_to_end(&mut buf).unwrap_or(0),
        0,
        "no reply to an unfinished request"
    );
    assert!(started.elapsed() < Duration::from_secs(8));
    for stream in &mut idle {
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut buf = [0u8; 16];
        assert!(matches!(stream.read(&mut buf), Ok(0) | Err(_)));
    }
    assert_eq!(tracker.get(&announce_path(&hash(70), 1, "")).status, 200);
    // Nothing leaked: the tracker holds as many descriptors as before.
    let deadline = Instant::now() + Duration::from_secs(5);
    while open_fds() > fds_before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(open_fds(), fds_before);
}

#[test]
fn an_http_10_client_gets_the_full_scrape_unchunked() {
    let tracker = tracker_with_three_torrents();
    let chunked = full_scrape(&tracker, "");
    for accept in ["", "Accept-Encoding: gzip\r\n"] {
        let mut stream = TcpStream::connect(tracker.v4()).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let request = format!("GET /scrape HTTP/1.0\r\n{accept}\r\n");
        stream.write_all(request.as_bytes()).unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).unwrap();
        let head_end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let head = String::from_utf8_lossy(&raw[..head_end]).to_lowercase();
        assert!(head.starts_with("http/1.1 200 ok\r\n"), "{head}");
        assert!(!head.contains("transfer-encoding"), "{head}");
        assert!(head.contains("connection: close"), "{head}");
        // The body runs to the close, as an HTTP/1.0 client reads it.
        let mut body = raw[head_end..].to_vec();
        if !accept.is_empty() {
            assert!(head.contains("content-encoding: gzip"), "{head}");
            let mut unzipped = Vec::new();
            flate2::read::GzDecoder::new(&body[..])
                .read_to_end(&mut unzipped)
                .unwrap();
            body = unzipped;
        }
        assert_eq!(body, chunked.body, "{accept:?}");
    }
}

/// Sends `request` on a connection of its own, whose client reads as fast
/// as the response comes, and reads until the tracker closes; returns the
/// response's bytes and how many UDP requests were answered meanwhile.
fn udp_answered_while_read(tracker: &Tracker, request: &[u8]) -> (Vec<u8>, u32) {
    udp_answered_between(
        tracker.v4(),
        || {
            let mut stream = TcpStream::connect(tracker.v4()).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            stream.write_all(request).unwrap();
            stream
        },
        |mut stream| {
            // A client that reads as fast as the body comes never fills
            // the socket, so only the tracker itself can make room for
            // other work.
            let mut raw = Vec::new();
            stream.read_to_end(&mut raw).unwrap();
            raw
        },
    )
}

#[test]
fn udp_is_answered_while_a_fast_client_takes_a_full_scrape() {
    let tracker = Tracker::start("");
    announce_torrents(&tracker, 50_000);
    let (raw, answered_meanwhile) = udp_answered_while_read(
        &tracker,
        b"GET /scrape HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n",
    );
    let (response, _) = parse_response(&raw).expect("a whole response");
    assert_eq!(response.header("content-encoding"), Some("gzip"));
    let mut unzipped = Vec::new();
    flate2::read::GzDecoder::new(&response.body[..])
        .read_to_end(&mut unzipped)
        .unwrap();
    let scrape = bencode::decode(&unzipped).expect("bencoded full scrape");
    let torrents = scrape.get("files").unwrap().dict().len() as u64;
    assert_eq!(torrents, tracker.metric("opentracker_torrents"));
    // The body's slices took turns with the rest of the work (all of it
    // came in one go before, and no UDP request was answered meanwhile).
    assert!(
        answered_meanwhile >= 2,
        "{answered_meanwhile} UDP requests answered during the full scrape"
    );
}

#[test]
fn udp_is_answered_while_the_busiest_networks_are_counted() {
    let tracker = Tracker::start("");
    announce_torrents(&tracker, 50_000);
    let peers = tracker.metric("opentracker_peers");
    let (raw, answered_meanwhile) = udp_answered_while_read(
        &tracker,
        b"GET /stats?mode=s24s HTTP/1.1\r\nConnection: close\r\n\r\n",
    );
    let (response, _) = parse_response(&raw).expect("a whole response");
    // Every peer announced from 127.0.0.1, and every one was counted.
    assert!(
        response
            .text()
            .starts_with(&format!("Networks, limit /28:\n{peers:08}: 127.0.0.0\n")),
        "{}",
        response.text()
    );
    // Counting took turns with the rest of the work (it was one turn before).
    assert!(
        answered_meanwhile >= 2,
        "{answered_meanwhile} UDP requests answered while counting"
    );
}

#[test]
fn rankings_keep_the_connection_and_its_pipelined_requests_in_order() {
    let tracker = Tracker::start("");
    // More torrents than one slice of the walk holds.
    announce_torrents(&tracker, 3_000);
    announce(&tracker, &hash(40), 1, "");
    announce(&tracker, &hash(40), 2, "&left=0");
    let mut stream = TcpStream::connect(tracker.v4()).unwrap();
    stream
        .write_all(
            b"GET /stats?mode=top100 HTTP/1.1\r\n\r\n\
              GET /stats?mode=s24s HTTP/1.1\r\n\r\n\
              GET /stats?mode=top10 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n\
              GET /stats?mode=tpbs&format=txt HTTP/1.1\r\n\r\n",
        )
        .unwrap();
    // Another client counts networks at the same time: counts take turns.
    let mut other = TcpStream::connect(tracker.v4()).unwrap();
    other
        .write_all(b"GET /stats?mode=s24s HTTP/1.1\r\n\r\n")
        .unwrap();
    let mut pending = Vec::new();
    let top100 = read_one(&mut stream, &mut pending);
    assert_eq!(top100.status, 200);
    assert_eq!(top100.header("connection"), None);
    let text = top100.text();
    let lines: Vec<&str> = text.lines().collect();
    // Three headings, 100 torrents by peers and by seeders, and the one
    // torrent with a leecher.
    assert_eq!(lines.len(), 3 + 100 + 100 + 1, "{text}");
    assert_eq!(lines[1], format!("\t2\t{}", hex_upper(&hash(40))));
    assert_eq!(lines[203], format!("\t1\t{}", hex_upper(&hash(40))));
    let s24s = read_one(&mut stream, &mut pending);
    assert!(s24s
        .text()
        .starts_with("Networks, limit /28:\n00003002: 127.0.0.0\n"));
    let top10 = read_one(&mut stream, &mut pending);
    assert_eq!(top10.header("connection"), Some("keep-alive"));
    assert!(top10.text().starts_with("Top 10 torrents by peers:\n\t2\t"));
    let tpbs = read_one(&mut stream, &mut pending);
    assert_eq!(tpbs.text().lines().count(), 3_001);
    let other_s24s = read_one(&mut other, &mut Vec::new());
    assert_eq!(other_s24s.text(), s24s.text());
}

#[test]
fn full_scrape_can_be_disabled() {
    let tracker = Tracker::start("[tracker]\nfull_scrape = false\n");
    assert_eq!(full_scrape(&tracker, "").status, 404);
}

#[test]
fn full_scrape_min_interval_gives_each_client_one_full_scrape_per_interval() {
    let tracker = Tracker::start(
        "[tracker]\nfull_scrape_min_interval = 300\n[access]\nproxy = [\"127.0.0.1\"]\n",
    );
    announce(&tracker, &hash(1), 1, "");
    assert_eq!(full_scrape(&tracker, "").status, 200);
    // Again from the same client, gzip or not: upstream's 402, and when to
    // come back.
    let again = full_scrape(&tracker, "Accept-Encoding: gzip\r\n");
    assert_eq!(again.status, 402, "{again:?}");
    let wait: u32 = again.header("retry-after").unwrap().parse().unwrap();
    assert!((290..=300).contains(&wait), "{wait}");
    assert_eq!(again.text(), "<title>Payment Required</title>\n");
    // The client's own announces and scrapes are still answered.
    assert_eq!(announce(&tracker, &hash(1), 2, "").int("incomplete"), 2);
    assert_eq!(scrape_counts(&tracker, 1), Some((0, 2, 0)));

    // Each client behind the trusted proxy has its own allowance (upstream
    // counts the proxy's address, so one client would use up everyone's);
    // an IPv6 client is its /64.
    let forwarded = |client: &str| {
        let request = format!("GET /scrape HTTP/1.0\r\nX-Forwarded-For: {client}\r\n\r\n");
        http(tracker.v4(), &request).status
    };
    assert_eq!(forwarded("198.51.100.1"), 200);
    assert_eq!(forwarded("198.51.100.1"), 402);
    assert_eq!(forwarded("198.51.100.2"), 200);
    assert_eq!(forwarded("2001:db8:0:1::1"), 200);
    assert_eq!(forwarded("2001:db8:0:1::2"), 402);
    // ::1 is not a trusted proxy: a client of its own.
    assert_eq!(
        http(tracker.v6(), "GET /scrape HTTP/1.0\r\n\r\n").status,
        200
    );
    assert_eq!(
        http(tracker.v6(), "GET /scrape HTTP/1.0\r\n\r\n").status,
        402
    );

    // Counted under upstream's label for a full scrape too soon, not as
    // the 402 of a tracker with no room for another body.
    assert_eq!(tracker.metric(&http_errors("400 Not Modest")), 4);
    assert_eq!(tracker.metric(&http_errors("402 Payment Required")), 0);
    // Five served: upstream's fscr counts them in thousands.
    let fscr = tracker.get("/stats?mode=fscr").text();
    assert!(fscr.starts_with("5000\n"), "{fscr}");
}

#[test]
fn blocked_clients_are_refused_by_peer_id_over_http_and_udp() {
    let tracker = Tracker::start("[access]\nblocked_clients = [\"-XL\", \"-SD0100-\"]\n");
    let with_peer_id = |peer_id: &[u8; 20], port: u16| {
        format!(
            "/announce?info_hash={}&peer_id={}&port={port}&left=100",
            urlencode(&hash(1)),
            urlencode(peer_id)
        )
    };
    let refused = tracker.get(&with_peer_id(b"-XL0012-abcdefghijkl", 1));
    assert_eq!(refused.status, 200);
    assert_eq!(
        refused.bencode().bytes("failure reason"),
        b"This client software is not allowed on this tracker."
    );
    // Other clients, and one that sends no peer_id, are served.
    let allowed = tracker.get(&with_peer_id(b"-qB4650-abcdefghijkl", 2));
    assert_eq!(allowed.bencode().int("incomplete"), 1);
    let anonymous = format!("/announce?info_hash={}&port=3", urlencode(&hash(1)));
    assert_eq!(tracker.get(&anonymous).bencode().int("incomplete"), 2);

    let udp = Udp::new(tracker.v4());
    let mut packet = Udp::announce_packet(udp.connect(), (&hash(1), 4, 100, 0, 50));
    packet[36..56].copy_from_slice(b"-SD0100-abcdefghijkl");
    let reply = udp.exchange(&packet).expect("error reply");
    assert_eq!(be32(&reply, 0), 3, "an error reply");
    assert_eq!(
        &reply[8..],
        b"This client software is not allowed on this tracker."
    );
    packet[36..56].copy_from_slice(b"-SD0200-abcdefghijkl");
    let reply = udp.exchange(&packet).expect("announce reply");
    assert_eq!((be32(&reply, 0), be32(&reply, 12)), (1, 3));

    let metrics = tracker.get("/metrics").text();
    assert!(
        metrics
            .lines()
            .any(|l| l == "opentracker_blocked_client_announces_total 2"),
        "{metrics}"
    );
}

fn started_with_state(state: &str) -> Tracker {
    let dir = TestDir::new();
    let file = dir.write("state", state);
    Tracker::launch_in(
        dir,
        Launch {
            args: vec!["-l".into(), file.display().to_string()],
            ..Launch::default()
        },
    )
}

#[test]
fn a_state_dump_loads_back_with_downloads_and_last_announce_minutes() {
    let first = Tracker::start("");
    for port in [1, 2] {
        first.get(&announce_path(&hash(1), port, "&left=0&event=completed"));
    }
    first.get(&announce_path(&hash(2), 1, "&left=0&event=completed"));
    first.get(&announce_path(&hash(3), 1, ""));
    let dump = first.get("/stats?mode=statedump").text();
    let unix_minute = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 60;
    let lines: Vec<&str> = dump.lines().collect();
    assert_eq!(lines.len(), 3, "{dump}");
    for (line, (n, downloaded)) in lines.iter().zip([(1, 2), (2, 1), (3, 0)]) {
        let fields: Vec<&str> = line.split(':').collect();
        assert_eq!(fields[0], hex_upper(&hash(n)), "{line}");
        let minute: u64 = fields[1].parse().unwrap();
        assert!(
            minute.abs_diff(unix_minute) <= 1,
            "{line} at minute {unix_minute}"
        );
        assert_eq!(fields[2], downloaded.to_string(), "{line}");
    }

    // What a restart loads: downloads and last announce, without peers.
    // A torrent last seen over a day ago has expired meanwhile.
    let expired = format!("{}:{}:5\n", hex_upper(&hash(4)), unix_minute - 24 * 60 - 1);
    let second = started_with_state(&format!("{dump}{expired}"));
    assert_eq!(scrape_counts(&second, 1), Some((0, 0, 2)));
    assert_eq!(scrape_counts(&second, 2), Some((0, 0, 1)));
    assert_eq!(
        (scrape_counts(&second, 3), scrape_counts(&second, 4)),
        (None, None)
    );
    let log = second.stderr();
    assert!(
        log.contains(": 2 torrents loaded, 0 peers, in ")
            && log
                .contains("; 2 torrents expired or never downloaded, 0 peers timed out, 0 refused"),
        "{log}"
    );
    let again = second.get("/stats?mode=statedump").text();
    assert_eq!(again.lines().collect::<Vec<_>>(), lines[..2]);

    // A bad line loads nothing and names itself; the tracker still serves.
    let third = started_with_state(&format!("{}\ngarbage\n", lines[0]));
    assert_eq!(scrape_counts(&third, 1), None);
    let log = third.stderr();
    assert!(
        log.contains("state:2: expected HASH:MINUTE:DOWNLOADED; nothing loaded"),
        "{log}"
    );
}

#[test]
fn external_ip_tells_each_client_its_address_when_asked() {
    let path = announce_path(&hash(1), 1000, "");
    let plain = Tracker::start("");
    assert!(plain.get(&path).bencode().get("external ip").is_none());
    let tracker =
        Tracker::start("[tracker]\nexternal_ip = true\n[access]\nproxy = [\"127.0.0.1\"]\n");
    let v4 = tracker.get(&path).bencode();
    assert_eq!(v4.bytes("external ip"), [127, 0, 0, 1]);
    let request = format!("GET {path} HTTP/1.0\r\n\r\n");
    let v6 = http(tracker.v6(), &request).bencode();
    assert_eq!(
        v6.bytes("external ip"),
        std::net::Ipv6Addr::LOCALHOST.octets()
    );
    // Behind the trusted proxy, the client's address.
    let forwarded = format!("GET {path} HTTP/1.0\r\nX-Forwarded-For: 203.0.113.5\r\n\r\n");
    let reply = http(tracker.v4(), &forwarded).bencode();
    assert_eq!(reply.bytes("external ip"), [203, 0, 113, 5]);
}

/// An HTTP announce of torrent 1 from `peer_id` (none when empty).
fn announce_as(tracker: &Tracker, peer_id: &[u8], port: u16) {
    let mut path = format!(
        "/announce?info_hash={}&port={port}&left=0",
        urlencode(&hash(1))
    );
    if !peer_id.is_empty() {
        path += &format!("&peer_id={}", urlencode(peer_id));
    }
    assert_eq!(tracker.get(&path).status, 200, "{path}");
}

/// A UDP announce of torrent 2 from `peer_id`.
fn udp_announce_as(tracker: &Tracker, peer_id: &[u8; 20]) {
    let udp = Udp::new(tracker.v4());
    let mut packet = Udp::announce_packet(udp.connect(), (&hash(2), 2000, 5, 0, 10));
    packet[36..56].copy_from_slice(peer_id);
    assert!(udp.exchange(&packet).is_some(), "no reply");
}

#[test]
fn announces_are_counted_by_client_software() {
    let tracker = Tracker::start("");
    announce_as(&tracker, b"-TR4050-abcdefghijkl", 1000);
    announce_as(&tracker, b"-TR4050-mnopqrstuvwx", 1001);
    announce_as(&tracker, b"", 1002);
    udp_announce_as(
        &tracker,
        b"-qB4630-\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c",
    );
    let response = tracker.get("/stats?mode=clients");
    assert_eq!(response.status, 200);
    assert_eq!(
        response.text(),
        "2\tTransmission\t4050\n1\tqBittorrent\t4630\n1\tunknown\t\n"
    );
    let metrics = tracker.get("/metrics").text();
    for line in [
        "# TYPE opentracker_announces_by_client_total counter",
        "opentracker_announces_by_client_total{client=\"Transmission\",version=\"4050\"} 2",
        "opentracker_announces_by_client_total{client=\"qBittorrent\",version=\"4630\"} 1",
        "opentracker_announces_by_client_total{client=\"unknown\",version=\"\"} 1",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} missing");
    }
    let json: serde_json::Value =
        serde_json::from_slice(&tracker.get("/stats?mode=json").body).unwrap();
    assert_eq!(
        json["announces_by_client"][0],
        serde_json::json!({"client": "Transmission", "version": "4050", "announces": 2})
    );
    // Announces answered by UDP worker threads are counted alike.
    let workers = Tracker::launch(Launch {
        listen: "udp_workers = 2".into(),
        ..Launch::default()
    });
    for _ in 0..3 {
        udp_announce_as(
            &workers,
            b"M7-4-3--\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c",
        );
    }
    assert_eq!(
        workers.get("/stats?mode=clients").text(),
        "3\tMainline\t7.4.3\n"
    );
    // Refused announces are counted under their refusal only.
    let dir = TestDir::new();
    let whitelist = dir.write("whitelist", "");
    let refusing = Tracker::launch_in(
        dir,
        Launch {
            toml: format!("[access]\nwhitelist = \"{}\"\n", whitelist.display()),
            ..Launch::default()
        },
    );
    announce_as(&refusing, b"-TR4050-abcdefghijkl", 1000);
    udp_announce_as(
        &refusing,
        b"-qB4630-\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c",
    );
    assert_eq!(
        refusing.metric("opentracker_announces_not_authorized_total"),
        2
    );
    assert_eq!(refusing.get("/stats?mode=clients").text(), "");
    // Nor as announces answered, over either protocol, nor by numwant.
    for protocol in ["http", "udp"] {
        let answered =
            format!("opentracker_requests_total{{protocol=\"{protocol}\",request=\"announce\"}}");
        assert_eq!(refusing.metric(&answered), 0, "{protocol}");
    }
    let tcp4 = refusing.get("/stats?mode=tcp4").text();
    let udp4 = refusing.get("/stats?mode=udp4").text();
    assert_eq!(tcp4.lines().nth(1), Some("0"), "{tcp4}");
    assert_eq!(udp4.lines().nth(1), Some("1"), "the connect alone: {udp4}");
    let numwants = refusing.get("/stats?mode=numwants").text();
    assert!(numwants.lines().all(|l| l.ends_with(" 0")), "{numwants}");
}

/// The ports of compact IPv4 peers, sorted.
fn ports_of(peers: &[u8]) -> Vec<u16> {
    let mut ports: Vec<u16> = (peers.chunks(6))
        .map(|p| u16::from_be_bytes([p[4], p[5]]))
        .collect();
    ports.sort_unstable();
    ports
}

#[test]
fn seeders_can_be_answered_with_leechers_only() {
    let tracker = Tracker::start("[tracker]\nleechers_only_for_seeders = true\n");
    for port in 1..=3 {
        announce(&tracker, &hash(1), port, "");
    }
    for port in 11..=13 {
        announce(&tracker, &hash(1), port, "&left=0");
    }
    let seeder = announce(&tracker, &hash(1), 20, "&left=0");
    assert_eq!(ports_of(seeder.bytes("peers")), [1, 2, 3]);
    assert_eq!((seeder.int("complete"), seeder.int("incomplete")), (4, 3));
    let leecher = announce(&tracker, &hash(1), 21, "");
    assert_eq!(
        ports_of(leecher.bytes("peers")),
        [1, 2, 3, 11, 12, 13, 20, 21]
    );
    let reply = Udp::new(tracker.v4()).announce(&hash(1), 30, 0, 0, 50);
    assert_eq!(ports_of(&reply[20..]), [1, 2, 3, 21]);
    // As upstream by default: seeders too.
    let tracker = Tracker::start("");
    announce(&tracker, &hash(1), 1, "");
    announce(&tracker, &hash(1), 11, "&left=0");
    let seeder = announce(&tracker, &hash(1), 20, "&left=0");
    assert_eq!(ports_of(seeder.bytes("peers")), [1, 11, 20]);
}

/// Torrents in [`tracker_with_a_big_full_scrape`]: their full scrape,
/// about 70 bytes each, outgrows what the sockets hold.
const BIG_FULL_SCRAPE_TORRENTS: usize = 150_000;

/// A tracker whose full scrape is about 10 MB.
fn tracker_with_a_big_full_scrape() -> Tracker {
    let minute = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 60;
    let state: String = (0..BIG_FULL_SCRAPE_TORRENTS)
        .map(|i| format!("{:08X}{:032X}:{minute}:1\n", i, 0xaa))
        .collect();
    started_with_state(&state)
}

/// A full scrape asked from 127.0.0.`from` (each client has a share of the
/// stream places), and its status line's first 12 bytes.
fn full_scrape_from(tracker: &Tracker, from: u8) -> (TcpStream, String) {
    asked_from(tracker, from, b"GET /scrape HTTP/1.1\r\nHost: x\r\n\r\n")
}

/// `requests` sent from 127.0.0.`from` in one segment, and the first status
/// line's first 12 bytes. The small receive buffer and segments keep the
/// tracker's side of the connection from queueing megabytes ahead of what
/// the client reads.
fn asked_from(tracker: &Tracker, from: u8, requests: &[u8]) -> (TcpStream, String) {
    assert!(requests.len() <= 500, "more than one segment");
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.set_mss(536).unwrap();
    let source = SocketAddr::from(([127, 0, 0, from], 0));
    socket.bind(&source.into()).unwrap();
    socket.connect(&tracker.v4().into()).unwrap();
    let mut stream = TcpStream::from(socket);
    stream.write_all(requests).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut status = [0u8; 12];
    stream.read_exact(&mut status).unwrap();
    (stream, String::from_utf8_lossy(&status).into_owned())
}

#[test]
fn a_second_stop_signal_cuts_the_wait_for_responses_in_flight_short() {
    let mut tracker = tracker_with_a_big_full_scrape();
    // A full scrape no one reads: the stop would wait two seconds for it.
    let (_unread, status) = full_scrape_from(&tracker, 1);
    assert_eq!(status, "HTTP/1.1 200");
    tracker.signal("TERM");
    tracker.wait_for_log("stopping");
    let status = tracker.stop();
    assert!(status.success(), "{status:?}: {}", tracker.stderr());
    assert!(
        tracker
            .stderr()
            .contains("asked again to stop: responses in flight are cut short"),
        "{}",
        tracker.stderr()
    );
}

#[test]
fn bodies_going_out_over_many_turns_are_capped_and_others_told_when_to_come_back() {
    // A full scrape that outgrows what the sockets hold, so one whose
    // client does not read stays open.
    let tracker = tracker_with_a_big_full_scrape();
    let ask_from = |from: u8| full_scrape_from(&tracker, from);
    // One client that asks and never reads takes 4 places, no more.
    let mut held: Vec<TcpStream> = (0..4)
        .map(|_| {
            let (stream, status) = ask_from(2);
            assert_eq!(status, "HTTP/1.1 200");
            stream
        })
        .collect();
    let (_, status) = ask_from(2);
    assert_eq!(status, "HTTP/1.0 402", "past its share");
    // 16 such clients take every place.
    held.extend((4..64).map(|n| {
        let (stream, status) = ask_from(2 + n / 4);
        assert_eq!(status, "HTTP/1.1 200", "stream {n}");
        stream
    }));
    let ask = || ask_from(17);
    let busy = full_scrape(&tracker, "");
    assert_eq!(busy.status, 402, "{}", busy.status_line);
    assert_eq!(busy.header("Retry-After"), Some("30"));
    // Rankings, which walk every torrent too, take the same places.
    let ranking = tracker.get("/stats?mode=top10");
    assert_eq!(ranking.status, 402, "{}", ranking.status_line);
    assert_eq!(ranking.header("Retry-After"), Some("30"));
    // Past the client's share, the full scrape and the ranking: 402s for
    // want of room, not for a full scrape too soon.
    assert_eq!(tracker.metric(&http_errors("402 Payment Required")), 3);
    assert_eq!(tracker.metric(&http_errors("400 Not Modest")), 0);
    // The held full scrapes have not ended, yet what they sent counts.
    assert!(tracker.metric("opentracker_full_scrape_bytes_total") > 0);
    // Other requests are served as ever.
    assert_eq!(
        tracker
            .get(&format!("/scrape?info_hash={}", urlencode(&hash(1))))
            .status,
        200
    );
    // A stream that ends gives its place back.
    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        let (stream, status) = ask();
        if status == "HTTP/1.1 200" || Instant::now() > deadline {
            held.push(stream);
            break status;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status, "HTTP/1.1 200");
    // Once a ranking has its place, it gives it back when answered.
    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(10);
    while tracker.get("/stats?mode=top10").status != 200 {
        assert!(
            Instant::now() < deadline,
            "no place came free for a ranking"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (_stream, status) = ask();
    assert_eq!(status, "HTTP/1.1 200", "the ranking kept its place");
}

/// Requests for one large whole answer that a client pipelines: the
/// tracker answers them one after another as long as its socket takes
/// them, so one of them is left waiting in the tracker for the client.
const PIPELINED: usize = 14;

#[test]
fn large_whole_answers_hold_a_place_until_read_as_streams_do() {
    let tracker = Tracker::start("");
    fill_the_client_table(&tracker);
    let metrics = tracker.get("/metrics");
    assert_eq!(metrics.status, 200);
    assert!(metrics.body.len() > 40_000, "{} bytes", metrics.body.len());
    // The client's first status line comes once the tracker has answered
    // what its socket takes in one go; the tracker serves one connection
    // at a time, so the next client is answered after that.
    let ask = |from: u8, path: &str| {
        let request = format!("GET {path} HTTP/1.1\r\n\r\n");
        asked_from(&tracker, from, request.repeat(PIPELINED).as_bytes())
    };
    // One client that asks and never reads takes 4 places, no more.
    let mut held: Vec<TcpStream> = (0..4)
        .map(|n| {
            let path = if n % 2 == 0 {
                "/metrics"
            } else {
                "/stats?mode=json"
            };
            let (stream, status) = ask(2, path);
            assert_eq!(status, "HTTP/1.1 200", "{path}");
            stream
        })
        .collect();
    for path in ["/metrics", "/stats?mode=json"] {
        let (_, status) = ask(2, path);
        assert_eq!(status, "HTTP/1.0 402", "{path} past the client's share");
    }
    // 16 such clients take every place.
    held.extend((4..64).map(|n| {
        let (stream, status) = ask(2 + n / 4, "/metrics");
        assert_eq!(status, "HTTP/1.1 200", "answer {n}");
        stream
    }));
    for path in ["/metrics", "/stats?mode=json", "/scrape"] {
        let busy = tracker.get(path);
        assert_eq!(busy.status, 402, "{path}: {}", busy.status_line);
        assert_eq!(busy.header("Retry-After"), Some("30"));
    }
    // Small answers need no place.
    assert_eq!(tracker.get("/stats").status, 200);
    let scrape = format!("/scrape?info_hash={}", urlencode(&hash(2)));
    assert_eq!(tracker.get(&scrape).status, 200);
    // A client that reads gets every body whole, and its place comes free.
    let mut reader = held.pop().unwrap();
    reader
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut pending = b"HTTP/1.1 200".to_vec();
    for n in 0..PIPELINED {
        let read = read_one(&mut reader, &mut pending);
        assert_eq!(read.status, 200, "answer {n}");
        assert!(read.body.len() > 40_000, "{} bytes", read.body.len());
        assert!(read.text().contains("version=\"0511\"} 1\n"), "answer {n}");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (stream, status) = ask(30, "/metrics");
        if status == "HTTP/1.1 200" {
            held.push(stream);
            break;
        }
        assert!(Instant::now() < deadline, "the reader kept its place");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (_, status) = ask(31, "/metrics");
    assert_eq!(status, "HTTP/1.0 402", "one place came free, no more");
    // Clients that go away give their places back.
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(10);
    while tracker.get("/metrics").status != 200 {
        assert!(Instant::now() < deadline, "no place came back");
        std::thread::sleep(Duration::from_millis(100));
    }
    let again: Vec<_> = (0..4).map(|_| ask(2, "/stats?mode=json")).collect();
    for (_, status) in &again {
        assert_eq!(status, "HTTP/1.1 200");
    }
}

/// Announces 512 client tags: a full table makes /metrics about 46 KB and
/// the JSON stats about 25 KB.
fn fill_the_client_table(tracker: &Tracker) {
    let udp = Udp::new(tracker.v4());
    let id = udp.connect();
    for n in 0..512 {
        let mut packet = Udp::announce_packet(id, (&hash(2), 2000, 5, 0, 0));
        packet[36..56].copy_from_slice(format!("-Zz{n:04}-abcdefghijkl").as_bytes());
        assert!(udp.exchange(&packet).is_some(), "announce {n}");
    }
}

#[test]
fn large_answers_to_the_networks_access_stats_lists_need_no_place() {
    let tracker = Tracker::start("[access]\nstats = [\"127.0.0.0/8\"]\n");
    fill_the_client_table(&tracker);
    // Past the 4 places one client may hold, the monitoring is answered.
    let held: Vec<_> = (0..6)
        .map(|n| {
            let request = "GET /metrics HTTP/1.1\r\n\r\n".repeat(PIPELINED);
            let (stream, status) = asked_from(&tracker, 2, request.as_bytes());
            assert_eq!(status, "HTTP/1.1 200", "answer {n}");
            stream
        })
        .collect();
    assert_eq!(tracker.get("/metrics").status, 200);
    drop(held);
}

/// Reads `stream` `chunk` bytes at a time with `pause` between reads, until
/// it ends or `until` says to stop. Returns
/// the bytes read and whether the tracker closed the connection.
fn read_slowly(
    stream: &mut TcpStream,
    chunk: usize,
    pause: Duration,
    until: impl Fn() -> bool,
) -> (usize, bool) {
    let mut buffer = vec![0; chunk];
    let mut read = 0;
    while !until() {
        match stream.read(&mut buffer) {
            Ok(0) => return (read, true),
            Ok(n) => read += n,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return (read, true),
            Err(e) => panic!("after {read} bytes: {e}"),
        }
        std::thread::sleep(pause);
    }
    (read, false)
}

#[test]
fn streams_read_slower_than_a_mib_a_minute_are_closed_after_the_stall_window() {
    use std::sync::atomic::{AtomicBool, Ordering};
    // Takes a little over the 60 s window: the tracker has no shorter one.
    let tracker = tracker_with_a_big_full_scrape();
    let started = Instant::now();
    let (mut slow, status) = full_scrape_from(&tracker, 2);
    assert_eq!(status, "HTTP/1.1 200");
    let (mut steady, status) = full_scrape_from(&tracker, 3);
    assert_eq!(status, "HTTP/1.1 200");
    let slow_closed = AtomicBool::new(false);
    std::thread::scope(|threads| {
        // 80 KB/s: longer than a window for the whole body, yet more than
        // its minimum in each, so it keeps being served.
        let steady = threads.spawn(|| {
            let (read, closed) = read_slowly(&mut steady, 8192, Duration::from_millis(100), || {
                slow_closed.load(Ordering::Relaxed)
            });
            (read, closed, started.elapsed())
        });
        // 4 KB/s, a slice taken every 17 s: the whole body would take 40
        // minutes.
        let (read, closed) = read_slowly(&mut slow, 1024, Duration::from_millis(250), || {
            started.elapsed() > Duration::from_secs(90)
        });
        slow_closed.store(true, Ordering::Relaxed);
        assert!(closed, "still open after {read} bytes");
        assert!(read < 1 << 20, "{read} bytes read before the close");
        let (read, closed, lasted) = steady.join().unwrap();
        assert!(
            !closed,
            "a client reading 80 KB/s was cut off after {read} bytes"
        );
        assert!(
            lasted > Duration::from_secs(60),
            "the slow one closed early"
        );
    });
    // One that reads as fast as it can gets it all.
    let fast = full_scrape(&tracker, "");
    assert_eq!(fast.status, 200);
    let files = fast.bencode();
    assert_eq!(
        files.get("files").unwrap().dict().len(),
        BIG_FULL_SCRAPE_TORRENTS
    );
}
