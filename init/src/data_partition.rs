//! The data partition: the GPT partition named `appliance-data`, ext4,
//! mounted at /var/lib/appliance for state and logs that outlive a reboot.
//!
//! There is no fsck in the guest: ext4's journal replays on mount, which is
//! what recovers from a hard power-off. If the partition is missing or will
//! not mount, the appliance runs with a tmpfs there and says so: it still
//! balances traffic, it only forgets state at reboot.

use std::fs::{DirBuilder, Permissions};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, Instant};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use rootfs::paths::{DATA_MOUNT, DATA_PARTLABEL};

/// NVMe probes asynchronously: give the partition this long to appear.
const DEVICE_WAIT: Duration = Duration::from_secs(10);
/// The directories under the mount that hold secrets: the log (`log/`),
/// the appliance store with password hashes, the VRRP key and
/// `lbd.config` (`config/`), lbd's state and last good config (`lbd/`),
/// the web console's self-signed certificate and key (`tls/`).
pub const PRIVATE_DIRS: [&str; 4] = ["log", "config", "lbd", crate::console_tls::DATA_SUBDIR];
/// Root only.
pub const PRIVATE_DIR_MODE: u32 = 0o700;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataMount {
    /// The partition, mounted read-write from this device.
    Disk { device: String },
    /// A tmpfs, because of the reason given.
    Ram { reason: String },
}

/// Finds and mounts the data partition, falling back to a tmpfs.
pub fn mount_data() -> DataMount {
    if let Err(e) = std::fs::create_dir_all(DATA_MOUNT) {
        return DataMount::Ram {
            reason: format!("mkdir {DATA_MOUNT}: {e}"),
        };
    }
    let device = match wait_for_partition(DATA_PARTLABEL, DEVICE_WAIT) {
        Some(d) => d,
        None => return mount_ram(format!("no partition named {DATA_PARTLABEL:?} found")),
    };
    let flags = MsFlags::MS_NOATIME | MsFlags::MS_NODEV | MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC;
    match mount(
        Some(device.as_str()),
        DATA_MOUNT,
        Some("ext4"),
        flags,
        Some("errors=remount-ro"),
    ) {
        Ok(()) => DataMount::Disk { device },
        Err(e) => mount_ram(format!("mounting {device} (ext4): {e}")),
    }
}

fn mount_ram(reason: String) -> DataMount {
    let flags = MsFlags::MS_NODEV | MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC;
    let _ = mount(
        Some("tmpfs"),
        DATA_MOUNT,
        Some("tmpfs"),
        flags,
        Some("mode=0755"),
    );
    DataMount::Ram { reason }
}

/// Creates [`PRIVATE_DIRS`] under `root` with [`PRIVATE_DIR_MODE`], and
/// narrows them if an older image left them open to all. Returns one
/// problem per directory that could not be made private.
pub fn make_private_dirs(root: &Path) -> Vec<String> {
    PRIVATE_DIRS
        .iter()
        .filter_map(|name| {
            let dir = root.join(name);
            DirBuilder::new()
                .recursive(true)
                .mode(PRIVATE_DIR_MODE)
                .create(&dir)
                .and_then(|()| {
                    std::fs::set_permissions(&dir, Permissions::from_mode(PRIVATE_DIR_MODE))
                })
                .err()
                .map(|e| format!("{}: {e}", dir.display()))
        })
        .collect()
}

/// Unmounts the data partition at shutdown; if something still holds it,
/// remounts it read-only so the journal is clean.
pub fn unmount_data() -> Result<(), String> {
    match umount2(DATA_MOUNT, MntFlags::empty()) {
        Ok(()) => Ok(()),
        Err(e) => {
            let ro = MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
            mount(None::<&str>, DATA_MOUNT, None::<&str>, ro, None::<&str>)
                .map_err(|e2| format!("unmount: {e}; remount read-only: {e2}"))?;
            Err(format!("unmount: {e}; remounted read-only instead"))
        }
    }
}

/// Polls /sys/class/block for a partition whose PARTNAME is `label`.
fn wait_for_partition(label: &str, timeout: Duration) -> Option<String> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(dev) = find_partition(Path::new("/sys/class/block"), label) {
            return Some(dev);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The `/dev` path of the block device whose uevent says `PARTNAME=label`.
pub fn find_partition(sys_block: &Path, label: &str) -> Option<String> {
    let mut names: Vec<String> = std::fs::read_dir(sys_block)
        .ok()?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names.into_iter().find_map(|name| {
        let uevent = std::fs::read_to_string(sys_block.join(&name).join("uevent")).ok()?;
        let mut devname = None;
        let mut matches = false;
        for line in uevent.lines() {
            if let Some(v) = line.strip_prefix("DEVNAME=") {
                devname = Some(v.to_string());
            }
            if line.strip_prefix("PARTNAME=") == Some(label) {
                matches = true;
            }
        }
        matches.then(|| format!("/dev/{}", devname.unwrap_or(name)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Input: a data partition with `log/` left 0755 by an older image and
    /// no `config/` or `lbd/`. Output: all three exist, mode 0700.
    #[test]
    fn private_dirs_are_made_root_only() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("log")).unwrap();
        std::fs::set_permissions(root.path().join("log"), Permissions::from_mode(0o755)).unwrap();
        assert_eq!(make_private_dirs(root.path()), Vec::<String>::new());
        for name in PRIVATE_DIRS {
            let mode = std::fs::metadata(root.path().join(name))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o700, "{name}");
        }
    }

    #[test]
    fn partition_found_by_partname() {
        let dir = tempfile::tempdir().unwrap();
        for (name, uevent) in [
            ("nvme0n1", "MAJOR=259\nDEVNAME=nvme0n1\nDEVTYPE=disk\n"),
            (
                "nvme0n1p1",
                "DEVNAME=nvme0n1p1\nDEVTYPE=partition\nPARTN=1\nPARTNAME=EFI System Partition\n",
            ),
            (
                "nvme0n1p2",
                "DEVNAME=nvme0n1p2\nDEVTYPE=partition\nPARTN=2\nPARTNAME=appliance-data\n",
            ),
        ] {
            std::fs::create_dir(dir.path().join(name)).unwrap();
            std::fs::write(dir.path().join(name).join("uevent"), uevent).unwrap();
        }
        assert_eq!(
            find_partition(dir.path(), "appliance-data").as_deref(),
            Some("/dev/nvme0n1p2")
        );
        assert_eq!(find_partition(dir.path(), "other"), None);
    }
}
