//! The file operations the store makes, behind a seam so tests can cut the
//! power after any one of them.
//!
//! An atomic replace is four steps, and the order is what makes a power cut
//! safe (tests cut the power after each step with `crash_fs`):
//!
//! ```text
//! 1. write   name.tmp        the new bytes, in the page cache only
//! 2. fsync   name.tmp        the bytes are on disk, under the temp name
//! 3. rename  name.tmp -> name   the directory entry now points at them
//! 4. fsync   the directory   the rename itself is on disk
//! ```
//! Without 2, ext4 may commit the rename before the data and leave an
//! empty `name` after a crash; without 4, the rename may be lost and the
//! old file come back. Either way a reader sees the old or the new file,
//! never a mix.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// What a temp file's name ends with; leftovers are removed at open.
pub const TEMP_SUFFIX: &str = ".tmp";

/// The store's view of the filesystem. Each method is one step a power
/// cut can fall after.
pub trait Fs {
    /// The whole file.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// The paths in `dir` (not recursive), in no particular order.
    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>>;
    fn create_dir_all(&mut self, dir: &Path) -> io::Result<()>;
    /// Creates or truncates `path` and writes `bytes`, without syncing.
    fn write(&mut self, path: &Path, bytes: &[u8]) -> io::Result<()>;
    /// fsync of a file's data.
    fn sync_file(&mut self, path: &Path) -> io::Result<()>;
    fn rename(&mut self, from: &Path, to: &Path) -> io::Result<()>;
    /// fsync of a directory: makes renames and removals in it durable.
    fn sync_dir(&mut self, dir: &Path) -> io::Result<()>;
    fn remove(&mut self, path: &Path) -> io::Result<()>;
}

/// The real filesystem.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealFs;

impl Fs for RealFs {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        std::fs::read(path)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        std::fs::read_dir(dir)?
            .map(|entry| entry.map(|e| e.path()))
            .collect()
    }

    fn create_dir_all(&mut self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)
    }

    fn write(&mut self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        file.write_all(bytes)
    }

    fn sync_file(&mut self, path: &Path) -> io::Result<()> {
        // fsync works on the inode: any descriptor of the file flushes the
        // data the write step left in the page cache.
        OpenOptions::new().write(true).open(path)?.sync_all()
    }

    fn rename(&mut self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    fn sync_dir(&mut self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }

    fn remove(&mut self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }
}

/// The temp name next to `path`: same directory, so the rename cannot
/// cross filesystems.
pub fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(TEMP_SUFFIX);
    PathBuf::from(name)
}

/// Replaces `path` with `bytes` in the four steps above.
pub fn write_atomic(fs: &mut impl Fs, path: &Path, bytes: &[u8]) -> io::Result<()> {
    let temp = temp_path(path);
    fs.write(&temp, bytes)?;
    fs.sync_file(&temp)?;
    fs.rename(&temp, path)?;
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    fs.sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp() {
        // Input: a file "old", replaced with "new". Output: the file says
        // "new" and the directory holds nothing else.
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("current.toml");
        std::fs::write(&path, "old").expect("write");
        write_atomic(&mut RealFs, &path, b"new").expect("atomic write");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "new");
        assert_eq!(RealFs.list(dir.path()).expect("list"), vec![path]);
    }
}
