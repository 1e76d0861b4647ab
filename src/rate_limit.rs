//! Requests per network (`access.rate_limit`): each IPv4 /24 or IPv6 /48
//! (by default) may send so many requests per second, with a burst on top,
//! so one network flooding the tracker cannot take the time everyone else's
//! answers need.
//!
//! Each network falls in one of a fixed number of slots, picked by a keyed
//! hash so that nobody can aim at another network's slot; networks sharing
//! a slot share its allowance. A slot is one atomic word holding the
//! generic cell rate algorithm's "theoretical arrival time": a request is
//! allowed when that time is at most the burst's worth ahead of now, and
//! moves it one interval on. The event loop and every UDP worker share the
//! table, so a network's rate is the same however its requests are spread.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::keyed_hash::KeyedHash;

/// Slots in the table: 512 KiB, so that collisions stay rare among the
/// networks active at once.
pub const SLOTS: usize = 1 << 16;

/// How far behind another caller's a caller's clock reading may be and
/// still get its due: threads read the clock before they count a request,
/// so one may come in with a `now` a little older than the one that moved
/// the slot last, and would be refused the last request of a burst. Under
/// half an interval, so neither the burst nor the sustained rate grows.
const CLOCK_SKEW_NS: u64 = 1_000_000;

/// How requests are limited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    /// Requests per second a network may send, sustained.
    pub per_second: u32,
    /// Requests it may send at once after a quiet spell.
    pub burst: u32,
    /// Prefix lengths that make a network: IPv4 and IPv6.
    pub prefixes: (u8, u8),
}

pub struct RateLimiter {
    /// Per slot, nanoseconds (on the caller's clock) before which its
    /// allowance is used up, plus the burst's worth.
    slots: Box<[AtomicU64]>,
    /// Picks a network's slot; secret.
    key: KeyedHash,
    interval_ns: u64,
    tolerance_ns: u64,
    masks: (u32, u128),
}

impl RateLimiter {
    /// `seed` keys the slot hash; draw it at random.
    pub fn new(rate: Rate, seed: u64) -> Self {
        let interval_ns = 1_000_000_000 / u64::from(rate.per_second.max(1));
        let mask4 = u32::MAX
            .checked_shl(32 - u32::from(rate.prefixes.0))
            .unwrap_or(0);
        let mask6 = u128::MAX
            .checked_shl(128 - u32::from(rate.prefixes.1))
            .unwrap_or(0);
        RateLimiter {
            slots: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
            key: KeyedHash::draw(&mut fastrand::Rng::with_seed(seed)),
            interval_ns,
            tolerance_ns: interval_ns * u64::from(rate.burst.max(1) - 1)
                + CLOCK_SKEW_NS.min(interval_ns / 2),
            masks: (mask4, mask6),
        }
    }

    /// The network `ip` counts in, as an address with the host bits zeroed.
    pub fn network(&self, ip: IpAddr) -> IpAddr {
        match ip.to_canonical() {
            IpAddr::V4(v4) => Ipv4Addr::from(u32::from(v4) & self.masks.0).into(),
            IpAddr::V6(v6) => Ipv6Addr::from(u128::from(v6) & self.masks.1).into(),
        }
    }

    fn slot(&self, network: IpAddr) -> &AtomicU64 {
        // Every bit goes through the secret hash: a network whose host part
        // is long (an IPv6 prefix over 64) cannot be picked to land in
        // another's slot.
        let hash = match network {
            IpAddr::V4(v4) => self.key.hash(&v4.octets()),
            IpAddr::V6(v6) => self.key.hash(&v6.octets()),
        };
        &self.slots[(hash >> (64 - SLOTS.trailing_zeros())) as usize]
    }

    /// Whether a request from `ip` at `now_ns` (a monotonic clock shared by
    /// every caller) is within its network's rate; if so it is counted.
    pub fn allow(&self, ip: IpAddr, now_ns: u64) -> bool {
        let slot = self.slot(self.network(ip));
        let mut due = slot.load(Ordering::Relaxed);
        loop {
            let start = due.max(now_ns);
            if start - now_ns > self.tolerance_ns {
                return false;
            }
            let next = start + self.interval_ns;
            match slot.compare_exchange_weak(due, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return true,
                Err(current) => due = current,
            }
        }
    }
}

/// The client `ip` is, as the per-client quotas count: an IPv4 address or
/// an IPv6 /64, since one IPv6 host may use every address of its subnet.
pub fn client_of(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => Ipv6Addr::from(u128::from(v6) & !(u128::MAX >> 64)).into(),
        v4 => v4,
    }
}

/// One full scrape per client per interval (`tracker.full_scrape_min_interval`,
/// upstream's `WANT_MODEST_FULLSCRAPES`): a full scrape sends every torrent,
/// so a script polling it in a loop costs more than thousands of announces.
/// A client is as [`client_of`] says.
///
/// Upstream's table of clients only grows; here a client is forgotten once
/// its interval has passed, and the table holds at most [`Self::CLIENTS`].
pub struct FullScrapeQuota {
    interval: u32,
    /// Per client, the second of its last full scrape.
    last: HashMap<IpAddr, u32>,
    /// Past this size, entries that have expired are dropped.
    prune_at: usize,
}

