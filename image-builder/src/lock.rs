//! `appliance.lock`: the exact Debian packages a build uses.
//!
//! The archive moves on (a kernel security update replaces
//! `linux-image-6.1.0-56-cloud-amd64` by `-57` within days), so "same
//! commit, same bytes" needs the packages pinned. The lock sits next to
//! `appliance.toml` and records, for the kernel and the UEFI stub, what
//! appliance.toml asked for, the package apt resolved it to, its exact
//! version and the SHA-256 of its `.deb`.
//!
//! - `build` takes the pinned version (from the cache, else from the
//!   archive) and checks its SHA-256; it pins what is not pinned yet (a new
//!   checkout without a lock, or a package changed in appliance.toml) and
//!   says so.
//! - `lock --update` moves the pins to the archive's newest versions on
//!   purpose and prints what changed.
//! - A pinned version that the archive no longer serves is an error that
//!   names the ways out: the `.deb` in the cache or appliance.toml, or
//!   `lock --update`.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::apt::AptError;

/// The lock's file name, in the directory of `appliance.toml`.
pub const LOCK_FILE: &str = "appliance.lock";

const HEADER: &str = "\
# The exact packages `image-builder build` uses, so a commit builds the same
# bytes on any day and machine. Move it on purpose with
# `image-builder lock --update` (it prints what changed) and commit it.
";

/// One pinned package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pinned {
    /// What appliance.toml asks for (`linux-image-cloud-amd64`).
    pub requested: String,
    /// The package that holds the files (`linux-image-6.1.0-57-cloud-amd64`).
    pub package: String,
    pub version: String,
    pub architecture: String,
    /// SHA-256 of the `.deb`, lowercase hex.
    pub sha256: String,
}

/// The lock file's contents.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lock {
    /// The kernel, unless appliance.toml names a local `.deb`.
    pub kernel: Option<Pinned>,
    /// The package holding systemd-stub, unless a local file is named.
    pub stub: Option<Pinned>,
}

/// Which pin of the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Kernel,
    Stub,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Kernel => "kernel",
            Role::Stub => "stub",
        }
    }
}

/// What the archive offers for a package today.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub package: String,
    pub version: String,
    pub architecture: String,
    /// From the archive's index.
    pub sha256: String,
}

/// A pinned package could not be had.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("the archive does not serve it")]
    NotServed,
    #[error(transparent)]
    Apt(#[from] AptError),
}

/// Where packages come from: apt in the builder, a table in tests.
pub trait Archive {
    /// Updates the package lists.
    fn refresh(&self) -> Result<(), AptError>;
    /// The newest version of `requested`; with `follow_kernel` a kernel
    /// metapackage is followed to its versioned `linux-image-*` package.
    fn candidate(&self, requested: &str, follow_kernel: bool) -> Result<Candidate, AptError>;
    /// Where `pin` is (or would be) in the cache.
    fn cached(&self, pin: &Pinned) -> PathBuf;
    /// The `.deb` of exactly `pin`, downloaded unless cached.
    fn fetch(&self, pin: &Pinned) -> Result<PathBuf, FetchError>;
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("reading {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("{}: {message} (fix it, or delete it and run `image-builder lock --update` to write it anew)", path.display())]
    Parse { path: PathBuf, message: String },
    #[error("writing {}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
    #[error("resolving {role} package {requested}: {source}")]
    Resolve {
        role: &'static str,
        requested: String,
        source: AptError,
    },
    #[error("downloading the pinned {role} {} {}: {source}", pin.package, pin.version)]
    Fetch {
        role: &'static str,
        pin: Box<Pinned>,
        source: AptError,
    },
    #[error(
        "appliance.lock pins the {role} {} {}, which the archive no longer serves{newer}.\n\
         Either put that exact package (sha256 {}) at {} or name it in appliance.toml \
         (`deb = \"path/to/it.deb\"`), or move the lock on purpose: `image-builder lock --update` \
         (the image then changes)",
        pin.package, pin.version, pin.sha256, cache_path.display()
    )]
    NotServed {
        role: &'static str,
        pin: Box<Pinned>,
        cache_path: PathBuf,
        /// ", which it replaced by ..." when the archive knows a newer one.
        newer: String,
    },
    #[error(
        "{} has sha256 {actual}, but appliance.lock pins {} {} with sha256 {}: \
         the file is damaged or not the pinned build; delete it to download it again, \
         or run `image-builder lock --update` if the archive rebuilt the package on purpose",
        path.display(), pin.package, pin.version, pin.sha256
    )]
    Mismatch {
        path: PathBuf,
        pin: Box<Pinned>,
        actual: String,
    },
    #[error("hashing {}: {source}", path.display())]
    Hash { path: PathBuf, source: io::Error },
}

impl Lock {
    /// The lock beside `config` (appliance.toml).
    pub fn path_for(config: &Path) -> PathBuf {
        match config.parent().filter(|p| !p.as_os_str().is_empty()) {
            Some(dir) => dir.join(LOCK_FILE),
            None => PathBuf::from(LOCK_FILE),
        }
    }

