//! Fetching Debian packages with apt into a private cache.
//!
//! apt is pointed at its own lists and archive directories under the cache,
//! so this works without root on a Debian host whose own apt lists are empty,
//! and never touches the host's package state. The host's
//! `/etc/apt/sources.list*` say where packages come from.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::deb;

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
    #[error("apt does not know package {package:?}: check the name in appliance.toml, or run `image-builder build --refresh` to update the package lists")]
    UnknownPackage { package: String },
    #[error("metapackage {package} has no linux-image dependency in its Depends: {depends}")]
    NoKernelDependency { package: String, depends: String },
    #[error(transparent)]
    Deb(#[from] deb::DebError),
}

/// apt with private state under `dir`.
pub struct Apt {
    dir: PathBuf,
}

impl Apt {
    pub fn new(dir: &Path) -> Self {
        Self { dir: dir.into() }
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
    /// do not or when `refresh` asks for it.
    pub fn ensure_lists(&self, refresh: bool) -> Result<(), AptError> {
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
        if has_lists && !refresh {
            return Ok(());
        }
        self.run("apt-get", &["update", "-q"], &self.dir)?;
        Ok(())
    }

    /// Downloads `package` (the candidate version) into the cache unless it
    /// is there already, and returns the `.deb` path.
    pub fn download(&self, package: &str) -> Result<PathBuf, AptError> {
        let show = self.run(
            "apt-cache",
            &["show", "--no-all-versions", package],
            &self.dir,
        );
        let show = match show {
            Ok(s) if !s.trim().is_empty() => s,
            _ => {
                return Err(AptError::UnknownPackage {
                    package: package.into(),
                })
            }
        };
        let field = |f: &str| deb::control_field(&show, f).unwrap_or_default();
        // apt-get download names files `<package>_<version>_<arch>.deb`,
        // with an epoch's ':' escaped as "%3a".
        let file = format!(
            "{}_{}_{}.deb",
            package,
            field("Version").replace(':', "%3a"),
            field("Architecture")
        );
        let debs = self.dir.join("debs");
        let path = debs.join(&file);
        if !path.exists() {
            self.run("apt-get", &["download", "-q", package], &debs)?;
        }
        Ok(path)
    }

    /// Follows a metapackage such as `linux-image-cloud-amd64` to the
    /// versioned `linux-image-*` package it depends on.
    pub fn resolve_kernel(&self, package: &str) -> Result<PathBuf, AptError> {
        let deb_path = self.download(package)?;
        let control = deb::read_control(&deb_path)?;
        let depends = deb::control_field(&control, "Depends").unwrap_or_default();
        let is_image = |name: &str| name.starts_with("linux-image-") && name != package;
        let Some(dep) = depends
            .split([',', '|'])
            .map(|d| d.split_whitespace().next().unwrap_or(""))
            .find(|d| is_image(d))
        else {
            // Already a versioned image package: it holds the kernel itself.
            if deb::control_field(&control, "Package").is_some_and(|p| p == package)
                && package.starts_with("linux-image-")
                && !depends.contains("linux-image-")
            {
                return Ok(deb_path);
            }
            return Err(AptError::NoKernelDependency {
                package: package.into(),
                depends,
            });
        };
        self.download(dep)
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
