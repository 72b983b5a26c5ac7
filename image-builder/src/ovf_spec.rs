//! The OVA's descriptor as data: the VM from `[vm]`, the product from
//! `[appliance]`, and one OVF property per entry of the `settings` crate's
//! table, so the deploy wizard and the guest's parser can never disagree.

use std::collections::BTreeMap;
use std::path::Path;

use ova::{
    DiskController, Firmware, Hardware, NicType, OvfSpec, ProductInfo, Property, PropertyGroup,
    PropertyType, Transport,
};
use settings::{OvfType, OVF_CLASS};

use crate::config::ApplianceConfig;

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("[settings] in {}: {message}", path.display())]
    Baked {
        path: std::path::PathBuf,
        message: String,
    },
    #[error("[settings] in {}: {key} holds a secret, and a baked value becomes a clear-text default in the OVA's .ovf (readable by anyone who can see the template): remove it and set it at deploy time, in the deploy wizard (\"{label}\") or as the OVF property appliance.{key}{hint}", path.display())]
    BakedSecret {
        path: std::path::PathBuf,
        key: &'static str,
        label: &'static str,
        hint: &'static str,
    },
}

/// What else an admin can do with a baked `lbd.config`.
const LBD_CONFIG_HINT: &str = "; a config for every appliance of this image goes in \
                               [lbd] config = \"lbd.toml\" (inside the image, not the .ovf)";

/// The baked `[settings]` as (key, raw value) pairs, checked by the same
/// parser the guest uses: a bad baked value fails the build, not the boot.
pub fn baked_settings(
    config: &ApplianceConfig,
    path: &Path,
) -> Result<Vec<(String, String)>, SpecError> {
    let text = toml::to_string(&toml::Table::from_iter([(
        "settings".to_string(),
        toml::Value::Table(config.settings.clone()),
    )]))
    .unwrap_or_default();
    let layer = settings::baked::parse(&text, path).map_err(|e| SpecError::Baked {
        path: path.into(),
        message: e.to_string(),
    })?;
    refuse_secrets(&layer.pairs, path)?;
    let merged = settings::merge([layer.clone()]);
    if let Some(e) = merged.errors.first() {
        return Err(SpecError::Baked {
            path: path.into(),
            message: e.to_string(),
        });
    }
    Ok(layer.pairs)
}

/// A baked setting that must not be baked: a password or a value that
/// holds secrets ([`settings::Property::masked`]). Empty values set
/// nothing and pass.
fn refuse_secrets(pairs: &[(String, String)], path: &Path) -> Result<(), SpecError> {
    for (key, value) in pairs {
        let Some(p) = settings::find(key).filter(|p| p.masked()) else {
            continue;
        };
        if value.trim().is_empty() {
            continue;
        }
        return Err(SpecError::BakedSecret {
            path: path.into(),
            key: p.key,
            label: p.label,
            hint: if p.password { "" } else { LBD_CONFIG_HINT },
        });
    }
    Ok(())
}

pub fn ovf_spec(config: &ApplianceConfig, baked: &[(String, String)]) -> OvfSpec {
    let baked: BTreeMap<&str, &str> = baked
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    // Categories in the order the table first names them.
    let mut groups: Vec<PropertyGroup> = Vec::new();
    for p in settings::properties() {
        // The OVF environment carries every property, defaults included, and
        // outranks the baked file: so a baked value must be the wizard's default.
        let default = baked.get(p.key).copied().unwrap_or(p.default);
        let property = Property {
            key: p.key.to_string(),
            class: Some(OVF_CLASS.to_string()),
            kind: property_type(p.ovf_type),
            default: default.to_string(),
            label: p.label.to_string(),
            description: p.description.to_string(),
            user_configurable: p.user_configurable,
            password: p.password,
            qualifiers: p.ovf_qualifiers(),
            vmw_qualifiers: p.ip.then(|| "Ip".to_string()),
        };
        match groups.iter_mut().find(|g| g.category == p.category) {
            Some(g) => g.properties.push(property),
            None => groups.push(PropertyGroup {
                category: p.category.to_string(),
                properties: vec![property],
            }),
        }
    }
    let a = &config.appliance;
    OvfSpec {
        name: a.name.clone(),
        product: ProductInfo {
            product: a.pretty_name.clone(),
            vendor: config.vm.vendor.clone(),
            version: a.version.clone(),
            full_version: a.version.clone(),
            product_url: config.vm.product_url.clone(),
            vendor_url: config.vm.vendor_url.clone(),
        },
        annotation: config.vm.annotation.clone(),
        guest_os: ova::spec::DEFAULT_GUEST_OS.to_string(),
        hardware: Hardware {
            hw_version: config.vm.hardware_version.clone(),
            cpus: config.vm.cpus,
            memory_mib: u64::from(config.vm.memory_mib),
            disk_controller: DiskController::Nvme,
            network_name: config.vm.network.clone(),
            nic: NicType::Vmxnet3,
            cdrom: true,
            video: true,
            firmware: Firmware::Efi,
            // The UKI is not signed; say so rather than let vSphere guess.
            secure_boot: false,
            soft_power_off: true,
        },
        // Both: guestinfo.ovfEnv for the backdoor, and an "OVF ENV" CD that
        // works even where the backdoor is locked down.
        transport: Transport::IsoAndGuestInfo,
        properties: groups,
    }
}

