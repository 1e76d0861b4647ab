//! Peer time stamps squeezed into 14 bits, and the flag bits that share
//! their 16-bit word.
//!
//! A peer only needs to know how long ago it last announced, and only up to
//! the peer timeout, so its stamp is the tracker clock in units of 2^shift
//! seconds, modulo 2^14, compared with wrapping arithmetic. The shift is
//! chosen so that the timeout is under 1/8 of the wrap period: the sweep,
//! which visits every peer once per sweep interval (a minute by default),
//! drops a peer long before its stamp could wrap and look fresh again. With
//! the default 45-minute timeout the unit is 2 s and the wrap is 9 hours.
//! In general the wrap is 8 to 16 timeouts; the last 1/16 of it is taken as
//! the near future (see [`AHEAD_UNITS_MAX`]), so a sweep interval under 6
//! peer timeouts is safe. When announce pacing may lengthen the timeout
//! later, the unit is sized for the longest it may become, and the shorter
//! timeouts in between are only coarser.

const STAMP_BITS: u32 = 14;
const STAMP_MASK: u16 = (1 << STAMP_BITS) - 1;
const SEEDING: u16 = 1 << 14;
const COMPLETED: u16 = 1 << 15;
/// Timeouts are kept under this many units, 1/8 of the wrap period.
const TIMEOUT_UNITS_MAX: u32 = 1 << (STAMP_BITS - 3);
/// A stamp up to this many units after a reader's `now` is fresh, not
/// nearly a wrap old: threads read the clock at different moments, and a
/// state save or a sweep walks with the second it started at while others
/// stamp peers with later ones.
const AHEAD_UNITS_MAX: u16 = 1 << (STAMP_BITS - 4);

/// Converts between tracker seconds and peer stamps for one peer timeout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerClock {
    shift: u32,
    timeout_units: u16,
}

impl PeerClock {
    pub fn new(peer_timeout: u32) -> Self {
        PeerClock::up_to(peer_timeout, peer_timeout)
    }

    /// A clock for `peer_timeout` that [`PeerClock::with_timeout`] can later
    /// set to anything up to `longest`.
    pub fn up_to(peer_timeout: u32, longest: u32) -> Self {
        let mut shift = 0;
        while longest.max(peer_timeout) >> shift >= TIMEOUT_UNITS_MAX {
            shift += 1;
        }
        PeerClock {
            shift,
            timeout_units: 0,
        }
        .with_timeout(peer_timeout)
    }

    /// The same stamps with another timeout, capped at the longest this
    /// clock's unit allows.
    pub fn with_timeout(self, peer_timeout: u32) -> Self {
        let units = (peer_timeout >> self.shift).min(TIMEOUT_UNITS_MAX - 1);
        PeerClock {
            timeout_units: units as u16,
            ..self
        }
    }

    /// The timeout, to the unit.
    pub fn timeout(self) -> u32 {
        u32::from(self.timeout_units) << self.shift
    }

    /// The stamp of second `now`.
    pub fn stamp(self, now: u32) -> u16 {
        (now >> self.shift) as u16 & STAMP_MASK
    }

    /// Units elapsed from `mark`'s stamp to `now`; none for a stamp in
    /// the near future.
    fn age_units(self, mark: Mark, now: u32) -> u16 {
        let age = self.stamp(now).wrapping_sub(mark.stamp()) & STAMP_MASK;
        if age > STAMP_MASK - AHEAD_UNITS_MAX {
            0
        } else {
            age
        }
    }

    /// Seconds since the announce that left `mark` (to the unit).
    pub fn age(self, mark: Mark, now: u32) -> u32 {
        let seconds = u64::from(self.age_units(mark, now)) << self.shift;
        seconds.min(u64::from(u32::MAX)) as u32
    }

    /// True once a peer has gone longer than the timeout without announcing.
    pub fn expired(self, mark: Mark, now: u32) -> bool {
        self.age_units(mark, now) > self.timeout_units
    }

    /// The tracker second of the announce that left `mark`, to the unit.
    pub fn seconds(self, mark: Mark, now: u32) -> u32 {
        now.saturating_sub(self.age(mark, now))
    }

    /// Half the wrap period, in seconds: a clock that jumps this far has
    /// gone past every timeout (under 1/8 of the wrap), and a little
    /// further on old stamps start to read as fresh.
    pub fn half_wrap(self) -> u32 {
        let seconds = 1u64 << (STAMP_BITS - 1 + self.shift);
        seconds.min(u64::from(u32::MAX)) as u32
    }

