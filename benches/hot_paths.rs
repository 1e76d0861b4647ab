//! Micro-benchmarks of the hot paths, so regressions show: an announce into
//! a large tracker and a large swarm, the HTTP query parse, bencode encoding
//! of a reply, and the UDP codec. Run with `cargo bench`.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use criterion::{criterion_group, criterion_main, Criterion};
use opentracker::proto::{bencode, params, udp, Event, InfoHash, SwarmCounts};
use opentracker::tracker::{Announce, Families, Timeouts, Tracker};

const TIMEOUTS: Timeouts = Timeouts {
    peer: 2700,
    peer_longest: 2700,
    torrent: 86400,
};

fn hash(n: u32) -> InfoHash {
    let mut bytes = [0u8; 20];
    // Spread hashes over the key space as real ones are.
    bytes[..8].copy_from_slice(&(u64::from(n).wrapping_mul(0x9e37_79b9_7f4a_7c15)).to_be_bytes());
    bytes[16..].copy_from_slice(&n.to_be_bytes());
    InfoHash(bytes)
}

fn peer(n: u32) -> SocketAddr {
    SocketAddr::new(
        IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | (n >> 8))),
        1024 + (n & 0xff) as u16,
    )
}

fn announce(info_hash: InfoHash, n: u32, numwant: usize) -> Announce {
    Announce {
        info_hash,
        peer: peer(n),
        seeding: n % 4 != 0,
        event: Event::None,
        numwant,
    }
}

/// A tracker holding one swarm of `peers` peers.
fn swarm(peers: u32) -> Tracker {
    let mut tracker = Tracker::new(TIMEOUTS, 1);
    for n in 0..peers {
        let request = announce(hash(0), n, 0);
        tracker.announce(
            &request,
            Families::Both,
            0,
            &mut Vec::new(),
            &mut Vec::new(),
        );
    }
    tracker
}

fn tracker_announces(c: &mut Criterion) {
    let (mut peers4, mut peers6) = (Vec::new(), Vec::new());
    let mut many_torrents = Tracker::new(TIMEOUTS, 1);
    for n in 0..200_000 {
        many_torrents.announce(
            &announce(hash(n), n, 0),
            Families::Both,
            0,
            &mut peers4,
            &mut peers6,
        );
    }
    let mut n = 0u32;
    c.bench_function("announce: re-announce among 200k torrents", |b| {
        b.iter(|| {
            n = (n + 7919) % 200_000;
            peers4.clear();
            black_box(many_torrents.announce(
                &announce(hash(n), n, 30),
                Families::Own,
                1,
                &mut peers4,
                &mut peers6,
            ))
        })
    });

    // A million torrents, far past the caches, in all three kinds: every
    // tenth has two peers and every hundredth a crowd of three. Lookups
    // that miss memory are what a real tracker's announces cost.
    const MILLION: u32 = 1_000_000;
    let mut mixed = Tracker::new(TIMEOUTS, 1);
    let extra = |n: u32| match n % 100 {
        0 => 2,
        n if n % 10 == 0 => 1,
        _ => 0,
    };
    for n in 0..MILLION {
        for p in 0..=extra(n) {
            mixed.announce(
                &announce(hash(n), n + p * MILLION, 0),
                Families::Both,
                0,
                &mut peers4,
                &mut peers6,
            );
        }
    }
    c.bench_function("announce: among 1M torrents of 1-3 peers", |b| {
        b.iter(|| {
            n = (n + 7919) % MILLION;
            peers4.clear();
            black_box(mixed.announce(
                &announce(hash(n), n, 30),
                Families::Own,
                1,
                &mut peers4,
                &mut peers6,
            ))
        })
    });
    drop(mixed);

    // Ten thousand swarms of 200 peers, 2M peers in all, as a popular
    // tracker's head of the distribution: each announce searches a peer
    // list of 25 cache lines that is not in cache, and samples 30 of it.
    const SWARMS: u32 = 10_000;
    const SWARM_PEERS: u32 = 200;
    let mut crowded = Tracker::new(TIMEOUTS, 1);
    for n in 0..SWARMS * SWARM_PEERS {
        crowded.announce(
            &announce(hash(n % SWARMS), n, 0),
            Families::Both,
            0,
            &mut peers4,
            &mut peers6,
        );
    }
    c.bench_function("announce: among 10k swarms of 200 peers", |b| {
        b.iter(|| {
            n = (n + 7919) % (SWARMS * SWARM_PEERS);
            peers4.clear();
            black_box(crowded.announce(
                &announce(hash(n % SWARMS), n, 30),
                Families::Own,
                1,
                &mut peers4,
                &mut peers6,
            ))
        })
    });
    drop(crowded);

    let mut big_swarm = swarm(50_000);
    c.bench_function("announce: 50k-peer swarm, numwant 50", |b| {
        b.iter(|| {
            n = (n + 7919) % 50_000;
            peers4.clear();
            black_box(big_swarm.announce(
                &announce(hash(0), n, 50),
                Families::Both,
                1,
                &mut peers4,
                &mut peers6,
            ))
        })
    });

    // Each iteration adds a new peer and stops the oldest, so the swarm
    // stays at 200k: the cost of a peer joining or leaving a big swarm,
    // which must not grow with it (a flood of one address's ports).
    const BIG: u32 = 200_000;
    let mut huge_swarm = swarm(BIG);
    let mut oldest = 0u32;
    c.bench_function("announce: new peers into a 200k-peer swarm", |b| {
        b.iter(|| {
            peers4.clear();
            let joined = huge_swarm.announce(
                &announce(hash(0), oldest + BIG, 50),
                Families::Both,
                1,
                &mut peers4,
                &mut peers6,
            );
            let left = Announce {
                event: Event::Stopped,
                ..announce(hash(0), oldest, 0)
            };
            oldest += 1;
            black_box(joined);
            black_box(huge_swarm.announce(&left, Families::Both, 1, &mut peers4, &mut peers6))
        })
    });
}

