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
        fs.unmount().map_err(|e| write_err(BOOT_PATH, e))?;
    }
    Ok(storage.into_inner())
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
