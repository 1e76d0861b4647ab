//! BEP 15 connection ids.
//!
//! Why they exist: UDP source addresses are trivially spoofed, and without a
//! handshake the tracker could be made to send large announce replies to a
//! victim, or to fill swarms with forged peers. A connection id proves that
//! the sender received a reply at its claimed address recently.
//!
//! An id is a keyed SipHash of (client address, minute number) under a key
//! drawn at start-up; an id made in the current minute or one of the two
//! before is accepted, so an id stays valid for two to three minutes (BEP 15:
//! clients may use it until one minute after they receive it, trackers accept
//! it until two minutes after they send it; with only the previous minute, an
//! id made in a minute's last second died 61 s later). Upstream's ids never
//! expire, which is a bug we do not copy. The source port is left out, as
//! upstream does, so clients that reconnect from another port keep working.

use std::hash::{BuildHasher, Hash, Hasher};
use std::net::IpAddr;

/// Seconds in one id window.
pub const WINDOW_SECS: u64 = 60;

/// Windows before the current one whose ids are still accepted.
const EARLIER_WINDOWS_ACCEPTED: u64 = 2;

/// The secret behind connection ids. Make one per process.
#[derive(Clone)]
pub struct ConnectionIdKey<S: BuildHasher = std::collections::hash_map::RandomState> {
    keyed: S,
}

impl<S: BuildHasher> ConnectionIdKey<S> {
    /// A key from `keyed`, a hasher keyed with a secret the caller draws
    /// (this module draws no randomness).
    pub fn new(keyed: S) -> Self {
        ConnectionIdKey { keyed }
    }

    fn id_for_window(&self, ip: IpAddr, window: u64) -> u64 {
        let mut hasher = self.keyed.build_hasher();
        let canonical = match ip {
            IpAddr::V4(v4) => v4.to_ipv6_mapped(),
            IpAddr::V6(v6) => v6,
        };
        canonical.octets().hash(&mut hasher);
        window.hash(&mut hasher);
        hasher.finish()
    }

    /// The id to hand out to `ip` at `now_secs` (any monotonic seconds).
    pub fn make(&self, ip: IpAddr, now_secs: u64) -> u64 {
        self.id_for_window(ip, now_secs / WINDOW_SECS)
    }

    /// Whether `id` was made for `ip` in this window or one of the two
    /// before. The current window goes first, as most ids are fresh: the
    /// earlier ones cost a hash each only on a miss.
    pub fn check(&self, ip: IpAddr, now_secs: u64, id: u64) -> bool {
        let window = now_secs / WINDOW_SECS;
        id == self.id_for_window(ip, window)
            || (1..=EARLIER_WINDOWS_ACCEPTED.min(window))
                .any(|back| id == self.id_for_window(ip, window - back))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::hash_map::RandomState;

    #[test]
    fn valid_for_two_to_three_minutes() {
        let key = ConnectionIdKey::new(RandomState::new());
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        // Made in a window's last second: still good two minutes later, as
        // BEP 15 asks of trackers, and refused once the third minute is over.
        let last_second = 17 * WINDOW_SECS - 1;
        let id = key.make(ip, last_second);
        assert!(key.check(ip, last_second, id));
        assert!(key.check(ip, last_second + 2 * WINDOW_SECS, id));
        assert!(!key.check(ip, last_second + 2 * WINDOW_SECS + 1, id));
        // Made in a window's first second: good for three minutes less one second.
        let first_second = 17 * WINDOW_SECS;
        let id = key.make(ip, first_second);
        assert!(key.check(ip, first_second + 3 * WINDOW_SECS - 1, id));
        assert!(!key.check(ip, first_second + 3 * WINDOW_SECS, id));
        assert!(!key.check("192.0.2.2".parse().unwrap(), first_second, id));
        assert!(!ConnectionIdKey::new(RandomState::new()).check(ip, first_second, id));
        // Near the clock's origin there are fewer earlier windows to try.
        assert!(key.check(ip, 2 * WINDOW_SECS, key.make(ip, 0)));
        assert!(!key.check(ip, 0, id));
    }

    #[test]
    fn v4_and_mapped_v6_agree() {
        let key = ConnectionIdKey::new(RandomState::new());
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(key.make(v4, 5), key.make(mapped, 5));
    }
}
