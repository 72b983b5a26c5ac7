//! The store: revisions of the document in one directory.
//!
//! ```text
//! <dir>/current.toml          the revision in force
//! <dir>/history/<n>.toml      earlier revisions, the last HISTORY_KEPT
//! <dir>/vsphere-seen.toml     what vSphere delivered at the last boot
//! <dir>/current.toml.damaged  a current.toml that did not read, kept
//! ```
//! A commit first copies the revision in force to `history/`, then
//! replaces `current.toml`, each atomically ([`write_atomic`]). A power cut
//! before the second replace is durable leaves the old revision in force;
//! after it, the new one. Opening never panics and never deletes a
//! revision: a `current.toml` that does not read is kept aside and the
//! newest history revision that reads is in force again.

use std::io;
use std::path::{Path, PathBuf};

use crate::diff::{diff, Diff};
use crate::document::{Document, DocumentError, Meta, Revision};
use crate::fs::{write_atomic, Fs, RealFs, TEMP_SUFFIX};
use crate::validate::{validate, Problems, Rules, ValidDocument};
use crate::vsphere::Seen;

pub const CURRENT_FILE: &str = "current.toml";
pub const HISTORY_DIR: &str = "history";
pub const SEEN_FILE: &str = "vsphere-seen.toml";
/// Where a `current.toml` that did not read is kept for inspection.
pub const DAMAGED_FILE: &str = "current.toml.damaged";
/// How many earlier revisions a commit keeps.
pub const HISTORY_KEPT: usize = 100;
/// `changed_by` of a restore.
pub const RESTORE_BY: &str = "restore";

/// Who makes a change, and when (the caller's clock: no clock reads here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Author {
    /// This node's hostname.
    pub node: String,
    /// `vsphere`, `console`, `api`, ...
    pub changed_by: String,
    /// Seconds since the Unix epoch.
    pub changed_at: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("creating the store's directory {}: {source}", path.display())]
    CreateDir { path: PathBuf, source: io::Error },
    #[error("listing {}: {source}", path.display())]
    List { path: PathBuf, source: io::Error },
    #[error("reading {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("{} is damaged ({source}); kept as {DAMAGED_FILE}, using revision {fallback} instead", path.display())]
    DamagedCurrent {
        path: PathBuf,
        fallback: u64,
        source: DocumentError,
    },
    #[error("reading {}: {source}; using revision {fallback} instead", path.display())]
    ReadCurrent {
        path: PathBuf,
        fallback: u64,
        source: io::Error,
    },
    #[error("{} is missing; using revision {fallback} from the history", path.display())]
    MissingCurrent { path: PathBuf, fallback: u64 },
    #[error("{} is damaged and skipped: {source}", path.display())]
    DamagedHistory {
        path: PathBuf,
        source: DocumentError,
    },
    #[error("{} holds revision {found}, not {expected}", path.display())]
    WrongRevision {
        path: PathBuf,
        expected: u64,
        found: u64,
    },
    #[error("{} is damaged and ignored (vSphere's values count as first seen): {message}", path.display())]
    DamagedSeen { path: PathBuf, message: String },
    #[error("writing {}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
    #[error("encoding: {source}")]
    Encode { source: DocumentError },
    #[error("removing {}: {source}", path.display())]
    Remove { path: PathBuf, source: io::Error },
    #[error("the change is based on revision {base}, but the store is at {current}: reload and apply again")]
    Stale { base: u64, current: u64 },
    #[error("no revision {revision} in the store (the history keeps the last {HISTORY_KEPT})")]
    NoSuchRevision { revision: u64 },
    #[error("revision {revision} is refused: {source}")]
    Refused { revision: u64, source: Problems },
}

/// A store just opened, and what was wrong on disk (already worked
/// around: for the console).
pub struct Opened<F: Fs = RealFs> {
    pub store: Store<F>,
    pub problems: Vec<StoreError>,
}

