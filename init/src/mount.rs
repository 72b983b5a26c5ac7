//! The kernel filesystems every Linux userland expects.

use std::path::Path;

use nix::mount::{mount, MsFlags};

/// (source, target, fstype, flags, data). Order matters: /dev before
/// /dev/pts.
const MOUNTS: [(&str, &str, &str, MsFlags, &str); 6] = [
    (
        "proc",
        "/proc",
        "proc",
        MsFlags::MS_NOSUID
            .union(MsFlags::MS_NODEV)
            .union(MsFlags::MS_NOEXEC),
        "",
    ),
    (
        "sysfs",
        "/sys",
        "sysfs",
        MsFlags::MS_NOSUID
            .union(MsFlags::MS_NODEV)
            .union(MsFlags::MS_NOEXEC),
        "",
    ),
    (
        "devtmpfs",
        "/dev",
        "devtmpfs",
        MsFlags::MS_NOSUID,
        "mode=0755",
    ),
    (
        "devpts",
        "/dev/pts",
        "devpts",
        MsFlags::MS_NOSUID.union(MsFlags::MS_NOEXEC),
        "gid=5,mode=0620,ptmxmode=0666",
    ),
    (
        "tmpfs",
        "/run",
        "tmpfs",
        MsFlags::MS_NOSUID.union(MsFlags::MS_NODEV),
        "mode=0755",
    ),
    (
        "tmpfs",
        "/tmp",
        "tmpfs",
        MsFlags::MS_NOSUID.union(MsFlags::MS_NODEV),
        "mode=1777",
    ),
];

/// A mount that failed: (target, reason).
pub type MountFailure = (String, String);

/// Mounts everything it can; returns what failed (the caller reports it and
/// carries on: a missing /dev/pts should not stop the load balancer).
pub fn mount_kernel_filesystems() -> Vec<MountFailure> {
    let mut failures = Vec::new();
    for (source, target, fstype, flags, data) in MOUNTS {
        if let Err(e) = std::fs::create_dir_all(target) {
            failures.push((target.to_string(), format!("mkdir: {e}")));
            continue;
        }
        if is_mounted(target) {
            continue;
        }
        let data = if data.is_empty() { None } else { Some(data) };
        if let Err(e) = mount(Some(source), target, Some(fstype), flags, data) {
            failures.push((target.to_string(), e.desc().to_string()));
        }
    }
    failures
}

/// Whether `target` is a mount point, from /proc/self/mounts (once /proc
/// is mounted; before that nothing is).
fn is_mounted(target: &str) -> bool {
    if !Path::new("/proc/self/mounts").exists() {
        return false;
    }
    std::fs::read_to_string("/proc/self/mounts")
        .map(|m| {
            m.lines()
                .any(|l| l.split_whitespace().nth(1) == Some(target))
        })
        .unwrap_or(false)
}
