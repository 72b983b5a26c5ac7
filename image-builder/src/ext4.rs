//! The data partition: an empty ext4 filesystem labelled `appliance-data`,
//! made by e2fsprogs' `mke2fs` on a plain file (no root, no loop device).
//!
//! Reproducible: the UUID and directory hash seed come from the build's
//! ids, `E2FSPROGS_FAKE_TIME` replaces the clock, and a private
//! `mke2fs.conf` replaces the host's so another host's defaults cannot
//! change the features.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub const DATA_LABEL: &str = rootfs::paths::DATA_PARTLABEL;

/// Features the Debian 6.1 kernel mounts read-write; the journal lets the
/// guest recover after a hard power-off without fsck.
const MKE2FS_CONF: &str = "[defaults]
\tbase_features = sparse_super,large_file,filetype,resize_inode,dir_index,ext_attr
\tdefault_mntopts = acl,user_xattr
\tblocksize = 4096
\tinode_size = 256
\tinode_ratio = 16384
[fs_types]
\text4 = {
\t\tfeatures = has_journal,extent,huge_file,flex_bg,metadata_csum,64bit,dir_nlink,extra_isize
\t}
";

#[derive(Debug, thiserror::Error)]
pub enum Ext4Error {
    #[error("running mke2fs: {source}. Install e2fsprogs: apt-get install e2fsprogs")]
    Spawn { source: std::io::Error },
    #[error("mke2fs failed on {}: {stderr}", path.display())]
    Failed { path: PathBuf, stderr: String },
    #[error("writing {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Writes an ext4 filesystem of `size_mib` MiB to the file `path`.
pub fn make_ext4(
    path: &Path,
    size_mib: u64,
    uuid: uuid::Uuid,
    hash_seed: uuid::Uuid,
    epoch: u64,
) -> Result<(), Ext4Error> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Ext4Error::Io { path, source }
    };
    let conf = path.with_extension("mke2fs.conf");
    std::fs::write(&conf, MKE2FS_CONF).map_err(io(&conf))?;
    let _ = std::fs::remove_file(path);
    let out = Command::new("mke2fs")
        .env("MKE2FS_CONFIG", &conf)
        .env("E2FSPROGS_FAKE_TIME", epoch.to_string())
        .args(["-q", "-F", "-t", "ext4", "-L", DATA_LABEL, "-m", "1"])
        .arg("-U")
        .arg(uuid.to_string())
        .arg("-E")
        .arg(format!(
            "hash_seed={hash_seed},root_owner=0:0,lazy_itable_init=0,lazy_journal_init=0,nodiscard"
        ))
        .arg(path)
        .arg(format!("{size_mib}M"))
        .stdin(Stdio::null())
        .output()
        .map_err(|source| Ext4Error::Spawn { source })?;
    let _ = std::fs::remove_file(&conf);
    if !out.status.success() {
        return Err(Ext4Error::Failed {
            path: path.into(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(())
}
