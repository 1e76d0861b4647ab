//! Which networks hold the most peers (upstream's `/stats?mode=s24s`): how
//! an operator spots one network flooding the tracker with peers.
//!
//! Every peer's network is collected at the narrowest prefix reported, then
//! ranked in bounded steps, so that the event loop can serve others between
//! them even with tens of millions of peers: chunks of the list are sorted
//! one per step, then merged a batch per step. A wider prefix of a sorted
//! list is still sorted, so as the merged list streams by, each prefix
//! length counts runs of equal networks and keeps the longest.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::leaf::Addr;

/// IPv4 prefix lengths reported, narrow first, as upstream's IPv4 build.
const V4_PREFIXES: [u32; 2] = [28, 24];
/// IPv6 ones: a subnet (/64) and a site (/48), the usual allocations.
const V6_PREFIXES: [u32; 2] = [64, 48];

/// The busiest networks at one prefix length, most peers first.
#[derive(Debug, PartialEq, Eq)]
pub struct Busiest {
    pub prefix: u32,
    /// (peers, network address), ties in address order.
    pub networks: Vec<(u64, IpAddr)>,
}

/// Peers' networks, gathered torrent by torrent.
#[derive(Default)]
pub struct Networks {
    /// IPv4 addresses cut to the narrowest prefix.
    v4: Vec<u32>,
    /// The first 64 bits of IPv6 addresses.
    v6: Vec<u64>,
}

fn mask<const BITS: u32>(prefix: u32) -> u128 {
    !0u128 << (128 - prefix) >> (128 - BITS)
}

impl Networks {
    /// Room for `peers` IPv4 peers, so that collecting never reallocates
    /// (a million peers take 4 MB).
    pub fn with_capacity(peers: usize) -> Self {
        Networks {
            v4: Vec::with_capacity(peers),
            v6: Vec::new(),
        }
    }

    /// Counts the peer at `addr` (compact: address, then port).
    pub fn add(&mut self, addr: &Addr) {
        match addr {
            Addr::V4(a) => {
                let ip = u32::from_be_bytes([a[0], a[1], a[2], a[3]]);
                self.v4.push(ip & mask::<32>(V4_PREFIXES[0]) as u32);
            }
            Addr::V6(a) => {
                let mut first = [0u8; 8];
                first.copy_from_slice(&a[..8]);
                self.v6.push(u64::from_be_bytes(first));
            }
        }
    }

    /// Starts ranking the `n` busiest networks at each prefix length
    /// ([`NetworkRanking::step`]).
    pub fn rank(self, n: usize) -> NetworkRanking {
        NetworkRanking {
            v4: Ranker::new(self.v4, V4_PREFIXES.map(|p| mask::<32>(p) as u32), n),
            v6: Ranker::new(self.v6, V6_PREFIXES.map(|p| mask::<64>(p) as u64), n),
        }
    }

    /// The `n` busiest networks at each prefix length, ranked in one go.
    #[cfg(test)]
    pub fn busiest(self, n: usize) -> Vec<Busiest> {
        let mut ranking = self.rank(n);
        while !ranking.step() {}
        ranking.busiest()
    }
}

/// Networks sorted in one step: a few milliseconds of work.
const SORTED_PER_STEP: usize = 1 << 18;
/// Networks merged in one step: about as long.
const MERGED_PER_STEP: usize = 1 << 16;

/// Collected networks being ranked.
pub struct NetworkRanking {
    v4: Ranker<u32>,
    v6: Ranker<u64>,
}

impl NetworkRanking {
    /// Sorts one chunk or merges one batch; returns true once the ranking
    /// is done.
    pub fn step(&mut self) -> bool {
        self.v4.step() && self.v6.step()
    }

    /// Once done: the busiest networks at each prefix length, IPv4 /28 and
    /// /24, then IPv6 /64 and /48.
    pub fn busiest(&self) -> Vec<Busiest> {
        let v4 = (V4_PREFIXES.iter().zip(&self.v4.runs)).map(|(&prefix, runs)| Busiest {
            prefix,
            networks: (runs.longest().into_iter())
                .map(|(count, net)| (count, IpAddr::V4(Ipv4Addr::from(net))))
                .collect(),
        });
        let v6 = (V6_PREFIXES.iter().zip(&self.v6.runs)).map(|(&prefix, runs)| Busiest {
            prefix,
            networks: (runs.longest().into_iter())
                .map(|(count, net)| (count, IpAddr::V6(Ipv6Addr::from(u128::from(net) << 64))))
                .collect(),
        });
        v4.chain(v6).collect()
    }
}

