//! The kernel's files, extracted once per package.
//!
//! Decompressing the kernel `.deb` (xz) is most of a warm build, and its
//! output never changes for the same package: the files the image uses
//! (see [`kernel::is_kernel_part`]) are kept in an uncompressed tar named
//! after the `.deb`'s SHA-256, so a second build reads them back at disk
//! speed. The tar is written under a temporary name and renamed, so an
//! interrupted build never leaves a partial entry; an entry that cannot be
//! read is extracted again.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read};
use std::path::{Path, PathBuf};

use crate::deb::{self, DataFile};
use crate::kernel::{self, KernelError, KernelParts};

/// Where the entries live, under the build's cache directory.
pub const KERNEL_CACHE_DIR: &str = "kernel";

/// How the kernel's files were had, for the build summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Read back from the cache.
    Cached,
    /// Decompressed from the `.deb` (and cached for next time).
    Extracted,
}

/// The kernel parts of the package at `deb_path`, whose SHA-256 is
/// `sha256`, through the cache in `cache_dir`.
pub fn load(
    deb_path: &Path,
    sha256: &str,
    cache_dir: &Path,
) -> Result<(KernelParts, Origin), KernelError> {
    let entry = cache_dir
        .join(KERNEL_CACHE_DIR)
        .join(format!("{sha256}.tar"));
    if let Ok(files) = read_entry(&entry) {
        if let Ok(parts) = KernelParts::from_files(files, deb_path) {
            return Ok((parts, Origin::Cached));
        }
    }
    let files = deb::read_data_files(deb_path, &kernel::is_kernel_part)?;
    // A cache that cannot be written only costs the next build time.
    if let Err(e) = write_entry(&entry, &files) {
        eprintln!(
            "image-builder: warning: caching the kernel's files in {}: {e}",
            entry.display()
        );
    }
    Ok((KernelParts::from_files(files, deb_path)?, Origin::Extracted))
}

fn read_entry(path: &Path) -> io::Result<Vec<DataFile>> {
    let mut archive = tar::Archive::new(BufReader::new(File::open(path)?));
    let mut files = Vec::new();
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.to_string_lossy().into_owned();
        let mut data = Vec::with_capacity(usize::try_from(entry.size()).unwrap_or(0));
        entry.read_to_end(&mut data)?;
        files.push(DataFile { path, data });
    }
    if !files.iter().any(|f| f.path.starts_with("boot/vmlinuz-")) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "cache entry holds no kernel",
        ));
    }
    Ok(files)
}

fn write_entry(path: &Path, files: &[DataFile]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp: PathBuf = path.with_extension(format!("tar.tmp{}", std::process::id()));
    let result = (|| {
        let mut builder = tar::Builder::new(BufWriter::new(File::create(&tmp)?));
        for f in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(f.data.len() as u64);
            header.set_mode(0o644);
            header.set_entry_type(tar::EntryType::Regular);
            builder.append_data(&mut header, &f.path, f.data.as_slice())?;
        }
        let file = builder
            .into_inner()?
            .into_inner()
            .map_err(|e| e.into_error())?;
        file.sync_all()
    })();
    match result {
        Ok(()) => std::fs::rename(&tmp, path),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files() -> Vec<DataFile> {
        vec![
            DataFile {
                path: "boot/vmlinuz-6.1.0-1-cloud-amd64".into(),
                data: b"MZ kernel".to_vec(),
            },
            DataFile {
                path: "lib/modules/6.1.0-1-cloud-amd64/modules.builtin".into(),
                data: b"kernel/fs/ext4/ext4.ko\n".to_vec(),
            },
        ]
    }

    #[test]
    fn an_entry_reads_back_what_was_written() {
        let dir = tempfile::tempdir().unwrap();
        let entry = dir.path().join("kernel/abc.tar");
        write_entry(&entry, &files()).unwrap();
        let back = read_entry(&entry).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[0].path, "boot/vmlinuz-6.1.0-1-cloud-amd64");
        assert_eq!(back[0].data, b"MZ kernel");
        assert_eq!(back[1].data, b"kernel/fs/ext4/ext4.ko\n");
        // No temporary file is left beside it.
        let names: Vec<_> = std::fs::read_dir(dir.path().join("kernel"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["abc.tar"]);
    }

    #[test]
    fn a_damaged_entry_is_not_used() {
        let dir = tempfile::tempdir().unwrap();
        let entry = dir.path().join("x.tar");
        std::fs::write(&entry, b"not a tar").unwrap();
        assert!(read_entry(&entry).is_err());
        let mut empty = tar::Builder::new(Vec::new());
        empty.finish().unwrap();
        std::fs::write(&entry, empty.into_inner().unwrap()).unwrap();
        assert!(read_entry(&entry).is_err());
    }

    #[test]
    fn parts_come_from_cached_files() {
        let parts = KernelParts::from_files(files(), Path::new("k.deb")).unwrap();
        assert_eq!(parts.version, "6.1.0-1-cloud-amd64");
        assert_eq!(parts.builtin, ["ext4"]);
    }
}
