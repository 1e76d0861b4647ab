//! OS integration, and nothing about BitTorrent.
//!
//! What each part provides:
//! - [`signals`]: SIGHUP, SIGTERM and SIGINT as a source the event loop polls.
//! - [`log`]: the `log` facade to syslog (facility daemon) or stderr; the
//!   syslog socket is connected at start, before any chroot.
//! - [`notify`]: sd_notify messages over a socket connected before chroot;
//!   does nothing without `NOTIFY_SOCKET`.
//! - [`activation`]: sockets passed by systemd (`LISTEN_FDS`), sorted into
//!   TCP listeners and UDP sockets; none off Linux.
//! - [`privileges`]: chroot, user switch, capabilities cleared, no_new_privs.
//! - [`heap`]: transparent huge pages for glibc's heap (one re-exec at start),
//!   and its free pages handed back to the kernel on request.
//! - [`limits`]: the open-files limit raised to what the server may hold.
//! - [`conntrack`]: how full the kernel's connection-tracking table is.
//! - [`process`]: this process's CPU time, memory and descriptors.
//! - [`ProcFile`]: `/proc` files kept open across a chroot.
//! - [`watch`]: files looked at now and then for changes.
//! - [`fifo`]: named pipes read line by line from the event loop.
//! - [`read_regular_file`]: a configuration or list file read whole, where a
//!   FIFO or device at its path is an error rather than a wait.
//! - [`datagrams`]: UDP datagrams moved in batches (`recvmmsg`/`sendmmsg`
//!   on Linux, one call each elsewhere), answered from the address each
//!   arrived on.
//!
//! Linux-only pieces sit behind `cfg(target_os = "linux")`; elsewhere the
//! same functions exist and do the portable part (or nothing).

pub mod activation;
pub mod conntrack;
pub mod datagrams;
pub mod fifo;
pub mod heap;
pub mod limits;
pub mod log;
pub mod notify;
pub mod privileges;
pub mod process;
pub mod signals;
pub mod watch;

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::OnceLock;

/// A `/proc` file that may be opened before a chroot hides `/proc`
/// ([`ProcFile::keep`]), then read afresh from that descriptor.
pub struct ProcFile {
    path: &'static str,
    kept: OnceLock<Option<File>>,
}

impl ProcFile {
    pub const fn new(path: &'static str) -> ProcFile {
        ProcFile {
            path,
            kept: OnceLock::new(),
        }
    }

    /// Opens the file now, if it is there, for reads after a chroot.
    pub fn keep(&self) {
        let _ = self.kept.set(File::open(self.path).ok());
    }

    /// The file's text, from the descriptor kept, else by its path.
    pub fn read(&self) -> Option<String> {
        let Some(Some(file)) = self.kept.get() else {
            return std::fs::read_to_string(self.path).ok();
        };
        use std::os::unix::fs::FileExt;
        // The kernel writes the text anew for a read from offset 0.
        let mut text = Vec::with_capacity(512);
        let mut chunk = [0u8; 4096];
        loop {
            match file.read_at(&mut chunk, text.len() as u64) {
                Ok(0) => break,
                Ok(n) => text.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return None,
            }
        }
        String::from_utf8(text).ok()
    }
}

/// Opens the `/proc` files read later (memory, connection tracking), so
/// that a chroot, which hides `/proc`, leaves them readable. Files, not
/// directories: nothing outside the chroot can be reached through them.
pub fn keep_proc_files() {
    process::keep_proc_files();
    conntrack::keep_proc_files();
}

/// Reads the regular file at `path` whole. Anything else there (a FIFO, a
/// device, a directory) is an error saying what it is, told before opening
/// it: opening a FIFO waits for a writer, some devices act on open (a
/// watchdog arms, a tape rewinds) and reading one may never end, which
/// would hold up a start or a reload with no word said. Opened non-blocking
/// all the same, and checked again once open, for what the path names may
/// change in between (which changes nothing for a regular file's reads);
/// and without taking a terminal as the controlling one.
pub fn read_regular_file(path: &Path) -> io::Result<Vec<u8>> {
    read_whole(path, false)
}

/// As [`read_regular_file`], and a pipe is read as well, to its writer's
/// end: a file read once (a configuration), which a shell may hand over as
/// `/dev/stdin` or `<(…)`. A named FIFO stays refused: with no writer,
/// opening it would wait, or reading it give nothing at once.
pub fn read_file_or_pipe(path: &Path) -> io::Result<Vec<u8>> {
    read_whole(path, true)
}

