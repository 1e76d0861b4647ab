//! Dropping privileges after the listeners are bound.
//!
//! Started as root: resolve the user (before chroot, while /etc/passwd is
//! still visible), chroot into the root directory if one is configured and
//! chdir to `/`, empty the capability bounding set (that needs CAP_SETPCAP,
//! so before the user switch), drop supplementary groups, setgid, setuid,
//! clear every remaining capability set, and set no_new_privs. Each step
//! that fails is fatal and named; nothing falls back silently.
//!
//! Started as another user there is no user to drop: only chdir into the
//! root directory (as upstream), clear the capability sets such a user may
//! have been given (file capabilities, `AmbientCapabilities=`) to bind a
//! low port, which the bound listeners no longer need, and set
//! no_new_privs.

use std::ffi::CString;
use std::io;
use std::path::Path;

/// What was done, for the start-up log line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Was root; now runs as this user.
    Dropped { user: String, uid: u32, gid: u32 },
    /// Was not root; runs as it was started.
    Unprivileged { uid: u32 },
}

/// What a failed privilege drop was about, so that the caller can name
/// the input in its own terms (a setting, a flag).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum About {
    /// The user to switch to.
    User,
    /// The root directory to chroot or chdir into.
    Rootdir,
    /// Neither: a step the system refused.
    System,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DropError {
    pub about: About,
    pub message: String,
}

/// Tags an error of a step with what it was about.
fn about(about: About) -> impl Fn(String) -> DropError {
    move |message| DropError { about, message }
}

fn check(rc: libc::c_int, step: &str) -> Result<(), String> {
    if rc == 0 {
        Ok(())
    } else {
        Err(format!("{step}: {}", io::Error::last_os_error()))
    }
}

fn path_cstring(path: &Path) -> Result<CString, String> {
    super::c_path(path).map_err(|e| e.to_string())
}

fn chdir(path: &Path, step: &str) -> Result<(), String> {
    let c_path = path_cstring(path)?;
    // SAFETY: a valid NUL-terminated path.
    check(unsafe { libc::chdir(c_path.as_ptr()) }, step)
}

/// Runs `check` in a child process that has dropped to `user` inside
/// `rootdir` as [`drop_privileges`] does at start, and returns its result:
/// a check made as root then sees only what the dropped process may. Call
/// it while this process has a single thread (fork copies only the caller).
/// `name` words a failed drop as the start would.
pub fn check_as_dropped(
    user: &str,
    rootdir: Option<&Path>,
    name: impl FnOnce(DropError) -> String,
    check: impl FnOnce(&Outcome) -> Result<String, String>,
) -> Result<String, String> {
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;

    let (mut parent_end, mut child_end) =
        UnixStream::pair().map_err(|e| format!("socketpair: {e}"))?;
    // SAFETY: with one thread, the child may do anything the parent could.
    match unsafe { libc::fork() } {
        -1 => Err(format!("fork: {}", std::io::Error::last_os_error())),
        0 => {
            drop(parent_end);
            let verdict = drop_privileges(user, rootdir)
                .map_err(name)
                .and_then(|outcome| check(&outcome));
            let (status, text) = match verdict {
                Ok(text) => (0, text),
                Err(text) => (1, text),
            };
            let written = child_end.write_all(text.as_bytes()).is_ok();
            // SAFETY: leaves at once, running no destructor or atexit
            // handler of the parent's.
            unsafe { libc::_exit(if written { status } else { 2 }) }
        }
        child => {
            drop(child_end);
            let mut text = String::new();
            let read = parent_end.read_to_string(&mut text);
            let mut status = 0;
            // SAFETY: waits for our own child.
            unsafe { libc::waitpid(child, &mut status, 0) };
            match (read, libc::WIFEXITED(status), libc::WEXITSTATUS(status)) {
                (Ok(_), true, 0) => Ok(text),
                (Ok(_), true, 1) => Err(text),
                _ => Err(format!(
                    "the checking process failed (wait status {status})"
                )),
            }
        }
    }
}

/// Drops to `user`, inside `rootdir` when given.
pub fn drop_privileges(user: &str, rootdir: Option<&Path>) -> Result<Outcome, DropError> {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    if euid != 0 {
        if let Some(dir) = rootdir {
            chdir(dir, &format!("chdir {}", dir.display())).map_err(about(About::Rootdir))?;
        }
        drop_unprivileged().map_err(about(About::System))?;
        return Ok(Outcome::Unprivileged { uid: euid });
    }
    let account = users::get_user_by_name(user)
        .ok_or_else(|| format!("user {user:?}: no such user"))
        .map_err(about(About::User))?;
    if let Some(dir) = rootdir {
        enter_root(dir).map_err(about(About::Rootdir))?;
    } else {
        chdir(Path::new("/"), "chdir /").map_err(about(About::System))?;
    }
    switch_user(user, account.uid(), account.primary_group_id()).map_err(about(About::System))
}

