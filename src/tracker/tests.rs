//! The tracker's behaviour through its public API, and the index's shape
//! under load: kinds, splits, walk order.

use super::access_list::Kind;
use super::leaf::Slot;
use super::*;

const TIMEOUTS: Timeouts = Timeouts {
    peer: 100,
    peer_longest: 100,
    torrent: 1000,
};

/// Adds a peerless torrent with one completed download at second 0,
/// without touching the totals (as if its peers had gone unnoticed).
fn add_completed_torrent(t: &mut Tracker, hash: [u8; 20]) {
    let visit = Visit {
        clock: t.clock,
        now: 0,
        seeding: true,
        completed: false,
        key: t.bucket_key,
    };
    let leaf = t.index.leaf_mut(&hash);
    let (_, slot, new) = leaf.announce(&hash, Addr::V4([9; 6]), &visit);
    assert!(new);
    leaf.stop(&hash, Addr::V4([9; 6]), t.clock, 0);
    leaf.add_completed(slot, t.clock, 0);
    t.index.added();
}

fn announce(
    tracker: &mut Tracker,
    peer: &str,
    seeding: bool,
    event: Event,
    now: u32,
) -> (Announced, Vec<u8>, Vec<u8>) {
    let request = Announce {
        info_hash: InfoHash([1; 20]),
        peer: peer.parse().unwrap(),
        seeding,
        event,
        numwant: 50,
    };
    let (mut p4, mut p6) = (Vec::new(), Vec::new());
    let result = tracker.announce(&request, Families::Both, now, &mut p4, &mut p6);
    (result, p4, p6)
}

#[test]
fn announce_returns_self_and_both_families() {
    let mut t = Tracker::new(TIMEOUTS, 1);
    let (result, p4, p6) = announce(&mut t, "10.0.0.1:6881", false, Event::None, 0);
    assert_eq!(
        result,
        Announced::Ok {
            counts: SwarmCounts {
                seeders: 0,
                leechers: 1,
                completed: 0
            },
            completed: false
        }
    );
    assert_eq!(p4, [10, 0, 0, 1, 0x1a, 0xe1]);
    assert!(p6.is_empty());
    let (_, p4, p6) = announce(&mut t, "[2001:db8::1]:6881", true, Event::None, 0);
    assert_eq!((p4.len(), p6.len()), (6, 18));
    assert_eq!(
        t.totals(),
        Totals {
            torrents: 1,
            peers: 2,
            seeders: 1,
            completed: 0,
            unstored: 0
        }
    );
}

#[test]
fn mapped_v4_is_v4() {
    let mut t = Tracker::new(TIMEOUTS, 1);
    let (_, p4, _) = announce(&mut t, "[::ffff:10.0.0.1]:6881", false, Event::None, 0);
    assert_eq!(p4.len(), 6);
}

#[test]
fn completed_counted_once_and_stop_removes() {
    let mut t = Tracker::new(TIMEOUTS, 1);
    announce(&mut t, "10.0.0.1:1", false, Event::None, 0);
    let (r, ..) = announce(&mut t, "10.0.0.1:1", true, Event::Completed, 1);
    assert_eq!(
        r,
        Announced::Ok {
            counts: SwarmCounts {
                seeders: 1,
                leechers: 0,
                completed: 1
            },
            completed: true
        }
    );
    announce(&mut t, "10.0.0.1:1", true, Event::Completed, 2);
    let (r, ..) = announce(&mut t, "10.0.0.1:1", true, Event::Stopped, 3);
    assert_eq!(
        r,
        Announced::Stopped {
            counts: SwarmCounts {
                seeders: 0,
                leechers: 0,
                completed: 1
            }
        }
    );
    assert_eq!(t.totals().peers, 0);
    assert_eq!(t.totals().completed, 1);
    // After a stop, a fresh completion counts again (upstream semantics).
    let (r, ..) = announce(&mut t, "10.0.0.1:1", true, Event::Completed, 4);
    assert!(matches!(
        r,
        Announced::Ok {
            counts: SwarmCounts { completed: 2, .. },
            ..
        }
    ));
}

#[test]
fn a_longer_peer_timeout_keeps_stored_peers_longer_and_a_shorter_one_expires_them() {
    let paced = Timeouts {
        peer_longest: 400,
        ..TIMEOUTS
    };
    let mut t = Tracker::new(paced, 1);
    announce(&mut t, "10.0.0.1:1", false, Event::None, 0);
    announce(&mut t, "10.0.0.2:1", false, Event::None, 200);
    t.set_peer_timeout(400);
    assert!(t.sweep(350, 100));
    assert_eq!(t.totals().peers, 2, "the configured 100 s are long past");
    t.set_peer_timeout(100);
    assert!(t.sweep(350, 100));
    assert_eq!(t.totals().peers, 0);
}

