//! The limit on open files (`RLIMIT_NOFILE`). Shells and many service
//! managers start programs with a soft limit of 1024, far below what a
//! busy network server holds open; the hard limit is usually much higher,
//! and raising the soft limit up to it needs no privilege.

use std::io;

/// The limits on open files in force after [`raise_open_files`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenFiles {
    pub soft: u64,
    pub hard: u64,
}

fn get() -> io::Result<libc::rlimit> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into `limit`.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
        Ok(limit)
    } else {
        Err(io::Error::last_os_error())
    }
}

fn set(limit: libc::rlimit) -> io::Result<()> {
    // SAFETY: setrlimit reads one rlimit.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The soft limit on open files, or `None` when there is none.
pub fn open_files_soft_limit() -> Option<u64> {
    let soft = get().ok()?.rlim_cur;
    (soft != libc::RLIM_INFINITY).then_some(soft as u64)
}

/// Raises the soft limit on open files to `wanted`, or as near as the hard
/// limit allows. A limit already above `wanted` is left alone.
pub fn raise_open_files(wanted: u64) -> io::Result<OpenFiles> {
    let mut limit = get()?;
    // rlim_t is unsigned on Linux and signed on the BSDs; both hold `wanted`.
    let wanted = (wanted as libc::rlim_t).min(limit.rlim_max);
    if limit.rlim_cur < wanted {
        limit.rlim_cur = wanted;
        set(limit)?;
    }
    Ok(OpenFiles {
        soft: limit.rlim_cur as u64,
        hard: limit.rlim_max as u64,
    })
}
