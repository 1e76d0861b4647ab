//! Reading the server's CPU time and memory from /proc.

use std::fs;
use std::io;

fn ticks_to_us(ticks: u64) -> u64 {
    // SAFETY: sysconf only reads a constant.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    ticks * 1_000_000 / u64::try_from(per_second).unwrap_or(100).max(1)
}

/// CPU time all processes spent, every core added up: what /proc/stat counts
/// as neither idle nor waiting for I/O, in microseconds.
pub fn machine_busy_us() -> io::Result<u64> {
    let stat = fs::read_to_string("/proc/stat")?;
    let fields: Vec<u64> = stat
        .lines()
        .next()
        .and_then(|line| line.strip_prefix("cpu "))
        .ok_or_else(|| io::Error::other("malformed /proc/stat"))?
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is in user).
    let busy: u64 = fields
        .iter()
        .take(8)
        .enumerate()
        .filter(|(index, _)| !matches!(index, 3 | 4))
        .map(|(_, ticks)| ticks)
        .sum();
    Ok(ticks_to_us(busy))
}

/// User plus system CPU time of all the process's threads, in microseconds.
pub fn cpu_time_us(pid: u32) -> io::Result<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name may hold spaces; the fields after its ')' do not.
    let after_name = stat
        .rfind(')')
        .map(|end| &stat[end + 1..])
        .ok_or_else(|| io::Error::other("malformed /proc/PID/stat"))?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 and 15 (utime, stime) of proc(5); `fields[0]` is field 3.
    let ticks = |index: usize| -> io::Result<u64> {
        fields
            .get(index)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| io::Error::other("malformed /proc/PID/stat"))
    };
    Ok(ticks_to_us(ticks(11)? + ticks(12)?))
}

pub struct Memory {
    pub rss_kb: u64,
    /// Peak resident set size (VmHWM).
    pub hwm_kb: u64,
}

pub fn memory(pid: u32) -> io::Result<Memory> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> io::Result<u64> {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or_else(|| io::Error::other(format!("no {name} in /proc/{pid}/status")))
    };
    Ok(Memory {
        rss_kb: field("VmRSS:")?,
        hwm_kb: field("VmHWM:")?,
    })
}

/// Resets the peak resident set size, so VmHWM afterwards shows the peak of
/// what follows (proc(5), clear_refs value 5).
pub fn reset_peak(pid: u32) -> io::Result<()> {
    fs::write(format!("/proc/{pid}/clear_refs"), "5")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_process() {
        let pid = std::process::id();
        assert!(machine_busy_us().unwrap() >= cpu_time_us(pid).unwrap());
        let memory = memory(pid).unwrap();
        assert!(memory.rss_kb > 0 && memory.hwm_kb >= memory.rss_kb);
    }
}
