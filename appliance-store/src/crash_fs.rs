//! Test support: a filesystem whose power is cut after a given number of
//! steps, leaving what a real power cut could leave.
//!
//! The steps done before the cut happened on a real directory. A cut then
//! loses, at worst, what was never made durable: the data of a file written
//! but not fsynced (ext4's delayed allocation leaves it empty) and a rename
//! whose directory was not fsynced (the old entry comes back).

use std::io;
use std::path::{Path, PathBuf};

use crate::fs::{Fs, RealFs};

/// A rename not yet made durable by an fsync of its directory.
struct PendingRename {
    from: PathBuf,
    to: PathBuf,
    /// What `to` held before, restored if the rename is lost.
    old: Option<Vec<u8>>,
}

/// A filesystem that fails every step after the first `steps` ones.
pub struct CrashFs {
    steps_left: usize,
    /// Steps done so far (to count a whole operation's steps).
    pub steps_taken: usize,
    cut: bool,
    unsynced: Vec<PathBuf>,
    renames: Vec<PendingRename>,
}

impl CrashFs {
    /// Allows `steps` steps, then cuts the power.
    pub fn new(steps: usize) -> Self {
        Self {
            steps_left: steps,
            steps_taken: 0,
            cut: false,
            unsynced: Vec::new(),
            renames: Vec::new(),
        }
    }

    /// Allows `steps` more steps from now on.
    pub fn allow(&mut self, steps: usize) {
        self.steps_left = steps;
    }

    /// What the disk holds after the cut: as done if `lose_unsynced` is
    /// false, or with every unsynced rename undone and unsynced file data
    /// gone if it is true.
    pub fn power_cut(mut self, lose_unsynced: bool) {
        if !lose_unsynced {
            return;
        }
        while let Some(r) = self.renames.pop() {
            // Undoing: the entry goes back to its old name, and the old
            // target (if any) reappears.
            let _ = std::fs::rename(&r.to, &r.from);
            if let Some(old) = r.old {
                let _ = std::fs::write(&r.to, old);
            }
            for p in &mut self.unsynced {
                if *p == r.to {
                    p.clone_from(&r.from);
                }
            }
        }
        for path in self.unsynced {
            if path.exists() {
                let _ = std::fs::write(&path, b"");
            }
        }
    }

    fn step(&mut self) -> io::Result<()> {
        if self.cut {
            return Err(io::Error::other("the power is off"));
        }
        if self.steps_left == 0 {
            self.cut = true;
            return Err(io::Error::other("simulated power cut"));
        }
        self.steps_left -= 1;
        self.steps_taken += 1;
        Ok(())
    }
}

impl Fs for CrashFs {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        RealFs.read(path)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        RealFs.list(dir)
    }

    fn create_dir_all(&mut self, dir: &Path) -> io::Result<()> {
        self.step()?;
        RealFs.create_dir_all(dir)
    }

    fn write(&mut self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        self.step()?;
        RealFs.write(path, bytes)?;
        if !self.unsynced.iter().any(|p| p == path) {
            self.unsynced.push(path.to_owned());
        }
        Ok(())
    }

    fn sync_file(&mut self, path: &Path) -> io::Result<()> {
        self.step()?;
        RealFs.sync_file(path)?;
        self.unsynced.retain(|p| p != path);
        Ok(())
    }

    fn rename(&mut self, from: &Path, to: &Path) -> io::Result<()> {
        self.step()?;
        let old = std::fs::read(to).ok();
        RealFs.rename(from, to)?;
        for p in &mut self.unsynced {
            if p == from {
                *p = to.to_owned();
            }
        }
        self.renames.push(PendingRename {
            from: from.to_owned(),
            to: to.to_owned(),
            old,
        });
        Ok(())
    }

    fn sync_dir(&mut self, dir: &Path) -> io::Result<()> {
        self.step()?;
        RealFs.sync_dir(dir)?;
        self.renames.retain(|r| r.to.parent() != Some(dir));
        Ok(())
    }

    fn remove(&mut self, path: &Path) -> io::Result<()> {
        // A lost removal only brings back a temp file or a pruned revision,
        // both of which open tolerates: removals count as durable here.
        self.step()?;
        RealFs.remove(path)
    }
}
