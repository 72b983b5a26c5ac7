//! The guest's file tree: paths with kind, mode and owner, no host metadata.

use std::collections::BTreeMap;

/// What a path in the tree is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    Dir,
    File(Vec<u8>),
    Symlink(String),
    /// A character device node, such as `/dev/console` (5, 1), which the
    /// kernel opens for PID 1's stdio before devtmpfs is mounted.
    CharDevice {
        major: u32,
        minor: u32,
    },
}

/// One path in the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub kind: EntryKind,
    /// Permission bits only (for example 0o755); the file type comes from `kind`.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    #[error("guest path {path:?} must be absolute, normalised and without '..': fix the path")]
    BadPath { path: String },
    #[error("guest path {path:?} is added twice: remove one of the two")]
    Duplicate { path: String },
    #[error("guest path {path:?} needs {parent:?} to be a directory, but it is a file")]
    ParentNotDir { path: String, parent: String },
}

/// The guest's file tree, keyed by absolute path without the leading slash.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tree {
    entries: BTreeMap<String, Entry>,
}

impl Tree {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a directory (mode 0755, root-owned), creating missing parents.
    /// Adding an existing directory again is allowed.
    pub fn dir(&mut self, path: &str) -> Result<(), TreeError> {
        let key = normalise(path)?;
        if let Some(existing) = self.entries.get(&key) {
            return match existing.kind {
                EntryKind::Dir => Ok(()),
                _ => Err(TreeError::Duplicate { path: path.into() }),
            };
        }
        self.ensure_parents(&key)?;
        self.entries.insert(key, root_owned(EntryKind::Dir, 0o755));
        Ok(())
    }

    /// Adds a regular file with the given permission bits, creating parents.
    pub fn file(&mut self, path: &str, mode: u32, data: Vec<u8>) -> Result<(), TreeError> {
        self.insert(path, root_owned(EntryKind::File(data), mode))
    }

    pub fn symlink(&mut self, path: &str, target: &str) -> Result<(), TreeError> {
        self.insert(path, root_owned(EntryKind::Symlink(target.into()), 0o777))
    }

    pub fn char_device(
        &mut self,
        path: &str,
        mode: u32,
        major: u32,
        minor: u32,
    ) -> Result<(), TreeError> {
        self.insert(
            path,
            root_owned(EntryKind::CharDevice { major, minor }, mode),
        )
    }

    /// Adds any entry; the path must not exist yet.
    pub fn insert(&mut self, path: &str, entry: Entry) -> Result<(), TreeError> {
        let key = normalise(path)?;
        if self.entries.contains_key(&key) {
            return Err(TreeError::Duplicate { path: path.into() });
        }
        self.ensure_parents(&key)?;
        self.entries.insert(key, entry);
        Ok(())
    }

    /// Entries in path order, paths without the leading slash.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &Entry)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    pub fn get(&self, path: &str) -> Option<&Entry> {
        normalise(path).ok().and_then(|k| self.entries.get(&k))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn ensure_parents(&mut self, key: &str) -> Result<(), TreeError> {
        let mut end = 0;
        while let Some(pos) = key[end..].find('/') {
            let parent = &key[..end + pos];
            match self.entries.get(parent) {
                Some(Entry {
                    kind: EntryKind::Dir,
                    ..
                }) => {}
                Some(_) => {
                    return Err(TreeError::ParentNotDir {
                        path: format!("/{key}"),
                        parent: format!("/{parent}"),
                    })
                }
                None => {
                    self.entries
                        .insert(parent.to_string(), root_owned(EntryKind::Dir, 0o755));
                }
            }
            end += pos + 1;
        }
        Ok(())
    }
}

fn root_owned(kind: EntryKind, mode: u32) -> Entry {
    Entry {
        kind,
        mode,
        uid: 0,
        gid: 0,
    }
}

/// "/etc/x" -> "etc/x"; rejects relative paths, "..", ".", empty components.
fn normalise(path: &str) -> Result<String, TreeError> {
    let bad = || TreeError::BadPath { path: path.into() };
    let rest = path.strip_prefix('/').ok_or_else(bad)?;
    if rest.is_empty()
        || rest
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err(bad());
    }
    Ok(rest.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents_are_created_and_listed_in_order() {
        let mut t = Tree::new();
        t.file("/etc/lbd/lbd.toml", 0o644, b"x".to_vec()).unwrap();
        t.dir("/dev").unwrap();
        let paths: Vec<_> = t.entries().map(|(p, _)| p).collect();
        assert_eq!(paths, ["dev", "etc", "etc/lbd", "etc/lbd/lbd.toml"]);
    }

    #[test]
    fn bad_paths_and_duplicates_are_rejected() {
        let mut t = Tree::new();
        assert!(matches!(t.dir("etc"), Err(TreeError::BadPath { .. })));
        assert!(matches!(t.dir("/a/../b"), Err(TreeError::BadPath { .. })));
        assert!(matches!(t.dir("/a//b"), Err(TreeError::BadPath { .. })));
        t.file("/init", 0o755, vec![]).unwrap();
        assert!(matches!(
            t.file("/init", 0o755, vec![]),
            Err(TreeError::Duplicate { .. })
        ));
        assert!(matches!(
            t.file("/init/x", 0o644, vec![]),
            Err(TreeError::ParentNotDir { .. })
        ));
    }
}