/// A commit that is durable, and what went wrong after (pruning).
#[derive(Debug)]
pub struct Committed {
    pub meta: Meta,
    pub warnings: Vec<StoreError>,
}

/// The store in one directory, through one filesystem.
pub struct Store<F: Fs = RealFs> {
    fs: F,
    dir: PathBuf,
    current: Revision,
    /// The highest revision number on disk, so no number is used twice.
    highest: u64,
}

impl Store<RealFs> {
    /// Opens (creating) the store in `dir` on the real filesystem.
    pub fn open(dir: &Path) -> Result<Opened<RealFs>, StoreError> {
        Self::open_with(RealFs, dir)
    }
}

impl<F: Fs> Store<F> {
    /// Opens (creating) the store in `dir`: the revision in force, falling
    /// back to the history when `current.toml` is damaged or missing. Only
    /// a directory that cannot be created or listed is an error.
    pub fn open_with(mut fs: F, dir: &Path) -> Result<Opened<F>, StoreError> {
        let history = dir.join(HISTORY_DIR);
        fs.create_dir_all(&history)
            .map_err(|source| StoreError::CreateDir {
                path: history.clone(),
                source,
            })?;
        let mut problems = remove_temps(&mut fs, dir);
        problems.extend(remove_temps(&mut fs, &history));
        let numbers = history_numbers(&fs, &history)?;
        let mut store = Self {
            fs,
            dir: dir.to_owned(),
            current: Revision::default(),
            highest: numbers.last().copied().unwrap_or(0),
        };
        let path = store.current_path();
        let failure = match store.fs.read(&path) {
            Ok(bytes) => match Revision::decode(bytes.clone()) {
                Ok(rev) => {
                    store.highest = store.highest.max(rev.meta.revision);
                    store.current = rev;
                    return Ok(Opened { store, problems });
                }
                Err(source) => Unread::Damaged(bytes, source),
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => Unread::Missing,
            Err(source) => Unread::Io(source),
        };
        store.fall_back(&numbers, failure, &mut problems);
        Ok(Opened { store, problems })
    }

    /// Puts the newest history revision that reads in force (revision 0,
    /// the empty store, when none does) and rewrites `current.toml` with
    /// it, so the next boot is clean.
    fn fall_back(&mut self, numbers: &[u64], failure: Unread, problems: &mut Vec<StoreError>) {
        let mut fallback = Revision::default();
        for &n in numbers.iter().rev() {
            match self.read_history(n) {
                Ok(rev) => {
                    fallback = rev;
                    break;
                }
                Err(e) => problems.push(e),
            }
        }
        let path = self.current_path();
        let revision = fallback.meta.revision;
        match failure {
            Unread::Damaged(bytes, source) => {
                let kept = self.dir.join(DAMAGED_FILE);
                if let Err(source) = write_atomic(&mut self.fs, &kept, &bytes) {
                    problems.push(StoreError::Write { path: kept, source });
                }
                problems.push(StoreError::DamagedCurrent {
                    path: path.clone(),
                    fallback: revision,
                    source,
                });
            }
            Unread::Missing if revision > 0 => problems.push(StoreError::MissingCurrent {
                path: path.clone(),
                fallback: revision,
            }),
            Unread::Missing => {}
            Unread::Io(source) => problems.push(StoreError::ReadCurrent {
                path: path.clone(),
                fallback: revision,
                source,
            }),
        }
        if revision > 0 {
            if let Err(e) = self.write_revision(&path, &fallback) {
                problems.push(e);
            }
        }
        self.current = fallback;
    }

    /// The revision in force (revision 0 with an empty document in a new
    /// store).
    pub fn current(&self) -> &Revision {
        &self.current
    }

    /// Makes `document` the new revision in force. `base` is the revision
    /// the change was made on: if another change came first, it is
    /// refused and nothing is written.
    pub fn commit(
        &mut self,
        base: u64,
        document: ValidDocument,
        author: &Author,
        summary: &str,
    ) -> Result<Committed, StoreError> {
        let current = self.current.meta.revision;
        if base != current {
            return Err(StoreError::Stale { base, current });
        }
        let next = Revision {
            meta: Meta {
                revision: self.highest + 1,
                parent: current,
                node: author.node.clone(),
                changed_at: author.changed_at,
                changed_by: author.changed_by.clone(),
                summary: summary.to_owned(),
            },
            document: document.into_document(),
        };
        if current > 0 {
            let old = self.history_path(current);
            self.write_revision(&old, &self.current.clone())?;
        }
        self.write_revision(&self.current_path(), &next)?;
        self.highest = next.meta.revision;
        self.current = next;
        let warnings = self.prune(HISTORY_KEPT).err().into_iter().collect();
        Ok(Committed {
            meta: self.current.meta.clone(),
            warnings,
        })
    }

    /// Every revision kept, newest first, without documents. Damaged
    /// history files are left out (open reports them).
    pub fn history(&self) -> Result<Vec<Meta>, StoreError> {
        let history = self.dir.join(HISTORY_DIR);
        let current = self.current.meta.revision;
        let mut metas: Vec<Meta> = history_numbers(&self.fs, &history)?
            .into_iter()
            .filter(|&n| n != current)
            .filter_map(|n| self.read_history(n).ok())
            .map(|rev| rev.meta)
            .collect();
        if current > 0 {
            metas.push(self.current.meta.clone());
        }
        metas.sort_by_key(|m| std::cmp::Reverse(m.revision));
        Ok(metas)
    }

    /// One revision, the one in force or one from the history.
    pub fn get(&self, revision: u64) -> Result<Revision, StoreError> {
        if revision == self.current.meta.revision {
            return Ok(self.current.clone());
        }
        match self.read_history(revision) {
            // Revision 0 is the store before its first change (never
            // written): restoring it undoes every change made on the
            // appliance, as an admin expects of "restore the first one".
            Err(StoreError::NoSuchRevision { revision: 0 }) => Ok(Revision {
                meta: Meta {
                    summary: "as deployed, nothing stored on the appliance".into(),
                    ..Meta::default()
                },
                document: Document::default(),
            }),
            other => other,
        }
    }

    /// A new revision whose document is that of `revision`, checked
    /// against today's `rules` first (the base config may have moved on).
    pub fn restore(
        &mut self,
        revision: u64,
        base: u64,
        rules: &Rules,
        author: &Author,
    ) -> Result<Committed, StoreError> {
        let old = self.get(revision)?;
        let document = validate(old.document, rules)
            .map_err(|source| StoreError::Refused { revision, source })?;
        let summary = format!("restored revision {revision} ({})", old.meta.summary);
        self.commit(base, document, author, &summary)
    }

    /// What changed from revision `a` to revision `b`.
    pub fn diff(&self, a: u64, b: u64) -> Result<Diff, StoreError> {
        Ok(diff(&self.get(a)?.document, &self.get(b)?.document))
    }

    /// Removes all but the `keep` newest history revisions; returns how
    /// many were removed.
    pub fn prune(&mut self, keep: usize) -> Result<usize, StoreError> {
        let history = self.dir.join(HISTORY_DIR);
        let numbers = history_numbers(&self.fs, &history)?;
        let excess = numbers.len().saturating_sub(keep);
        for &n in &numbers[..excess] {
            let path = self.history_path(n);
            self.fs
                .remove(&path)
                .map_err(|source| StoreError::Remove { path, source })?;
        }
        if excess > 0 {
            self.fs
                .sync_dir(&history)
                .map_err(|source| StoreError::Write {
                    path: history,
                    source,
                })?;
        }
        Ok(excess)
    }

    /// What vSphere delivered at the last boot; `None` at a first boot.
    /// A damaged file counts as none (so nothing is dropped) and is
    /// reported as the error of the pair.
    pub fn seen(&self) -> (Option<Seen>, Option<StoreError>) {
        let path = self.dir.join(SEEN_FILE);
        let bytes = match self.fs.read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return (None, None),
            Err(source) => return (None, Some(StoreError::Read { path, source })),
        };
        let parsed = String::from_utf8(bytes)
            .map_err(|e| e.to_string())
            .and_then(|t| toml::from_str::<Seen>(&t).map_err(|e| e.to_string()));
        match parsed {
            Ok(seen) => (Some(seen), None),
            Err(message) => (None, Some(StoreError::DamagedSeen { path, message })),
        }
    }

