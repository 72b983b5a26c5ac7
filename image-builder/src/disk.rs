//! The GPT disk image: a protective MBR, the GPT, the ESP and the data
//! partition, each partition aligned to 1 MiB.
//!
//! ```text
//!  LBA 0        protective MBR
//!  LBA 1..33    primary GPT header + entries
//!  1 MiB        partition 1: ESP (FAT32)           "EFI System Partition"
//!  ...          partition 2: data (ext4)           "appliance-data"
//!  last 1 MiB   backup GPT entries + header (the rest is unused)
//! ```
//! Zero blocks are not written, so the `.img` is a sparse file.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use gpt::disk::LogicalBlockSize;
use gpt::mbr::ProtectiveMBR;
use gpt::partition::Partition;
use gpt::partition_types;

use crate::ext4::DATA_LABEL;

pub const SECTOR: u64 = 512;
const MIB: u64 = 1 << 20;
pub const ESP_NAME: &str = "EFI System Partition";

#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    #[error("writing disk image {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("writing the GPT of {}: {message}", path.display())]
    Gpt { path: PathBuf, message: String },
}

/// Where each partition lives, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub esp_offset: u64,
    pub esp_size: u64,
    pub data_offset: u64,
    pub data_size: u64,
    pub total: u64,
}

impl Layout {
    pub fn new(esp_mib: u64, data_mib: u64) -> Self {
        let esp_offset = MIB;
        let data_offset = esp_offset + esp_mib * MIB;
        Self {
            esp_offset,
            esp_size: esp_mib * MIB,
            data_offset,
            data_size: data_mib * MIB,
            total: data_offset + data_mib * MIB + MIB,
        }
    }
}

/// Ids written into the partition table.
pub struct DiskIds {
    pub disk: uuid::Uuid,
    pub esp: uuid::Uuid,
    pub data: uuid::Uuid,
}

/// Writes the disk image at `path` from the ESP bytes and the ext4 file.
pub fn write_disk(
    path: &Path,
    layout: &Layout,
    esp: &[u8],
    data_fs: &Path,
    ids: &DiskIds,
) -> Result<(), DiskError> {
    let io_err = |source| DiskError::Io {
        path: path.into(),
        source,
    };
    let _ = std::fs::remove_file(path);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(io_err)?;
    file.set_len(layout.total).map_err(io_err)?;
    write_sparse(&mut file, layout.esp_offset, &mut &esp[..]).map_err(io_err)?;
    let mut data = File::open(data_fs).map_err(|source| DiskError::Io {
        path: data_fs.into(),
        source,
    })?;
    write_sparse(&mut file, layout.data_offset, &mut data).map_err(io_err)?;

    let gpt_err = |e: &dyn std::fmt::Display| DiskError::Gpt {
        path: path.into(),
        message: e.to_string(),
    };
    let mut disk = gpt::GptConfig::new()
        .writable(true)
        .logical_block_size(LogicalBlockSize::Lb512)
        .create_from_device(file, Some(ids.disk))
        .map_err(|e| gpt_err(&e))?;
    let lba = |bytes: u64| bytes / SECTOR;
    let partitions = BTreeMap::from([
        (
            1,
            Partition {
                part_type_guid: partition_types::EFI,
                part_guid: ids.esp,
                first_lba: lba(layout.esp_offset),
                last_lba: lba(layout.esp_offset + layout.esp_size) - 1,
                flags: 0,
                name: ESP_NAME.into(),
            },
        ),
        (
            2,
            Partition {
                part_type_guid: partition_types::LINUX_FS,
                part_guid: ids.data,
                first_lba: lba(layout.data_offset),
                last_lba: lba(layout.data_offset + layout.data_size) - 1,
                flags: 0,
                name: DATA_LABEL.into(),
            },
        ),
    ]);
    disk.update_partitions(partitions)
        .map_err(|e| gpt_err(&e))?;
    let mut file = disk.write().map_err(|e| gpt_err(&e))?;
    let sectors = u32::try_from(lba(layout.total) - 1).unwrap_or(u32::MAX);
    ProtectiveMBR::with_lb_size(sectors)
        .overwrite_lba0(&mut file)
        .map_err(|e| gpt_err(&e))?;
    file.sync_all().map_err(io_err)?;
    Ok(())
}

/// Copies `src` to `file` at `offset`, seeking over all-zero blocks.
fn write_sparse(file: &mut File, offset: u64, src: &mut dyn Read) -> io::Result<()> {
    const BLOCK: usize = 64 * 1024;
    let mut buf = vec![0u8; BLOCK];
    let mut pos = offset;
    loop {
        let n = read_full(src, &mut buf)?;
        if n == 0 {
            return Ok(());
        }
        if buf[..n].iter().any(|b| *b != 0) {
            file.seek(SeekFrom::Start(pos))?;
            file.write_all(&buf[..n])?;
        }
        pos += n as u64;
    }
}

fn read_full(src: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match src.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_mib_aligned() {
        let l = Layout::new(64, 256);
        assert_eq!(l.esp_offset, 1 << 20);
        assert_eq!(l.data_offset, 65 << 20);
        assert_eq!(l.total, (64 + 256 + 2) << 20);
    }

    #[test]
    fn partition_table_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::write(&data, vec![7u8; 4096]).unwrap();
        let img = dir.path().join("disk.img");
        let l = Layout::new(2, 3);
        let ids = DiskIds {
            disk: uuid::Uuid::from_u128(1),
            esp: uuid::Uuid::from_u128(2),
            data: uuid::Uuid::from_u128(3),
        };
        write_disk(&img, &l, &[1u8; 512], &data, &ids).unwrap();
        let disk = gpt::GptConfig::new().open(&img).unwrap();
        assert_eq!(*disk.guid(), ids.disk);
        let p = disk.partitions();
        assert_eq!(p[&1].name, ESP_NAME);
        assert_eq!(p[&2].name, DATA_LABEL);
        assert_eq!(p[&2].first_lba, 3 * 2048);
        let bytes = std::fs::read(&img).unwrap();
        assert_eq!(bytes[(1 << 20) as usize], 1);
        assert_eq!(bytes[(3 << 20) as usize], 7);
    }
}
