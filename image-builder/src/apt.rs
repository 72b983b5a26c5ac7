//! Fetching Debian packages with apt into a private cache.
//!
//! apt is pointed at its own lists and archive directories under the cache,
//! so this works without root on a Debian host whose own apt lists are empty,
//! and never touches the host's package state. The host's
//! `/etc/apt/sources.list*` say where packages come from. Package lists are
//! read lazily: a build whose pinned packages are all in the cache runs no
//! apt at all.

use std::cell::Cell;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::deb;
use crate::lock::{Archive, Candidate, FetchError, Pinned};

#[derive(Debug, thiserror::Error)]
pub enum AptError {
    #[error("running {tool}: {source}. image-builder fetches packages with Debian's apt; on another host set `deb = \"path/to/package.deb\"` in appliance.toml")]
    Spawn {
        tool: &'static str,
        source: std::io::Error,
    },
    #[error("`{command}` failed: {stderr}")]
    Failed { command: String, stderr: String },
    #[error("creating the apt cache {}: {source}", path.display())]
    Cache {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("apt does not know package {package:?}: check the name in appliance.toml")]
    UnknownPackage { package: String },
    #[error("metapackage {package} has no linux-image dependency in its Depends: {depends}")]
    NoKernelDependency { package: String, depends: String },
    #[error("apt's index for {package} {version} has no {field} field")]
    MissingField {
        package: String,
        version: String,
        field: &'static str,
    },
    #[error(transparent)]
    Deb(#[from] deb::DebError),
}

/// apt with private state under `dir`.
pub struct Apt {
    dir: PathBuf,
    /// The lists were read or refreshed in this run.
    lists_ready: Cell<bool>,
    /// This run already ran `apt-get update`.
    refreshed: Cell<bool>,
}

impl Apt {
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.into(),
            lists_ready: Cell::new(false),
            refreshed: Cell::new(false),
        }
    }

    /// Where downloaded packages are kept.
    pub fn debs_dir(&self) -> PathBuf {
        self.dir.join("debs")
    }

    fn options(&self) -> Vec<String> {
        let mut o = vec![
            format!("Dir::State::Lists={}", self.dir.join("lists").display()),
            format!("Dir::Cache={}", self.dir.display()),
            "Debug::NoLocking=1".to_string(),
        ];
        // As root apt downloads as the `_apt` user, who cannot write to our
        // cache; stay root instead.
        if std::fs::metadata("/proc/self").map(|m| m.uid()).ok() == Some(0) {
            o.push("APT::Sandbox::User=root".to_string());
        }
        o.into_iter().flat_map(|v| ["-o".to_string(), v]).collect()
    }

    /// Makes sure package lists exist, running `apt-get update` when they
    /// do not.
    fn ensure_lists(&self) -> Result<(), AptError> {
        if self.lists_ready.get() {
            return Ok(());
        }
        for sub in ["lists/partial", "archives/partial", "debs"] {
            let p = self.dir.join(sub);
            std::fs::create_dir_all(&p).map_err(|source| AptError::Cache { path: p, source })?;
        }
        let has_lists = std::fs::read_dir(self.dir.join("lists"))
            .map(|rd| {
                rd.flatten()
                    .any(|e| e.file_name().to_string_lossy().ends_with("_Packages"))
            })
            .unwrap_or(false);
        if !has_lists {
            self.refresh()?;
        }
        self.lists_ready.set(true);
        Ok(())
    }

    /// `apt-get update` into the private lists (once per run).
    pub fn refresh(&self) -> Result<(), AptError> {
        if self.refreshed.get() {
            return Ok(());
        }
        for sub in ["lists/partial", "archives/partial", "debs"] {
            let p = self.dir.join(sub);
            std::fs::create_dir_all(&p).map_err(|source| AptError::Cache { path: p, source })?;
        }
        self.run("apt-get", &["update", "-q"], &self.dir)?;
        self.refreshed.set(true);
        self.lists_ready.set(true);
        Ok(())
    }

    /// The index stanza of `spec` (`name` for the candidate, or
    /// `name=version`), or `None` when apt's lists do not have it.
    fn show(&self, spec: &str) -> Result<Option<String>, AptError> {
        self.ensure_lists()?;
        match self.run("apt-cache", &["show", "--no-all-versions", spec], &self.dir) {
            Ok(s) if !s.trim().is_empty() => Ok(Some(s)),
            _ => Ok(None),
        }
    }

    /// `apt-get download` names files `<package>_<version>_<arch>.deb`,
    /// with an epoch's ':' escaped as "%3a".
    fn deb_path(&self, package: &str, version: &str, architecture: &str) -> PathBuf {
        self.debs_dir().join(format!(
            "{package}_{}_{architecture}.deb",
            version.replace(':', "%3a")
        ))
    }

    fn stanza_candidate(&self, package: &str, stanza: &str) -> Result<Candidate, AptError> {
        let version = deb::control_field(stanza, "Version").unwrap_or_default();
        let field = |name: &'static str| {
            deb::control_field(stanza, name).ok_or_else(|| AptError::MissingField {
                package: package.into(),
                version: version.clone(),
                field: name,
            })
        };
        Ok(Candidate {
            package: package.into(),
            version: field("Version")?,
            architecture: field("Architecture")?,
            sha256: field("SHA256")?,
        })
    }

    fn run(&self, tool: &'static str, args: &[&str], cwd: &Path) -> Result<String, AptError> {
        let mut cmd = Command::new(tool);
        cmd.args(self.options())
            .args(args)
            .current_dir(cwd)
            .stdin(Stdio::null());
        let out = cmd
            .output()
            .map_err(|source| AptError::Spawn { tool, source })?;
        if !out.status.success() {
            return Err(AptError::Failed {
                command: format!("{tool} {}", args.join(" ")),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Archive for Apt {
    fn refresh(&self) -> Result<(), AptError> {
        Apt::refresh(self)
    }

    /// The newest version apt would take; a kernel metapackage such as
    /// `linux-image-cloud-amd64` is followed to the versioned
    /// `linux-image-*` package it depends on.
    fn candidate(&self, requested: &str, follow_kernel: bool) -> Result<Candidate, AptError> {
        let unknown = || AptError::UnknownPackage {
            package: requested.into(),
        };
        let stanza = self.show(requested)?.ok_or_else(unknown)?;
        if !follow_kernel {
            return self.stanza_candidate(requested, &stanza);
        }
        let depends = deb::control_field(&stanza, "Depends").unwrap_or_default();
        let image = depends
            .split([',', '|'])
            .map(|d| d.split_whitespace().next().unwrap_or(""))
            .find(|d| d.starts_with("linux-image-") && *d != requested);
        match image {
            Some(dep) => {
                let dep_stanza = self.show(dep)?.ok_or_else(|| AptError::UnknownPackage {
                    package: dep.into(),
                })?;
                self.stanza_candidate(dep, &dep_stanza)
            }
            // Already a versioned image package: it holds the kernel itself.
            None if requested.starts_with("linux-image-") && !depends.contains("linux-image-") => {
                self.stanza_candidate(requested, &stanza)
            }
            None => Err(AptError::NoKernelDependency {
                package: requested.into(),
                depends,
            }),
        }
    }

    fn cached(&self, pin: &Pinned) -> PathBuf {
        self.deb_path(&pin.package, &pin.version, &pin.architecture)
    }

    /// Downloads exactly `pin` (unless it is in the cache). A version the
    /// lists do not know is looked up once more after `apt-get update`.
    fn fetch(&self, pin: &Pinned) -> Result<PathBuf, FetchError> {
        let path = self.cached(pin);
        if path.exists() {
            return Ok(path);
        }
        let spec = format!("{}={}", pin.package, pin.version);
        let mut known = self.show(&spec)?.is_some();
        if !known && !self.refreshed.get() {
            self.refresh()?;
            known = self.show(&spec)?.is_some();
        }
        if !known {
            return Err(FetchError::NotServed);
        }
        self.run("apt-get", &["download", "-q", &spec], &self.debs_dir())?;
        Ok(path)
    }
}
