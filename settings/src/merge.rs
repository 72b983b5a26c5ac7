//! Layering: a pure fold over the sources in precedence order.
//!
//! Each layer's pairs are applied through the property table onto the
//! settings so far; a value that does not parse becomes a [`SettingError`]
//! and leaves the lower layer's value in place, so the appliance still boots
//! with everything else.

use std::collections::BTreeMap;
use std::fmt;

use crate::model::Settings;
use crate::source::{Layer, Source};
use crate::table::{find, properties, Property};
use crate::value::{parse_sysctls, NetworkMode};

/// The table key of the sysctl list.
const SYSCTL_KEY: &str = "sysctl";
/// `sysctl.<name>` keys set one sysctl each: `[settings.sysctl]` in TOML,
/// `appliance.sysctl.net.core.somaxconn=4096` on the command line.
const SYSCTL_PREFIX: &str = "sysctl.";

/// The keys of the service slots (`service.1.name`).
const SERVICE_PREFIX: &str = "service.";

/// What the console shows instead of a secret.
pub const MASK: &str = "********";

/// One rejected value: the key, the value, where it came from and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingError {
    /// The key as the table spells it (or as the source spelled an unknown one).
    pub key: String,
    /// The raw value (masked for secrets, values holding them and
    /// unknown keys).
    pub value: String,
    /// The source that gave it.
    pub source: Source,
    /// What is wrong and what a good value looks like.
    pub message: String,
}

impl fmt::Display for SettingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "setting {} = {:?} from {} ignored: {}",
            self.key, self.value, self.source, self.message
        )
    }
}

impl std::error::Error for SettingError {}

/// Where the value in effect for one key came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The winning source.
    pub source: Source,
    /// Its raw text (the console masks secrets).
    pub raw: String,
}

/// The result of the merge: typed settings, each key's origin, and every
/// rejected value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merged {
    /// The settings in effect.
    pub settings: Settings,
    /// For each table key, the source and raw text of the value in effect.
    pub origins: BTreeMap<&'static str, Origin>,
    /// Every rejected value, in the order met.
    pub errors: Vec<SettingError>,
}

/// Merges the layers by precedence ([`Source`] order; layers of the same
/// source keep their order) on top of the table's defaults.
///
/// An empty value means "not set here": the lower layer's value stands. The
/// OVF environment carries every property, including those the admin left
/// empty in the wizard, and those must not erase baked settings.
pub fn merge(layers: impl IntoIterator<Item = Layer>) -> Merged {
    let mut layers: Vec<Layer> = layers.into_iter().collect();
    layers.sort_by_key(|l| l.source);
    layers
        .into_iter()
        .fold(Merged::defaults(), Merged::apply_layer)
        .check()
}

impl Merged {
    /// The table's defaults, each with [`Source::Default`].
    pub fn defaults() -> Self {
        let origins = properties()
            .iter()
            .map(|p| {
                let origin = Origin {
                    source: Source::Default,
                    raw: p.default.to_owned(),
                };
                (p.key, origin)
            })
            .collect();
        Self {
            settings: Settings::default(),
            origins,
            errors: Vec::new(),
        }
    }

    /// Applies one layer (one step of the fold).
    pub fn apply_layer(mut self, layer: Layer) -> Self {
        for (key, raw) in layer.pairs {
            self.apply_one(layer.source, &key, raw);
        }
        self
    }

    fn apply_one(&mut self, source: Source, key: &str, raw: String) {
        if let Some(name) = key.strip_prefix(SYSCTL_PREFIX) {
            self.apply_sysctl(source, key, name, &raw);
            return;
        }
        let Some(prop) = find(key) else {
            // A misspelt key may well be a secret's (`admin.pasword`): its
            // value is not shown either.
            self.errors.push(SettingError {
                key: key.to_owned(),
                value: MASK.to_owned(),
                source,
                message: unknown_key_message(),
            });
            return;
        };
        if raw.trim().is_empty() {
            return;
        }
        match prop.apply(&mut self.settings, &raw) {
            Ok(()) => {
                self.origins.insert(prop.key, Origin { source, raw });
            }
            Err(message) => self.errors.push(SettingError {
                key: prop.key.to_owned(),
                value: shown(prop, &raw),
                source,
                message,
            }),
        }
    }

