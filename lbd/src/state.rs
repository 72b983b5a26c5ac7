//! The admin-state file: operator-set admin states and weights per
//! `backend/server`, so maint and drain survive reload and restart (HAProxy
//! loses them unless a state file is set up by hand).
//!
//! Written atomically: a temp file in the same directory, fsync, rename over
//! the old file, fsync the directory. A crash leaves the old or the new
//! file, never half of one.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::runtime::AdminState;

/// Format version written in the file.
pub const STATE_VERSION: u32 = 1;

/// Errors reading or writing the state file.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("reading state file {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("parsing state file {}: {source} (fix or delete it; it only holds admin states)", path.display())]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("writing state file {}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
}

/// What an operator set for one server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerState {
    pub admin: AdminState,
    /// Weight set at run time; `None` keeps the configured weight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
}

/// The whole file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateFile {
    pub version: u32,
    /// Keyed by `backend/server`.
    pub servers: BTreeMap<String, ServerState>,
    /// Frontends an operator disabled (`disable frontend NAME`).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub disabled_frontends: BTreeSet<String>,
}

impl Default for StateFile {
    fn default() -> Self {
        Self {
            version: STATE_VERSION,
            servers: BTreeMap::new(),
            disabled_frontends: BTreeSet::new(),
        }
    }
}

impl StateFile {
    /// Reads `path`; a missing file is an empty state.
    pub fn load(path: &Path) -> Result<Self, StateError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(source) => {
                return Err(StateError::Read {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        serde_json::from_str(&text).map_err(|source| StateError::Parse {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Writes atomically (temp, fsync, rename, fsync dir).
    pub fn save(&self, path: &Path) -> Result<(), StateError> {
        let err = |source| StateError::Write {
            path: path.to_path_buf(),
            source,
        };
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(err)?;
        let name = path
            .file_name()
            .map_or_else(|| "state".into(), |n| n.to_string_lossy().to_string());
        let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
        let mut json = serde_json::to_vec_pretty(self).map_err(|e| err(io::Error::other(e)))?;
        json.push(b'\n');
        let written = (|| {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&json)?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)?;
            std::fs::File::open(dir)?.sync_all()
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written.map_err(err)
    }

    /// Records `admin` for `key`, dropping entries back at the defaults.
    pub fn set_admin(&mut self, key: &str, admin: AdminState) {
        self.servers.entry(key.to_string()).or_default().admin = admin;
        self.prune(key);
    }

    /// Records a runtime weight (`None`: back to configured).
    pub fn set_weight(&mut self, key: &str, weight: Option<u32>) {
        self.servers.entry(key.to_string()).or_default().weight = weight;
        self.prune(key);
    }

    /// Records whether `frontend` is disabled.
    pub fn set_frontend_disabled(&mut self, frontend: &str, disabled: bool) {
        if disabled {
            self.disabled_frontends.insert(frontend.to_string());
        } else {
            self.disabled_frontends.remove(frontend);
        }
    }

    fn prune(&mut self, key: &str) {
        if self.servers.get(key) == Some(&ServerState::default()) {
            self.servers.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("lbd-state-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn save_then_load_round_trips() {
        let d = dir("rt");
        let path = d.join("sub/state.json");
        let mut s = StateFile::default();
        s.set_admin("b/s1", AdminState::Maint);
        s.set_weight("b/s2", Some(7));
        s.save(&path).unwrap();
        assert_eq!(StateFile::load(&path).unwrap(), s);
        // No temp file left behind.
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("state.json")]);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn missing_file_is_empty_and_defaults_are_pruned() {
        let d = dir("missing");
        assert_eq!(
            StateFile::load(&d.join("nope.json")).unwrap(),
            StateFile::default()
        );
        let mut s = StateFile::default();
        s.set_admin("b/s", AdminState::Drain);
        s.set_admin("b/s", AdminState::Ready);
        assert!(s.servers.is_empty());
    }

    #[test]
    fn corrupt_file_names_path_and_fix() {
        let d = dir("bad");
        std::fs::create_dir_all(&d).unwrap();
        let path = d.join("state.json");
        std::fs::write(&path, "{not json").unwrap();
        let e = StateFile::load(&path).unwrap_err().to_string();
        assert!(e.contains("state.json") && e.contains("delete it"), "{e}");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn unwritable_location_is_an_error() {
        let e = StateFile::default()
            .save(Path::new("/proc/lbd-cannot-write/state.json"))
            .unwrap_err();
        assert!(matches!(e, StateError::Write { .. }));
    }
}