    /// Records what vSphere delivered at this boot.
    pub fn write_seen(&mut self, seen: &Seen) -> Result<(), StoreError> {
        let path = self.dir.join(SEEN_FILE);
        let body = toml::to_string(seen).map_err(|source| StoreError::Encode {
            source: DocumentError::Serialize {
                revision: 0,
                source,
            },
        })?;
        let text = format!(
            "# What vSphere (OVF environment, guestinfo) delivered at the last boot.\n\
             # A value that differs at a later boot replaces the appliance's own.\n{body}"
        );
        write_atomic(&mut self.fs, &path, text.as_bytes())
            .map_err(|source| StoreError::Write { path, source })
    }

    /// The filesystem (tests take their crash state from it).
    pub fn into_fs(self) -> F {
        self.fs
    }

    #[cfg(test)]
    pub(crate) fn fs_mut(&mut self) -> &mut F {
        &mut self.fs
    }

    fn current_path(&self) -> PathBuf {
        self.dir.join(CURRENT_FILE)
    }

    fn history_path(&self, revision: u64) -> PathBuf {
        self.dir.join(HISTORY_DIR).join(format!("{revision}.toml"))
    }

    fn write_revision(&mut self, path: &Path, rev: &Revision) -> Result<(), StoreError> {
        let text = rev
            .encode()
            .map_err(|source| StoreError::Encode { source })?;
        write_atomic(&mut self.fs, path, text.as_bytes()).map_err(|source| StoreError::Write {
            path: path.to_owned(),
            source,
        })
    }