#[test]
fn sweep_expires_peers_then_torrents() {
    let mut t = Tracker::new(TIMEOUTS, 1);
    announce(&mut t, "10.0.0.1:1", false, Event::None, 0);
    add_completed_torrent(&mut t, [2; 20]);
    assert!(t.sweep(50, 100));
    assert_eq!(t.totals().peers, 1);
    assert!(t.sweep(150, 100));
    assert_eq!(
        t.totals(),
        Totals {
            torrents: 1,
            peers: 0,
            seeders: 0,
            completed: 0,
            unstored: 0
        }
    );
    assert!(t.scrape(&InfoHash([2; 20])).is_some());
    assert!(t.sweep(2000, 100));
    assert_eq!(t.totals().torrents, 0);
}

#[test]
fn after_a_jump_of_half_the_wrap_every_peer_is_forgotten() {
    let mut t = Tracker::new(TIMEOUTS, 1);
    let wrap = 2 * t.clock.half_wrap();
    // Peers seen up to second 8500, then the process is stopped; at
    // `resumed` their stamps read as expired, fresh, fresh, and ahead.
    for (peer, at) in [(1, 0), (2, 8000), (3, 8050), (4, 8500)] {
        announce(&mut t, &format!("10.0.0.{peer}:1"), false, Event::None, at);
    }
    let resumed = 8000 + wrap + 60;
    assert!(resumed - 8500 >= t.clock.half_wrap());
    assert!(t.sweep(resumed, usize::MAX));
    assert_eq!(
        t.totals().peers,
        3,
        "a sweep keeps those that read as fresh"
    );
    t.forget_every_peer(resumed);
    assert_eq!(t.totals().peers, 0);
    let (_, peers, _) = announce(&mut t, "10.0.0.5:1", false, Event::None, resumed);
    assert_eq!(peers.len(), 6, "the newcomer alone: {peers:?}");
}

#[test]
fn sweep_and_walk_resume() {
    let mut t = Tracker::new(TIMEOUTS, 1);
    for n in 0..10u8 {
        add_completed_torrent(&mut t, [n; 20]);
    }
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        cursor = t.walk(cursor.as_ref(), 3, 0, |h, _| seen.push(h.0[0]));
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(seen, (0..10).collect::<Vec<_>>());
    assert!(!t.sweep(5000, 4));
    assert!(!t.sweep(5000, 4));
    assert!(t.sweep(5000, 4));
    assert_eq!(t.totals().torrents, 0);
}

#[test]
fn access_list_refuses_announce_but_not_stop() {
    let mut t = Tracker::new(TIMEOUTS, 1);
    t.set_access_list(AccessList::open().with(Kind::Whitelist, []));
    let (r, ..) = announce(&mut t, "10.0.0.1:1", false, Event::None, 0);
    assert_eq!(r, Announced::NotAuthorized);
    let (r, ..) = announce(&mut t, "10.0.0.1:1", false, Event::Stopped, 0);
    assert!(matches!(r, Announced::Stopped { .. }));
    assert_eq!(t.totals().torrents, 0);
}

#[test]
fn interval_jitter() {
    let mut rng = fastrand::Rng::with_seed(1);
    for _ in 0..1000 {
        assert!((1620..1980).contains(&jittered_interval(&mut rng, 1800)));
    }
}

#[test]
fn tops_keep_the_n_biggest_and_the_first_offered_of_equals() {
    let counts = |seeders, leechers| SwarmCounts {
        seeders,
        leechers,
        completed: 0,
    };
    let mut tops = Tops::new(2);
    tops.offer(&InfoHash([1; 20]), counts(1, 0));
    tops.offer(&InfoHash([2; 20]), counts(0, 3));
    tops.offer(&InfoHash([3; 20]), counts(2, 1));
    tops.offer(&InfoHash([4; 20]), counts(0, 0));
    let firsts = |list: &Vec<(u64, InfoHash)>| -> Vec<(u64, u8)> {
        list.iter()
            .map(|&(count, hash)| (count, hash.0[0]))
            .collect()
    };
    let [peers, seeders, leechers] = tops.lists();
    assert_eq!(firsts(peers), [(3, 2), (3, 3)]);
    assert_eq!(firsts(seeders), [(2, 3), (1, 1)]);
    // A swarm without leechers is not on the leechers' list.
    assert_eq!(firsts(leechers), [(3, 2), (1, 3)]);
}

fn announce_to(t: &mut Tracker, hash: [u8; 20], peer: &str, event: Event, now: u32) -> Announced {
    let request = Announce {
        info_hash: InfoHash(hash),
        peer: peer.parse().unwrap(),
        seeding: false,
        event,
        numwant: 50,
    };
    announce_discarding_peers(t, &request, now)
}

