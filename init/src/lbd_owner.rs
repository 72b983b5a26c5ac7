//! What lbd must own now that it runs as its own uid
//! ([`crate::supervise::privileges`]): its runtime directory (the control
//! socket is created there), its state directory on the data partition,
//! and the config files init writes for it (0600, so they must be its).
//!
//! init stays root and reaches all of them anyway; nothing else runs.

use std::io;
use std::os::unix::fs::{chown, lchown, PermissionsExt};
use std::path::Path;

use crate::lbd_config::{RUN_DIR, STATE_DIR};
use crate::supervise::{LBD_GID, LBD_UID};

/// lbd's directories: its own, no one else's (the status screen and
/// `lbd ctl` run as root).
const DIR_MODE: u32 = 0o750;

/// Creates lbd's runtime and state directories, owned by lbd. Returns a
/// line per problem; lbd then cannot bind its control socket or save its
/// server state, which it reports itself.
pub fn prepare_dirs() -> Vec<String> {
    [RUN_DIR, STATE_DIR]
        .iter()
        .filter_map(|dir| {
            prepare_dir(Path::new(dir), LBD_UID, LBD_GID)
                .err()
                .map(|e| format!("making {dir} lbd's (uid {LBD_UID}): {e}"))
        })
        .collect()
}

/// `dir`, created if missing, owned by `uid:gid`, mode 0750. Only the
/// directory itself: a state file a root lbd left behind stays readable
/// (0644) and lbd replaces it by a rename in its own directory.
pub fn prepare_dir(dir: &Path, uid: u32, gid: u32) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    chown(dir, Some(uid), Some(gid))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(DIR_MODE))
}

/// Gives a file init wrote for lbd to lbd. `lchown`: lbd owns the
/// directory and could have put a symlink in the file's place since; the
/// link itself is then what changes owner, never what it points to.
pub fn hand_over(path: &Path) -> io::Result<()> {
    lchown(path, Some(LBD_UID), Some(LBD_GID))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    /// Input: a missing directory, then the same one again (a reboot with
    /// the data partition's directory left by a root lbd).
    /// Output: both times owned by 101:101, mode 0750. Needs root.
    #[test]
    fn lbd_owns_its_directories() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path().join("var/lib/appliance/lbd");
        for _ in 0..2 {
            prepare_dir(&dir, LBD_UID, LBD_GID).expect("as root");
            let meta = std::fs::metadata(&dir).expect("made");
            assert_eq!((meta.uid(), meta.gid()), (101, 101));
            assert_eq!(meta.mode() & 0o7777, 0o750);
            chown(&dir, Some(0), Some(0)).expect("back to root");
        }
    }

    /// Input: a symlink to a root file where lbd's file should be.
    /// Output: the link changes owner, the root file does not. Needs root.
    #[test]
    fn handing_over_a_symlink_never_gives_away_its_target() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let target = tmp.path().join("root-only");
        std::fs::write(&target, "secret").expect("target");
        let link = tmp.path().join("base.toml");
        std::os::unix::fs::symlink(&target, &link).expect("link");
        hand_over(&link).expect("lchown");
        let target_meta = std::fs::metadata(&target).expect("target");
        assert_eq!(target_meta.uid(), 0, "the target stays root's");
        let link_meta = std::fs::symlink_metadata(&link).expect("link");
        assert_eq!(link_meta.uid(), LBD_UID);
    }

    /// Input: a symlink at write_private's temporary name. Output: the
    /// write fails and the file it points to is untouched.
    #[test]
    fn a_planted_temporary_symlink_is_not_followed() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let target = tmp.path().join("root-only");
        std::fs::write(&target, "secret").expect("target");
        let path = tmp.path().join("base.toml");
        std::os::unix::fs::symlink(&target, path.with_extension("tmp")).expect("link");
        let err = crate::lbd_files::write_private(&path, "x = 1\n").expect_err("a symlink");
        assert_eq!(err.raw_os_error(), Some(libc::ELOOP), "{err}");
        assert_eq!(std::fs::read_to_string(&target).expect("target"), "secret");
    }

    #[test]
    fn state_dir_is_on_the_data_partition() {
        assert!(STATE_DIR.starts_with(rootfs::paths::DATA_MOUNT));
        assert!(RUN_DIR.starts_with("/run/"));
    }
}