/// One family's networks: sorted a chunk at a time, then merged, the runs
/// at each prefix counted as the merged list streams by.
struct Ranker<K> {
    keys: Vec<K>,
    /// Keys sorted so far, from the start.
    sorted: usize,
    /// Per sorted chunk: the next key to merge, and the chunk's end.
    chunks: Vec<(usize, usize)>,
    /// Each chunk's next key, the least on top.
    heads: BinaryHeap<Reverse<(K, usize)>>,
    runs: [Runs<K>; 2],
    done: bool,
}

impl<K> Ranker<K>
where
    K: Copy + Ord + std::ops::BitAnd<Output = K>,
{
    fn new(keys: Vec<K>, masks: [K; 2], n: usize) -> Self {
        Ranker {
            keys,
            sorted: 0,
            chunks: Vec::new(),
            heads: BinaryHeap::new(),
            runs: masks.map(|mask| Runs::new(mask, n)),
            done: false,
        }
    }

    fn step(&mut self) -> bool {
        if self.done {
            return true;
        }
        if self.sorted < self.keys.len() {
            let (start, end) = (
                self.sorted,
                (self.sorted + SORTED_PER_STEP).min(self.keys.len()),
            );
            self.keys[start..end].sort_unstable();
            self.heads
                .push(Reverse((self.keys[start], self.chunks.len())));
            self.chunks.push((start, end));
            self.sorted = end;
            return false;
        }
        for _ in 0..MERGED_PER_STEP {
            let Some(mut head) = self.heads.peek_mut() else {
                self.runs.iter_mut().for_each(Runs::close);
                self.keys = Vec::new();
                self.done = true;
                return true;
            };
            let Reverse((key, chunk)) = *head;
            self.runs.iter_mut().for_each(|runs| runs.add(key));
            let (next, end) = &mut self.chunks[chunk];
            *next += 1;
            if *next < *end {
                // Replacing the top sifts once, where a pop and a push would twice.
                *head = Reverse((self.keys[*next], chunk));
            } else {
                std::collections::binary_heap::PeekMut::pop(head);
            }
        }
        false
    }
}

/// Runs of equal networks at one prefix length, counted as sorted keys
/// stream by; the `n` longest are kept.
struct Runs<K> {
    mask: K,
    n: usize,
    current: Option<(K, u64)>,
    /// A min-heap of the longest so far: its top is the one to drop next,
    /// the shortest run and, among equals, the highest network.
    longest: BinaryHeap<Reverse<(u64, Reverse<K>)>>,
}