    /// Reads the lock; a missing file is an empty lock.
    pub fn load(path: &Path) -> Result<Self, LockError> {
        match std::fs::read_to_string(path) {
            Ok(text) => toml::from_str(&text).map_err(|e| LockError::Parse {
                path: path.into(),
                message: e.to_string().trim_end().to_string(),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(LockError::Read {
                path: path.into(),
                source,
            }),
        }
    }

    pub fn to_text(&self) -> String {
        let body = toml::to_string(self).expect("a lock of strings always serialises");
        format!("{HEADER}\n{body}")
    }

    /// Writes atomically (temp file, rename), so an interrupted write never
    /// leaves half a lock.
    pub fn save(&self, path: &Path) -> Result<(), LockError> {
        let err = |source| LockError::Write {
            path: path.into(),
            source,
        };
        let tmp = path.with_extension("lock.tmp");
        std::fs::write(&tmp, self.to_text()).map_err(err)?;
        std::fs::rename(&tmp, path).map_err(err)
    }

    pub fn get(&self, role: Role) -> Option<&Pinned> {
        match role {
            Role::Kernel => self.kernel.as_ref(),
            Role::Stub => self.stub.as_ref(),
        }
    }

    pub fn set(&mut self, role: Role, pin: Option<Pinned>) {
        match role {
            Role::Kernel => self.kernel = pin,
            Role::Stub => self.stub = pin,
        }
    }
}

/// How one pin moved, for the summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Unchanged,
    /// Pinned for the first time (or for another requested package).
    Added,
    Moved {
        from: Pinned,
    },
    Removed {
        from: Pinned,
    },
}

impl fmt::Display for Pinned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.package, self.version)
    }
}

/// One line of `lock --update`'s or `build`'s report.
pub fn describe(role: Role, now: Option<&Pinned>, change: &Change) -> Option<String> {
    let role = role.name();
    match (change, now) {
        (Change::Unchanged, Some(p)) => Some(format!("{role:<6} {p} (unchanged)")),
        (Change::Added, Some(p)) => Some(format!("{role:<6} {p} (newly pinned)")),
        (Change::Moved { from }, Some(p)) => Some(format!("{role:<6} {from} -> {p}")),
        (Change::Removed { from }, _) => {
            Some(format!("{role:<6} {from} -> not pinned (a local file)"))
        }
        _ => None,
    }
}

/// The `.deb` for `role`: the pinned one when the lock has a pin for
/// `requested`, else the archive's newest, pinned now. Returns the path
/// and how the pin changed; the caller writes the lock when it did.
pub fn take(
    archive: &dyn Archive,
    lock: &mut Lock,
    role: Role,
    requested: &str,
) -> Result<(PathBuf, Change), LockError> {
    let pin = match lock.get(role) {
        Some(p) if p.requested == requested => p.clone(),
        old => {
            let old = old.cloned();
            let pin = pin_newest(archive, role, requested)?;
            let path = fetch_verified(archive, role, &pin)?;
            lock.set(role, Some(pin));
            let change = match old {
                Some(from) => Change::Moved { from },
                None => Change::Added,
            };
            return Ok((path, change));
        }
    };
    Ok((fetch_verified(archive, role, &pin)?, Change::Unchanged))
}

/// `lock --update` for one role: refreshes nothing itself (the caller
/// refreshes the lists once), pins the newest version, downloads and
/// checks it.
pub fn update(
    archive: &dyn Archive,
    lock: &mut Lock,
    role: Role,
    requested: Option<&str>,
) -> Result<Change, LockError> {
    let old = lock.get(role).cloned();
    let Some(requested) = requested else {
        lock.set(role, None);
        return Ok(match old {
            Some(from) => Change::Removed { from },
            None => Change::Unchanged,
        });
    };
    let pin = pin_newest(archive, role, requested)?;
    fetch_verified(archive, role, &pin)?;
    lock.set(role, Some(pin.clone()));
    Ok(match old {
        Some(from) if from == pin => Change::Unchanged,
        Some(from) => Change::Moved { from },
        None => Change::Added,
    })
}

fn pin_newest(archive: &dyn Archive, role: Role, requested: &str) -> Result<Pinned, LockError> {
    let c = archive
        .candidate(requested, role == Role::Kernel)
        .map_err(|source| LockError::Resolve {
            role: role.name(),
            requested: requested.into(),
            source,
        })?;
    Ok(Pinned {
        requested: requested.into(),
        package: c.package,
        version: c.version,
        architecture: c.architecture,
        sha256: c.sha256.to_ascii_lowercase(),
    })
}

fn fetch_verified(archive: &dyn Archive, role: Role, pin: &Pinned) -> Result<PathBuf, LockError> {
    let path = match archive.fetch(pin) {
        Ok(path) => path,
        Err(FetchError::NotServed) => {
            let newer = match archive.candidate(&pin.requested, role == Role::Kernel) {
                Ok(c) if c.version != pin.version || c.package != pin.package => {
                    format!(" (it now has {} {})", c.package, c.version)
                }
                _ => String::new(),
            };
            return Err(LockError::NotServed {
                role: role.name(),
                pin: Box::new(pin.clone()),
                cache_path: archive.cached(pin),
                newer,
            });
        }
        Err(FetchError::Apt(source)) => {
            return Err(LockError::Fetch {
                role: role.name(),
                pin: Box::new(pin.clone()),
                source,
            })
        }
    };
    let actual = sha256_file(&path)?;
    if actual != pin.sha256 {
        return Err(LockError::Mismatch {
            path,
            pin: Box::new(pin.clone()),
            actual,
        });
    }
    Ok(path)
}

/// SHA-256 of a file, lowercase hex.
pub fn sha256_file(path: &Path) -> Result<String, LockError> {
    let err = |source| LockError::Hash {
        path: path.into(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(err)?;
    let mut hasher = Sha256::new();
    io::copy(&mut file, &mut hasher).map_err(err)?;
    Ok(crate::build::hex(&hasher.finalize()))
}

#[cfg(test)]
#[path = "lock_tests.rs"]
mod tests;
