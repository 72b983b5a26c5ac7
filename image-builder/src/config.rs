//! `appliance.toml`: what the builder makes. Unknown keys are errors, so a
//! typo is caught instead of silently building the default.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The default input, at the repository root.
pub const DEFAULT_CONFIG: &str = "appliance.toml";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplianceConfig {
    pub appliance: Appliance,
    pub kernel: Kernel,
    #[serde(default)]
    pub uefi: Uefi,
    #[serde(default)]
    pub disk: Disk,
    #[serde(default)]
    pub lbd: Lbd,
    #[serde(default)]
    pub vm: Vm,
    /// Baked runtime settings: copied to the guest's
    /// `/etc/appliance/appliance.toml`, the lowest-precedence source.
    #[serde(default)]
    pub settings: toml::Table,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Appliance {
    /// File name stem of the outputs and the OS name in `/etc/os-release`.
    pub name: String,
    pub version: String,
    #[serde(default = "default_pretty_name")]
    pub pretty_name: String,
    /// Which artifacts to write: "img" and/or "ova".
    #[serde(default = "default_formats")]
    pub formats: Vec<Format>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Img,
    Ova,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Kernel {
    /// Debian package fetched with apt (a metapackage is followed to its
    /// versioned `linux-image-*` dependency).
    pub package: Option<String>,
    /// A local kernel `.deb` instead of `package`.
    pub deb: Option<PathBuf>,
    /// Kernel command line, stored in the UKI's `.cmdline` section.
    pub cmdline: String,
    /// Modules to load at boot; their dependencies are added automatically.
    #[serde(default)]
    pub modules: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Uefi {
    /// Debian package holding `linuxx64.efi.stub`.
    #[serde(default = "default_stub_package")]
    pub stub_package: String,
    /// A local `linuxx64.efi.stub` (or a `.deb` holding it) instead.
    pub stub: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Disk {
    #[serde(default = "default_esp_mib")]
    pub esp_mib: u64,
    #[serde(default = "default_data_mib")]
    pub data_mib: u64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lbd {
    /// lbd's base configuration, baked as `/etc/lbd/lbd.toml`; relative to
    /// the directory of `appliance.toml`.
    pub config: Option<PathBuf>,
}

/// The virtual machine the OVA declares (and `image-builder run` emulates).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vm {
    #[serde(default = "default_cpus")]
    pub cpus: u32,
    #[serde(default = "default_memory_mib")]
    pub memory_mib: u32,
    #[serde(default = "default_hw_version")]
    pub hardware_version: String,
    #[serde(default = "default_network")]
    pub network: String,
    #[serde(default = "default_vendor")]
    pub vendor: String,
    #[serde(default)]
    pub vendor_url: String,
    #[serde(default)]
    pub product_url: String,
    /// The VM's notes in vCenter.
    #[serde(default = "default_annotation")]
    pub annotation: String,
}

fn default_pretty_name() -> String {
    "Load-balancer appliance".into()
}
fn default_formats() -> Vec<Format> {
    vec![Format::Img, Format::Ova]
}
fn default_stub_package() -> String {
    "systemd-boot-efi".into()
}
fn default_esp_mib() -> u64 {
    64
}
fn default_data_mib() -> u64 {
    256
}
fn default_cpus() -> u32 {
    2
}
fn default_memory_mib() -> u32 {
    1024
}
fn default_hw_version() -> String {
    "vmx-13".into()
}
fn default_network() -> String {
    "VM Network".into()
}
fn default_vendor() -> String {
    "LB Appliance project".into()
}
fn default_annotation() -> String {
    "Highly available load balancer (TCP/HTTP with health checks, VRRP). Fill in the properties when deploying; the console shows the status.".into()
}

impl Default for Uefi {
    fn default() -> Self {
        Self {
            stub_package: default_stub_package(),
            stub: None,
        }
    }
}
impl Default for Disk {
    fn default() -> Self {
        Self {
            esp_mib: default_esp_mib(),
            data_mib: default_data_mib(),
        }
    }
}
impl Default for Vm {
    fn default() -> Self {
        Self {
            cpus: default_cpus(),
            memory_mib: default_memory_mib(),
            hardware_version: default_hw_version(),
            network: default_network(),
            vendor: default_vendor(),
            vendor_url: String::new(),
            product_url: String::new(),
            annotation: default_annotation(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {}: {source} (run from the repository root, or pass --config PATH)", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    #[error("{}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
}

impl ApplianceConfig {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.into(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses and validates; `path` only names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let config: Self = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.into(),
            // toml's message already has line, column and the offending key.
            message: e.to_string().trim_end().to_string(),
        })?;
        config.validate(path)?;
        Ok(config)
    }

    fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: path.into(),
            message,
        };
        let name_ok = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        };
        if !name_ok(&self.appliance.name) {
            return Err(invalid(format!(
                "appliance.name {:?} must be non-empty ASCII letters, digits, '-', '_' or '.' (it names the output files)",
                self.appliance.name
            )));
        }
        if !name_ok(&self.appliance.version) {
            return Err(invalid(format!(
                "appliance.version {:?} must be non-empty ASCII letters, digits, '-', '_' or '.'",
                self.appliance.version
            )));
        }
        match (&self.kernel.package, &self.kernel.deb) {
            (None, None) => {
                return Err(invalid(
                    "[kernel] needs `package = \"linux-image-cloud-amd64\"` or `deb = \"path/to/linux-image.deb\"`".into(),
                ))
            }
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "[kernel] has both `package` and `deb`: keep one".into(),
                ))
            }
            _ => {}
        }
        // FAT32 needs at least 65525 clusters: 33 MiB with 512-byte clusters.
        if self.disk.esp_mib < 34 || self.disk.esp_mib > 4096 {
            return Err(invalid(format!(
                "disk.esp_mib = {} is out of range: FAT32 needs 34 to 4096 MiB",
                self.disk.esp_mib
            )));
        }
        if self.disk.data_mib < 16 || self.disk.data_mib > 1 << 20 {
            return Err(invalid(format!(
                "disk.data_mib = {} is out of range: 16 MiB to 1 TiB",
                self.disk.data_mib
            )));
        }
        if self.appliance.formats.is_empty() {
            return Err(invalid(
                "appliance.formats is empty: list \"img\" and/or \"ova\"".into(),
            ));
        }
        Ok(())
    }

    /// The raw image's file name, `<name>.img`.
    pub fn image_file_name(&self) -> String {
        format!("{}.img", self.appliance.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[appliance]
name = "lb"
version = "1.0"
[kernel]
package = "linux-image-cloud-amd64"
cmdline = "console=ttyS0"
"#;

    #[test]
    fn minimal_config_gets_defaults() {
        let c = ApplianceConfig::parse(MINIMAL, Path::new("a.toml")).unwrap();
        assert_eq!(c.disk.esp_mib, 64);
        assert_eq!(c.vm.hardware_version, "vmx-13");
        assert_eq!(c.image_file_name(), "lb.img");
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let text = MINIMAL.replace("cmdline", "cmdlin");
        let err = ApplianceConfig::parse(&text, Path::new("a.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("a.toml"), "{err}");
        assert!(err.contains("line 7"), "{err}");
        assert!(err.contains("cmdlin"), "{err}");
    }

    #[test]
    fn bad_values_are_explained() {
        let text = MINIMAL.replace("name = \"lb\"", "name = \"a/b\"");
        let err = ApplianceConfig::parse(&text, Path::new("a.toml")).unwrap_err();
        assert!(err.to_string().contains("appliance.name"), "{err}");
        let text = format!("{MINIMAL}\n[disk]\nesp_mib = 8\n");
        let err = ApplianceConfig::parse(&text, Path::new("a.toml")).unwrap_err();
        assert!(err.to_string().contains("esp_mib"), "{err}");
    }
}
