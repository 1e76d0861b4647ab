//! When to hand the heap's free pages back to the kernel.
//!
//! Expired swarms are freed block by block among live ones, and glibc keeps
//! such memory for later allocations: after a flood of junk torrents or a
//! busy evening the tracker would stay at its peak resident size for good.
//! Handing the pages back walks the heap and costs page faults when they
//! are needed again, so it is done after a sweep pass only when the swarms
//! have shrunk well below their peak since the last time.

/// Fewer torrents and peers than this gone is not worth a walk of the heap.
const MIN_GONE: u64 = 16_384;

/// The peak number of torrents and peers since the pages were last given
/// back.
#[derive(Debug, Default)]
pub struct Shrinkage {
    peak: u64,
}

impl Shrinkage {
    /// Notes how many torrents and peers the tracker holds now.
    pub fn observe(&mut self, entries: u64) {
        self.peak = self.peak.max(entries);
    }

    /// After a sweep pass: whether `entries` is a quarter or more, and at
    /// least [`MIN_GONE`], below the peak. If so, the peak starts again
    /// from here and the peak it was is returned.
    pub fn shrunk(&mut self, entries: u64) -> Option<u64> {
        self.observe(entries);
        let peak = self.peak;
        if peak - entries < MIN_GONE || entries * 4 > peak * 3 {
            return None;
        }
        self.peak = entries;
        Some(peak)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_large_fall_from_the_peak_counts() {
        let mut shrinkage = Shrinkage::default();
        shrinkage.observe(1_000_000);
        // Growth and small ebbs are not worth it.
        assert_eq!(shrinkage.shrunk(1_200_000), None);
        assert_eq!(shrinkage.shrunk(1_000_000), None);
        // A quarter below the peak is.
        assert_eq!(shrinkage.shrunk(900_000), Some(1_200_000));
        // The peak restarts there: a further small ebb is not.
        assert_eq!(shrinkage.shrunk(800_000), None);
        assert_eq!(shrinkage.shrunk(600_000), Some(900_000));
    }

    #[test]
    fn small_trackers_never_walk_the_heap() {
        let mut shrinkage = Shrinkage::default();
        shrinkage.observe(MIN_GONE);
        assert_eq!(shrinkage.shrunk(1), None);
        shrinkage.observe(MIN_GONE + 1);
        assert_eq!(shrinkage.shrunk(0), Some(MIN_GONE + 1));
        assert_eq!(shrinkage.shrunk(0), None);
    }
}
