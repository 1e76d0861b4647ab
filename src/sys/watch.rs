//! Files watched for changes by looking at their metadata now and then:
//! portable (Linux, FreeBSD, inside a chroot, on any file system), and a
//! few `stat` calls every couple of seconds cost nothing. A change is
//! reported once the file has stayed the same for one more look, so a file
//! still being written is not read half-way.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

/// What tells one version of a file from another: a file replaced by a
/// rename has a new inode; one rewritten in place, a new time or size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Fingerprint {
    device: u64,
    inode: u64,
    len: u64,
    modified: (i64, i64),
}

fn fingerprint(path: &PathBuf) -> Option<Fingerprint> {
    let meta = std::fs::metadata(path).ok()?;
    Some(Fingerprint {
        device: meta.dev(),
        inode: meta.ino(),
        len: meta.len(),
        modified: (meta.mtime(), meta.mtime_nsec()),
    })
}

struct Watched {
    path: PathBuf,
    /// As last loaded; `None` while the file is missing.
    loaded: Option<Fingerprint>,
    /// As at the previous look.
    seen: Option<Fingerprint>,
}

pub struct Watch {
    files: Vec<Watched>,
}

impl Watch {
    /// Watches `paths`, taking them as loaded as they are now.
    pub fn new(paths: impl IntoIterator<Item = PathBuf>) -> Watch {
        let files = paths.into_iter().map(|path| {
            let now = fingerprint(&path);
            Watched {
                path,
                loaded: now,
                seen: now,
            }
        });
        Watch {
            files: files.collect(),
        }
    }

    /// Looks at every file: true when one differs from what was loaded and
    /// has not changed since the previous look. They then count as loaded.
    pub fn changed(&mut self) -> bool {
        let mut changed = false;
        for file in &mut self.files {
            let now = fingerprint(&file.path);
            changed |= now != file.loaded && now == file.seen;
            file.seen = now;
        }
        if changed {
            for file in &mut self.files {
                file.loaded = file.seen;
            }
        }
        changed
    }

    /// The files were loaded again for another reason (a signal): as they
    /// are now, they count as loaded.
    pub fn mark_loaded(&mut self) {
        for file in &mut self.files {
            file.loaded = fingerprint(&file.path);
            file.seen = file.loaded;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_counts_once_it_has_settled() {
        let dir = std::env::temp_dir().join(format!("ot-watch-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("list");
        std::fs::write(&path, "one\n").unwrap();
        let mut watch = Watch::new([path.clone()]);
        assert!(!watch.changed(), "nothing happened");
        std::fs::write(&path, "one\ntwo\n").unwrap();
        assert!(!watch.changed(), "just written: wait for one more look");
        assert!(watch.changed(), "settled");
        assert!(!watch.changed(), "reported once");
        // Replaced by a rename, as editors and deploy tools do.
        let next = dir.join("list.new");
        std::fs::write(&next, "six\n").unwrap();
        std::fs::rename(&next, &path).unwrap();
        assert!(!watch.changed());
        assert!(watch.changed());
        // Gone, then back.
        std::fs::remove_file(&path).unwrap();
        assert!(!watch.changed());
        assert!(watch.changed(), "a missing file is a change too");
        std::fs::write(&path, "seven\n").unwrap();
        watch.mark_loaded();
        assert!(!watch.changed(), "a reload by signal took it in");
        assert!(!watch.changed());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