/// Announces, for both families, into buffers thrown away.
pub(super) fn announce_discarding_peers(
    t: &mut Tracker,
    request: &Announce,
    now: u32,
) -> Announced {
    t.announce(
        request,
        Families::Both,
        now,
        &mut Vec::new(),
        &mut Vec::new(),
    )
}

fn walk_all(t: &Tracker, slice: usize) -> Vec<InfoHash> {
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        cursor = t.walk(cursor.as_ref(), slice, 0, |h, _| seen.push(*h));
        if cursor.is_none() {
            return seen;
        }
    }
}

#[test]
fn torrents_grow_from_inline_to_heap_and_back() {
    let mut t = Tracker::new(TIMEOUTS, 1);
    for (n, now) in [(1, 0), (2, 10), (3, 20)] {
        announce(&mut t, &format!("10.0.0.{n}:1"), n == 1, Event::None, now);
        let counts = t.scrape(&InfoHash([1; 20])).unwrap();
        assert_eq!(counts.seeders + counts.leechers, n);
    }
    let (_, p4, p6) = announce(&mut t, "[2001:db8::1]:1", false, Event::None, 30);
    assert_eq!((p4.len(), p6.len()), (18, 18));
    // The first peer seeds, so it comes last.
    assert_eq!(p4[12..16], [10, 0, 0, 1]);
    // Peers 1 and 2 time out; the sweep moves the rest inline again.
    assert!(t.sweep(115, 100));
    let (_, p4, p6) = announce(&mut t, "10.0.0.3:1", false, Event::None, 120);
    assert_eq!((p4.len(), p6.len()), (6, 18));
    assert!(t.sweep(200, 100));
    let (_, p4, p6) = announce(&mut t, "10.0.0.3:1", false, Event::None, 201);
    assert_eq!((p4.len(), p6.len()), (6, 0));
    assert_eq!(t.totals().peers, 1);
    assert_eq!(t.totals().torrents, 1);
}

#[test]
fn stops_leave_peerless_torrents_to_the_sweep() {
    let mut t = Tracker::new(TIMEOUTS, 1);
    for n in 1..=4 {
        announce(&mut t, &format!("10.0.0.{n}:1"), false, Event::None, 0);
    }
    for n in 1..=4 {
        let (r, ..) = announce(&mut t, &format!("10.0.0.{n}:1"), false, Event::Stopped, 1);
        let Announced::Stopped { counts } = r else {
            panic!("{r:?}")
        };
        assert_eq!(counts.leechers, 4 - n);
    }
    assert_eq!((t.totals().peers, t.totals().torrents), (0, 1));
    assert!(t.sweep(2, 100));
    assert_eq!(t.totals().torrents, 0);
}

#[test]
fn walk_is_ascending_and_resumable_across_leaves() {
    let mut t = Tracker::new(TIMEOUTS, 1);
    let mut rng = fastrand::Rng::with_seed(5);
    let mut hashes: Vec<InfoHash> = Vec::new();
    for n in 0..20_000u32 {
        let mut hash = [0u8; 20];
        rng.fill(&mut hash);
        // A fifth share a 17-byte prefix, so their leaves split deep.
        if n % 5 == 0 {
            hash[..17].fill(0xab);
        }
        hashes.push(InfoHash(hash));
        // Every kind of torrent: one or two inline peers of either family,
        // and a crowd of both.
        let peers: &[&str] = match n % 5 {
            1 => &["[2001:db8::1]:1"],
            2 => &["[2001:db8::1]:1", "[2001:db8::2]:1"],
            3 => &["10.0.0.1:1", "10.0.0.2:1"],
            4 => &["10.0.0.1:1", "[2001:db8::1]:1"],
            _ => &["10.0.0.1:1"],
        };
        for peer in peers {
            announce_to(&mut t, hash, peer, Event::None, 0);
        }
    }
    let leechers: std::collections::HashMap<InfoHash, u32> = hashes
        .iter()
        .enumerate()
        .map(|(n, h)| (*h, if n % 5 == 0 || n % 5 == 1 { 1 } else { 2 }))
        .collect();
    hashes.sort_unstable();
    hashes.dedup();
    assert_eq!(t.totals().torrents, hashes.len());
    assert_eq!(walk_all(&t, 1000), hashes);
    assert_eq!(walk_all(&t, 7), hashes);
    for hash in &hashes {
        assert_eq!(t.scrape(hash).map(|c| c.leechers), Some(leechers[hash]));
    }
}

/// The kind of torrent `[1; 20]` is held as.
fn kind_of_torrent(t: &mut Tracker) -> Option<Slot> {
    let hash = [1; 20];
    t.index.leaf_mut(&hash).find(&hash)
}

