//! Which lbd files a boot starts lbd with: the ones composed from this
//! boot's settings when lbd's loader takes them, else the last set that
//! worked, else the composed set without the admin's `lbd.config`.
//!
//! MANAGEMENT.md: lbd always starts with the last working services. A
//! broken `lbd.config` typed into vCenter (or a stored value that no
//! longer fits) is shown as a problem on the console and the status
//! screen, and lbd serves what it served before instead of refusing to
//! start and restarting for ever.

use std::path::{Path, PathBuf};

use rootfs::paths::LBD_CONFIG;
use settings::Settings;

use crate::console::Consoles;
use crate::last_good;
use crate::lbd_config::Effective;
use crate::lbd_files::{Texts, BASE, PATHS};

/// Most of lbd's errors shown on the console; lbd's own check lists all.
const ERRORS_SHOWN: usize = 5;

pub fn choose(consoles: &mut Consoles, settings: &Settings, composed: Texts) -> (Texts, Effective) {
    choose_from(
        consoles,
        settings,
        composed,
        Path::new(last_good::PATH),
        &std::fs::read_to_string(LBD_CONFIG).unwrap_or_default(),
    )
}

fn choose_from(
    consoles: &mut Consoles,
    settings: &Settings,
    composed: Texts,
    saved: &Path,
    baked: &str,
) -> (Texts, Effective) {
    let errors = match composed.load() {
        Ok(config) => {
            if let Err(e) = last_good::save(saved, &composed, "boot") {
                consoles.line(&format!("init: warning: {e}"));
            }
            return (composed, Ok(config));
        }
        Err(errors) => errors,
    };
    let culprit = if settings.lbd_config.is_some() {
        "lbd.config (fix it in vCenter: the VM's vApp Options, or `lbd ctl config set lbd.config=...`)"
    } else {
        "the settings and stored services of this boot"
    };
    consoles.line(&format!(
        "init: error: lbd would refuse its configuration from {culprit}: {} errors:",
        errors.0.len()
    ));
    for e in errors.0.iter().take(ERRORS_SHOWN) {
        consoles.line(&format!("init: error:   {e}"));
    }
    if let Some((texts, from)) = last_good::load(saved) {
        let same_files = texts.0.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>()
            == PATHS.map(PathBuf::from).to_vec();
        if same_files {
            if let Ok(config) = texts.load() {
                consoles.line(&format!(
                    "init: error: lbd runs the last configuration that worked (saved at {from}) until that is fixed"
                ));
                return (texts, Ok(config));
            }
        }
    }
    if settings.lbd_config.is_some() {
        let without = composed.with(BASE, baked.to_owned());
        if let Ok(config) = without.load() {
            consoles.line(
                "init: error: lbd.config is set aside for this boot: lbd runs the image's own config with the other settings",
            );
            return (without, Ok(config));
        }
    }
    (composed, Err(errors))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lbd_files::{compose, Inputs};

    /// Settings with `lbd.config` (as the merge decodes it from base64).
    fn with_lbd_config(text: &str) -> Settings {
        let mut s = settings::merge([]).settings;
        s.lbd_config = Some(text.to_owned());
        s
    }

    fn texts(s: &Settings) -> Texts {
        compose(&Inputs {
            settings: s,
            overlay: Default::default(),
            store_services: &toml::Table::new(),
            primary: None,
        })
        .texts
    }

    const GOOD: &str = "[frontends.web]\nbind = [\"127.0.0.1:8080\"]\ndefault_backend = \"web\"\n\
                        [backends.web.servers.a]\naddress = \"127.0.0.1:9000\"\n";
    const BAD: &str =
        "[frontends.web]\nbind = [\"127.0.0.1:8080\"]\ndefault_backend = \"nowhere\"\n";

    /// Input: a boot whose lbd.config loads, then a boot whose lbd.config
    /// names a backend that does not exist.
    /// Output: the first set is saved; the second boot runs it again (the
    /// frontend and its backend), and the console says why, as an error.
    #[test]
    fn a_bad_lbd_config_boots_the_last_working_files() {
        let dir = tempfile::tempdir().unwrap();
        let saved = dir.path().join("last-good.toml");
        let mut consoles = Consoles::for_tests();
        let good = with_lbd_config(GOOD);
        let (_, effective) = choose_from(&mut consoles, &good, texts(&good), &saved, "");
        assert!(effective.is_ok());
        let bad = with_lbd_config(BAD);
        let (chosen, effective) = choose_from(&mut consoles, &bad, texts(&bad), &saved, "");
        let config = effective.expect("the saved set loads");
        assert!(config.backends.contains_key("web"));
        assert_eq!(chosen.text(BASE), GOOD);
        let said = consoles.recorded().join("\n");
        assert!(
            said.contains("init: error: lbd would refuse its configuration from lbd.config"),
            "{said}"
        );
        assert!(said.contains("nowhere"), "{said}");
        assert!(
            said.contains("lbd runs the last configuration that worked"),
            "{said}"
        );
    }

    /// Input: a bad lbd.config on a first boot (nothing saved).
    /// Output: lbd runs the image's config with the other settings.
    #[test]
    fn a_bad_lbd_config_on_a_first_boot_falls_back_to_the_baked_config() {
        let dir = tempfile::tempdir().unwrap();
        let saved = dir.path().join("last-good.toml");
        let mut consoles = Consoles::for_tests();
        let bad = with_lbd_config(BAD);
        let (chosen, effective) = choose_from(&mut consoles, &bad, texts(&bad), &saved, GOOD);
        assert!(effective.is_ok());
        assert_eq!(chosen.text(BASE), GOOD);
        let said = consoles.recorded().join("\n");
        assert!(
            said.contains("lbd.config is set aside for this boot"),
            "{said}"
        );
    }
}
