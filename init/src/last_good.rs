//! The last set of lbd files that lbd loaded, kept on the data partition:
//! what a boot falls back to when the files composed from this boot's
//! settings do not load (a broken `lbd.config` from vSphere, a revision
//! that no longer fits), so lbd keeps serving the services it served.
//!
//! Saved after every boot and every applied change whose files lbd's
//! loader accepts; one TOML file, written through a rename so a power cut
//! leaves the old one or the new one.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::lbd_files::{write_private, Texts, PATHS};

/// Where it is kept: on the data partition, not in lbd's state directory
/// beside its server state file, which lbd (its own uid) may write: boot
/// writes a fallback's files as root.
pub const PATH: &str = "/var/lib/appliance/lbd-last-good.toml";

#[derive(Serialize, Deserialize)]
struct Saved {
    /// Why this set is here, for the console ("boot", "revision 12").
    from: String,
    files: Vec<SavedFile>,
}

#[derive(Serialize, Deserialize)]
struct SavedFile {
    path: PathBuf,
    text: String,
}

pub fn save(path: &Path, texts: &Texts, from: &str) -> Result<(), String> {
    let saved = Saved {
        from: from.to_owned(),
        files: texts
            .0
            .iter()
            .map(|(path, text)| SavedFile {
                path: path.clone(),
                text: text.clone(),
            })
            .collect(),
    };
    let body = toml::to_string(&saved).map_err(|e| e.to_string())?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    write_private(path, &body).map_err(|e| format!("writing {}: {e}", path.display()))
}

/// The saved set and where it came from; `None` when there is none or it
/// cannot be read (the caller then has nothing to fall back to).
pub fn load(path: &Path) -> Option<(Texts, String)> {
    let text = std::fs::read_to_string(path).ok()?;
    let saved: Saved = toml::from_str(&text).ok()?;
    // Only lbd's own files: anything else is not a set init wrote.
    let ours = |p: &Path| PATHS.iter().any(|known| Path::new(known) == p);
    if !saved.files.iter().all(|f| ours(&f.path)) {
        return None;
    }
    let texts = Texts(saved.files.into_iter().map(|f| (f.path, f.text)).collect());
    Some((texts, saved.from))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Input: a set saved, then read back; a damaged file.
    /// Output: the same texts and origin; nothing for the damaged one.
    #[test]
    fn a_saved_set_reads_back_and_a_damaged_one_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lbd/last-good.toml");
        let texts = Texts(vec![
            (PathBuf::from("/run/lbd/base.toml"), "[global]\n".into()),
            (PathBuf::from("/run/lbd/store.toml"), "# empty\n".into()),
        ]);
        save(&path, &texts, "revision 3").unwrap();
        let (back, from) = load(&path).expect("saved");
        assert_eq!(back, texts);
        assert_eq!(from, "revision 3");
        std::fs::write(&path, "files = [").unwrap();
        assert!(load(&path).is_none());
    }

    /// Input: a saved set naming a path that is not one of lbd's files
    /// (a forged or damaged file). Output: nothing to fall back to: boot
    /// writes a fallback's files as root, so only lbd's own paths count.
    #[test]
    fn a_set_naming_another_path_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("last-good.toml");
        let texts = Texts(vec![
            (PathBuf::from("/run/lbd/base.toml"), "[global]\n".into()),
            (
                PathBuf::from("/etc/passwd"),
                "root::0:0::/:/bin/sh\n".into(),
            ),
        ]);
        save(&path, &texts, "boot").unwrap();
        assert!(load(&path).is_none());
    }

    /// lbd's own directory is lbd's to write (lbd_owner.rs); the fallback
    /// init trusts must not be in it.
    #[test]
    fn kept_outside_the_directory_lbd_owns() {
        assert!(!Path::new(PATH).starts_with(crate::lbd_config::STATE_DIR));
        assert!(!Path::new(PATH).starts_with(crate::lbd_config::RUN_DIR));
        assert!(Path::new(PATH).starts_with(rootfs::paths::DATA_MOUNT));
    }
}
