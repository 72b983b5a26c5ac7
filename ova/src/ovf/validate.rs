//! Checks an [`OvfSpec`] before it becomes a descriptor, so vCenter never
//! sees a value it would reject at deploy time.

use std::collections::HashSet;

use super::{DiskRef, OvfError};
use crate::spec::{DiskController, Firmware, OvfSpec, Property, PropertyType, Transport};

/// vmx-13 (ESXi 6.5) is the first hardware version with EFI and NVMe.
const MIN_HW_VERSION: u32 = 13;
/// vSphere sizes memory in multiples of 4 MiB.
const MEMORY_GRANULE_MIB: u64 = 4;

/// Checks names, hardware and every property; the error names the field.
pub fn validate(spec: &OvfSpec, disk: &DiskRef) -> Result<(), OvfError> {
    file_stem("name", &spec.name)?;
    file_stem("product.version", &spec.product.version)?;
    file_stem("disk file name", &disk.file_name)?;
    if disk.capacity_bytes == 0 || !disk.capacity_bytes.is_multiple_of(512) {
        return Err(OvfError::invalid(
            "disk capacity",
            format!("{} is not a positive multiple of 512", disk.capacity_bytes),
        ));
    }
    for (field, value) in [
        ("annotation", &spec.annotation),
        ("product.product", &spec.product.product),
        ("product.vendor", &spec.product.vendor),
        ("product.full_version", &spec.product.full_version),
        ("product.product_url", &spec.product.product_url),
        ("product.vendor_url", &spec.product.vendor_url),
    ] {
        xml_text(field, value)?;
    }
    one_line("guest_os", &spec.guest_os, false)?;
    hardware(spec)?;
    let mut keys = HashSet::new();
    for group in &spec.properties {
        xml_text("property category", &group.category)?;
        for p in &group.properties {
            property(p)?;
            if !keys.insert(p.env_key()) {
                return Err(OvfError::invalid(
                    format!("property {}", p.env_key()),
                    "is defined twice",
                ));
            }
        }
    }
    Ok(())
}

fn hardware(spec: &OvfSpec) -> Result<(), OvfError> {
    let hw = &spec.hardware;
    let version = hw
        .hw_version
        .strip_prefix("vmx-")
        .and_then(|v| v.parse::<u32>().ok())
        .ok_or_else(|| {
            OvfError::invalid(
                "hardware.hw_version",
                format!("{:?} is not vmx-<number>, e.g. vmx-13", hw.hw_version),
            )
        })?;
    let needs_13 = hw.firmware == Firmware::Efi || hw.disk_controller == DiskController::Nvme;
    if needs_13 && version < MIN_HW_VERSION {
        return Err(OvfError::invalid(
            "hardware.hw_version",
            format!(
                "{} is older than vmx-13, the first with EFI and NVMe",
                hw.hw_version
            ),
        ));
    }
    if hw.cpus == 0 {
        return Err(OvfError::invalid("hardware.cpus", "must be at least 1"));
    }
    if hw.memory_mib == 0 || !hw.memory_mib.is_multiple_of(MEMORY_GRANULE_MIB) {
        return Err(OvfError::invalid(
            "hardware.memory_mib",
            format!("{} is not a positive multiple of 4 MiB", hw.memory_mib),
        ));
    }
    one_line("hardware.network_name", &hw.network_name, false)?;
    if spec.transport == Transport::IsoAndGuestInfo && !hw.cdrom {
        return Err(OvfError::invalid(
            "transport",
            "the iso transport needs the CD-ROM: set hardware.cdrom",
        ));
    }
    if hw.secure_boot && hw.firmware != Firmware::Efi {
        return Err(OvfError::invalid(
            "hardware.secure_boot",
            "Secure Boot needs EFI firmware",
        ));
    }
    Ok(())
}

