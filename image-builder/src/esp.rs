//! The EFI system partition: FAT32 holding `\EFI\BOOT\BOOTX64.EFI`, the
//! removable-media path firmware boots without any NVRAM boot entry.

use std::io::{self, Cursor, Write};

use fatfs::{
    Date, DateTime, FatType, FileSystem, FormatVolumeOptions, FsOptions, Time, TimeProvider,
};

use crate::epoch::civil_from_unix;

pub const BOOT_PATH: &str = "EFI/BOOT/BOOTX64.EFI";
const LABEL: [u8; 11] = *b"ESP        ";
/// FAT32 needs at least 65525 clusters; 512-byte clusters reach that from 33 MiB.
const BYTES_PER_CLUSTER: u32 = 512;

#[derive(Debug, thiserror::Error)]
pub enum EspError {
    #[error("formatting the {size_mib} MiB ESP as FAT32: {source}")]
    Format { size_mib: u64, source: io::Error },
    #[error("writing {path} ({len} bytes) to the {size_mib} MiB ESP: {source}. Raise disk.esp_mib in appliance.toml")]
    Write {
        path: &'static str,
        len: usize,
        size_mib: u64,
        source: io::Error,
    },
}

/// File timestamps for every entry: the build's epoch, not the clock.
#[derive(Debug)]
struct FixedTime(DateTime);

impl TimeProvider for FixedTime {
    fn get_current_date(&self) -> Date {
        self.0.date
    }
    fn get_current_date_time(&self) -> DateTime {
        self.0
    }
}

fn fat_time(epoch: u64) -> DateTime {
    // FAT stores 1980..=2107; clamp outside it.
    let (y, mo, d, h, mi, s) = civil_from_unix(epoch);
    let clamp = |v: u32| u16::try_from(v).unwrap_or(0);
    let (y, mo, d) = match y {
        ..=1979 => (1980, 1, 1),
        2108.. => (2107, 12, 31),
        y => (u16::try_from(y).unwrap_or(1980), clamp(mo), clamp(d)),
    };
    DateTime {
        date: Date {
            year: y,
            month: mo,
            day: d,
        },
        time: Time {
            hour: clamp(h),
            min: clamp(mi),
            sec: clamp(s),
            millis: 0,
        },
    }
}

/// Builds the ESP image in memory: `size_mib` MiB with `efi` as the boot file.
pub fn build_esp(
    size_mib: u64,
    volume_id: u32,
    epoch: u64,
    efi: &[u8],
) -> Result<Vec<u8>, EspError> {
    let len = usize::try_from(size_mib << 20).map_err(|_| EspError::Format {
        size_mib,
        source: io::Error::other("size does not fit in memory"),
    })?;
    let mut storage = Cursor::new(vec![0u8; len]);
    fatfs::format_volume(
        &mut storage,
        FormatVolumeOptions::new()
            .fat_type(FatType::Fat32)
            .bytes_per_cluster(BYTES_PER_CLUSTER)
            .volume_id(volume_id)
            .volume_label(LABEL),
    )
    .map_err(|source| EspError::Format { size_mib, source })?;
    storage.set_position(0);
    // fatfs wants a 'static provider; one small leak per build.
    let time: &'static FixedTime = Box::leak(Box::new(FixedTime(fat_time(epoch))));
    let write_err = |path, source| EspError::Write {
        path,
        len: efi.len(),
        size_mib,
        source,
    };
    {
        let fs = FileSystem::new(&mut storage, FsOptions::new().time_provider(time))
            .map_err(|source| EspError::Format { size_mib, source })?;
        let root = fs.root_dir();
        root.create_dir("EFI")
            .and_then(|d| d.create_dir("BOOT"))
            .map_err(|e| write_err("EFI/BOOT", e))?;
        let mut file = root
            .create_file(BOOT_PATH)
            .map_err(|e| write_err(BOOT_PATH, e))?;
        file.truncate().map_err(|e| write_err(BOOT_PATH, e))?;
        file.write_all(efi).map_err(|e| write_err(BOOT_PATH, e))?;
        file.flush().map_err(|e| write_err(BOOT_PATH, e))?;
        drop(file);
        drop(root);
        // Counting free clusters makes fatfs record the count in FSInfo on
        // unmount; left "unknown", fsck.fat flags it.
        fs.stats().map_err(|e| write_err(BOOT_PATH, e))?;
        fs.unmount().map_err(|e| write_err(BOOT_PATH, e))?;
    }
    let mut image = storage.into_inner();
    fix_dotdot_to_root(&mut image).map_err(|e| write_err("EFI", e))?;
    Ok(image)
}