#[test]
fn ipv6_torrents_are_inline_too_until_they_grow_or_mix() {
    let mut t = Tracker::new(TIMEOUTS, 1);
    let one6 = |slot| matches!(slot, Some(Slot::One6(_)));
    let (_, _, p6) = announce(&mut t, "[2001:db8::1]:1", false, Event::None, 0);
    assert_eq!(p6.len(), 18);
    assert!(one6(kind_of_torrent(&mut t)));
    let (_, _, p6) = announce(&mut t, "[2001:db8::2]:1", true, Event::None, 10);
    assert_eq!(p6.len(), 36);
    assert!(matches!(kind_of_torrent(&mut t), Some(Slot::Two6(_))));
    let (r, _, p6) = announce(&mut t, "[2001:db8::3]:1", true, Event::Completed, 20);
    assert_eq!(p6.len(), 54);
    assert!(matches!(kind_of_torrent(&mut t), Some(Slot::Crowd(_))));
    let Announced::Ok { counts, .. } = r else {
        panic!("{r:?}")
    };
    assert_eq!(
        (counts.seeders, counts.leechers, counts.completed),
        (2, 1, 1)
    );
    // Peers 1 and 2 time out: the sweep moves the third back inline, with
    // its download counted.
    assert!(t.sweep(115, 100));
    assert!(one6(kind_of_torrent(&mut t)));
    assert_eq!(t.scrape(&InfoHash([1; 20])).map(|c| c.completed), Some(1));
    // An IPv4 peer joining makes it a crowd; each family gets its own.
    let (_, p4, p6) = announce(&mut t, "10.0.0.1:1", false, Event::None, 116);
    assert_eq!((p4.len(), p6.len()), (6, 18));
    assert!(matches!(kind_of_torrent(&mut t), Some(Slot::Crowd(_))));
    assert!(t.sweep(200, 100));
    assert!(matches!(kind_of_torrent(&mut t), Some(Slot::One(_))));
    // A stop removes an inline IPv6 peer; one of the other family is
    // not there to remove.
    announce(&mut t, "10.0.0.1:1", false, Event::Stopped, 201);
    announce(&mut t, "[2001:db8::4]:1", false, Event::None, 202);
    assert!(t.sweep(203, 100));
    assert!(one6(kind_of_torrent(&mut t)));
    let (r, ..) = announce(&mut t, "10.0.0.9:1", false, Event::Stopped, 204);
    assert!(
        matches!(r, Announced::Stopped { counts } if counts.leechers == 1),
        "{r:?}"
    );
    let (r, ..) = announce(&mut t, "[2001:db8::4]:1", false, Event::Stopped, 205);
    assert!(
        matches!(r, Announced::Stopped { counts } if counts.leechers == 0),
        "{r:?}"
    );
    assert_eq!(t.totals().peers, 0);
}

#[test]
fn many_hashes_with_one_prefix_stay_fast() {
    let mut t = Tracker::new(TIMEOUTS, 1);
    let start = std::time::Instant::now();
    let count = 200_000u32;
    for n in 0..count {
        let mut hash = [0x5a; 20];
        hash[17..].copy_from_slice(&n.to_be_bytes()[1..]);
        announce_to(&mut t, hash, "10.0.0.1:1", Event::None, 0);
    }
    let walked = walk_all(&t, 1024);
    assert_eq!(walked.len(), count as usize);
    // The hashes differ in their last 5 nibbles only; leaves of 256 are
    // left after splitting on nibbles 34 to 37.
    assert_eq!(t.index.depth(&walked[1000].0), 38);
    assert!(walked.windows(2).all(|w| w[0] < w[1]));
    // Sweeping in small slices still ends, and merges the splits back.
    let mut slices = 0;
    while !t.sweep(500, 4096) {
        slices += 1;
    }
    assert!(slices > 10);
    assert_eq!(t.totals(), Totals::default());
    let mut hash = [0x5a; 20];
    hash[19] = 1;
    announce_to(&mut t, hash, "10.0.0.1:1", Event::None, 600);
    assert_eq!(walk_all(&t, 10), [InfoHash(hash)]);
    assert_eq!(t.index.depth(&hash), 3);
    // Quadratic inserts would take minutes here, even optimised.
    assert!(start.elapsed().as_secs() < 30, "{:?}", start.elapsed());
}