fn read_whole(path: &Path, pipe_too: bool) -> io::Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let readable =
        |found: &std::fs::Metadata| found.is_file() || pipe_too && found.file_type().is_fifo();
    let found = std::fs::metadata(path)?;
    if !readable(&found) {
        return Err(not_regular(&found));
    }
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    let found = file.metadata()?;
    if !readable(&found) {
        return Err(not_regular(&found));
    }
    if !found.is_file() {
        if !is_pipe(&file)? {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a named FIFO, which would wait for a writer: pipe it in instead \
                 (as /dev/stdin)",
            ));
        }
        set_blocking(&file)?;
    }
    let mut bytes = Vec::with_capacity(found.len() as usize);
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Whether `file` is an anonymous pipe (a shell's `|` or `<(…)`), not a
/// named FIFO: Linux keeps those in a file system of their own.
fn is_pipe(file: &File) -> io::Result<bool> {
    use std::os::fd::AsRawFd;
    const PIPEFS_MAGIC: libc::c_long = 0x5049_5045;
    let mut found = std::mem::MaybeUninit::<libc::statfs>::uninit();
    // SAFETY: an open descriptor, and room for the answer.
    if unsafe { libc::fstatfs(file.as_raw_fd(), found.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fstatfs succeeded, so it filled `found`.
    Ok(unsafe { found.assume_init() }.f_type as libc::c_long == PIPEFS_MAGIC)
}

/// Clears `O_NONBLOCK`, so that reads wait for a pipe's writer.
fn set_blocking(file: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on an open descriptor.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    // SAFETY: as above.
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The error for something at a path that is not a regular file.
fn not_regular(found: &std::fs::Metadata) -> io::Error {
    use std::os::unix::fs::FileTypeExt;
    let kind = found.file_type();
    let what = if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_dir() {
        "a directory"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "of an unknown kind"
    };
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("not a regular file ({what})"),
    )
}

/// `path` as the NUL-terminated string system calls take.
pub fn c_path(path: &Path) -> io::Result<CString> {
    use std::os::unix::ffi::OsStrExt;
    CString::new(path.as_os_str().as_bytes()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}: path contains a NUL byte", path.display()),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_regular_file_is_read_and_a_fifo_does_not_block() {
        let dir = std::env::temp_dir().join(format!("ot-regular-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("list");
        std::fs::write(&file, "a line\n").unwrap();
        assert_eq!(read_regular_file(&file).unwrap(), b"a line\n");

        let fifo = dir.join("fifo");
        let c_fifo = c_path(&fifo).unwrap();
        // SAFETY: a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_fifo.as_ptr(), 0o600) }, 0);
        let refused = |path: &Path| read_regular_file(path).unwrap_err().to_string();
        assert_eq!(refused(&fifo), "not a regular file (a FIFO)");
        assert_eq!(refused(&dir), "not a regular file (a directory)");
        assert_eq!(
            refused(Path::new("/dev/null")),
            "not a regular file (a character device)"
        );
        let socket = dir.join("socket");
        let _bound = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        assert_eq!(refused(&socket), "not a regular file (a socket)");
        assert!(refused(&dir.join("absent")).contains("No such file"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_pipe_is_read_to_its_end_and_a_named_fifo_refused_at_once() {
        use std::io::Write;
        use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
        let mut ends = [0; 2];
        // SAFETY: room for the two descriptors.
        assert_eq!(unsafe { libc::pipe(ends.as_mut_ptr()) }, 0);
        // SAFETY: pipe gave two open descriptors, owned here alone.
        let (read_end, write_end) =
            unsafe { (OwnedFd::from_raw_fd(ends[0]), OwnedFd::from_raw_fd(ends[1])) };
        // The writer is slow: the read waits for it, and for its end.
        let writer = std::thread::spawn(move || {
            let mut write_end = File::from(write_end);
            write_end.write_all(b"first\n").unwrap();
            std::thread::sleep(std::time::Duration::from_millis(100));
            write_end.write_all(b"second\n").unwrap();
        });
        let piped = format!("/proc/self/fd/{}", read_end.as_raw_fd());
        assert_eq!(
            read_file_or_pipe(Path::new(&piped)).unwrap(),
            b"first\nsecond\n"
        );
        writer.join().unwrap();

        let dir = std::env::temp_dir().join(format!("ot-named-fifo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("fifo");
        let c_fifo = c_path(&fifo).unwrap();
        // SAFETY: a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_fifo.as_ptr(), 0o600) }, 0);
        assert_eq!(
            read_file_or_pipe(&fifo).unwrap_err().to_string(),
            "a named FIFO, which would wait for a writer: pipe it in instead (as /dev/stdin)"
        );
        assert!(read_file_or_pipe(Path::new("/dev/null")).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn what_is_refused_is_not_opened() {
        let dir = std::env::temp_dir().join(format!("ot-unopened-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("fifo");
        let c_fifo = c_path(&fifo).unwrap();
        // SAFETY: a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_fifo.as_ptr(), 0o600) }, 0);
        // A writer's open returns once a reader has opened the FIFO: it
        // tells whether the refusal opened it, as it would open a device.
        let (opened, writer_in) = std::sync::mpsc::channel();
        let writer = {
            let fifo = fifo.clone();
            std::thread::spawn(move || {
                let _ = std::fs::OpenOptions::new().write(true).open(&fifo);
                let _ = opened.send(());
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert!(read_regular_file(&fifo).is_err());
        let waited = writer_in.recv_timeout(std::time::Duration::from_millis(200));
        assert!(waited.is_err(), "refused, yet opened");
        // Let the writer go.
        use std::os::unix::fs::OpenOptionsExt;
        let _reader = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo)
            .unwrap();
        writer.join().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
