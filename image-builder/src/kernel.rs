//! The kernel and its modules, taken out of a Debian `linux-image-*` package.

use std::path::{Path, PathBuf};

use rootfs::ModuleSet;

use crate::deb::{self, DebError};

#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    #[error(transparent)]
    Deb(#[from] DebError),
    #[error("kernel package {} has no boot/vmlinuz-*: is it a linux-image package?", path.display())]
    NoVmlinuz { path: PathBuf },
    #[error("kernel package {}: {source}", path.display())]
    Modules {
        path: PathBuf,
        source: rootfs::ModuleError,
    },
    #[error("kernel module {name:?} is built into kernel {version}: remove it from [kernel] modules in appliance.toml")]
    BuiltIn { name: String, version: String },
}

/// What the image needs from a kernel package.
pub struct KernelParts {
    /// `uname -r`, e.g. `6.1.0-56-cloud-amd64`.
    pub version: String,
    pub vmlinuz: Vec<u8>,
    pub modules: ModuleSet,
    /// Names from `modules.builtin`, to explain a request for a built-in module.
    pub builtin: Vec<String>,
}

/// The files of a kernel package the image uses: the kernel, its modules
/// and the list of built-in ones.
pub fn is_kernel_part(path: &str) -> bool {
    path.starts_with("boot/vmlinuz-")
        || (path.starts_with("lib/modules/")
            && (path.contains(".ko") || path.ends_with("/modules.builtin")))
}

impl KernelParts {
    pub fn from_deb(path: &Path) -> Result<Self, KernelError> {
        let files = deb::read_data_files(path, &is_kernel_part)?;
        Self::from_files(files, path)
    }

    /// From the package's files (see [`is_kernel_part`]); `path` names
    /// the package in errors.
    pub fn from_files(files: Vec<deb::DataFile>, path: &Path) -> Result<Self, KernelError> {
        let mut vmlinuz = None;
        let mut version = String::new();
        let mut builtin = Vec::new();
        let mut module_files = Vec::new();
        for f in files {
            if let Some(v) = f.path.strip_prefix("boot/vmlinuz-") {
                version = v.to_string();
                vmlinuz = Some(f.data);
            } else if let Some(rest) = f.path.strip_prefix("lib/modules/") {
                let Some((_, rel)) = rest.split_once('/') else {
                    continue;
                };
                if rel == "modules.builtin" {
                    builtin = String::from_utf8_lossy(&f.data)
                        .lines()
                        .filter_map(|l| l.rsplit('/').next())
                        .map(|f| f.trim_end_matches(".ko").replace('-', "_"))
                        .collect();
                } else {
                    module_files.push((rel.to_string(), f.data));
                }
            }
        }
        let vmlinuz = vmlinuz.ok_or_else(|| KernelError::NoVmlinuz { path: path.into() })?;
        let modules =
            ModuleSet::from_files(module_files).map_err(|source| KernelError::Modules {
                path: path.into(),
                source,
            })?;
        Ok(Self {
            version,
            vmlinuz,
            modules,
            builtin,
        })
    }

    /// The requested modules with their dependencies, in load order.
    pub fn select(
        &self,
        requested: &[String],
    ) -> Result<Vec<&rootfs::modules::Module>, KernelError> {
        for name in requested {
            let canonical = name.replace('-', "_");
            if self.builtin.contains(&canonical) {
                return Err(KernelError::BuiltIn {
                    name: name.clone(),
                    version: self.version.clone(),
                });
            }
        }
        self.modules
            .closure(requested)
            .map_err(|source| KernelError::Modules {
                path: PathBuf::from(format!("linux-image-{}", self.version)),
                source,
            })
    }
}
