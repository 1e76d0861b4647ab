//! Big swarms split into buckets: bounded work for a one-address flood,
//! exact lookups and counts across re-spreads, fair samples across buckets,
//! and expiry in every bucket.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use super::bucket::{BucketKey, GROW_ABOVE};
use super::peer::{PeerList, Visit};
use super::peer_set::PeerSet;
use super::tests::announce_discarding_peers;
use super::torrent::Torrent;
use super::*;

const TIMEOUTS: Timeouts = Timeouts {
    peer: 100,
    peer_longest: 100,
    torrent: 1000,
};

const HASH: [u8; 20] = [5; 20];

fn visit(now: u32, seeding: bool) -> Visit {
    Visit {
        clock: PeerClock::new(TIMEOUTS.peer),
        now,
        seeding,
        completed: false,
        key: BucketKey::draw(&mut fastrand::Rng::with_seed(99)),
    }
}

/// A distinct IPv4 address and port for each `n`.
fn addr(n: u32) -> [u8; 6] {
    let [a, b, c, d] = n.to_be_bytes();
    [10, a, b, c, d, 0x1a]
}

fn announce_peer(t: &mut Tracker, peer: SocketAddr, seeding: bool, event: Event, now: u32) {
    let request = Announce {
        info_hash: InfoHash(HASH),
        peer,
        seeding,
        event,
        numwant: 0,
    };
    announce_discarding_peers(t, &request, now);
}

/// The bucket sizes of the test torrent's IPv4 and IPv6 peers (one entry
/// when flat).
fn layout(t: &Tracker) -> (Vec<usize>, Vec<usize>) {
    let leaf = t.index.leaf(&HASH);
    let Some(Torrent::Crowd(crowd)) = leaf.find(&HASH).map(|slot| leaf.get(slot)) else {
        return (Vec::new(), Vec::new());
    };
    fn lens<const N: usize>(set: &PeerSet<N>) -> Vec<usize> {
        match set {
            PeerSet::Flat(list) => vec![list.len()],
            PeerSet::Bucketed(buckets) => buckets.bucket_lens(),
        }
    }
    let v6 = crowd.v6.as_deref().map(lens).unwrap_or_default();
    (lens(&crowd.v4), v6)
}

#[test]
fn small_swarms_pay_nothing() {
    assert_eq!(
        std::mem::size_of::<PeerSet<6>>(),
        std::mem::size_of::<PeerList<6>>()
    );
    assert_eq!(
        std::mem::size_of::<PeerSet<18>>(),
        std::mem::size_of::<PeerList<18>>()
    );
}

#[test]
fn one_address_flood_stays_in_small_buckets() {
    // 300k peers on five addresses, 60k ports each. In one sorted list this
    // memmoves ~360 GB; in buckets each insert moves at most a bucket.
    let mut t = Tracker::new(TIMEOUTS, 3);
    let started = std::time::Instant::now();
    for n in 0..300_000u32 {
        let ip = Ipv4Addr::new(192, 0, 2, (n / 60_000) as u8);
        let peer = SocketAddr::new(IpAddr::V4(ip), 1 + (n % 60_000) as u16);
        announce_peer(&mut t, peer, n % 3 == 0, Event::None, 0);
    }
    let counts = t.scrape(&InfoHash(HASH)).unwrap();
    assert_eq!((counts.seeders, counts.leechers), (100_000, 200_000));
    let (v4, _) = layout(&t);
    assert_eq!(v4.len(), 128);
    assert_eq!(v4.iter().sum::<usize>(), 300_000);
    // Keyed hashing spreads ports evenly: no bucket near twice the mean.
    let mean = 300_000 / 128;
    assert!(v4.iter().all(|&len| len < mean * 5 / 4), "{v4:?}");
    // Generous even for a debug build; quadratic work would take hours.
    assert!(started.elapsed().as_secs() < 120);
}

