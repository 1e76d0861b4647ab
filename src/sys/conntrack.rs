//! The kernel's connection tracking (netfilter conntrack, Linux) in this
//! network namespace: how full its table is and how many packets it
//! dropped. A host whose firewall tracks connections gives every UDP
//! client an entry for half a minute or more, so a busy UDP service can
//! fill the table, and then the kernel drops new clients' packets before
//! any socket sees them.

/// The table as last read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Conntrack {
    pub entries: u64,
    pub limit: u64,
    /// Packets dropped because no entry could be made, summed over CPUs.
    pub dropped: u64,
}

impl Conntrack {
    /// At least nine tenths full.
    pub fn nearly_full(&self) -> bool {
        self.limit > 0 && self.entries.saturating_mul(10) >= self.limit.saturating_mul(9)
    }
}

use super::ProcFile;

static COUNT: ProcFile = ProcFile::new("/proc/sys/net/netfilter/nf_conntrack_count");
static MAX: ProcFile = ProcFile::new("/proc/sys/net/netfilter/nf_conntrack_max");
static STATS: ProcFile = ProcFile::new("/proc/net/stat/nf_conntrack");

/// See [`super::keep_proc_files`].
pub fn keep_proc_files() {
    for file in [&COUNT, &MAX, &STATS] {
        file.keep();
    }
}

/// The table of this network namespace, or `None` when connections are not
/// tracked here (no conntrack module, or not Linux).
#[cfg(target_os = "linux")]
pub fn read() -> Option<Conntrack> {
    let number = |file: &ProcFile| -> Option<u64> { file.read()?.trim().parse().ok() };
    let entries = number(&COUNT)?;
    let limit = number(&MAX)?;
    let stats = STATS.read().unwrap_or_default();
    Some(Conntrack {
        entries,
        limit,
        dropped: drops(&stats).unwrap_or(0),
    })
}

#[cfg(not(target_os = "linux"))]
pub fn read() -> Option<Conntrack> {
    None
}

/// The `drop` column of `/proc/net/stat/nf_conntrack` summed over its rows
/// (one per CPU, hexadecimal). Columns are found by the header's names,
/// which differ between kernel versions.
#[cfg(any(target_os = "linux", test))]
fn drops(stats: &str) -> Option<u64> {
    let mut lines = stats.lines();
    let column = lines
        .next()?
        .split_whitespace()
        .position(|name| name == "drop")?;
    lines
        .map(|row| u64::from_str_radix(row.split_whitespace().nth(column)?, 16).ok())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_are_summed_over_cpus_by_column_name() {
        let stats = "entries  clashres found new invalid ignore delete chainlength insert \
                     insert_failed drop early_drop icmp_error  expect_new\n\
                     0000008e  00000000 00000000 00000000 00000020 00000000 00000000 00000000 \
                     00000000 00000000 00000005 00000001 00000000  00000000\n\
                     0000008e  00000000 00000000 00000000 000000ac 00000000 00000000 00000000 \
                     00000000 00000000 00000975 00000000 00000000  00000000\n";
        assert_eq!(drops(stats), Some(5 + 0x975));
        // An older kernel's layout, with the column elsewhere.
        assert_eq!(
            drops("entries drop searched\n00000001 0000000a 00000000\n"),
            Some(10)
        );
        assert_eq!(drops("entries searched\n00000001 00000000\n"), None);
        assert_eq!(drops("entries drop\n00000001 zz\n"), None);
        assert_eq!(drops(""), None);
    }

    #[test]
    fn nearly_full_is_nine_tenths() {
        let table = |entries, limit| Conntrack {
            entries,
            limit,
            dropped: 0,
        };
        assert!(!table(899, 1000).nearly_full());
        assert!(table(900, 1000).nearly_full());
        assert!(!table(0, 0).nearly_full());
        assert!(table(u64::MAX, u64::MAX).nearly_full());
    }
}