    /// One `sysctl.<name>` key: adds or replaces that sysctl in the list.
    fn apply_sysctl(&mut self, source: Source, key: &str, name: &str, raw: &str) {
        if raw.trim().is_empty() {
            return;
        }
        let parsed = if raw.contains(',') {
            Err("a single value has no comma".to_owned())
        } else {
            parse_sysctls(&format!("{name}={raw}"))
        };
        match parsed.as_deref() {
            Ok([(name, value)]) => {
                let list = &mut self.settings.sysctls;
                match list.iter_mut().find(|(n, _)| n == name) {
                    Some(entry) => entry.1.clone_from(value),
                    None => list.push((name.clone(), value.clone())),
                }
                let raw = list
                    .iter()
                    .map(|(n, v)| format!("{n}={v}"))
                    .collect::<Vec<_>>()
                    .join(",");
                self.origins.insert(SYSCTL_KEY, Origin { source, raw });
            }
            Ok(_) => {}
            Err(message) => self.errors.push(SettingError {
                key: key.to_owned(),
                value: raw.to_owned(),
                source,
                message: message.clone(),
            }),
        }
    }

    /// Checks that need more than one key; a failed check falls back to a
    /// safe value and reports why.
    fn check(mut self) -> Self {
        let net = &self.settings.network;
        if net.mode == NetworkMode::Static && net.ipv4.is_none() {
            let source = self
                .origins
                .get("network.mode")
                .map_or(Source::Default, |o| o.source);
            self.errors.push(SettingError {
                key: "network.ipv4".to_owned(),
                value: String::new(),
                source,
                message: "network.mode is static but no address is set: set network.ipv4 \
                          (using dhcp meanwhile)"
                    .to_owned(),
            });
            self.settings.network.mode = NetworkMode::Dhcp;
            self.origins.insert(
                "network.mode",
                Origin {
                    source: Source::Default,
                    raw: NetworkMode::Dhcp.to_string(),
                },
            );
        }
        let services = crate::service_check::resolve(&mut self.settings, &self.origins);
        self.errors.extend(services);
        self
    }

    /// Lines `key = value (source)` in table order for the console;
    /// secrets are masked and unset values say so. Fields of unused service
    /// slots are left out unless someone set them to something.
    pub fn render(&self) -> Vec<String> {
        properties()
            .iter()
            .filter(|p| self.shown_on_console(p))
            .map(|p| {
                let origin = self.origins.get(p.key);
                let (value, source) = match origin {
                    Some(o) if !o.raw.trim().is_empty() => (shown(p, &o.raw), o.source),
                    Some(o) => ("(not set)".to_owned(), o.source),
                    None => ("(not set)".to_owned(), Source::Default),
                };
                format!("{} = {value} ({source})", p.key)
            })
            .collect()
    }
}

impl Merged {
    /// Every setting but the fields of an unused service slot that only
    /// repeat the table's default: vCenter delivers every property, so
    /// four unused slots would otherwise be 16 lines of `mode = tcp`.
    fn shown_on_console(&self, p: &Property) -> bool {
        let Some(rest) = p.key.strip_prefix(SERVICE_PREFIX) else {
            return true;
        };
        let in_use = rest
            .split('.')
            .next()
            .and_then(|n| n.parse::<usize>().ok())
            .and_then(|n| self.settings.service_slots.get(n.wrapping_sub(1)))
            .is_some_and(crate::service::ServiceSlot::in_use);
        let differs = self
            .origins
            .get(p.key)
            // Booleans arrive as `True`/`False` from vCenter.
            .is_some_and(|o| {
                o.source != Source::Default && !o.raw.trim().eq_ignore_ascii_case(p.default)
            });
        in_use || differs
    }
}

/// The raw value as it may be shown: secrets and values holding them
/// masked, one line.
fn shown(prop: &Property, raw: &str) -> String {
    if prop.masked() {
        MASK.to_owned()
    } else if raw.contains("-----BEGIN ") {
        // A certificate chain is kilobytes of base64: one console line
        // says it is there, the boot's certificate line says which.
        format!("(PEM, {} bytes)", raw.trim().len())
    } else {
        raw.trim().replace(['\n', '\r'], " ")
    }
}

