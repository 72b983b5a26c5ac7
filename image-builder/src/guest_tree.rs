//! What goes into the initramfs: the whole guest OS.

use rootfs::modules::Module;
use rootfs::paths;
use rootfs::{Tree, TreeError};

use crate::config::ApplianceConfig;

/// Inputs already acquired and built.
pub struct GuestParts<'a> {
    pub config: &'a ApplianceConfig,
    pub kernel_version: &'a str,
    pub modules: &'a [&'a Module],
    pub init: &'a [u8],
    pub lbd: &'a [u8],
    /// lbd's base config, if appliance.toml names one.
    pub lbd_config: Option<&'a [u8]>,
}

/// Directories the guest mounts on or writes to; they must exist.
const MOUNT_POINTS: [&str; 7] = [
    "/dev",
    "/proc",
    "/sys",
    "/run",
    "/tmp",
    "/var/lib/appliance",
    "/etc/lbd",
];

pub fn guest_tree(p: &GuestParts<'_>) -> Result<Tree, TreeError> {
    let mut t = Tree::new();
    for dir in MOUNT_POINTS {
        t.dir(dir)?;
    }
    // The kernel opens /dev/console for PID 1 before devtmpfs is mounted.
    t.char_device("/dev/console", 0o600, 5, 1)?;
    t.file(paths::INIT, 0o755, p.init.to_vec())?;
    t.file(paths::LBD, 0o755, p.lbd.to_vec())?;
    t.file(paths::OS_RELEASE, 0o644, os_release(p.config).into_bytes())?;
    let settings = toml::to_string(&toml::Table::from_iter([(
        "settings".to_string(),
        toml::Value::Table(p.config.settings.clone()),
    )]))
    .unwrap_or_default();
    t.file(paths::BAKED_SETTINGS, 0o644, settings.into_bytes())?;
    if let Some(cfg) = p.lbd_config {
        t.file(paths::LBD_CONFIG, 0o644, cfg.to_vec())?;
    }
    let module_dir = format!("/lib/modules/{}", p.kernel_version);
    let mut order = String::new();
    for m in p.modules {
        let path = format!("{module_dir}/{}", m.path);
        t.file(&path, 0o644, m.data.clone())?;
        order.push_str(&path);
        order.push('\n');
    }
    t.file(paths::MODULE_LOAD_ORDER, 0o644, order.into_bytes())?;
    Ok(t)
}

fn os_release(c: &ApplianceConfig) -> String {
    let a = &c.appliance;
    format!(
        "NAME=\"{pretty}\"\nID={name}\nVERSION_ID={version}\nPRETTY_NAME=\"{pretty} {version}\"\n",
        pretty = a.pretty_name.replace('"', "'"),
        name = a.name,
        version = a.version,
    )
}
