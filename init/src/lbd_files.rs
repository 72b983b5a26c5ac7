//! The files lbd runs with: always the same five paths, in this order,
//! composed from the settings in effect and the store's services.
//!
//! ```text
//! base.toml       the admin's lbd.config, else the image's baked config
//! overlay.toml    state file, the users (admin.*), the console's certificate
//! services.toml   the deploy wizard's service slots (service.N.*)
//! store.toml      the appliance store's [services]
//! vrrp.toml       the vrrp.* settings (needs the NIC and this node's address)
//! ```
//! The paths never change, only their texts: lbd is started once with all
//! five and a change is a rewrite plus `reload` (or, when lbd is down, its
//! supervisor's next start) without a new command line. A file with
//! nothing to say holds only its header comment, which lbd loads as an
//! empty layer.
//!
//! The texts are composed in memory and checked with lbd's own loader
//! before anything is written: a set lbd would refuse never reaches it.

use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use lbd_config::{Config, ConfigErrors, Layer};
use rootfs::paths::LBD_CONFIG;
use settings::Settings;

use crate::lbd_config::{overlay, vrrp_overlay, OverlayInputs, RUN_DIR};
use crate::lbd_services::services_layer;

pub const BASE: &str = "/run/lbd/base.toml";
pub const OVERLAY: &str = "/run/lbd/overlay.toml";
pub const SLOTS: &str = "/run/lbd/services.toml";
pub const STORE: &str = "/run/lbd/store.toml";
pub const VRRP: &str = "/run/lbd/vrrp.toml";

/// Every path, in the order lbd layers them.
pub const PATHS: [&str; 5] = [BASE, OVERLAY, SLOTS, STORE, VRRP];

const OVERLAY_HEADER: &str = "Written by init from the appliance settings.";
const SLOTS_HEADER: &str = "Written by init from the service.N.* settings (the deploy \
                            wizard's Service 1-4 slots).";
const STORE_HEADER: &str =
    "Written by init from the appliance store's [services]; change them with lbd ctl config.";
const VRRP_HEADER: &str = "Written by init from the vrrp.* settings.";

/// The NIC VRRP runs on and this node's IPv4 address there (`None` before
/// the network is up: the VRRP file is then empty).
pub type Primary = (String, Option<IpAddr>);

/// What goes into the files besides the settings.
pub struct Inputs<'a> {
    pub settings: &'a Settings,
    /// The users' hashes and the console's certificate files.
    pub overlay: OverlayInputs,
    /// The store's services layer (empty: none).
    pub store_services: &'a toml::Table,
    pub primary: Option<&'a Primary>,
}

/// The five files' texts, in [`PATHS`] order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Texts(pub Vec<(PathBuf, String)>);

/// The texts, and what could not go into them (reported, not fatal: the
/// rest still runs).
pub struct Composed {
    pub texts: Texts,
    pub problems: Vec<String>,
}

pub fn compose(inputs: &Inputs<'_>) -> Composed {
    let mut problems = Vec::new();
    let base = match &inputs.settings.lbd_config {
        Some(text) => text.clone(),
        None => std::fs::read_to_string(LBD_CONFIG).unwrap_or_default(),
    };
    let overlay_text = render(&overlay(&inputs.overlay), OVERLAY_HEADER);
    let slots = services_layer(&inputs.settings.services).map_or_else(
        || header_only(SLOTS_HEADER),
        |layer| render(&layer, SLOTS_HEADER),
    );
    let store = if inputs.store_services.is_empty() {
        header_only(STORE_HEADER)
    } else {
        match toml::to_string(inputs.store_services) {
            Ok(body) => format!("{}{body}", header_only(STORE_HEADER)),
            Err(e) => {
                problems.push(format!(
                    "the appliance store's services as TOML: {e}; they are not applied"
                ));
                header_only(STORE_HEADER)
            }
        }
    };
    let vrrp = match inputs.primary {
        Some((interface, own_ip)) => {
            match vrrp_overlay(&inputs.settings.vrrp, interface, *own_ip) {
                Ok(Some(layer)) => render(&layer, VRRP_HEADER),
                Ok(None) => header_only(VRRP_HEADER),
                Err(e) => {
                    problems.push(e);
                    header_only(VRRP_HEADER)
                }
            }
        }
        None => header_only(VRRP_HEADER),
    };
    let texts = [base, overlay_text, slots, store, vrrp];
    Composed {
        texts: Texts(PATHS.iter().map(PathBuf::from).zip(texts).collect()),
        problems,
    }
}

impl Texts {
    /// lbd's effective config for these texts, checked by lbd's loader.
    pub fn load(&self) -> Result<Config, ConfigErrors> {
        lbd_config::load_texts(self.0.clone())
    }

    /// The same set with `path`'s text replaced.
    pub fn with(&self, path: &str, text: String) -> Self {
        Self(
            self.0
                .iter()
                .map(|(p, t)| {
                    let t = if p == Path::new(path) {
                        text.clone()
                    } else {
                        t.clone()
                    };
                    (p.clone(), t)
                })
                .collect(),
        )
    }

