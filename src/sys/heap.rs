//! Transparent huge pages for the heap, and giving its free pages back.
//!
//! Swarm state is millions of small allocations read in random order. On
//! 4 KiB pages most lookups then miss the TLB as well as the cache, and on
//! a virtual machine every TLB miss walks two sets of page tables. glibc
//! (2.35 and later) puts its heap on transparent huge pages when the tunable
//! `glibc.malloc.hugetlb=1` is set, but it reads tunables only when a
//! program starts. So the tracker starts itself again, once, with that
//! tunable added to `GLIBC_TUNABLES`.
//!
//! It does so only when the kernel hands out huge pages on request (the
//! `madvise` mode: under `always` the heap gets them anyway, under `never`
//! nothing would change), and never when `GLIBC_TUNABLES` already names the
//! tunable: that is also how an operator turns this off
//! (`GLIBC_TUNABLES=glibc.malloc.hugetlb=0`).

const TUNABLE: &str = "glibc.malloc.hugetlb";

/// The `GLIBC_TUNABLES` value to start again with, or `None` to go on as
/// is. `thp_enabled` is the text of the kernel's
/// `/sys/kernel/mm/transparent_hugepage/enabled`, e.g. `always [madvise] never`.
pub fn tunables_with_huge_pages(current: Option<&str>, thp_enabled: &str) -> Option<String> {
    let mode = thp_enabled
        .split_whitespace()
        .find_map(|word| word.strip_prefix('[')?.strip_suffix(']'))?;
    if mode != "madvise" {
        return None;
    }
    match current.filter(|tunables| !tunables.is_empty()) {
        None => Some(format!("{TUNABLE}=1")),
        Some(tunables)
            if tunables
                .split(':')
                .any(|t| t.split('=').next() == Some(TUNABLE)) =>
        {
            None
        }
        Some(tunables) => Some(format!("{tunables}:{TUNABLE}=1")),
    }
}

/// Re-executes this program with huge pages for its heap, when that helps
/// and is not already the case; returns only if it does not re-execute.
/// Call it first thing, before any file or socket is open.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn use_huge_pages() {
    use std::os::unix::process::CommandExt;

    let Ok(thp_enabled) = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
    else {
        return;
    };
    let current = match std::env::var("GLIBC_TUNABLES") {
        Ok(tunables) => Some(tunables),
        Err(std::env::VarError::NotPresent) => None,
        // Not ours to rewrite.
        Err(std::env::VarError::NotUnicode(_)) => return,
    };
    let Some(tunables) = tunables_with_huge_pages(current.as_deref(), &thp_enabled) else {
        take_back_name();
        return;
    };
    let mut args = std::env::args_os();
    let Some(program) = args.next() else {
        return;
    };
    // The same process (same PID, same open descriptors) runs the same
    // binary again; `exec` returns only on failure.
    let error = std::process::Command::new("/proc/self/exe")
        .arg0(program)
        .args(args)
        .env("GLIBC_TUNABLES", tunables)
        .exec();
    eprintln!("opentracker: note: heap stays on small pages; re-executing failed: {error}");
}

/// Executing `/proc/self/exe` names the process `exe` (the kernel takes the
/// name from the path executed), and `pgrep`, `killall -HUP` and `ps -C`
/// would no longer find it by name; so the program started again takes
/// back the name of its first argument's file, as the kernel gave it at
/// first (at most 15 bytes).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn take_back_name() {
    use std::os::unix::ffi::OsStrExt;

    let Ok(name) = std::fs::read_to_string("/proc/self/comm") else {
        return;
    };
    let program = std::env::args_os().next().unwrap_or_default();
    let Some(file) = std::path::Path::new(&program).file_name() else {
        return;
    };
    if name.trim_end() != "exe" || file == "exe" {
        return;
    }
    let mut wanted = [0u8; 16];
    let len = file.len().min(15);
    wanted[..len].copy_from_slice(&file.as_bytes()[..len]);
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16
    // bytes, which `wanted` is.
    unsafe { libc::prctl(libc::PR_SET_NAME, wanted.as_ptr()) };
}

/// Other C libraries have no such tunable; their heap stays as it is.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn use_huge_pages() {}

/// Hands the free pages inside the heap back to the kernel; returns whether
/// there were any, or `None` where the allocator does this by itself.
/// glibc returns freed memory on its own only from the top of the heap, so
/// memory freed among live blocks stays resident until the program asks
/// (`malloc_trim`), which walks the heap: not for every free.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn give_back_free_pages() -> Option<bool> {
    // SAFETY: malloc_trim only takes the allocator's own locks.
    Some(unsafe { libc::malloc_trim(0) } == 1)
}

/// musl's allocator and FreeBSD's jemalloc give free pages back by
/// themselves.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn give_back_free_pages() -> Option<bool> {
    None
}

#[cfg(test)]
mod tests {
    use super::tunables_with_huge_pages as with;

    const MADVISE: &str = "always [madvise] never\n";

    #[test]
    fn added_only_in_madvise_mode() {
        assert_eq!(
            with(None, MADVISE).as_deref(),
            Some("glibc.malloc.hugetlb=1")
        );
        assert_eq!(
            with(Some(""), MADVISE).as_deref(),
            Some("glibc.malloc.hugetlb=1")
        );
        assert_eq!(with(None, "[always] madvise never"), None);
        assert_eq!(with(None, "always madvise [never]"), None);
        assert_eq!(with(None, ""), None);
    }

    #[test]
    fn other_tunables_are_kept() {
        assert_eq!(
            with(Some("glibc.malloc.arena_max=1"), MADVISE).as_deref(),
            Some("glibc.malloc.arena_max=1:glibc.malloc.hugetlb=1")
        );
    }

    #[test]
    fn an_operators_choice_stands() {
        for set in [
            "glibc.malloc.hugetlb=0",
            "glibc.malloc.hugetlb=1",
            "glibc.malloc.arena_max=1:glibc.malloc.hugetlb=2",
        ] {
            assert_eq!(with(Some(set), MADVISE), None, "{set}");
        }
        // A longer name that merely starts the same is another tunable.
        assert!(with(Some("glibc.malloc.hugetlbx=0"), MADVISE).is_some());
    }
}