fn http_query(c: &mut Criterion) {
    let query = b"info_hash=%a5%00%00%00%00%00%00%00%00%00%00%00%00%00%00%00%00%00%00%07&peer_id=-qB4650-abcdefghijkl&port=51413&uploaded=0&downloaded=0&left=1048576&corrupt=0&key=AB12CD34&event=started&numwant=50&compact=1&no_peer_id=1&supportcrypto=1";
    c.bench_function("http: parse announce query", |b| {
        b.iter(|| black_box(params::announce(black_box(query))))
    });
}

fn bencode_reply(c: &mut Criterion) {
    let peers4 = vec![7u8; 50 * 6];
    let counts = SwarmCounts {
        seeders: 1234,
        leechers: 56,
        completed: 7890,
    };
    let mut out = Vec::with_capacity(1024);
    c.bench_function("bencode: announce reply with 50 peers", |b| {
        b.iter(|| {
            out.clear();
            bencode::announce(&mut out, black_box(counts), 1800, (&peers4, &[]), None);
            black_box(out.len())
        })
    });
}

fn udp_codec(c: &mut Criterion) {
    let mut packet = vec![0u8; 98];
    packet[8..12].copy_from_slice(&1u32.to_be_bytes());
    packet[92..96].copy_from_slice(&50u32.to_be_bytes());
    c.bench_function("udp: parse announce", |b| {
        b.iter(|| black_box(udp::parse(black_box(&packet))))
    });
    let mut out = Vec::with_capacity(udp::MAX_REPLY);
    let counts = SwarmCounts {
        seeders: 1,
        leechers: 2,
        completed: 3,
    };
    c.bench_function("udp: encode announce reply head", |b| {
        b.iter(|| {
            out.clear();
            udp::announce_reply_head(&mut out, 7, 1800, black_box(counts));
            black_box(out.len())
        })
    });
}

criterion_group!(
    benches,
    tracker_announces,
    http_query,
    bencode_reply,
    udp_codec
);
criterion_main!(benches);