    pub fn text(&self, path: &str) -> &str {
        self.0
            .iter()
            .find(|(p, _)| p == Path::new(path))
            .map_or("", |(_, t)| t.as_str())
    }

    /// The texts lbd has now (what [`Texts::write`] last wrote).
    pub fn read_current() -> Self {
        Self(
            PATHS
                .iter()
                .map(|p| {
                    (
                        PathBuf::from(p),
                        std::fs::read_to_string(p).unwrap_or_default(),
                    )
                })
                .collect(),
        )
    }

    /// Writes every file that changed, each atomically (a new file renamed
    /// over the old one) and readable by root only: they hold the VRRP key
    /// and password hashes.
    pub fn write(&self) -> Result<(), String> {
        let _ = std::fs::create_dir_all(RUN_DIR);
        for (path, text) in &self.0 {
            if std::fs::read_to_string(path).ok().as_deref() == Some(text.as_str()) {
                continue;
            }
            // lbd runs as its own uid and reads them (lbd_owner.rs).
            write_private(path, text)
                .and_then(|()| crate::lbd_owner::hand_over(path))
                .map_err(|e| format!("writing {}: {e}", path.display()))?;
        }
        Ok(())
    }

    /// `-c` arguments for `lbd run`.
    pub fn args() -> Vec<String> {
        let mut args = vec!["run".to_string()];
        for p in PATHS {
            args.push("-c".into());
            args.push(p.into());
        }
        args
    }
}

/// Mode of every file lbd runs with: they hold the VRRP key, password
/// hashes and `lbd.config`.
pub const PRIVATE_MODE: u32 = 0o600;

/// `text` at `path` through a temporary file and a rename, mode
/// [`PRIVATE_MODE`]. The one place these files are written: giving them
/// to another owner is a change here only.
pub fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(PRIVATE_MODE)
        // lbd owns the directory (lbd_owner.rs): a symlink it left at the
        // temporary name must not make root write elsewhere.
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)?;
    // `mode` applies only to a new file: a temporary file left by a crash
    // keeps whatever mode it had.
    file.set_permissions(std::fs::Permissions::from_mode(PRIVATE_MODE))?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

fn render(layer: &Layer, header: &str) -> String {
    layer
        .to_toml(header)
        .unwrap_or_else(|e| format!("# {header}\n# not written: {e}\n"))
}

fn header_only(header: &str) -> String {
    format!("# {header}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Settings {
        let merged = settings::merge([settings::Layer::new(
            settings::Source::Cmdline,
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )]);
        assert!(merged.errors.is_empty(), "{:?}", merged.errors);
        merged.settings
    }

    /// Input: settings with no services, no VRRP, no store.
    /// Output: five files, the empty ones only comments, and lbd loads
    /// the set (an empty file is an empty layer).
    #[test]
    fn files_with_nothing_to_say_load_as_empty_layers() {
        let s = settings(&[("lbd.config", "")]);
        let composed = compose(&Inputs {
            settings: &s,
            overlay: OverlayInputs::default(),
            store_services: &toml::Table::new(),
            primary: None,
        });
        assert!(composed.problems.is_empty(), "{:?}", composed.problems);
        let paths: Vec<_> = composed.texts.0.iter().map(|(p, _)| p.clone()).collect();
        assert_eq!(paths, PATHS.map(PathBuf::from).to_vec());
        assert!(composed.texts.text(STORE).starts_with("# "));
        composed.texts.load().expect("lbd loads the empty set");
    }

    /// Input: a service slot and store services adding a server backend.
    /// Output: both layers are in the set and lbd's effective config has
    /// the slot's frontend and the store's backend.
    #[test]
    fn slots_and_store_services_are_layered() {
        let s = settings(&[
            ("service.1.name", "web"),
            ("service.1.virtual_ip", "192.0.2.100"),
            ("service.1.ports", "443"),
            ("service.1.servers", "192.0.2.11,192.0.2.12"),
        ]);
        let store: toml::Table =
            toml::from_str("[backends.extra.servers.x]\naddress = \"192.0.2.13:80\"\n").unwrap();
        let composed = compose(&Inputs {
            settings: &s,
            overlay: OverlayInputs::default(),
            store_services: &store,
            primary: None,
        });
        let config = composed.texts.load().unwrap_or_else(|e| panic!("{e}"));
        assert!(
            config.frontends.contains_key("web"),
            "{:?}",
            config.frontends.keys()
        );
        assert!(config.backends.contains_key("extra"));
    }

    /// Input: texts written twice, the second time with one file changed.
    /// Output: the files hold the texts, mode 0600.
    #[test]
    fn written_files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.toml");
        write_private(&path, "x = 1\n").unwrap();
        write_private(&path, "x = 2\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "x = 2\n");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    /// Input: a temporary file left mode 0644 by a crash mid-write.
    /// Output: the file written through it is still 0600.
    #[test]
    fn a_stale_temporary_file_does_not_widen_the_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vrrp.toml");
        std::fs::write(path.with_extension("tmp"), "half").unwrap();
        std::fs::set_permissions(
            path.with_extension("tmp"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        write_private(&path, "auth = \"k\"\n").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, PRIVATE_MODE);
    }
}
