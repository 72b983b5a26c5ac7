//! The initramfs writer: the tree as a cpio "newc" archive, gzip-compressed.
//!
//! The kernel unpacks it into its rootfs and runs `/init`. Entries are written
//! in path order (parents before children, as the kernel needs), with
//! sequential inode numbers, uid/gid from the tree and one fixed mtime, so the
//! same tree gives the same bytes. The gzip header carries no name and mtime 0.

use std::io::{self, Read, Write};

use flate2::{read::GzDecoder, Compression, GzBuilder};

use crate::tree::{EntryKind, Tree};

const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
const S_IFLNK: u32 = 0o120_000;
const S_IFCHR: u32 = 0o020_000;

#[derive(Debug, thiserror::Error)]
pub enum InitramfsError {
    #[error("writing the initramfs: {0}")]
    Write(#[source] io::Error),
    #[error("initramfs entry /{path} is {size} bytes; cpio newc holds at most 4 GiB per file")]
    TooLarge { path: String, size: usize },
    #[error("SOURCE_DATE_EPOCH {0} does not fit cpio's 32-bit mtime: use a date before 2106")]
    Mtime(u64),
    #[error("reading the initramfs back: {0}")]
    Read(#[source] io::Error),
}

/// Writes `tree` as a gzip-compressed newc archive to `out`.
pub fn write_initramfs<W: Write>(tree: &Tree, mtime: u64, out: W) -> Result<W, InitramfsError> {
    let mtime = u32::try_from(mtime).map_err(|_| InitramfsError::Mtime(mtime))?;
    let gz = GzBuilder::new().mtime(0).write(out, Compression::best());
    let mut w = gz;
    for (ino, (path, entry)) in (1u32..).zip(tree.entries()) {
        let (type_bits, data, nlink, rdev): (u32, &[u8], u32, (u32, u32)) = match &entry.kind {
            EntryKind::Dir => (S_IFDIR, &[], 2, (0, 0)),
            EntryKind::File(data) => (S_IFREG, data, 1, (0, 0)),
            EntryKind::Symlink(target) => (S_IFLNK, target.as_bytes(), 1, (0, 0)),
            EntryKind::CharDevice { major, minor } => (S_IFCHR, &[], 1, (*major, *minor)),
        };
        let size = u32::try_from(data.len()).map_err(|_| InitramfsError::TooLarge {
            path: path.into(),
            size: data.len(),
        })?;
        let mut file = cpio::newc::Builder::new(path)
            .ino(ino)
            .mode(type_bits | (entry.mode & 0o7777))
            .uid(entry.uid)
            .gid(entry.gid)
            .nlink(nlink)
            .mtime(mtime)
            .rdev_major(rdev.0)
            .rdev_minor(rdev.1)
            .write(w, size);
        file.write_all(data).map_err(InitramfsError::Write)?;
        w = file.finish().map_err(InitramfsError::Write)?;
    }
    let w = cpio::newc::trailer(w).map_err(InitramfsError::Write)?;
    w.finish().map_err(InitramfsError::Write)
}

/// One member of an initramfs, as read back (for `inspect` and tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub path: String,
    pub mode: u32,
    pub size: u64,
}

/// Lists the members of a gzip-compressed newc archive.
pub fn list_initramfs<R: Read>(input: R) -> Result<Vec<Member>, InitramfsError> {
    Ok(read_initramfs(input)?.into_iter().map(|(m, _)| m).collect())
}

/// Reads every member of a gzip-compressed newc archive with its data.
pub fn read_initramfs<R: Read>(input: R) -> Result<Vec<(Member, Vec<u8>)>, InitramfsError> {
    let mut r = GzDecoder::new(input);
    let mut members = Vec::new();
    loop {
        let mut reader = cpio::newc::Reader::new(r).map_err(InitramfsError::Read)?;
        if reader.entry().is_trailer() {
            break;
        }
        let member = Member {
            path: reader.entry().name().to_string(),
            mode: reader.entry().mode(),
            size: u64::from(reader.entry().file_size()),
        };
        let mut data = Vec::new();
        reader
            .read_to_end(&mut data)
            .map_err(InitramfsError::Read)?;
        members.push((member, data));
        r = reader.finish().map_err(InitramfsError::Read)?;
    }
    Ok(members)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Tree {
        let mut t = Tree::new();
        t.file("/init", 0o755, b"\x7fELF".to_vec()).unwrap();
        t.char_device("/dev/console", 0o600, 5, 1).unwrap();
        t.symlink("/sbin/init", "/init").unwrap();
        t.file("/etc/os-release", 0o644, b"ID=lb\n".to_vec())
            .unwrap();
        t
    }

    #[test]
    fn archive_lists_exactly_the_tree() {
        let bytes = write_initramfs(&sample(), 1_700_000_000, Vec::new()).unwrap();
        let members = list_initramfs(&bytes[..]).unwrap();
        let got: Vec<_> = members.iter().map(|m| (m.path.as_str(), m.mode)).collect();
        assert_eq!(
            got,
            [
                ("dev", 0o040_755),
                ("dev/console", 0o020_600),
                ("etc", 0o040_755),
                ("etc/os-release", 0o100_644),
                ("init", 0o100_755),
                ("sbin", 0o040_755),
                ("sbin/init", 0o120_777),
            ]
        );
    }

    #[test]
    fn same_tree_same_bytes_and_mtime_matters() {
        let a = write_initramfs(&sample(), 1, Vec::new()).unwrap();
        let b = write_initramfs(&sample(), 1, Vec::new()).unwrap();
        let c = write_initramfs(&sample(), 2, Vec::new()).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn mtime_past_2106_is_an_error() {
        let err = write_initramfs(&sample(), u64::from(u32::MAX) + 1, Vec::new()).unwrap_err();
        assert!(matches!(err, InitramfsError::Mtime(_)));
    }
}
