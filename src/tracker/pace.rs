//! Announce pacing (`tracker.max_announce_rate`): every peer re-announces
//! about once per interval, so a tracker holding P peers and handing out an
//! interval of I seconds gets about P / I announces a second. Pacing
//! lengthens the interval as the peer count grows, so that P / I stays under
//! the operator's rate, between the configured interval and the longest
//! allowed.
//!
//! It is driven by the peer count, not by the measured request rate: the
//! peer count does not depend on the interval handed out, so there is no
//! feedback loop to oscillate. The peer timeout scales with the interval,
//! in the configured ratio, or peers told to come back later would expire
//! first. When the interval shortens again, peers already told the longer
//! one still get the longer timeout until they have had the chance to
//! re-announce: the old timeout is held for as long as itself.

/// What pacing needs from the configuration, in seconds and announces per
/// second.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PaceSettings {
    pub interval: u32,
    pub longest_interval: u32,
    pub peer_timeout: u32,
    /// 0: pacing is off, the interval stays `interval`.
    pub max_announce_rate: u32,
}

impl PaceSettings {
    /// The peer timeout that goes with `interval`, in the configured ratio.
    fn timeout_for(&self, interval: u32) -> u32 {
        let scaled = u64::from(self.peer_timeout) * u64::from(interval);
        let timeout = scaled.div_ceil(u64::from(self.interval.max(1)));
        timeout.min(u64::from(u32::MAX)) as u32
    }

    /// The longest peer timeout pacing can ask for.
    pub fn longest_peer_timeout(&self) -> u32 {
        if self.max_announce_rate == 0 {
            return self.peer_timeout;
        }
        self.timeout_for(self.longest_interval.max(self.interval))
    }
}

/// The interval to hand out and the peer timeout that goes with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pace {
    pub interval: u32,
    pub peer_timeout: u32,
}

/// Intervals change in steps of this part of the configured one (a minute
/// at the default 30), so small swings in the peer count do not show in
/// every reply.
const STEPS_PER_INTERVAL: u32 = 30;

pub struct Pacer {
    settings: PaceSettings,
    pace: Pace,
    /// The timeout that goes with the interval handed out now.
    timeout_for_interval: u32,
    /// Longer timeouts still owed to peers told longer intervals, each with
    /// the second it may be dropped.
    held: Vec<(u32, u32)>,
}

impl Pacer {
    pub fn new(settings: PaceSettings) -> Self {
        Pacer {
            settings,
            pace: Pace {
                interval: settings.interval,
                peer_timeout: settings.peer_timeout,
            },
            timeout_for_interval: settings.peer_timeout,
            held: Vec::new(),
        }
    }

    pub fn pace(&self) -> Pace {
        self.pace
    }

    /// True while the peer timeout is longer than the interval needs, for
    /// peers told a longer one.
    pub fn holding(&self) -> bool {
        self.pace.peer_timeout > self.timeout_for_interval
    }