#[test]
fn lookups_and_counts_stay_exact_across_respreads() {
    let mut rng = fastrand::Rng::with_seed(5);
    let mut set = PeerSet::<6>::default();
    let mut model: BTreeMap<[u8; 6], bool> = BTreeMap::new();
    let mut seeders = 0u32;
    let mut shapes = Vec::new();
    // Grow to four buckets, shrink back to flat, through every re-spread.
    for (rounds, insert_share) in [(30_000, 85), (40_000, 10)] {
        for _ in 0..rounds {
            let key = addr(rng.u32(..12_000));
            let seeding = rng.bool();
            if rng.u32(..100) < insert_share {
                let updated = set.update(key, &visit(1, seeding));
                let before = model.insert(key, seeding);
                assert_eq!(updated.new, before.is_none());
                let delta = i32::from(seeding) - i32::from(before.unwrap_or(false));
                assert_eq!(updated.seeder_delta, delta);
                seeders = seeders.wrapping_add_signed(delta);
            } else {
                let removed = set.remove(&key).map(|p| p.mark.seeding());
                assert_eq!(removed, model.remove(&key));
                seeders -= u32::from(removed == Some(true));
            }
            assert_eq!((set.len(), set.seeders()), (model.len(), seeders));
            let shape = match &set {
                PeerSet::Flat(_) => 1,
                PeerSet::Bucketed(buckets) => buckets.bucket_lens().len(),
            };
            if shapes.last() != Some(&shape) {
                shapes.push(shape);
            }
        }
    }
    assert_eq!(shapes, [1, 2, 4, 2, 1]);
    assert_eq!(seeders as usize, model.values().filter(|&&s| s).count());
    // Every peer is where a lookup finds it.
    for (key, seeding) in &model {
        let updated = set.update(*key, &visit(2, *seeding));
        assert!(!updated.new && updated.seeder_delta == 0);
    }
}

#[test]
fn sample_is_fair_across_buckets() {
    let mut set = PeerSet::<6>::default();
    let peers = GROW_ABOVE as u32 + 200;
    for n in 0..peers {
        set.update(addr(n), &visit(1, n % 2 == 0));
    }
    let PeerSet::Bucketed(buckets) = &set else {
        panic!("still flat")
    };
    assert_eq!(buckets.bucket_lens().len(), 2);
    let mut rng = fastrand::Rng::with_seed(7);
    let mut hits = vec![0u32; peers as usize];
    let (draws, quota) = (4000, 200);
    for _ in 0..draws {
        let mut out = Vec::new();
        set.sample_into(quota, &mut rng, &mut out);
        assert_eq!(out.len(), quota * 6);
        let ids: Vec<u32> = out
            .chunks(6)
            .map(|c| u32::from_be_bytes([c[1], c[2], c[3], c[4]]))
            .collect();
        let mut unique = ids.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), quota);
        let first_seeder = ids.iter().position(|id| id % 2 == 0).unwrap_or(quota);
        assert!(ids[first_seeder..].iter().all(|id| id % 2 == 0));
        for id in ids {
            hits[id as usize] += 1;
        }
    }
    // Each peer is expected 4000 * 200 / 4296 ≈ 186 times (sd ≈ 13.5).
    assert!(hits.iter().all(|&h| (120..260).contains(&h)), "{hits:?}");
    let mut all = Vec::new();
    set.sample_into(usize::MAX, &mut rng, &mut all);
    assert_eq!(all.len(), peers as usize * 6);
}

#[test]
fn sweep_expires_peers_in_every_bucket() {
    let mut t = Tracker::new(TIMEOUTS, 4);
    let ip4 = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    let ip6: IpAddr = "2001:db8::1".parse().unwrap();
    for port in 1..=12_000u16 {
        // Old peers at second 0, fresh ones at second 50.
        let now = u32::from(port % 2) * 50;
        for ip in [ip4, ip6] {
            announce_peer(
                &mut t,
                SocketAddr::new(ip, port),
                port % 3 == 0,
                Event::None,
                now,
            );
        }
    }
    let (v4, v6) = layout(&t);
    assert_eq!((v4.len(), v6.len()), (4, 4));
    assert_eq!(t.totals().peers, 24_000);
    assert!(t.sweep(120, usize::MAX));
    // The even ports went; 6000 per family are left, still in buckets.
    let (v4, v6) = layout(&t);
    assert_eq!((v4.len(), v6.len()), (4, 4));
    assert_eq!(v4.iter().sum::<usize>(), 6000);
    let counts = t.scrape(&InfoHash(HASH)).unwrap();
    let seeders = 2 * (1..=12_000).filter(|p| p % 2 == 1 && p % 3 == 0).count() as u32;
    assert_eq!(
        (counts.seeders, counts.leechers),
        (seeders, 12_000 - seeders)
    );
    assert_eq!(t.totals().peers, 12_000);
    assert_eq!(t.totals().seeders, u64::from(seeders));
    // A stop finds its peer in its bucket.
    announce_peer(&mut t, SocketAddr::new(ip6, 1), false, Event::Stopped, 121);
    assert_eq!(t.totals().peers, 11_999);
    assert!(t.sweep(200, usize::MAX));
    assert_eq!(t.totals(), Totals::default());
    assert_eq!(layout(&t), (Vec::new(), Vec::new()));
}