fn unknown_key_message() -> String {
    let keys: Vec<&str> = properties().iter().map(|p| p.key).collect();
    format!("unknown setting; known settings are {}", keys.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(source: Source, pairs: &[(&str, &str)]) -> Layer {
        Layer::new(
            source,
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn later_source_wins_whatever_the_argument_order() {
        // Input: cmdline says lb3, baked says lb1, guestinfo says lb2, given
        // out of order. Output: cmdline wins and is recorded as the source.
        let m = merge([
            layer(Source::Cmdline, &[("hostname", "lb3")]),
            layer(Source::Baked, &[("hostname", "lb1")]),
            layer(Source::Guestinfo, &[("hostname", "lb2")]),
        ]);
        assert_eq!(m.settings.hostname, "lb3");
        assert_eq!(m.origins["hostname"].source, Source::Cmdline);
        assert!(m.errors.is_empty());
    }

    #[test]
    fn bad_value_is_reported_and_lower_value_stands() {
        // Input: baked priority 150, OVF priority 300 (out of range), an
        // unknown key on the cmdline. Output: priority stays 150 from baked,
        // two errors naming key, value and source, the rest applies.
        let m = merge([
            layer(Source::Baked, &[("vrrp.priority", "150")]),
            layer(
                Source::OvfEnv,
                &[("vrrp.priority", "300"), ("hostname", "lb9")],
            ),
            layer(Source::Cmdline, &[("no.such", "1")]),
        ]);
        assert_eq!(m.settings.vrrp.priority, 150);
        assert_eq!(m.origins["vrrp.priority"].source, Source::Baked);
        assert_eq!(m.settings.hostname, "lb9");
        assert_eq!(m.errors.len(), 2);
        assert_eq!(m.errors[0].key, "vrrp.priority");
        assert_eq!(m.errors[0].value, "300");
        assert_eq!(m.errors[0].source, Source::OvfEnv);
        assert!(
            m.errors[0].message.contains("out of range"),
            "{}",
            m.errors[0]
        );
        assert_eq!(m.errors[1].key, "no.such");
        assert_eq!(m.errors[1].source, Source::Cmdline);
    }

    #[test]
    fn empty_value_does_not_erase_lower_layer() {
        let m = merge([
            layer(Source::Baked, &[("network.dns", "192.0.2.53")]),
            layer(Source::OvfEnv, &[("network.dns", "")]),
        ]);
        assert_eq!(
            m.settings.network.dns,
            vec!["192.0.2.53".parse::<std::net::IpAddr>().unwrap()]
        );
        assert_eq!(m.origins["network.dns"].source, Source::Baked);
    }

    #[test]
    fn static_without_address_falls_back_to_dhcp_with_an_error() {
        let m = merge([layer(Source::OvfEnv, &[("network.mode", "static")])]);
        assert_eq!(m.settings.network.mode, NetworkMode::Dhcp);
        assert_eq!(m.errors.len(), 1);
        assert_eq!(m.errors[0].key, "network.ipv4");
        assert_eq!(m.errors[0].source, Source::OvfEnv);
    }

    #[test]
    fn sysctl_keys_add_to_the_list() {
        // Input: a baked list of two, the cmdline replaces one and adds one,
        // and gives one bad name. Output: three sysctls, cmdline's values
        // win, the bad one is reported with its key.
        let m = merge([
            layer(
                Source::Baked,
                &[("sysctl", "net.core.somaxconn=1024,vm.swappiness=10")],
            ),
            layer(
                Source::Cmdline,
                &[
                    ("sysctl.net.core.somaxconn", "4096"),
                    ("sysctl.net.ipv4.tcp_fin_timeout", "15"),
                    ("sysctl.bad name", "1"),
                ],
            ),
        ]);
        let pair = |n: &str, v: &str| (n.to_owned(), v.to_owned());
        assert_eq!(
            m.settings.sysctls,
            vec![
                pair("net.core.somaxconn", "4096"),
                pair("vm.swappiness", "10"),
                pair("net.ipv4.tcp_fin_timeout", "15"),
            ]
        );
        assert_eq!(m.origins["sysctl"].source, Source::Cmdline);
        assert_eq!(m.errors.len(), 1);
        assert_eq!(m.errors[0].key, "sysctl.bad name");
    }

    #[test]
    fn appliance_store_sits_between_vsphere_and_cmdline() {
        // Input: hostname from baked, OVF, guestinfo and the store; DNS from
        // the OVF environment and the store; MTU from the store and the
        // cmdline. Output: the store beats vSphere (hostname, DNS), the
        // cmdline beats the store (MTU), and render says "(appliance)".
        let m = merge([
            layer(Source::Cmdline, &[("network.mtu", "9000")]),
            layer(
                Source::Appliance,
                &[
                    ("hostname", "lb-store"),
                    ("network.dns", "192.0.2.54"),
                    ("network.mtu", "1400"),
                ],
            ),
            layer(Source::Baked, &[("hostname", "lb1")]),
            layer(
                Source::OvfEnv,
                &[("hostname", "lb-ovf"), ("network.dns", "192.0.2.53")],
            ),
            layer(Source::Guestinfo, &[("hostname", "lb-gi")]),
        ]);
        assert_eq!(m.settings.hostname, "lb-store");
        assert_eq!(m.origins["hostname"].source, Source::Appliance);
        assert_eq!(m.origins["network.dns"].source, Source::Appliance);
        assert_eq!(m.settings.network.mtu, 9000);
        assert_eq!(m.origins["network.mtu"].source, Source::Cmdline);
        let lines = m.render();
        assert!(
            lines.contains(&"hostname = lb-store (appliance)".to_owned()),
            "{lines:#?}"
        );
        assert!(m.errors.is_empty(), "{:?}", m.errors);
    }

    #[test]
    fn bad_stored_value_is_reported_as_appliance_and_vsphere_stands() {
        // Input: the OVF environment sets priority 120, the store 999.
        // Output: priority 120 from ovf-env, one error with source
        // "appliance" naming the key.
        let m = merge([
            layer(Source::OvfEnv, &[("vrrp.priority", "120")]),
            layer(Source::Appliance, &[("vrrp.priority", "999")]),
        ]);
        assert_eq!(m.settings.vrrp.priority, 120);
        assert_eq!(m.origins["vrrp.priority"].source, Source::OvfEnv);
        assert_eq!(m.errors.len(), 1);
        assert_eq!(m.errors[0].key, "vrrp.priority");
        assert_eq!(m.errors[0].source, Source::Appliance);
        assert!(m.errors[0].to_string().contains("from appliance"));
    }

    #[test]
    fn render_masks_secrets_and_names_sources() {
        let m = merge([
            layer(
                Source::OvfEnv,
                &[("admin.password", "hunter2-long"), ("vrrp.auth", "s3cret!")],
            ),
            layer(
                Source::Cmdline,
                &[("network.mtu", "9000"), ("vrrp.auth", "bad\u{7}")],
            ),
        ]);
        let lines = m.render();
        assert!(
            lines.contains(&"admin.password = ******** (ovf-env)".to_owned()),
            "{lines:#?}"
        );
        assert!(lines.contains(&"network.mtu = 9000 (cmdline)".to_owned()));
        assert!(lines.contains(&"hostname = lb (default)".to_owned()));
        assert!(lines.contains(&"network.ipv4 = (not set) (default)".to_owned()));
        assert!(lines
            .iter()
            .all(|l| !l.contains("hunter2") && !l.contains("s3cret")));
        assert_eq!(m.errors.len(), 1);
        assert_eq!(m.errors[0].value, MASK);
        assert!(!m.errors[0].to_string().contains("bad"));
    }

    #[test]
    fn short_admin_password_is_refused_naming_the_fix() {
        // Input: a one-character admin password from the OVF environment,
        // then lbd's hash of a password (an export) from the store.
        // Output: the short one is an error naming admin.password, the
        // minimum and how to disable the page, and is not applied; the
        // hash is taken as it is.
        let m = merge([layer(Source::OvfEnv, &[("admin.password", "x")])]);
        assert!(m.settings.admin_password.is_none());
        assert_eq!(m.errors.len(), 1);
        assert_eq!(m.errors[0].key, "admin.password");
        assert_eq!(m.errors[0].value, MASK);
        let text = m.errors[0].to_string();
        assert!(text.contains("admin.password"), "{text}");
        assert!(text.contains("is 1 characters: use at least 8"), "{text}");
        assert!(text.contains("leave it empty"), "{text}");

        let hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA";
        let m = merge([layer(Source::Appliance, &[("admin.password", hash)])]);
        assert!(m.errors.is_empty(), "{:?}", m.errors);
        assert_eq!(
            m.settings.admin_password.map(|p| p.expose().to_owned()),
            Some(hash.to_owned())
        );

        let m = merge([layer(Source::OvfEnv, &[("admin.password", "eight-ch")])]);
        assert!(m.errors.is_empty(), "{:?}", m.errors);
        assert!(m.settings.admin_password.is_some());
    }

    /// Input: `lbd.config` (it can carry keys and hashes) from the OVF
    /// environment, a bad one on the command line, and an unknown key
    /// (perhaps a misspelt `admin.pasword`) with a value. Output: render
    /// and every error show the mask, never the text.
    #[test]
    fn lbd_config_and_unknown_keys_are_masked() {
        let m = merge([
            layer(Source::OvfEnv, &[("lbd.config", "W3N0YXRzXQo=")]),
            layer(
                Source::Cmdline,
                &[
                    ("lbd.config", "not-base64-secret!"),
                    ("admin.pasword", "hunter2"),
                ],
            ),
        ]);
        let lines = m.render();
        assert!(
            lines.contains(&format!("lbd.config = {MASK} (ovf-env)")),
            "{lines:#?}"
        );
        assert_eq!(m.errors.len(), 2, "{:?}", m.errors);
        for e in &m.errors {
            assert_eq!(e.value, MASK, "{e}");
        }
        let printed = format!("{lines:?} {:?}", m.errors);
        for secret in ["W3N0YXRzXQo", "not-base64-secret", "hunter2"] {
            assert!(!printed.contains(secret), "{secret} shown: {printed}");
        }
    }
}
