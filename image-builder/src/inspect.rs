//! Reading a built disk image back: partitions, the ESP's boot file, the
//! UKI's sections and the initramfs inside it. Used by `image-builder
//! inspect` and by the tests that check the image from outside.

use std::fmt;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::disk::SECTOR;
use crate::esp::{self, BOOT_PATH};
use crate::uki;

#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error("reading {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: no valid GPT: {message}", path.display())]
    Gpt { path: PathBuf, message: String },
    #[error("{}: no partition named {name:?}", path.display())]
    NoPartition { path: PathBuf, name: String },
    #[error("{}: the ESP has no {BOOT_PATH}: {source}", path.display())]
    NoBootFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {BOOT_PATH}: {source}", path.display())]
    Uki {
        path: PathBuf,
        source: uki::UkiError,
    },
    #[error("{}: the UKI has no {section} section", path.display())]
    NoSection {
        path: PathBuf,
        section: &'static str,
    },
    #[error("{}: initramfs: {source}", path.display())]
    Initramfs {
        path: PathBuf,
        source: rootfs::InitramfsError,
    },
}

#[derive(Debug, Clone)]
pub struct PartitionInfo {
    pub number: u32,
    pub name: String,
    pub offset: u64,
    pub size: u64,
    pub type_name: String,
    pub guid: String,
}

/// Everything `inspect` shows about a disk image.
pub struct ImageReport {
    pub disk_guid: String,
    pub size: u64,
    pub partitions: Vec<PartitionInfo>,
    pub uki_sections: Vec<(String, u32)>,
    pub cmdline: String,
    pub os_release: String,
    pub initramfs: Vec<rootfs::Member>,
    /// init has the QEMU tests' debug port: a test image, not one to ship.
    pub debug_port: bool,
}

pub fn partitions(image: &Path) -> Result<(String, Vec<PartitionInfo>), InspectError> {
    let disk = gpt::GptConfig::new()
        .writable(false)
        .open(image)
        .map_err(|e| InspectError::Gpt {
            path: image.into(),
            message: e.to_string(),
        })?;
    let parts = disk
        .partitions()
        .iter()
        .map(|(n, p)| PartitionInfo {
            number: *n,
            name: p.name.clone(),
            offset: p.first_lba * SECTOR,
            size: (p.last_lba + 1 - p.first_lba) * SECTOR,
            type_name: p.part_type_guid.guid.to_string().to_uppercase(),
            guid: p.part_guid.to_string(),
        })
        .collect();
    Ok((disk.guid().to_string(), parts))
}

/// The bytes of the partition named `name`.
pub fn read_partition(image: &Path, name: &str) -> Result<Vec<u8>, InspectError> {
    let (_, parts) = partitions(image)?;
    let p = parts
        .iter()
        .find(|p| p.name == name)
        .ok_or_else(|| InspectError::NoPartition {
            path: image.into(),
            name: name.into(),
        })?;
    let io = |source| InspectError::Io {
        path: image.into(),
        source,
    };
    let mut f = File::open(image).map_err(io)?;
    f.seek(SeekFrom::Start(p.offset)).map_err(io)?;
    let mut buf = vec![0u8; usize::try_from(p.size).unwrap_or(0)];
    f.read_exact(&mut buf).map_err(io)?;
    Ok(buf)
}

/// The UKI from the image's ESP.
pub fn read_uki(image: &Path) -> Result<Vec<u8>, InspectError> {
    let esp = read_partition(image, crate::disk::ESP_NAME)?;
    esp::read_file(&esp, BOOT_PATH).map_err(|source| InspectError::NoBootFile {
        path: image.into(),
        source,
    })
}