    /// Re-paces for `peers` at tracker second `now`; returns the new pace
    /// when it changed.
    pub fn update(&mut self, peers: u64, now: u32) -> Option<Pace> {
        let s = self.settings;
        let mut interval = self.pace.interval;
        if s.max_announce_rate > 0 {
            let needed = peers.div_ceil(u64::from(s.max_announce_rate));
            let step = u64::from((s.interval / STEPS_PER_INTERVAL).max(1));
            let stepped = needed.div_ceil(step) * step;
            let wanted = stepped.clamp(u64::from(s.interval), u64::from(s.longest_interval)) as u32;
            // Up at once, to keep under the rate; down only once the need
            // has fallen a tenth below, so a count hovering at a step's
            // edge does not flip the interval at every update.
            if wanted > interval || needed * 10 <= u64::from(interval) * 9 {
                interval = wanted;
            }
        }
        let timeout = s.timeout_for(interval);
        if timeout < self.timeout_for_interval {
            let owed = self.timeout_for_interval;
            self.held.push((owed, now.saturating_add(owed)));
        }
        self.timeout_for_interval = timeout;
        self.held.retain(|&(_, until)| until > now);
        let held = self.held.iter().map(|&(timeout, _)| timeout).max();
        let pace = Pace {
            interval,
            peer_timeout: held.unwrap_or(0).max(timeout),
        };
        let changed = pace != self.pace;
        self.pace = pace;
        changed.then_some(pace)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PACED: PaceSettings = PaceSettings {
        interval: 1800,
        longest_interval: 10800,
        peer_timeout: 2700,
        max_announce_rate: 1000,
    };

    fn pace(interval: u32, peer_timeout: u32) -> Option<Pace> {
        Some(Pace {
            interval,
            peer_timeout,
        })
    }

    #[test]
    fn without_a_rate_the_interval_stays_put() {
        let mut pacer = Pacer::new(PaceSettings {
            max_announce_rate: 0,
            ..PACED
        });
        assert_eq!(pacer.update(u64::MAX, 10), None);
        assert_eq!(pacer.pace(), pace(1800, 2700).unwrap());
        assert_eq!(pacer.settings.longest_peer_timeout(), 2700);
        assert_eq!(PACED.longest_peer_timeout(), 16200);
    }

    #[test]
    fn the_interval_grows_with_the_peers_in_whole_minutes_within_bounds() {
        let mut pacer = Pacer::new(PACED);
        assert_eq!(pacer.update(1_800_000, 0), None);
        assert_eq!(pacer.update(1_800_001, 0), pace(1860, 2790));
        assert_eq!(pacer.update(3_600_000, 0), pace(3600, 5400));
        assert_eq!(pacer.update(50_000_000, 0), pace(10800, 16200));
    }

    #[test]
    fn the_interval_shortens_only_once_the_need_falls_a_tenth_below() {
        let mut pacer = Pacer::new(PACED);
        pacer.update(3_600_000, 0);
        assert_eq!(pacer.update(3_300_000, 60), None);
        let lowered = pacer.update(3_240_000, 120).unwrap();
        assert_eq!(lowered.interval, 3240);
        // Back near the edge of a step, nothing flips.
        assert_eq!(pacer.update(3_239_000, 180), None);
        assert_eq!(pacer.update(1_000, 240).unwrap().interval, 1800);
    }

    #[test]
    fn a_shorter_interval_keeps_the_longer_timeout_as_long_as_itself() {
        let mut pacer = Pacer::new(PACED);
        pacer.update(7_200_000, 0);
        assert_eq!(pacer.pace(), pace(7200, 10800).unwrap());
        assert_eq!(pacer.update(3_600_000, 100), pace(3600, 10800));
        assert_eq!(pacer.update(0, 200), pace(1800, 10800));
        assert_eq!(pacer.update(0, 10899), None);
        assert_eq!(pacer.update(0, 10900), pace(1800, 2700));
    }

    #[test]
    fn a_later_shorter_hold_can_outlast_an_earlier_longer_one() {
        let mut pacer = Pacer::new(PACED);
        pacer.update(3_600_000, 0);
        assert_eq!(pacer.update(0, 100), pace(1800, 5400));
        assert_eq!(pacer.update(2_700_000, 5000), pace(2700, 5400));
        assert_eq!(pacer.update(0, 5100), pace(1800, 5400));
        assert_eq!(pacer.update(0, 5500), pace(1800, 4050));
        assert_eq!(pacer.update(0, 9149), None);
        assert_eq!(pacer.update(0, 9150), pace(1800, 2700));
    }

    /// Whatever the peer count does, a peer told an interval (jittered up
    /// by a tenth) is still kept when it comes back.
    #[test]
    fn no_peer_expires_before_its_interval_is_up() {
        let mut rng = fastrand::Rng::with_seed(5);
        let mut pacer = Pacer::new(PACED);
        let mut peers: u64 = 2_000_000;
        let mut told: Vec<(u32, u32)> = Vec::new();
        for now in (0..400_000).step_by(60) {
            peers = match rng.u8(..) {
                0..=9 => rng.u64(0..12_000_000),
                _ => peers.saturating_add_signed(rng.i64(-200_000..200_000)),
            };
            pacer.update(peers, now);
            let current = pacer.pace();
            told.retain(|&(at, interval)| {
                let age = now - at;
                assert!(
                    age > interval || age <= current.peer_timeout,
                    "a peer told {interval} s at {at} expired at {now}"
                );
                age <= interval
            });
            told.push((now, current.interval + current.interval / 10));
        }
    }
}