    /// The second, after `now`, at which every stamp that reads as fresh or
    /// as in the near future at `now` reads as expired.
    pub fn past_every_fresh_stamp(self, now: u32) -> u32 {
        let units = u32::from(self.timeout_units) + u32::from(AHEAD_UNITS_MAX) + 1;
        now.saturating_add(units << self.shift)
    }
}

/// A peer's stamp plus its seeding and sticky completed flags.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Mark(u16);

impl Mark {
    pub const ZERO: Mark = Mark(0);

    pub fn new(stamp: u16, seeding: bool, completed: bool) -> Self {
        let mut bits = stamp & STAMP_MASK;
        if seeding {
            bits |= SEEDING;
        }
        if completed {
            bits |= COMPLETED;
        }
        Mark(bits)
    }

    pub fn stamp(self) -> u16 {
        self.0 & STAMP_MASK
    }

    pub fn seeding(self) -> bool {
        self.0 & SEEDING != 0
    }

    pub fn completed(self) -> bool {
        self.0 & COMPLETED != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_timeouts_are_exact() {
        let clock = PeerClock::new(2);
        let mark = Mark::new(clock.stamp(10), true, false);
        assert!(!clock.expired(mark, 12));
        assert!(clock.expired(mark, 13));
        assert_eq!(clock.age(mark, 12), 2);
        assert_eq!(clock.seconds(mark, 12), 10);
    }

    #[test]
    fn stamps_wrap() {
        let clock = PeerClock::new(100);
        let start = (1 << 14) - 10;
        let mark = Mark::new(clock.stamp(start), false, true);
        assert!(mark.stamp() > clock.stamp(start + 20));
        assert_eq!(clock.age(mark, start + 20), 20);
        assert!(!clock.expired(mark, start + 100));
        assert!(clock.expired(mark, start + 101));
        assert!(mark.completed() && !mark.seeding());
    }

    #[test]
    fn stamps_from_a_clock_a_little_ahead_are_fresh() {
        let clock = PeerClock::new(100);
        let mark = Mark::new(clock.stamp(5000), true, false);
        for reader in [4999, 5000 - 1024] {
            assert_eq!(clock.age(mark, reader), 0, "read at {reader}");
            assert!(!clock.expired(mark, reader), "read at {reader}");
        }
        // Further back than that, it is a stamp from nearly a wrap ago.
        assert!(clock.expired(mark, 5000 - 1025));
        // A peer the sweep drops is at most 7 timeouts old (a timeout,
        // then a sweep interval under 6 timeouts), clear of that window
        // whatever the unit.
        let slowest = PeerClock::new(TIMEOUT_UNITS_MAX - 1);
        assert_eq!(slowest.shift, 0);
        let mark = Mark::new(slowest.stamp(0), false, false);
        assert!(slowest.expired(mark, 7 * (TIMEOUT_UNITS_MAX - 1)));
    }

    #[test]
    fn long_timeouts_use_coarser_units() {
        let clock = PeerClock::new(2700);
        assert_eq!(clock.shift, 1);
        let mark = Mark::new(clock.stamp(1_000_000), false, false);
        assert!(!clock.expired(mark, 1_000_000 + 2700));
        assert!(clock.expired(mark, 1_000_000 + 2704));
        // Far below the wrap period: 8 timeouts.
        assert!(u32::from(STAMP_MASK) << clock.shift > 8 * 2700);
        let day = PeerClock::new(86_400);
        assert!(day.timeout_units < TIMEOUT_UNITS_MAX as u16);
        let forever = PeerClock::new(u32::MAX);
        assert!(forever.timeout() >= u32::MAX / 2);
        let mark = Mark::new(forever.stamp(0), false, false);
        assert!(!forever.expired(mark, u32::MAX - 1));
        assert!(forever.age(mark, u32::MAX) > 1 << 31);
    }

    #[test]
    fn a_clock_sized_for_longer_timeouts_keeps_its_stamps_when_the_timeout_changes() {
        let clock = PeerClock::up_to(2700, 8100);
        assert_eq!(clock.shift, 2);
        assert_eq!(clock.timeout(), 2700);
        let mark = Mark::new(clock.stamp(1_000_000), true, false);
        assert!(clock.expired(mark, 1_000_000 + 2704));
        let longer = clock.with_timeout(8100);
        assert_eq!(longer.timeout(), 8100);
        assert!(!longer.expired(mark, 1_000_000 + 8100));
        assert!(longer.expired(mark, 1_000_000 + 8104));
        assert_eq!(longer.age(mark, 1_000_000 + 4000), 4000);
        // Past what the unit allows, the timeout stops at the cap.
        let capped = clock.with_timeout(u32::MAX);
        assert_eq!(capped.timeout(), (TIMEOUT_UNITS_MAX - 1) << 2);
    }
}