/// Not root: what such a process may hold goes.
fn drop_unprivileged() -> Result<(), String> {
    // The bounding set needs CAP_SETPCAP to empty; with no_new_privs
    // nothing can be regained through it. Only when some are held: a
    // sandbox may refuse capset(2) to a process that holds none (systemd's
    // SystemCallFilter=~@privileged).
    if holds_capabilities()? {
        clear_capabilities(false)?;
    }
    set_no_new_privs()
}

fn enter_root(dir: &Path) -> Result<(), String> {
    let c_dir = path_cstring(dir)?;
    // SAFETY: a valid NUL-terminated path.
    check(
        unsafe { libc::chroot(c_dir.as_ptr()) },
        &format!("chroot {}", dir.display()),
    )?;
    chdir(Path::new("/"), &format!("chdir / inside {}", dir.display()))
}

/// Root, resolved and chrooted: becomes `user` with nothing kept.
fn switch_user(user: &str, uid: u32, gid: u32) -> Result<Outcome, String> {
    clear_bounding_set()?;
    // SAFETY: plain syscalls with valid arguments.
    check(unsafe { libc::setgroups(0, std::ptr::null()) }, "setgroups")?;
    check(unsafe { libc::setgid(gid) }, &format!("setgid {gid}"))?;
    check(unsafe { libc::setuid(uid) }, &format!("setuid {uid}"))?;
    // SAFETY: plain getters.
    if unsafe { libc::getuid() } == 0 || unsafe { libc::geteuid() } == 0 {
        return Err(format!("still root after switching to user {user:?}"));
    }
    clear_capabilities(true)?;
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

/// Whether any capability set but the bounding one holds something.
#[cfg(target_os = "linux")]
fn holds_capabilities() -> Result<bool, String> {
    use caps::CapSet;
    for set in [
        CapSet::Ambient,
        CapSet::Effective,
        CapSet::Permitted,
        CapSet::Inheritable,
    ] {
        let held = caps::read(None, set).map_err(|e| format!("read {set:?} capabilities: {e}"))?;
        if !held.is_empty() {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(not(target_os = "linux"))]
fn holds_capabilities() -> Result<bool, String> {
    Ok(false)
}

/// Clears every capability set, and checks that they are empty, the
/// bounding set too when `bounding` (emptied before).
#[cfg(target_os = "linux")]
fn clear_capabilities(bounding: bool) -> Result<(), String> {
    use caps::CapSet;
    for set in [
        CapSet::Ambient,
        CapSet::Effective,
        CapSet::Permitted,
        CapSet::Inheritable,
    ] {
        caps::clear(None, set).map_err(|e| format!("clear {set:?} capabilities: {e}"))?;
    }
    let checked = [
        CapSet::Ambient,
        CapSet::Effective,
        CapSet::Permitted,
        CapSet::Inheritable,
    ];
    for set in checked
        .into_iter()
        .chain(bounding.then_some(CapSet::Bounding))
    {
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
// model): the uid switch and the chroot are the drop there.
#[cfg(not(target_os = "linux"))]
fn clear_bounding_set() -> Result<(), String> {
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn clear_capabilities(_bounding: bool) -> Result<(), String> {
    Ok(())
}

/// FreeBSD 13 and later: procctl(PROC_NO_NEW_PRIVS_CTL), which as on Linux
/// makes execve ignore setuid and setgid bits for this process and its
/// children. FreeBSD 12 does not know the command (EINVAL): a warning, not
/// a refusal to start, since the uid switch and the chroot are whole
/// without it and the release is otherwise supported by this code.
#[cfg(target_os = "freebsd")]
fn set_no_new_privs() -> Result<(), String> {
    let mut enable: libc::c_int = libc::PROC_NO_NEW_PRIVS_ENABLE;
    // SAFETY: procctl reads one c_int through the pointer, which outlives
    // the call; getpid has no preconditions.
    let rc = unsafe {
        libc::procctl(
            libc::P_PID,
            libc::getpid() as libc::id_t,
            libc::PROC_NO_NEW_PRIVS_CTL,
            (&mut enable as *mut libc::c_int).cast(),
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let error = io::Error::last_os_error();
    if error.raw_os_error() == Some(libc::EINVAL) {
        log::warn!(
            "no_new_privs not set: this FreeBSD has no procctl(PROC_NO_NEW_PRIVS_CTL) \
             (FreeBSD 13 and later have it)"
        );
        return Ok(());
    }
    Err(format!("procctl(PROC_NO_NEW_PRIVS_CTL): {error}"))
}

#[cfg(not(any(target_os = "linux", target_os = "freebsd")))]
fn set_no_new_privs() -> Result<(), String> {
    Ok(())
}
