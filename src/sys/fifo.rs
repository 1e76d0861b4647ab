//! Named pipes an administrator writes lines into (`echo LINE > PATH`),
//! read by the event loop as lines arrive. The tracker holds a write end of
//! its own, so the pipe never reads as closed between writers and needs no
//! reopening.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use mio::unix::SourceFd;

use super::c_path;
use mio::{event, Interest, Registry, Token};

/// A line longer than this is dropped: no line the tracker reads is.
const MAX_LINE: usize = 4096;

pub struct Fifo {
    reader: File,
    /// Never written: held so the reader sees no end of file.
    _writer: File,
    partial: Vec<u8>,
}

impl Fifo {
    /// Opens the FIFO at `path`, making it (mode 0600) when it is missing.
    /// Anything else already at `path` is an error.
    pub fn open(path: &Path) -> io::Result<Fifo> {
        if !exists(path)? {
            make_fifo(path)?;
        }
        let (reader, writer) = open_ends(path)?;
        Ok(Fifo {
            reader,
            _writer: writer,
            partial: Vec::new(),
        })
    }

    /// What [`Fifo::open`] would find at `path`, making and changing
    /// nothing: an error where it would fail, or else what it would do.
    pub fn check(path: &Path) -> io::Result<&'static str> {
        if exists(path)? {
            open_ends(path)?;
            return Ok("a FIFO, opened for reading");
        }
        let dir = directory_of(path);
        may_write_in(dir).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => missing_directory(dir),
            _ => io::Error::new(
                e.kind(),
                format!("missing, and cannot be made in {}: {e}", dir.display()),
            ),
        })?;
        Ok("missing; made at start")
    }

    /// Calls `line` with every complete line written so far (without its
    /// newline); keeps a line still being written for the next call.
    pub fn read_lines(&mut self, mut line: impl FnMut(&str)) -> io::Result<()> {
        let mut chunk = [0u8; 4096];
        loop {
            match self.reader.read(&mut chunk) {
                Ok(0) => return Ok(()),
                Ok(n) => self.partial.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            let complete = self.partial.iter().rposition(|&b| b == b'\n');
            if let Some(end) = complete {
                for text in self.partial[..end].split(|&b| b == b'\n') {
                    line(&String::from_utf8_lossy(text));
                }
                self.partial.drain(..=end);
            }
            if self.partial.len() > MAX_LINE {
                self.partial.clear();
            }
        }
    }
}

/// The directory `path` is made in.
fn directory_of(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// The error for a FIFO whose directory is not there: mkfifo says only "No
/// such file or directory", which reads as if the FIFO were the problem.
fn missing_directory(dir: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!(
            "missing, and cannot be made: its directory {} does not exist",
            dir.display()
        ),
    )
}

/// Whether a FIFO is at `path`; anything else there is an error.
fn exists(path: &Path) -> io::Result<bool> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_fifo() => Ok(true),
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "exists and is not a FIFO",
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Opens the FIFO at `path` to read and to write, neither blocking.
fn open_ends(path: &Path) -> io::Result<(File, File)> {
    let reader = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    // With a reader in place, opening for writing does not block.
    let writer = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    Ok((reader, writer))
}

/// Whether this process may make files in `dir`.
fn may_write_in(dir: &Path) -> io::Result<()> {
    let dir = c_path(dir)?;
    // SAFETY: access reads a NUL-terminated path.
    if unsafe { libc::access(dir.as_ptr(), libc::W_OK | libc::X_OK) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn make_fifo(path: &Path) -> io::Result<()> {
    let c = c_path(path)?;
    // SAFETY: mkfifo reads a NUL-terminated path.
    if unsafe { libc::mkfifo(c.as_ptr(), 0o600) } == 0 {
        return Ok(());
    }
    match io::Error::last_os_error() {
        e if e.kind() == io::ErrorKind::NotFound => Err(missing_directory(directory_of(path))),
        e => Err(e),
    }
}

impl event::Source for Fifo {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        SourceFd(&self.reader.as_raw_fd()).register(registry, token, interest)
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        SourceFd(&self.reader.as_raw_fd()).reregister(registry, token, interest)
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        SourceFd(&self.reader.as_raw_fd()).deregister(registry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn lines_arrive_whole_from_any_number_of_writers() {
        let dir = std::env::temp_dir().join(format!("ot-fifo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("add");
        let mut fifo = Fifo::open(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap();
        assert!(mode.file_type().is_fifo());
        let mut lines = Vec::new();
        for text in ["one\ntw", "o\n", "three\n"] {
            // A writer that comes and goes, as `echo … > fifo` does.
            let mut writer = OpenOptions::new().write(true).open(&path).unwrap();
            writer.write_all(text.as_bytes()).unwrap();
            drop(writer);
            fifo.read_lines(|l| lines.push(l.to_string())).unwrap();
        }
        assert_eq!(lines, ["one", "two", "three"]);
        // Opened again, as at the next start.
        drop(fifo);
        assert!(Fifo::open(&path).is_ok());
        // Something else in its place is refused.
        let file = dir.join("file");
        std::fs::write(&file, "").unwrap();
        let error = Fifo::open(&file).err().unwrap();
        assert_eq!(error.to_string(), "exists and is not a FIFO");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_directory_is_named_as_what_is_missing() {
        // As /run/opentracker under a container's read-only root.
        let dir = std::env::temp_dir().join(format!("ot-fifo-nodir-{}", std::process::id()));
        let path = dir.join("add");
        let expected = format!(
            "missing, and cannot be made: its directory {} does not exist",
            dir.display()
        );
        assert_eq!(Fifo::open(&path).err().unwrap().to_string(), expected);
        assert_eq!(Fifo::check(&path).unwrap_err().to_string(), expected);
        assert!(!dir.exists());
    }
}