/// One named section's bytes from a UKI.
pub fn uki_section<'a>(
    image: &Path,
    uki_bytes: &'a [u8],
    name: &'static str,
) -> Result<&'a [u8], InspectError> {
    let sections = uki::list_sections(uki_bytes).map_err(|source| InspectError::Uki {
        path: image.into(),
        source,
    })?;
    let (_, ptr, size) =
        sections
            .into_iter()
            .find(|(n, _, _)| n == name)
            .ok_or(InspectError::NoSection {
                path: image.into(),
                section: name,
            })?;
    let start = usize::try_from(ptr).unwrap_or(usize::MAX);
    let end = start.saturating_add(usize::try_from(size).unwrap_or(0));
    uki_bytes.get(start..end).ok_or(InspectError::NoSection {
        path: image.into(),
        section: name,
    })
}

/// The files of the image's initramfs named in `paths` (absolute guest
/// paths, e.g. `/etc/lbd/lbd.toml`), each `None` when absent.
pub fn initramfs_files(image: &Path, paths: &[&str]) -> Result<Vec<Option<Vec<u8>>>, InspectError> {
    let uki_bytes = read_uki(image)?;
    let initrd = uki_section(image, &uki_bytes, ".initrd")?;
    let members = rootfs::read_initramfs(initrd).map_err(|source| InspectError::Initramfs {
        path: image.into(),
        source,
    })?;
    Ok(paths
        .iter()
        .map(|wanted| {
            let wanted = wanted.trim_start_matches('/');
            members
                .iter()
                .find(|(m, _)| m.path == wanted)
                .map(|(_, data)| data.clone())
        })
        .collect())
}

pub fn inspect_image(image: &Path) -> Result<ImageReport, InspectError> {
    let (disk_guid, parts) = partitions(image)?;
    let size = std::fs::metadata(image)
        .map_err(|source| InspectError::Io {
            path: image.into(),
            source,
        })?
        .len();
    let uki_bytes = read_uki(image)?;
    let sections = uki::list_sections(&uki_bytes).map_err(|source| InspectError::Uki {
        path: image.into(),
        source,
    })?;
    let text = |name| {
        uki_section(image, &uki_bytes, name).map(|b| String::from_utf8_lossy(b).into_owned())
    };
    let cmdline = text(".cmdline")?;
    let os_release = text(".osrel")?;
    let initrd = uki_section(image, &uki_bytes, ".initrd")?;
    let members = rootfs::read_initramfs(initrd).map_err(|source| InspectError::Initramfs {
        path: image.into(),
        source,
    })?;
    let init = rootfs::paths::INIT.trim_start_matches('/');
    let debug_port = members
        .iter()
        .any(|(m, data)| m.path == init && crate::debug_port::present(data));
    let initramfs = members.into_iter().map(|(m, _)| m).collect();
    Ok(ImageReport {
        disk_guid,
        size,
        partitions: parts,
        uki_sections: sections.into_iter().map(|(n, _, s)| (n, s)).collect(),
        cmdline,
        os_release,
        initramfs,
        debug_port,
    })
}

impl fmt::Display for ImageReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "disk: {} bytes, GPT disk GUID {}",
            self.size, self.disk_guid
        )?;
        for p in &self.partitions {
            writeln!(
                f,
                "  partition {} {:<22} offset {:>10}  size {:>10}  type {}  guid {}",
                p.number,
                format!("{:?}", p.name),
                p.offset,
                p.size,
                p.type_name,
                p.guid
            )?;
        }
        writeln!(f, "UKI {BOOT_PATH} sections:")?;
        for (name, size) in &self.uki_sections {
            writeln!(f, "  {name:<10} {size:>10} bytes")?;
        }
        writeln!(f, "kernel command line: {}", self.cmdline.trim())?;
        writeln!(
            f,
            "debug port: {}",
            if self.debug_port {
                "present (a test image: never ship it)"
            } else {
                "absent"
            }
        )?;
        writeln!(f, "os-release:")?;
        for line in self.os_release.lines() {
            writeln!(f, "  {line}")?;
        }
        writeln!(f, "initramfs ({} entries):", self.initramfs.len())?;
        for m in &self.initramfs {
            writeln!(f, "  {:06o} {:>9}  /{}", m.mode, m.size, m.path)?;
        }
        Ok(())
    }
}