#[test]
fn completed_counts_past_the_inline_limit() {
    let mut t = Tracker::new(TIMEOUTS, 1);
    let rounds = small::COMPLETED_MAX + 10;
    for now in 0..rounds {
        announce(&mut t, "10.0.0.1:1", true, Event::Completed, now / 1000);
        announce(&mut t, "10.0.0.1:1", true, Event::Stopped, now / 1000);
    }
    assert_eq!(t.totals().completed, u64::from(rounds));
    assert!(t.sweep(rounds / 1000, 100));
    let (r, ..) = announce(&mut t, "10.0.0.2:1", false, Event::None, rounds / 1000);
    let Announced::Ok { counts, .. } = r else {
        panic!("{r:?}")
    };
    assert_eq!((counts.completed, counts.leechers), (rounds, 1));
    // Peerless, it is a crowd still, and goes a torrent timeout after its
    // last announce (a stop does not count).
    announce(&mut t, "10.0.0.2:1", false, Event::Stopped, 20);
    assert!(t.sweep(1015, 100));
    assert_eq!(t.totals().torrents, 1);
    assert!(t.sweep(1016, 100));
    assert_eq!(
        t.totals(),
        Totals {
            completed: u64::from(rounds),
            ..Totals::default()
        }
    );
}

/// Announces `peer` to torrent `[hash; 20]`, returning the answer and every
/// peer in it.
fn announce_seeing(t: &mut Tracker, hash: u8, peer: &str, seeding: bool) -> (Announced, Vec<u8>) {
    let request = Announce {
        info_hash: InfoHash([hash; 20]),
        peer: peer.parse().unwrap(),
        seeding,
        event: Event::None,
        numwant: 50,
    };
    let (mut p4, mut p6) = (Vec::new(), Vec::new());
    let result = t.announce(&request, Families::Both, 0, &mut p4, &mut p6);
    p4.extend(p6);
    (result, p4)
}

fn leechers(leechers: u32, seeders: u32) -> Announced {
    Announced::Ok {
        counts: SwarmCounts {
            seeders,
            leechers,
            completed: 0,
        },
        completed: false,
    }
}

#[test]
fn at_the_peer_limit_new_peers_are_answered_but_not_stored() {
    let mut t = Tracker::new(TIMEOUTS, 1);
    t.set_limits(Limits {
        peers: 2,
        torrents: 10,
        ..Limits::NONE
    });
    announce_seeing(&mut t, 1, "10.0.0.1:1", false);
    announce_seeing(&mut t, 1, "10.0.0.2:1", false);
    // A third peer, of either family, gets the swarm but joins nothing.
    for newcomer in ["10.0.0.3:1", "[2001:db8::3]:1"] {
        let (answer, peers) = announce_seeing(&mut t, 1, newcomer, false);
        assert_eq!(answer, leechers(2, 0), "{newcomer}");
        assert_eq!(peers.len(), 12, "{newcomer} gets both stored peers");
    }
    // Nor does it start a torrent of its own.
    let (answer, peers) = announce_seeing(&mut t, 2, "10.0.0.3:1", false);
    assert_eq!((answer, peers.len()), (leechers(0, 0), 0));
    assert_eq!(t.scrape(&InfoHash([2; 20])), None);
    // A stored peer still re-announces, and changes what it reports.
    let (answer, _) = announce_seeing(&mut t, 1, "10.0.0.2:1", true);
    assert_eq!(answer, leechers(1, 1));
    let totals = t.totals();
    assert_eq!((totals.peers, totals.torrents, totals.unstored), (2, 1, 3));
    // A peer that leaves makes room for the next.
    announce_to(&mut t, [1; 20], "10.0.0.1:1", Event::Stopped, 0);
    let (answer, _) = announce_seeing(&mut t, 1, "10.0.0.3:1", false);
    assert_eq!(answer, leechers(1, 1));
    assert_eq!(t.totals().peers, 2);
}

#[test]
fn the_peer_limit_holds_for_every_kind_of_torrent() {
    // Past two peers a torrent moves to a crowd, past GROW_ABOVE (4096) its
    // peers go into buckets: a stored peer must be found in each.
    for held in [1u32, 2, 3, 5000] {
        let mut t = Tracker::new(TIMEOUTS, 1);
        t.set_limits(Limits {
            peers: u64::from(held),
            torrents: 1,
            ..Limits::NONE
        });
        let peer = |n: u32| format!("10.{}.{}.{}:1", n >> 16, n >> 8 & 255, n & 255);
        for n in 0..held {
            announce_seeing(&mut t, 1, &peer(n), false);
        }
        for n in 0..held {
            let (answer, _) = announce_seeing(&mut t, 1, &peer(n), true);
            assert!(matches!(answer, Announced::Ok { .. }));
        }
        announce_seeing(&mut t, 1, &peer(held), false);
        let totals = t.totals();
        assert_eq!(
            (totals.peers, totals.seeders, totals.unstored),
            (u64::from(held), u64::from(held), 1),
            "{held} peers held"
        );
    }
}

