//! The one timestamp every artifact uses: `SOURCE_DATE_EPOCH`, else the
//! commit time of the checked-out source, never the wall clock.

use std::path::Path;
use std::process::Command;

#[derive(Debug, thiserror::Error)]
pub enum EpochError {
    #[error("SOURCE_DATE_EPOCH={value:?} is not a whole number of seconds since 1970: unset it or fix it")]
    Invalid { value: String },
}

/// Where the build's timestamp came from, for the summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpochSource {
    Environment,
    GitCommit,
    /// Neither set nor in git: 1980-01-01, the earliest FAT can store.
    Fallback,
}

pub const FALLBACK_EPOCH: u64 = 315_532_800;

pub fn source_date_epoch(workspace: &Path) -> Result<(u64, EpochSource), EpochError> {
    if let Ok(value) = std::env::var("SOURCE_DATE_EPOCH") {
        let secs = value
            .trim()
            .parse()
            .map_err(|_| EpochError::Invalid { value })?;
        return Ok((secs, EpochSource::Environment));
    }
    let git = Command::new("git")
        .args(["log", "-1", "--format=%ct"])
        .current_dir(workspace)
        .stderr(std::process::Stdio::null())
        .output();
    if let Ok(out) = git {
        if let Ok(secs) = String::from_utf8_lossy(&out.stdout).trim().parse() {
            if out.status.success() {
                return Ok((secs, EpochSource::GitCommit));
            }
        }
    }
    Ok((FALLBACK_EPOCH, EpochSource::Fallback))
}

pub use rootfs::civil::civil_from_unix;
