//! Which networks hold the most peers (upstream's `/stats?mode=s24s`): how
//! an operator spots one network flooding the tracker with peers.
//!
//! Every peer's network is collected at the narrowest prefix reported, then
//! sorted once; a wider prefix of a sorted list is still sorted, so each
//! prefix length is one pass over runs of equal networks.

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

    /// The `n` busiest networks at each prefix length: IPv4 /28 and /24,
    /// then IPv6 /64 and /48.
    pub fn busiest(mut self, n: usize) -> Vec<Busiest> {
        self.v4.sort_unstable();
        self.v6.sort_unstable();
        let v4 = V4_PREFIXES.map(|prefix| Busiest {
            prefix,
            networks: top_runs(&self.v4, mask::<32>(prefix) as u32, n)
                .into_iter()
                .map(|(count, net)| (count, IpAddr::V4(Ipv4Addr::from(net))))
                .collect(),
        });
        let v6 = V6_PREFIXES.map(|prefix| Busiest {
            prefix,
            networks: top_runs(&self.v6, mask::<64>(prefix) as u64, n)
                .into_iter()
                .map(|(count, net)| (count, IpAddr::V6(Ipv6Addr::from(u128::from(net) << 64))))
                .collect(),
        });
        v4.into_iter().chain(v6).collect()
    }
}

/// The `n` longest runs of equal `key & mask` in `sorted`, as (length,
/// masked key), longest first, equal lengths in key order.
fn top_runs<K>(sorted: &[K], mask: K, n: usize) -> Vec<(u64, K)>
where
    K: Copy + Ord + std::ops::BitAnd<Output = K>,
{
    // A min-heap of the best so far: its top is the one to drop next, the
    // shortest run and, among equals, the highest key.
    let mut best: BinaryHeap<Reverse<(u64, Reverse<K>)>> = BinaryHeap::with_capacity(n + 1);
    let mut rest = sorted;
    while let Some(&first) = rest.first() {
        let net = first & mask;
        let run = rest.partition_point(|&k| k & mask == net);
        rest = &rest[run..];
        best.push(Reverse((run as u64, Reverse(net))));
        if best.len() > n {
            best.pop();
        }
    }
    let mut top: Vec<(u64, K)> = best
        .into_iter()
        .map(|Reverse((count, Reverse(net)))| (count, net))
        .collect();
    top.sort_unstable_by_key(|&(count, net)| (Reverse(count), net));
    top
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn nothing_to_count_gives_empty_lists() {
        let busiest = Networks::default().busiest(128);
        assert_eq!(busiest.len(), 4);
        assert!(busiest.iter().all(|b| b.networks.is_empty()));
    }
}
