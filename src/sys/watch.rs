//! Files watched for changes by looking at their metadata now and then:
//! portable (Linux, FreeBSD, inside a chroot, on any file system), and a
//! few `stat` calls every couple of seconds cost nothing. A change is
//! reported once the file has stayed the same for one more look, so a file
//! whose writer finishes within a look is not read half-way; one whose
//! writer pauses longer mid-file is (files are best replaced by a rename,
//! which is seen whole at once). Each file carries the caller's key, so
//! that only what changed need be read again.

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

struct Watched<K> {
    key: K,
    path: PathBuf,
    /// As last loaded; `None` while the file is missing.
    loaded: Option<Fingerprint>,
    /// As at the previous look.
    seen: Option<Fingerprint>,
}

pub struct Watch<K> {
    files: Vec<Watched<K>>,
}

impl<K: Copy + PartialEq> Watch<K> {
    /// Watches the files at the paths, each under its key, taking them as
    /// loaded as they are now.
    pub fn new(files: impl IntoIterator<Item = (K, PathBuf)>) -> Watch<K> {
        let files = files.into_iter().map(|(key, path)| {
            let now = fingerprint(&path);
            Watched {
                key,
                path,
                loaded: now,
                seen: now,
            }
        });
        Watch {
            files: files.collect(),
        }
    }

    /// Looks at every file: the keys of those that differ from what was
    /// loaded and have not changed since the previous look (each key once),
    /// which then count as loaded.
    pub fn changed(&mut self) -> Vec<K> {
        let mut changed = Vec::new();
        for file in &mut self.files {
            let now = fingerprint(&file.path);
            if now != file.loaded && now == file.seen {
                file.loaded = now;
                if !changed.contains(&file.key) {
                    changed.push(file.key);
                }
            }
            file.seen = now;
        }
        changed
    }

    /// The files were all loaded again for another reason (a signal): as
    /// they are now, they count as loaded.
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
        let other = dir.join("other");
        let third = dir.join("third");
        std::fs::write(&other, "two\n").unwrap();
        std::fs::write(&third, "three\n").unwrap();
        let none: Vec<char> = Vec::new();
        let mut watch = Watch::new([
            ('a', path.clone()),
            ('b', other.clone()),
            ('b', third.clone()),
        ]);
        assert_eq!(watch.changed(), none, "nothing happened");
        std::fs::write(&path, "one\ntwo\n").unwrap();
        assert_eq!(
            watch.changed(),
            none,
            "just written: wait for one more look"
        );
        assert_eq!(watch.changed(), ['a'], "settled");
        assert_eq!(watch.changed(), none, "reported once");
        // Replaced by a rename, as editors and deploy tools do.
        let next = dir.join("list.new");
        std::fs::write(&next, "six\n").unwrap();
        std::fs::rename(&next, &path).unwrap();
        assert_eq!(watch.changed(), none);
        assert_eq!(watch.changed(), ['a']);
        // Gone, then back.
        std::fs::remove_file(&path).unwrap();
        assert_eq!(watch.changed(), none);
        assert_eq!(watch.changed(), ['a'], "a missing file is a change too");
        std::fs::write(&path, "seven\n").unwrap();
        watch.mark_loaded();
        assert_eq!(watch.changed(), none, "a reload by signal took it in");
        assert_eq!(watch.changed(), none);
        // Two files under one key count once; a file still changing waits.
        std::fs::write(&other, "two and more\n").unwrap();
        std::fs::write(&third, "three and more\n").unwrap();
        assert_eq!(watch.changed(), none);
        std::fs::write(&path, "eight and more\n").unwrap();
        assert_eq!(watch.changed(), ['b'], "'a' is still being written");
        assert_eq!(watch.changed(), ['a']);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