    fn read_history(&self, revision: u64) -> Result<Revision, StoreError> {
        let path = self.history_path(revision);
        let bytes = match self.fs.read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::NoSuchRevision { revision })
            }
            Err(source) => return Err(StoreError::Read { path, source }),
        };
        let rev = Revision::decode(bytes).map_err(|source| StoreError::DamagedHistory {
            path: path.clone(),
            source,
        })?;
        if rev.meta.revision != revision {
            return Err(StoreError::WrongRevision {
                path,
                expected: revision,
                found: rev.meta.revision,
            });
        }
        Ok(rev)
    }
}

/// Why `current.toml` is not in force.
enum Unread {
    /// It reads but does not decode: its bytes are kept aside.
    Damaged(Vec<u8>, DocumentError),
    /// It is not there (a new store has no history either).
    Missing,
    /// Reading it failed.
    Io(io::Error),
}

/// The revision numbers in `history/`, ascending (other names ignored).
fn history_numbers(fs: &impl Fs, history: &Path) -> Result<Vec<u64>, StoreError> {
    let paths = fs.list(history).map_err(|source| StoreError::List {
        path: history.to_owned(),
        source,
    })?;
    let mut numbers: Vec<u64> = paths
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .filter_map(|p| p.file_stem()?.to_str()?.parse().ok())
        .collect();
    numbers.sort_unstable();
    Ok(numbers)
}

/// Removes what an interrupted write left (`*.tmp`): never in force, and
/// the next write would replace it anyway.
fn remove_temps(fs: &mut impl Fs, dir: &Path) -> Vec<StoreError> {
    let Ok(paths) = fs.list(dir) else {
        return Vec::new();
    };
    paths
        .into_iter()
        .filter(|p| p.to_str().is_some_and(|s| s.ends_with(TEMP_SUFFIX)))
        .filter_map(|path| {
            fs.remove(&path)
                .err()
                .map(|source| StoreError::Remove { path, source })
        })
        .collect()
}