fn property(p: &Property) -> Result<(), OvfError> {
    let field = format!("property {}", p.key);
    let key_ok = |k: &str| {
        !k.is_empty()
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    };
    if !key_ok(&p.key) || p.class.as_deref().is_some_and(|c| !key_ok(c)) {
        return Err(OvfError::invalid(
            field,
            "key and class must be non-empty [A-Za-z0-9._-]",
        ));
    }
    one_line(&field, &p.default, true)?;
    for q in [&p.qualifiers, &p.vmw_qualifiers].into_iter().flatten() {
        one_line(&field, q, false)?;
    }
    xml_text(&field, &p.label)?;
    xml_text(&field, &p.description)?;
    if p.user_configurable && p.label.trim().is_empty() {
        return Err(OvfError::invalid(
            field,
            "a user-configurable property needs a label for the wizard",
        ));
    }
    if p.default.is_empty() {
        return Ok(());
    }
    let ok = match p.kind {
        PropertyType::String => true,
        PropertyType::Boolean => {
            p.default.eq_ignore_ascii_case("true") || p.default.eq_ignore_ascii_case("false")
        }
        PropertyType::Int | PropertyType::Sint64 => p.default.parse::<i64>().is_ok(),
        PropertyType::Sint8 => p.default.parse::<i8>().is_ok(),
        PropertyType::Sint16 => p.default.parse::<i16>().is_ok(),
        PropertyType::Sint32 => p.default.parse::<i32>().is_ok(),
        PropertyType::Uint8 => p.default.parse::<u8>().is_ok(),
        PropertyType::Uint16 => p.default.parse::<u16>().is_ok(),
        PropertyType::Uint32 => p.default.parse::<u32>().is_ok(),
        PropertyType::Uint64 => p.default.parse::<u64>().is_ok(),
        PropertyType::Real32 | PropertyType::Real64 => p.default.parse::<f64>().is_ok(),
    };
    if !ok {
        return Err(OvfError::invalid(
            field,
            format!("default {:?} is not a valid {}", p.default, p.kind),
        ));
    }
    Ok(())
}

/// Names that become OVA member names: bare, portable, and short enough for ustar.
fn file_stem(field: &str, value: &str) -> Result<(), OvfError> {
    let ok = !value.is_empty()
        && value.len() <= 64
        && !value.starts_with('.')
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-+".contains(c));
    if !ok {
        return Err(OvfError::invalid(
            field,
            format!("{value:?} must be 1-64 characters of [A-Za-z0-9._+-], not starting with '.'"),
        ));
    }
    Ok(())
}

/// Text that XML 1.0 can carry: tabs and newlines, but no other control
/// characters, and no `\r` (parsers turn it into `\n`).
fn xml_text(field: &str, value: &str) -> Result<(), OvfError> {
    if let Some(c) = value
        .chars()
        .find(|&c| (c.is_control() && c != '\t' && c != '\n') || c == '\u{fffe}' || c == '\u{ffff}')
    {
        return Err(OvfError::invalid(
            field,
            format!("contains {c:?}, which XML cannot carry"),
        ));
    }
    Ok(())
}

/// Attribute values: parsers turn newlines and tabs into spaces, so one line only.
fn one_line(field: &str, value: &str, may_be_empty: bool) -> Result<(), OvfError> {
    if !may_be_empty && value.trim().is_empty() {
        return Err(OvfError::invalid(field, "must not be empty"));
    }
    if value.chars().any(char::is_control) {
        return Err(OvfError::invalid(
            field,
            format!("{value:?} must be one line without control characters"),
        ));
    }
    xml_text(field, value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disk() -> DiskRef {
        DiskRef {
            file_name: "lb-0.1.0-disk1.vmdk".into(),
            file_size: 4096,
            capacity_bytes: 1 << 20,
        }
    }

    fn field_of(spec: &OvfSpec) -> String {
        match validate(spec, &disk()) {
            Err(OvfError::Invalid { field, .. }) => field,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn example_is_valid() {
        validate(&OvfSpec::example(), &disk()).unwrap();
    }

    #[test]
    fn rejects_path_in_name() {
        let mut spec = OvfSpec::example();
        spec.name = "../lb".into();
        assert_eq!(field_of(&spec), "name");
    }

    #[test]
    fn rejects_old_hardware_for_efi() {
        let mut spec = OvfSpec::example();
        spec.hardware.hw_version = "vmx-11".into();
        assert_eq!(field_of(&spec), "hardware.hw_version");
    }

    #[test]
    fn rejects_iso_without_cdrom() {
        let mut spec = OvfSpec::example();
        spec.transport = Transport::IsoAndGuestInfo;
        spec.hardware.cdrom = false;
        assert_eq!(field_of(&spec), "transport");
    }

    #[test]
    fn rejects_bad_typed_default() {
        let mut spec = OvfSpec::example();
        spec.properties[0].properties[3].default = "300".into();
        assert_eq!(field_of(&spec), "property network.prefix");
    }

    #[test]
    fn rejects_duplicate_keys() {
        let mut spec = OvfSpec::example();
        let dup = spec.properties[0].properties[0].clone();
        spec.properties[1].properties.push(dup);
        assert_eq!(field_of(&spec), "property hostname");
    }

    #[test]
    fn rejects_control_characters() {
        let mut spec = OvfSpec::example();
        spec.properties[0].properties[0].description = "bell \u{7}".into();
        assert_eq!(field_of(&spec), "property hostname");
    }
}