impl<K> Runs<K>
where
    K: Copy + Ord + std::ops::BitAnd<Output = K>,
{
    fn new(mask: K, n: usize) -> Self {
        Runs {
            mask,
            n,
            current: None,
            longest: BinaryHeap::with_capacity(n + 1),
        }
    }

    fn add(&mut self, key: K) {
        let net = key & self.mask;
        match &mut self.current {
            Some((current, count)) if *current == net => *count += 1,
            _ => {
                self.close();
                self.current = Some((net, 1));
            }
        }
    }

    /// Ends the current run.
    fn close(&mut self) {
        if let Some((net, count)) = self.current.take() {
            self.longest.push(Reverse((count, Reverse(net))));
            if self.longest.len() > self.n {
                self.longest.pop();
            }
        }
    }

    /// (length, network), longest first, equal lengths in network order.
    fn longest(&self) -> Vec<(u64, K)> {
        let mut longest: Vec<(u64, K)> = (self.longest.iter())
            .map(|&Reverse((count, Reverse(net)))| (count, net))
            .collect();
        longest.sort_unstable_by_key(|&(count, net)| (Reverse(count), net));
        longest
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn v4(a: u8, b: u8, c: u8, d: u8) -> Addr {
        Addr::V4([a, b, c, d, 0x1a, 0xe1])
    }

    fn v6(text: &str) -> Addr {
        let mut addr = [0u8; 18];
        addr[..16].copy_from_slice(&text.parse::<Ipv6Addr>().unwrap().octets());
        Addr::V6(addr)
    }

    fn listed(busiest: &Busiest) -> Vec<(u64, String)> {
        busiest
            .networks
            .iter()
            .map(|(count, net)| (*count, net.to_string()))
            .collect()
    }

    #[test]
    fn counts_peers_per_network_at_each_prefix() {
        let mut networks = Networks::default();
        for d in [1, 2, 3, 17] {
            networks.add(&v4(10, 0, 0, d));
        }
        for d in [5, 200] {
            networks.add(&v4(192, 168, 7, d));
        }
        networks.add(&v4(10, 0, 1, 1));
        networks.add(&v6("2001:db8:1:2::1"));
        networks.add(&v6("2001:db8:1:2::2"));
        networks.add(&v6("2001:db8:1:3::1"));
        networks.add(&v6("2001:db8:9::1"));
        let busiest = networks.busiest(128);
        let prefixes: Vec<u32> = busiest.iter().map(|b| b.prefix).collect();
        assert_eq!(prefixes, [28, 24, 64, 48]);
        let count = |n: u64, net: &str| (n, net.to_owned());
        assert_eq!(
            listed(&busiest[0]),
            [
                count(3, "10.0.0.0"),
                count(1, "10.0.0.16"),
                count(1, "10.0.1.0"),
                count(1, "192.168.7.0"),
                count(1, "192.168.7.192"),
            ]
        );
        assert_eq!(
            listed(&busiest[1]),
            [
                count(4, "10.0.0.0"),
                count(2, "192.168.7.0"),
                count(1, "10.0.1.0")
            ]
        );
        assert_eq!(
            listed(&busiest[2]),
            [
                count(2, "2001:db8:1:2::"),
                count(1, "2001:db8:1:3::"),
                count(1, "2001:db8:9::"),
            ]
        );
        assert_eq!(
            listed(&busiest[3]),
            [count(3, "2001:db8:1::"), count(1, "2001:db8:9::")]
        );
    }

    #[test]
    fn keeps_only_the_busiest_and_breaks_ties_by_address() {
        let mut networks = Networks::default();
        // 10.0.c.0/24 holds c + 1 peers, for c in 0..10.
        for c in 0..10u8 {
            for d in 0..=c {
                networks.add(&v4(10, 0, c, d * 16));
            }
        }
        for c in [40u8, 30, 20] {
            networks.add(&v4(10, 1, c, 0));
        }
        let busiest = networks.busiest(3);
        let slash24: Vec<u64> = busiest[1].networks.iter().map(|n| n.0).collect();
        assert_eq!(slash24, [10, 9, 8]);
        // Every /28 holds one peer: the lowest addresses win the tie.
        assert_eq!(
            listed(&busiest[0]),
            [
                (1, "10.0.0.0".to_owned()),
                (1, "10.0.1.0".to_owned()),
                (1, "10.0.1.16".to_owned())
            ]
        );
        assert!(busiest[2].networks.is_empty() && busiest[3].networks.is_empty());
    }

    #[test]
    fn ranking_in_steps_agrees_with_counting_everything() {
        // Enough peers for several sorted chunks, and networks with peers
        // in more than one chunk.
        let mut rng = fastrand::Rng::with_seed(5);
        let peers: Vec<Addr> = (0..3 * SORTED_PER_STEP + 1000)
            .map(|i| match i % 8 {
                0 => v6(&format!("2001:db8:{:x}:{:x}::1", rng.u8(..3), rng.u16(..))),
                _ => v4(10, rng.u8(..4), rng.u8(..), rng.u8(..)),
            })
            .collect();
        let mut networks = Networks::default();
        peers.iter().for_each(|peer| networks.add(peer));
        let mut ranking = networks.rank(128);
        let mut steps = 1;
        while !ranking.step() {
            steps += 1;
        }
        // 4 chunks sorted, then about 11 batches merged.
        assert!(steps >= 15, "{steps} steps");
        for busiest in ranking.busiest() {
            let mut counts: HashMap<IpAddr, u64> = HashMap::new();
            for peer in &peers {
                let (ip, bits) = match peer {
                    Addr::V4(a) => (IpAddr::from([a[0], a[1], a[2], a[3]]), 32),
                    Addr::V6(a) => (IpAddr::from(<[u8; 16]>::try_from(&a[..16]).unwrap()), 128),
                };
                let network = match ip {
                    IpAddr::V4(ip) if bits == 32 && busiest.prefix <= 32 => {
                        IpAddr::V4((u32::from(ip) & mask::<32>(busiest.prefix) as u32).into())
                    }
                    IpAddr::V6(ip) if busiest.prefix > 32 => {
                        IpAddr::V6((u128::from(ip) & (!0u128 << (128 - busiest.prefix))).into())
                    }
                    _ => continue,
                };
                *counts.entry(network).or_default() += 1;
            }
            let mut expected: Vec<(u64, IpAddr)> =
                counts.into_iter().map(|(n, c)| (c, n)).collect();
            expected.sort_by_key(|&(count, net)| (Reverse(count), net));
            expected.truncate(128);
            assert_eq!(busiest.networks, expected, "/{}", busiest.prefix);
        }
    }

    #[test]
    fn nothing_to_count_gives_empty_lists() {
        let busiest = Networks::default().busiest(128);
        assert_eq!(busiest.len(), 4);
        assert!(busiest.iter().all(|b| b.networks.is_empty()));
    }
}