/// fatfs 0.3.6 points the ".." entry of a directory in the root at the
/// root's cluster; FAT32 requires 0 there ("the root"), and fsck.fat
/// reports it. Rewrites those entries in place.
fn fix_dotdot_to_root(image: &mut [u8]) -> io::Result<()> {
    let bad = |m: &str| io::Error::new(io::ErrorKind::InvalidData, m.to_string());
    let u16_at = |d: &[u8], o: usize| d.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let u32_at = |d: &[u8], o: usize| {
        d.get(o..o + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let bytes_per_sector = usize::from(u16_at(image, 11).ok_or_else(|| bad("no boot sector"))?);
    let sectors_per_cluster = usize::from(image[13]);
    let reserved = usize::from(u16_at(image, 14).ok_or_else(|| bad("no boot sector"))?);
    let fats = usize::from(image[16]);
    let fat_sectors = u32_at(image, 36).ok_or_else(|| bad("no boot sector"))? as usize;
    let root_cluster = u32_at(image, 44).ok_or_else(|| bad("no boot sector"))?;
    let cluster_len = bytes_per_sector * sectors_per_cluster;
    let fat_offset = reserved * bytes_per_sector;
    let data_offset = (reserved + fats * fat_sectors) * bytes_per_sector;
    let cluster_offset = |c: u32| data_offset + (c as usize - 2) * cluster_len;

    // Directories listed in the root, following the root's cluster chain.
    let mut subdirs = Vec::new();
    let mut cluster = root_cluster;
    for _ in 0..1024 {
        let start = cluster_offset(cluster);
        let entries = image
            .get(start..start + cluster_len)
            .ok_or_else(|| bad("root directory outside the image"))?;
        for e in entries.chunks_exact(32) {
            let is_dir = e[11] & 0x10 != 0 && e[11] != 0x0f;
            if e[0] != 0 && e[0] != 0xe5 && e[0] != b'.' && is_dir {
                let hi = u32::from(u16::from_le_bytes([e[20], e[21]]));
                let lo = u32::from(u16::from_le_bytes([e[26], e[27]]));
                subdirs.push((hi << 16) | lo);
            }
        }
        let next = u32_at(image, fat_offset + cluster as usize * 4)
            .ok_or_else(|| bad("FAT outside the image"))?
            & 0x0fff_ffff;
        if !(2..0x0fff_fff8).contains(&next) {
            break;
        }
        cluster = next;
    }
    for dir in subdirs {
        // ".." is the second entry of a directory's first cluster.
        let entry = cluster_offset(dir) + 32;
        let e = image
            .get_mut(entry..entry + 32)
            .ok_or_else(|| bad("directory outside the image"))?;
        let hi = u32::from(u16::from_le_bytes([e[20], e[21]]));
        let lo = u32::from(u16::from_le_bytes([e[26], e[27]]));
        if &e[..2] == b".." && (hi << 16 | lo) == root_cluster {
            e[20..22].fill(0);
            e[26..28].fill(0);
        }
    }
    Ok(())
}

/// Reads a file back from an ESP image (for `inspect` and tests).
pub fn read_file(esp: &[u8], path: &str) -> io::Result<Vec<u8>> {
    let fs = FileSystem::new(Cursor::new(esp.to_vec()), FsOptions::new())?;
    let mut f = fs.root_dir().open_file(path)?;
    let mut out = Vec::new();
    io::copy(&mut f, &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn esp_holds_the_boot_file_and_is_reproducible() {
        let efi: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let a = build_esp(40, 0x1234_5678, 1_700_000_000, &efi).unwrap();
        let b = build_esp(40, 0x1234_5678, 1_700_000_000, &efi).unwrap();
        assert!(a == b, "two builds differ");
        assert_eq!(read_file(&a, BOOT_PATH).unwrap(), efi);
        let fs = FileSystem::new(Cursor::new(a.clone()), FsOptions::new()).unwrap();
        assert_eq!(fs.fat_type(), FatType::Fat32);
        assert_eq!(fs.volume_id(), 0x1234_5678);
    }

    #[test]
    fn too_small_esp_names_the_fix() {
        let err = build_esp(34, 1, 0, &vec![1u8; 40 << 20]).unwrap_err();
        assert!(err.to_string().contains("esp_mib"), "{err}");
    }
}