#[test]
fn at_the_torrent_limit_new_torrents_are_answered_empty_and_old_ones_grow() {
    let mut t = Tracker::new(TIMEOUTS, 1);
    t.set_limits(Limits {
        torrents: 1,
        ..Limits::NONE
    });
    announce_seeing(&mut t, 1, "10.0.0.1:1", false);
    let (answer, peers) = announce_seeing(&mut t, 2, "10.0.0.1:1", false);
    assert_eq!((answer, peers.len()), (leechers(0, 0), 0));
    assert_eq!(t.scrape(&InfoHash([2; 20])), None);
    let (answer, _) = announce_seeing(&mut t, 1, "10.0.0.2:1", false);
    assert_eq!(answer, leechers(2, 0));
    let totals = t.totals();
    assert_eq!((totals.peers, totals.torrents, totals.unstored), (2, 1, 1));
}

#[test]
fn one_network_holds_at_most_its_share_of_a_torrent() {
    // Flat lists, inline torrents and buckets (past GROW_ABOVE, 4096).
    for others in [0u32, 1, 5000] {
        let mut t = Tracker::new(TIMEOUTS, 1);
        t.set_limits(Limits {
            peers_per_network: 3,
            ..Limits::NONE
        });
        let other = |n: u32| format!("10.{}.{}.{}:1", n >> 16, n >> 8 & 255, n & 255);
        for n in 0..others {
            announce_seeing(&mut t, 1, &other(n), false);
        }
        // One address, many ports: three are stored, the fourth is
        // answered from the swarm but not kept.
        for port in 1..=3 {
            announce_seeing(&mut t, 1, &format!("192.0.2.7:{port}"), false);
        }
        let (answer, peers) = announce_seeing(&mut t, 1, "192.0.2.7:4", false);
        let held = others + 3;
        assert_eq!(answer, leechers(held, 0), "{others} others");
        if held <= 50 {
            assert_eq!(peers.len(), 6 * held as usize, "the whole swarm");
        }
        // The stored three re-announce; a neighbour address is another
        // network; the same address may join another torrent.
        let (answer, _) = announce_seeing(&mut t, 1, "192.0.2.7:2", true);
        assert_eq!(answer, leechers(held - 1, 1), "{others} others");
        announce_seeing(&mut t, 1, "192.0.2.8:1", false);
        announce_seeing(&mut t, 2, "192.0.2.7:4", false);
        let totals = t.totals();
        assert_eq!(
            (totals.peers, totals.torrents, totals.unstored),
            (u64::from(held) + 2, 2, 1),
            "{others} others"
        );
        // One leaving makes room.
        announce_to(&mut t, [1; 20], "192.0.2.7:1", Event::Stopped, 0);
        announce_seeing(&mut t, 1, "192.0.2.7:4", false);
        assert_eq!(t.totals().unstored, 1, "{others} others");
    }
}

#[test]
fn an_ipv6_network_is_its_slash_64() {
    let mut t = Tracker::new(TIMEOUTS, 1);
    t.set_limits(Limits {
        peers_per_network: 2,
        ..Limits::NONE
    });
    for peer in ["[2001:db8:0:1::1]:1", "[2001:db8:0:1:ffff::2]:1"] {
        announce_seeing(&mut t, 1, peer, false);
    }
    let (answer, _) = announce_seeing(&mut t, 1, "[2001:db8:0:1::3]:1", false);
    assert_eq!(answer, leechers(2, 0));
    let (answer, _) = announce_seeing(&mut t, 1, "[2001:db8:0:2::3]:1", false);
    assert_eq!(answer, leechers(3, 0));
    assert_eq!(t.totals().unstored, 1);
}

#[test]
fn restored_torrents_keep_their_downloads_and_expire_on_time() {
    let mut t = Tracker::new(TIMEOUTS, 1);
    let now = 5000;
    let (few, many) = (InfoHash([1; 20]), InfoHash([2; 20]));
    let many_downloads = small::COMPLETED_MAX + 1;
    assert!(t.restore(&few, 3, 100, now));
    assert!(t.restore(&many, many_downloads, 900, now));
    assert!(!t.restore(&few, 9, 0, now), "already tracked");
    assert_eq!(t.scrape(&few).map(|c| c.completed), Some(3));
    assert_eq!(t.scrape(&many).map(|c| c.completed), Some(many_downloads));
    let mut idle = Vec::new();
    t.walk(None, 10, now, |hash, listed| {
        idle.push((hash.0[0], listed.idle))
    });
    assert_eq!(idle, [(1, 100), (2, 900)]);
    assert_eq!((t.totals().torrents, t.totals().peers), (2, 0));
    // Each goes a torrent timeout (1000 s) after the announce it records.
    assert!(t.sweep(now + 99, 100));
    assert_eq!(t.totals().torrents, 2);
    assert!(t.sweep(now + 101, 100));
    assert_eq!(t.scrape(&many), None);
    assert!(t.sweep(now + 901, 100));
    assert_eq!(t.totals().torrents, 0);
    // A whitelist refuses what it does not list.
    t.set_access_list(AccessList::open().with(Kind::Whitelist, [few]));
    assert!(!t.restore(&many, 1, 0, now));
    assert!(t.restore(&few, 1, 0, now));
}