impl FullScrapeQuota {
    /// Clients remembered at most (about 3 MB). Past it, within one
    /// interval, full scrapes are a flood: all are refused until entries
    /// expire.
    pub const CLIENTS: usize = 1 << 16;

    pub fn new(interval_seconds: u32) -> Self {
        FullScrapeQuota {
            interval: interval_seconds,
            last: HashMap::new(),
            prune_at: 1024,
        }
    }

    /// Whether the client at `ip` may have a full scrape at second `now`; if
    /// so it is counted, if not the seconds it has to wait.
    pub fn take(&mut self, ip: IpAddr, now: u32) -> Result<(), u32> {
        let client = client_of(ip);
        if let Some(&last) = self.last.get(&client) {
            let since = now.saturating_sub(last);
            if since < self.interval {
                return Err(self.interval - since);
            }
        } else if self.last.len() >= self.prune_at {
            let interval = self.interval;
            self.last
                .retain(|_, last| now.saturating_sub(*last) < interval);
            self.prune_at = (self.last.len() * 2).clamp(1024, Self::CLIENTS);
            if self.last.len() >= Self::CLIENTS {
                return Err(self.soonest_expiry(now));
            }
        }
        self.last.insert(client, now);
        Ok(())
    }

    /// Seconds until the oldest remembered client expires.
    fn soonest_expiry(&self, now: u32) -> u32 {
        let oldest = self.last.values().min().copied().unwrap_or(now);
        (self.interval - now.saturating_sub(oldest).min(self.interval)).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: u64 = 1_000_000_000;

    fn limiter(per_second: u32, burst: u32) -> RateLimiter {
        let rate = Rate {
            per_second,
            burst,
            prefixes: (24, 48),
        };
        RateLimiter::new(rate, 0x9e37_79b9_7f4a_7c15)
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    /// How many of `n` requests at the same instant get through.
    fn allowed(limiter: &RateLimiter, from: &str, n: usize, now: u64) -> usize {
        (0..n).filter(|_| limiter.allow(ip(from), now)).count()
    }

    #[test]
    fn a_burst_then_the_sustained_rate() {
        let l = limiter(10, 5);
        let start = 100 * SECOND;
        assert_eq!(allowed(&l, "10.0.0.1", 20, start), 5);
        // One interval (100 ms) later, one more.
        assert_eq!(allowed(&l, "10.0.0.1", 20, start + SECOND / 10), 1);
        // A second later, ten more intervals have passed; the burst caps it.
        assert_eq!(allowed(&l, "10.0.0.1", 20, start + 2 * SECOND), 5);
        // Sustained at the rate, every request passes.
        let later = start + 10 * SECOND;
        for i in 0..100 {
            assert!(l.allow(ip("10.0.0.1"), later + i * SECOND / 10), "{i}");
        }
    }

    #[test]
    fn callers_whose_clocks_lag_a_little_still_get_the_whole_burst() {
        // Two workers: one read the clock 0.3 ms after the other, and its
        // request was counted first.
        let l = limiter(1, 3);
        let (early, late) = (50 * SECOND, 50 * SECOND + 300_000);
        assert!(l.allow(ip("10.0.0.1"), late));
        assert_eq!(allowed(&l, "10.0.0.1", 5, early), 2);
        // Nor does the slack let more through: not 0.9 s later, and one
        // a second later.
        assert_eq!(allowed(&l, "10.0.0.1", 5, late + SECOND * 9 / 10), 0);
        assert_eq!(allowed(&l, "10.0.0.1", 5, late + SECOND), 1);
    }

    #[test]
    fn a_network_shares_one_allowance_and_others_keep_theirs() {
        let l = limiter(1, 4);
        let now = 5 * SECOND;
        assert_eq!(allowed(&l, "192.0.2.1", 2, now), 2);
        assert_eq!(allowed(&l, "192.0.2.200", 5, now), 2);
        assert_eq!(allowed(&l, "::ffff:192.0.2.7", 1, now), 0, "mapped is IPv4");
        assert_eq!(allowed(&l, "192.0.3.1", 5, now), 4);
        assert_eq!(allowed(&l, "2001:db8:1:ffff::1", 2, now), 2);
        assert_eq!(allowed(&l, "2001:db8:1:1::9", 5, now), 2);
        assert_eq!(allowed(&l, "2001:db8:2::1", 5, now), 4);
    }

    #[test]
    fn networks_are_cut_at_the_configured_prefixes() {
        let l = limiter(1, 1);
        assert_eq!(l.network(ip("198.51.100.77")), ip("198.51.100.0"));
        assert_eq!(l.network(ip("2001:db8:aa:bb::1")), ip("2001:db8:aa::"));
        let whole = RateLimiter::new(
            Rate {
                per_second: 1,
                burst: 1,
                prefixes: (32, 128),
            },
            3,
        );
        assert_eq!(whole.network(ip("198.51.100.77")), ip("198.51.100.77"));
        let all = RateLimiter::new(
            Rate {
                per_second: 1,
                burst: 1,
                prefixes: (0, 0),
            },
            3,
        );
        assert_eq!(all.network(ip("198.51.100.77")), ip("0.0.0.0"));
    }

    #[test]
    fn threads_share_the_allowance() {
        let l = limiter(1, 1000);
        let now = SECOND;
        let passed: usize = std::thread::scope(|s| {
            let workers: Vec<_> = (0..4)
                .map(|_| s.spawn(|| allowed(&l, "203.0.113.9", 500, now)))
                .collect();
            workers.into_iter().map(|w| w.join().unwrap()).sum()
        });
        assert_eq!(passed, 1000);
    }

    #[test]
    fn slots_spread_networks() {
        let l = limiter(1, 1);
        let mut used = std::collections::HashSet::new();
        for n in 0..4096u32 {
            let v4 = IpAddr::from(Ipv4Addr::from(n << 8));
            used.insert(l.slot(l.network(v4)) as *const AtomicU64);
        }
        // Random slots for 4096 networks in 65536: about 3970 distinct.
        assert!(used.len() > 3800, "{}", used.len());
    }

    #[test]
    fn a_host_cannot_pick_its_address_to_share_another_hosts_slot() {
        let rate = Rate {
            per_second: 1,
            burst: 1,
            prefixes: (32, 128),
        };
        // Folding the halves before a keyed multiply let the owner of a /64
        // solve for the low half that folds onto a victim's address.
        let fold = |bits: u128| (bits >> 64) as u64 ^ (bits as u64).rotate_left(29);
        let victim = u128::from("2001:db8:aaaa:bbbb::1".parse::<Ipv6Addr>().unwrap());
        let own_half = 0x2001_0db8_cccc_dddd_u64;
        let low = (own_half ^ fold(victim)).rotate_right(29);
        let aimed = u128::from(own_half) << 64 | u128::from(low);
        assert_eq!(fold(aimed), fold(victim));
        for seed in 1..=16 {
            let l = RateLimiter::new(rate, seed);
            let now = 100 * SECOND;
            assert!(l.allow(Ipv6Addr::from(aimed).into(), now));
            assert!(
                l.allow(Ipv6Addr::from(victim).into(), now),
                "seed {seed}: the victim was refused"
            );
        }
    }

    #[test]
    fn a_client_gets_one_full_scrape_per_interval() {
        let mut q = FullScrapeQuota::new(300);
        assert_eq!(q.take(ip("192.0.2.1"), 1000), Ok(()));
        assert_eq!(q.take(ip("192.0.2.1"), 1000), Err(300));
        assert_eq!(
            q.take(ip("::ffff:192.0.2.1"), 1100),
            Err(200),
            "mapped is IPv4"
        );
        assert_eq!(q.take(ip("192.0.2.2"), 1100), Ok(()), "another address");
        assert_eq!(q.take(ip("192.0.2.1"), 1299), Err(1));
        assert_eq!(q.take(ip("192.0.2.1"), 1300), Ok(()));
        // An IPv6 client is its /64.
        assert_eq!(q.take(ip("2001:db8:1:2::1"), 1000), Ok(()));
        assert_eq!(q.take(ip("2001:db8:1:2:ffff::9"), 1010), Err(290));
        assert_eq!(q.take(ip("2001:db8:1:3::1"), 1010), Ok(()));
    }

    #[test]
    fn expired_clients_are_forgotten_and_a_flood_is_refused() {
        let mut q = FullScrapeQuota::new(60);
        let client = |n: u32| IpAddr::from(Ipv4Addr::from(0x0a00_0000 + n));
        for n in 0..2000 {
            assert_eq!(q.take(client(n), 0), Ok(()));
        }
        // A minute on, those have expired: once the table reaches its next
        // pruning size they are dropped.
        for n in 0..100 {
            assert_eq!(q.take(client(5000 + n), 60), Ok(()));
        }
        assert!(q.last.len() <= 100, "{}", q.last.len());
        // Within one interval, no more than CLIENTS are remembered; past
        // that, newcomers wait for the oldest to expire.
        let start = 1000;
        for n in 0..FullScrapeQuota::CLIENTS as u32 {
            assert_eq!(q.take(client(10_000 + n), start + n / 4096), Ok(()), "{n}");
        }
        let now = start + 20;
        assert_eq!(q.take(client(900_000), now), Err(40));
        assert_eq!(q.last.len(), FullScrapeQuota::CLIENTS);
        // Those remembered still get their answer.
        assert_eq!(q.take(client(10_000), now), Err(40));
        assert_eq!(q.take(client(900_000), start + 60), Ok(()));
    }
}
