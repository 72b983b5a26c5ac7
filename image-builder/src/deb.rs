//! Reading Debian packages in Rust: an `ar` archive holding `debian-binary`,
//! `control.tar.*` and `data.tar.*` (xz or gzip compressed tar).

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum DebError {
    #[error("reading package {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("package {} has no {member} member: is it a Debian .deb?", path.display())]
    MissingMember { path: PathBuf, member: &'static str },
    #[error("package {} uses {member}, which this builder cannot decompress (xz and gzip are supported)", path.display())]
    Compression { path: PathBuf, member: String },
    #[error("package {}: control file has no {field} field", path.display())]
    MissingField { path: PathBuf, field: String },
}

/// One regular file from a package's data archive.
pub struct DataFile {
    /// Path without the leading `./`.
    pub path: String,
    pub data: Vec<u8>,
}

/// The package's `control` file, as text.
pub fn read_control(deb: &Path) -> Result<String, DebError> {
    let mut text = None;
    for_each_tar_file(deb, "control.tar", &mut |path, data| {
        if path == "control" {
            text = Some(String::from_utf8_lossy(&data).into_owned());
        }
        Ok(())
    })?;
    text.ok_or_else(|| DebError::MissingMember {
        path: deb.into(),
        member: "control",
    })
}

/// A field of a control file (`Depends`, `Version`, ...), continuation lines joined.
pub fn control_field(control: &str, field: &str) -> Option<String> {
    let mut value: Option<String> = None;
    for line in control.lines() {
        if let Some(v) = value.as_mut() {
            if line.starts_with(' ') || line.starts_with('\t') {
                v.push(' ');
                v.push_str(line.trim());
                continue;
            }
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case(field) {
                value = Some(v.trim().to_string());
            }
        }
    }
    value
}

/// Calls `wanted(path)` for each regular file in the data archive and
/// collects the ones it accepts, reading only those into memory.
pub fn read_data_files(
    deb: &Path,
    wanted: &dyn Fn(&str) -> bool,
) -> Result<Vec<DataFile>, DebError> {
    let mut files = Vec::new();
    for_each_tar_file_filtered(deb, "data.tar", wanted, &mut |path, data| {
        files.push(DataFile {
            path: path.to_string(),
            data,
        });
        Ok(())
    })?;
    Ok(files)
}

fn for_each_tar_file(
    deb: &Path,
    prefix: &'static str,
    each: &mut dyn FnMut(&str, Vec<u8>) -> io::Result<()>,
) -> Result<(), DebError> {
    for_each_tar_file_filtered(deb, prefix, &|_| true, each)
}

fn for_each_tar_file_filtered(
    deb: &Path,
    prefix: &'static str,
    wanted: &dyn Fn(&str) -> bool,
    each: &mut dyn FnMut(&str, Vec<u8>) -> io::Result<()>,
) -> Result<(), DebError> {
    let io_err = |source| DebError::Io {
        path: deb.into(),
        source,
    };
    let file = File::open(deb).map_err(io_err)?;
    let mut archive = ar::Archive::new(file);
    while let Some(entry) = archive.next_entry() {
        let entry = entry.map_err(io_err)?;
        let name = String::from_utf8_lossy(entry.header().identifier()).into_owned();
        if !name.starts_with(prefix) {
            continue;
        }
        let decoded: Box<dyn Read> = match name.strip_prefix(prefix) {
            Some(".xz") => Box::new(xz2::read::XzDecoder::new(entry)),
            Some(".gz") => Box::new(flate2::read::GzDecoder::new(entry)),
            Some("") => Box::new(entry),
            _ => {
                return Err(DebError::Compression {
                    path: deb.into(),
                    member: name,
                })
            }
        };
        let mut tar = tar::Archive::new(decoded);
        for file in tar.entries().map_err(io_err)? {
            let mut file = file.map_err(io_err)?;
            if file.header().entry_type() != tar::EntryType::Regular {
                continue;
            }
            let raw = file.path().map_err(io_err)?.to_string_lossy().into_owned();
            let path = raw.trim_start_matches("./").to_string();
            if !wanted(&path) {
                continue;
            }
            let mut data = Vec::with_capacity(usize::try_from(file.size()).unwrap_or(0));
            file.read_to_end(&mut data).map_err(io_err)?;
            each(&path, data).map_err(io_err)?;
        }
        return Ok(());
    }
    Err(DebError::MissingMember {
        path: deb.into(),
        member: prefix,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_fields_with_continuations() {
        let c = "Package: linux-image-cloud-amd64\nDepends: linux-image-6.1.0-56-cloud-amd64 (= 6.1.192-2),\n foo\nVersion: 6.1\n";
        assert_eq!(
            control_field(c, "depends").as_deref(),
            Some("linux-image-6.1.0-56-cloud-amd64 (= 6.1.192-2), foo")
        );
        assert_eq!(control_field(c, "Version").as_deref(), Some("6.1"));
        assert_eq!(control_field(c, "Missing"), None);
    }

    #[test]
    fn a_file_that_is_not_a_deb_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.deb");
        std::fs::write(&p, b"not an ar archive").unwrap();
        let err = read_control(&p).unwrap_err().to_string();
        assert!(err.contains("x.deb"), "{err}");
    }
}