fn saved(addr: &str, seeding: bool, completed: bool, age: u32) -> SavedPeer {
    SavedPeer {
        addr: addr.parse().unwrap(),
        seeding,
        completed,
        age,
    }
}

/// Everything `visit_saved` reports, peers sorted by address.
fn saved_state(t: &Tracker, now: u32) -> Vec<(u8, u32, u32, Vec<SavedPeer>)> {
    let mut out = Vec::new();
    t.visit_saved(now, &mut |s| {
        let mut peers = s.peers.to_vec();
        peers.sort_by_key(|p| p.addr);
        out.push((s.hash.0[0], s.completed, s.idle, peers));
    });
    out
}

#[test]
fn saved_peers_come_back_with_their_flags_and_ages() {
    let mut t = Tracker::new(TIMEOUTS, 1);
    let now = 5000;
    let hash = InfoHash([1; 20]);
    announce(&mut t, "10.0.0.4:4", false, Event::None, now - 150);
    announce(&mut t, "10.0.0.1:1", true, Event::Completed, now - 60);
    // Completed, then leeching again (a recheck): the mark stays.
    announce(&mut t, "10.0.0.5:5", true, Event::Completed, now - 30);
    announce(&mut t, "10.0.0.5:5", false, Event::None, now - 20);
    announce(&mut t, "10.0.0.2:2", false, Event::None, now - 10);
    announce(&mut t, "[2001:db8::3]:3", true, Event::None, now);
    let before = saved_state(&t, now);
    // The peer past the 100 s timeout, not swept yet, is not saved.
    let expected = vec![
        saved("10.0.0.1:1", true, true, 60),
        saved("10.0.0.2:2", false, false, 10),
        saved("10.0.0.5:5", false, true, 20),
        saved("[2001:db8::3]:3", true, false, 0),
    ];
    assert_eq!(before, [(1, 2, 0, expected.clone())]);

    // Restored into another tracker 20 s later, in the order loading uses.
    let mut restored = Tracker::new(TIMEOUTS, 1);
    let later = 7000;
    assert!(restored.restore(&hash, 2, 20, later));
    for peer in &expected {
        let peer = SavedPeer {
            age: peer.age + 20,
            ..*peer
        };
        assert!(restored.restore_peer(&hash, &peer, later));
    }
    assert!(
        !restored.restore_peer(&hash, &expected[0], later),
        "repeated"
    );
    let aged: Vec<SavedPeer> = expected
        .iter()
        .map(|p| SavedPeer {
            age: p.age + 20,
            ..*p
        })
        .collect();
    assert_eq!(saved_state(&restored, later), [(1, 2, 20, aged)]);
    let totals = restored.totals();
    assert_eq!((totals.peers, totals.seeders, totals.completed), (4, 2, 0));
    // Completed announces from the restored seeder, and from the restored
    // leecher that had completed before, are not counted twice.
    announce(&mut restored, "10.0.0.1:1", true, Event::Completed, later);
    announce(&mut restored, "10.0.0.5:5", true, Event::Completed, later);
    assert_eq!(restored.scrape(&hash).map(|c| c.completed), Some(2));
    // The leecher expires 100 s after its last announce before the save.
    assert!(restored.sweep(later + 69, 100));
    assert_eq!(restored.totals().peers, 4);
    assert!(restored.sweep(later + 71, 100));
    assert_eq!(restored.totals().peers, 3);
    // A completed announce with bytes left is discarded, and leaves no mark.
    announce(
        &mut restored,
        "10.0.0.6:6",
        false,
        Event::Completed,
        later + 72,
    );
    assert_eq!(restored.scrape(&hash).map(|c| c.completed), Some(2));
    announce(
        &mut restored,
        "10.0.0.6:6",
        true,
        Event::Completed,
        later + 73,
    );
    assert_eq!(restored.scrape(&hash).map(|c| c.completed), Some(3));
}

#[test]
fn a_save_or_sweep_reading_an_earlier_second_keeps_peers_stamped_later() {
    // A save walks with the second it started at; meanwhile other threads
    // stamp announces with later ones.
    let mut t = Tracker::new(TIMEOUTS, 1);
    announce(&mut t, "10.0.0.1:1", true, Event::None, 5003);
    assert_eq!(
        saved_state(&t, 5000),
        [(1, 0, 0, vec![saved("10.0.0.1:1", true, false, 0)])]
    );
    t.sweep(5000, 100);
    assert_eq!(t.totals().peers, 1);
}

