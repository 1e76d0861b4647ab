//! Dropping privileges after the listeners are bound.
//!
//! Started as root: resolve the user (before chroot, while /etc/passwd is
//! still visible), chroot into the root directory if one is configured and
//! chdir to `/`, empty the capability bounding set (that needs CAP_SETPCAP,
//! so before the user switch), drop supplementary groups, setgid, setuid,
//! clear every remaining capability set, and set no_new_privs. Each step
//! that fails is fatal and named; nothing falls back silently.
//!
//! Started as another user there is nothing to drop: only chdir into the
//! root directory (as upstream) and set no_new_privs.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// What was done, for the start-up log line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Was root; now runs as this user.
    Dropped { user: String, uid: u32, gid: u32 },
    /// Was not root; runs as it was started.
    Unprivileged { uid: u32 },
}

fn check(rc: libc::c_int, step: &str) -> Result<(), String> {
    if rc == 0 {
        Ok(())
    } else {
        Err(format!("{step}: {}", io::Error::last_os_error()))
    }
}

fn path_cstring(path: &Path) -> Result<CString, String> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| format!("{}: path contains a NUL byte", path.display()))
}

fn chdir(path: &Path, step: &str) -> Result<(), String> {
    let c_path = path_cstring(path)?;
    // SAFETY: a valid NUL-terminated path.
    check(unsafe { libc::chdir(c_path.as_ptr()) }, step)
}

/// Where `path` leads once [`drop_privileges`] has run with `rootdir`, seen
/// from here: under root the process is chrooted there, otherwise it only
/// changes into it, so relative paths resolve against it either way.
pub fn path_after_drop(rootdir: Option<&Path>, path: &Path) -> std::path::PathBuf {
    let Some(root) = rootdir else {
        return path.to_path_buf();
    };
    // SAFETY: geteuid has no preconditions.
    let chrooted = unsafe { libc::geteuid() } == 0;
    match path.strip_prefix("/") {
        Ok(inside) if chrooted => root.join(inside),
        Ok(_) => path.to_path_buf(),
        Err(_) => root.join(path),
    }
}

/// Drops to `user`, inside `rootdir` when given.
pub fn drop_privileges(user: &str, rootdir: Option<&Path>) -> Result<Outcome, String> {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    if euid != 0 {
        if let Some(dir) = rootdir {
            chdir(dir, &format!("chdir {}", dir.display()))?;
        }
        set_no_new_privs()?;
        return Ok(Outcome::Unprivileged { uid: euid });
    }
    let account =
        users::get_user_by_name(user).ok_or_else(|| format!("user {user:?}: no such user"))?;
    let (uid, gid) = (account.uid(), account.primary_group_id());
    if let Some(dir) = rootdir {
        let c_dir = path_cstring(dir)?;
        // SAFETY: a valid NUL-terminated path.
        check(
            unsafe { libc::chroot(c_dir.as_ptr()) },
            &format!("chroot {}", dir.display()),
        )?;
        chdir(Path::new("/"), &format!("chdir / inside {}", dir.display()))?;
    } else {
        chdir(Path::new("/"), "chdir /")?;
    }
    clear_bounding_set()?;
    // SAFETY: plain syscalls with valid arguments.
    check(unsafe { libc::setgroups(0, std::ptr::null()) }, "setgroups")?;
    check(unsafe { libc::setgid(gid) }, &format!("setgid {gid}"))?;
    check(unsafe { libc::setuid(uid) }, &format!("setuid {uid}"))?;
    // SAFETY: plain getters.
    if unsafe { libc::getuid() } == 0 || unsafe { libc::geteuid() } == 0 {
        return Err(format!("still root after switching to user {user:?}"));
    }
    clear_capabilities()?;
    set_no_new_privs()?;
    Ok(Outcome::Dropped {
        user: user.to_string(),
        uid,
        gid,
    })
}

#[cfg(target_os = "linux")]
fn clear_bounding_set() -> Result<(), String> {
    for cap in caps::all() {
        caps::drop(None, caps::CapSet::Bounding, cap)
            .map_err(|e| format!("drop {cap} from the bounding set: {e}"))?;
    }
    Ok(())
}

#[cfg(target_os = "linux")]
fn clear_capabilities() -> Result<(), String> {
    use caps::CapSet;
    for set in [
        CapSet::Ambient,
        CapSet::Effective,
        CapSet::Permitted,
        CapSet::Inheritable,
    ] {
        caps::clear(None, set).map_err(|e| format!("clear {set:?} capabilities: {e}"))?;
    }
    for set in [
        CapSet::Ambient,
        CapSet::Effective,
        CapSet::Permitted,
        CapSet::Inheritable,
        CapSet::Bounding,
    ] {
        let left = caps::read(None, set).map_err(|e| format!("read {set:?} capabilities: {e}"))?;
        if !left.is_empty() {
            return Err(format!("{set:?} capabilities still hold {left:?}"));
        }
    }
    Ok(())
}

#[cfg(target_os = "linux")]
fn set_no_new_privs() -> Result<(), String> {
    // SAFETY: prctl with PR_SET_NO_NEW_PRIVS takes plain integer arguments.
    check(
        unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) },
        "prctl(PR_SET_NO_NEW_PRIVS)",
    )
}

// FreeBSD has no capability sets in this sense (Capsicum is a different
// model) and no no_new_privs: a non-root uid is the whole drop there.
#[cfg(not(target_os = "linux"))]
fn clear_bounding_set() -> Result<(), String> {
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn clear_capabilities() -> Result<(), String> {
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn set_no_new_privs() -> Result<(), String> {
    Ok(())
}
