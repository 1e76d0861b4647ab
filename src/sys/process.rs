//! This process's own resource use, as Prometheus client libraries export
//! it (`process_*`), so the usual process dashboards and alerts work on
//! the tracker's `/metrics` without another exporter.

/// Readings that are unavailable on this system are `None`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Usage {
    /// User and system CPU time.
    pub cpu_seconds: f64,
    pub resident_bytes: Option<u64>,
    pub virtual_bytes: Option<u64>,
    pub open_fds: Option<u64>,
    /// The soft limit on open files.
    pub max_fds: Option<u64>,
}

/// Reads the current usage.
pub fn usage() -> Usage {
    let (resident_bytes, virtual_bytes) = memory().unzip();
    Usage {
        cpu_seconds: cpu_seconds(),
        resident_bytes,
        virtual_bytes,
        open_fds: open_fds(),
        max_fds: super::limits::open_files_soft_limit(),
    }
}

/// The resident set size, when the system tells it.
pub fn resident_bytes() -> Option<u64> {
    memory().map(|(resident, _)| resident)
}

fn cpu_seconds() -> f64 {
    // SAFETY: an all-zero rusage is valid; getrusage fills it in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes one rusage into `usage`.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return 0.0;
    }
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

static STATM: super::ProcFile = super::ProcFile::new("/proc/self/statm");

/// See [`super::keep_proc_files`]. The descriptors' count stays unread in
/// a chroot: counting needs the `/proc/self/fd` directory, and a directory
/// kept open outside the chroot would be a way out of it.
pub fn keep_proc_files() {
    STATM.keep();
}

/// Resident and virtual size, from `/proc/self/statm` (in pages).
#[cfg(target_os = "linux")]
fn memory() -> Option<(u64, u64)> {
    let statm = STATM.read()?;
    let (size, resident) = parse_statm(&statm)?;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    let page = u64::try_from(page).ok()?;
    Some((resident * page, size * page))
}

#[cfg(not(target_os = "linux"))]
fn memory() -> Option<(u64, u64)> {
    None
}

/// (total, resident) pages: the first two fields.
#[cfg(any(target_os = "linux", test))]
fn parse_statm(statm: &str) -> Option<(u64, u64)> {
    let mut fields = statm.split_whitespace().map(|f| f.parse::<u64>().ok());
    Some((fields.next()??, fields.next()??))
}

#[cfg(target_os = "linux")]
fn open_fds() -> Option<u64> {
    let entries = std::fs::read_dir("/proc/self/fd").ok()?;
    // The directory being read holds one descriptor itself.
    Some((entries.count() as u64).saturating_sub(1))
}

#[cfg(not(target_os = "linux"))]
fn open_fds() -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statm_fields() {
        assert_eq!(parse_statm("2511 612 473 1 0 157 0\n"), Some((2511, 612)));
        assert_eq!(parse_statm("2511"), None);
        assert_eq!(parse_statm("x 1"), None);
    }

    #[test]
    fn this_process_is_measured() {
        let usage = usage();
        assert!(usage.cpu_seconds >= 0.0);
        assert!(usage.max_fds.unwrap() > 0);
        if cfg!(target_os = "linux") {
            assert!(usage.resident_bytes.unwrap() > 0);
            assert!(usage.virtual_bytes.unwrap() >= usage.resident_bytes.unwrap());
            // At least standard input, output and error.
            assert!(usage.open_fds.unwrap() >= 3);
        }
    }
}