#[test]
fn restoring_peers_respects_the_access_list_and_the_limits() {
    let mut t = Tracker::new(TIMEOUTS, 1);
    let (allowed, other) = (InfoHash([1; 20]), InfoHash([2; 20]));
    t.set_access_list(AccessList::open().with(Kind::Whitelist, [allowed]));
    t.set_limits(Limits {
        peers: 1,
        torrents: 1,
        ..Limits::NONE
    });
    assert!(!t.restore(&other, 1, 0, 100), "not on the whitelist");
    assert!(!t.restore_peer(&other, &saved("10.0.0.1:1", true, false, 0), 100));
    assert!(t.restore(&allowed, 0, 0, 100));
    assert!(t.restore_peer(&allowed, &saved("10.0.0.1:1", true, false, 0), 100));
    assert!(!t.restore_peer(&allowed, &saved("10.0.0.2:2", true, false, 0), 100));
    assert_eq!(t.totals().peers, 1);
    t.set_access_list(AccessList::open());
    assert!(!t.restore(&other, 1, 0, 100), "the torrent limit");
}

/// The `n`th test peer of [`seeders_may_get_leechers_only`], and back.
fn nth_peer(n: usize) -> String {
    format!("10.0.{}.{}:6881", n / 250, n % 250 + 1)
}

fn peer_number(compact: &[u8]) -> usize {
    usize::from(compact[2]) * 250 + usize::from(compact[3]) - 1
}

#[test]
fn seeders_may_get_leechers_only() {
    // (peers, of which leechers): inline torrents, a crowd, bucketed crowds.
    // Up to 4096 peers, every leecher is found however many seeders.
    let swarms = [(1, 1), (2, 1), (2, 0), (12, 3), (1010, 10), (4096, 3)];
    for (peers, leechers) in swarms.into_iter().chain([(5000, 40), (5000, 4000)]) {
        let mut t = Tracker::new(TIMEOUTS, 3);
        t.set_leechers_only_for_seeders(true);
        for n in 0..peers {
            announce_seeing(&mut t, 7, &nth_peer(n), n >= leechers);
        }
        let (_, got) = announce_seeing(&mut t, 7, "192.0.2.1:1", true);
        let numbers: Vec<usize> = got.chunks(6).map(peer_number).collect();
        assert!(
            numbers.iter().all(|&n| n < leechers),
            "{peers}/{leechers}: {numbers:?}"
        );
        let distinct: std::collections::BTreeSet<_> = numbers.iter().collect();
        assert_eq!(distinct.len(), numbers.len());
        match (peers, leechers) {
            // A big swarm of seeders has few leechers to find in a bounded
            // draw of 4096 peers.
            (5000, 40) => assert!((20..=40).contains(&numbers.len()), "{}", numbers.len()),
            (5000, _) => assert!((40..=50).contains(&numbers.len()), "{}", numbers.len()),
            _ => assert_eq!(numbers.len(), leechers),
        }
        // A leecher still gets seeders as well.
        let (_, got) = announce_seeing(&mut t, 7, "192.0.2.2:1", false);
        let seeders_sent = got
            .chunks(6)
            .filter(|p| p[0] == 10 && peer_number(p) >= leechers);
        assert_eq!(seeders_sent.count() > 0, peers > leechers);
    }
    // IPv6 peers of a crowd likewise.
    let mut t = Tracker::new(TIMEOUTS, 3);
    t.set_leechers_only_for_seeders(true);
    for n in 0..12 {
        announce_seeing(&mut t, 7, &format!("[2001:db8::{n:x}]:6881"), n >= 3);
    }
    let (_, got) = announce_seeing(&mut t, 7, "[2001:db8::ff]:1", true);
    let hosts: Vec<u8> = got.chunks(18).map(|p| p[15]).collect();
    assert_eq!(hosts, [0, 1, 2]);
    // Over HTTP the families share the quota by their leechers: IPv4
    // leechers are not crowded out by IPv6 seeders.
    let mut t = Tracker::new(TIMEOUTS, 3);
    t.set_leechers_only_for_seeders(true);
    for n in 0..60 {
        announce_seeing(&mut t, 7, &format!("[2001:db8::{n:x}]:6881"), true);
    }
    for n in 0..20 {
        announce_seeing(&mut t, 7, &nth_peer(n), false);
    }
    let (_, got) = announce_seeing(&mut t, 7, "192.0.2.1:1", true);
    assert_eq!(got.len(), 20 * 6);
    // By default, as upstream, seeders are sent to seeders too.
    let mut t = Tracker::new(TIMEOUTS, 3);
    for n in 0..12 {
        announce_seeing(&mut t, 7, &nth_peer(n), n >= 3);
    }
    let (_, got) = announce_seeing(&mut t, 7, "192.0.2.1:1", true);
    assert_eq!(got.len(), 13 * 6);
}