fn property_type(t: OvfType) -> PropertyType {
    match t {
        OvfType::String => PropertyType::String,
        OvfType::Boolean => PropertyType::Boolean,
        OvfType::Uint8 => PropertyType::Uint8,
        OvfType::Uint16 => PropertyType::Uint16,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(settings: &str) -> ApplianceConfig {
        let text = format!(
            "[appliance]\nname = \"lb\"\nversion = \"1\"\n[kernel]\npackage = \"k\"\ncmdline = \"\"\n[settings]\n{settings}\n"
        );
        ApplianceConfig::parse(&text, Path::new("a.toml")).unwrap()
    }

    #[test]
    fn every_setting_becomes_a_property_and_baked_values_are_defaults() {
        let c = config("hostname = \"edge1\"");
        let baked = baked_settings(&c, Path::new("a.toml")).unwrap();
        let spec = ovf_spec(&c, &baked);
        let props: Vec<&Property> = spec.properties.iter().flat_map(|g| &g.properties).collect();
        assert_eq!(props.len(), settings::properties().len());
        let host = props.iter().find(|p| p.key == "hostname").unwrap();
        assert_eq!(host.default, "edge1");
        assert_eq!(host.env_key(), "appliance.hostname");
        assert!(props.iter().any(|p| p.password), "a secret property");
        assert!(props
            .iter()
            .any(|p| p.vmw_qualifiers.as_deref() == Some("Ip")));
    }

    /// Input: the spec of a plain appliance.toml, packaged with a small
    /// disk. Output: `inspect` of the OVA (what `image-builder inspect`
    /// prints) lists the four service slots under their own categories,
    /// between VRRP and Advanced, with their ValueMaps; xmllint accepts the
    /// descriptor.
    #[test]
    fn the_ova_lists_the_service_slots_under_their_categories() {
        let c = config("");
        let spec = ovf_spec(&c, &baked_settings(&c, Path::new("a.toml")).unwrap());
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("disk.img");
        std::fs::write(&raw, vec![0u8; 1 << 20]).unwrap();
        let summary = ova::write_ova(&raw, &spec, dir.path(), 0).unwrap();
        let report = ova::inspect(&summary.ova_path).unwrap().to_string();
        let find = |needle: &str| {
            report
                .find(needle)
                .unwrap_or_else(|| panic!("{needle:?} missing in:\n{report}"))
        };
        let mut last = find("  [High availability (VRRP)]");
        for n in 1..=4 {
            let category = find(&format!(
                "  [Service {n}]\n    appliance.service.{n}.name (string)"
            ));
            assert!(category > last, "Service {n} out of order:\n{report}");
            last = category;
            find(&format!(
                "appliance.service.{n}.balance (string) = \"roundrobin\" \
                 [ValueMap{{\"roundrobin\",\"static-rr\",\"leastconn\",\"first\",\"source\",\"random\"}}]"
            ));
            find(&format!(
                "appliance.service.{n}.check (string) = \"tcp\" \
                 [ValueMap{{\"none\",\"tcp\",\"tls\",\"http\",\"https\"}}]"
            ));
            find(&format!(
                "appliance.service.{n}.redirect_http (boolean) = \"false\""
            ));
        }
        // The web console's certificate after the slots, the key masked;
        // the read-only password with the admin's.
        let console = find("  [Web console]\n    appliance.console.certificate (string)");
        assert!(console > last, "{report}");
        find("appliance.console.key (string) = \"\" [password]");
        find("appliance.admin.readonly_password (string) = \"\" [password, MinLen(0),MaxLen(128)]");
        assert!(find("  [Advanced]") > console, "{report}");

        // The descriptor the OVA carries, by the same writer, for xmllint.
        let disk = ova::ovf::DiskRef {
            file_name: "lb-1-disk1.vmdk".into(),
            file_size: 4096,
            capacity_bytes: 1 << 20,
        };
        let ovf = dir.path().join("lb.ovf");
        std::fs::write(&ovf, ova::ovf::write_descriptor(&spec, &disk).unwrap()).unwrap();
        let lint = std::process::Command::new("xmllint")
            .arg("--noout")
            .arg(&ovf)
            .output()
            .expect("xmllint is installed (Debian libxml2-utils)");
        assert!(
            lint.status.success(),
            "{}",
            String::from_utf8_lossy(&lint.stderr)
        );
    }

    /// Input: appliance.toml baking admin.password, the read-only
    /// password, vrrp.auth or console.key (as sub-tables) or lbd.config. Output: each fails the build naming the
    /// key and the fix, with the value nowhere in the message; an empty
    /// password (not set) passes.
    #[test]
    fn a_baked_secret_fails_the_build_naming_the_key_and_the_fix() {
        for (toml, key) in [
            ("admin.password = \"hunter2-secret\"", "admin.password"),
            (
                "[settings.vrrp]\nauth = \"hunter2-secret-key\"",
                "vrrp.auth",
            ),
            ("lbd.config = \"W3N0YXRzXQo=\"", "lbd.config"),
            (
                "admin.readonly_password = \"hunter2-secret\"",
                "admin.readonly_password",
            ),
            (
                "[settings.console]\nkey = \"-----BEGIN PRIVATE KEY-----hunter2-----END PRIVATE KEY-----\"",
                "console.key",
            ),
        ] {
            let err = baked_settings(&config(toml), Path::new("a.toml"))
                .expect_err(key)
                .to_string();
            assert!(err.contains(key), "{err}");
            assert!(err.contains("deploy wizard"), "{err}");
            assert!(!err.contains("hunter2") && !err.contains("W3N0"), "{err}");
        }
        let c = config("admin.password = \"\"");
        baked_settings(&c, Path::new("a.toml")).expect("an empty password is not a secret");
    }

    #[test]
    fn a_bad_baked_value_fails_the_build_with_its_key() {
        let c = config("hostname = \"-bad-\"");
        let err = baked_settings(&c, Path::new("a.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("hostname"), "{err}");
    }
}
