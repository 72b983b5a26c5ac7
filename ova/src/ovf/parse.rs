//! Reads a descriptor back into an [`OvfSpec`]: `inspect` reports it, and the
//! tests check `parse(write(spec)) == spec`.

use super::dom::{parse_xml, Element};
use super::{DiskRef, OvfError, NS_OVF, NS_RASD, NS_VMW, NS_VSSD};
use crate::spec::{
    DiskController, Firmware, Hardware, NicType, OvfSpec, ProductInfo, Property, PropertyGroup,
    PropertyType, Transport,
};

/// A `References/File` entry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FileRef {
    pub id: String,
    pub href: String,
    pub size: Option<u64>,
}

/// What a descriptor says.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ParsedDescriptor {
    pub spec: OvfSpec,
    /// The disk of the (first) Disk element with its File's size.
    pub disk: DiskRef,
    /// The Disk's `ovf:format`.
    pub disk_format: String,
    pub files: Vec<FileRef>,
}

/// Parses descriptor bytes; errors name the missing or odd element.
pub fn parse_descriptor(xml: &[u8]) -> Result<ParsedDescriptor, OvfError> {
    let root = parse_xml(xml)?;
    if root.ns != NS_OVF || root.name != "Envelope" {
        return Err(OvfError::malformed(format!(
            "root is <{}> in {:?}, not an OVF 1.x Envelope",
            root.name, root.ns
        )));
    }
    let files = need(&root, "References")?
        .children_named(NS_OVF, "File")
        .map(|f| {
            Ok(FileRef {
                id: need_attr(f, NS_OVF, "id")?.to_owned(),
                href: need_attr(f, NS_OVF, "href")?.to_owned(),
                size: f
                    .attr(NS_OVF, "size")
                    .map(|s| number(s, "File ovf:size"))
                    .transpose()?,
            })
        })
        .collect::<Result<Vec<_>, OvfError>>()?;
    let disk_el = need(need(&root, "DiskSection")?, "Disk")?;
    let file_ref = need_attr(disk_el, NS_OVF, "fileRef")?;
    let file = files.iter().find(|f| f.id == file_ref).ok_or_else(|| {
        OvfError::malformed(format!(
            "Disk refers to file {file_ref:?}, which References does not list"
        ))
    })?;
    let units = disk_el
        .attr(NS_OVF, "capacityAllocationUnits")
        .unwrap_or("byte");
    let multiplier = match units {
        "byte" => 1,
        "byte * 2^20" => 1 << 20,
        "byte * 2^30" => 1 << 30,
        other => {
            return Err(OvfError::malformed(format!(
                "Disk capacityAllocationUnits {other:?} is not supported"
            )))
        }
    };
    let capacity = number(need_attr(disk_el, NS_OVF, "capacity")?, "Disk ovf:capacity")?;
    let disk = DiskRef {
        file_name: file.href.clone(),
        file_size: file.size.unwrap_or(0),
        capacity_bytes: capacity
            .checked_mul(multiplier)
            .ok_or_else(|| OvfError::malformed("Disk ovf:capacity overflows"))?,
    };
    let disk_format = disk_el
        .attr(NS_OVF, "format")
        .unwrap_or_default()
        .to_owned();
    let spec = virtual_system(need(&root, "VirtualSystem")?)?;
    Ok(ParsedDescriptor {
        spec,
        disk,
        disk_format,
        files,
    })
}

fn virtual_system(vs: &Element) -> Result<OvfSpec, OvfError> {
    let name = need_attr(vs, NS_OVF, "id")?.to_owned();
    let annotation = match vs.child(NS_OVF, "AnnotationSection") {
        Some(s) => need(s, "Annotation")?.text.clone(),
        None => String::new(),
    };
    let (product, properties) = product_section(need(vs, "ProductSection")?)?;
    let guest_os = need_attr(need(vs, "OperatingSystemSection")?, NS_VMW, "osType")?.to_owned();
    let vhs = need(vs, "VirtualHardwareSection")?;
    let transport = match vhs.attr(NS_OVF, "transport").map(|t| {
        let mut words: Vec<&str> = t.split_whitespace().collect();
        words.sort_unstable();
        words
    }) {
        Some(w) if w == ["com.vmware.guestInfo"] => Transport::GuestInfo,
        Some(w) if w == ["com.vmware.guestInfo", "iso"] => Transport::IsoAndGuestInfo,
        other => {
            return Err(OvfError::malformed(format!(
                "VirtualHardwareSection ovf:transport is {other:?}: without com.vmware.guestInfo the guest gets no properties"
            )))
        }
    };
    let hardware = hardware(vhs)?;
    Ok(OvfSpec {
        name,
        product,
        annotation,
        guest_os,
        hardware,
        transport,
        properties,
    })
}

fn product_section(ps: &Element) -> Result<(ProductInfo, Vec<PropertyGroup>), OvfError> {
    let text = |name| {
        ps.child(NS_OVF, name)
            .map(|e| e.text.clone())
            .unwrap_or_default()
    };
    let product = ProductInfo {
        product: text("Product"),
        vendor: text("Vendor"),
        version: text("Version"),
        full_version: text("FullVersion"),
        product_url: text("ProductUrl"),
        vendor_url: text("VendorUrl"),
    };
    let mut groups: Vec<PropertyGroup> = Vec::new();
    for child in ps.children.iter().filter(|c| c.ns == NS_OVF) {
        match child.name.as_str() {
            "Category" => groups.push(PropertyGroup {
                category: child.text.clone(),
                properties: Vec::new(),
            }),
            "Property" => {
                if groups.is_empty() {
                    groups.push(PropertyGroup {
                        category: String::new(),
                        properties: Vec::new(),
                    });
                }
                let p = property(child)?;
                if let Some(group) = groups.last_mut() {
                    group.properties.push(p);
                }
            }
            _ => {}
        }
    }
    Ok((product, groups))
}

fn property(p: &Element) -> Result<Property, OvfError> {
    let key = need_attr(p, NS_OVF, "key")?.to_owned();
    let type_name = need_attr(p, NS_OVF, "type")?;
    let kind = PropertyType::from_ovf(type_name).ok_or_else(|| {
        OvfError::malformed(format!("property {key}: unknown ovf:type {type_name:?}"))
    })?;
    let flag = |name| {
        p.attr(NS_OVF, name)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    };
    let text = |name| {
        p.child(NS_OVF, name)
            .map(|e| e.text.clone())
            .unwrap_or_default()
    };
    Ok(Property {
        class: p.attr(NS_OVF, "class").map(str::to_owned),
        kind,
        default: p.attr(NS_OVF, "value").unwrap_or_default().to_owned(),
        label: text("Label"),
        description: text("Description"),
        user_configurable: flag("userConfigurable"),
        password: flag("password"),
        qualifiers: p.attr(NS_OVF, "qualifiers").map(str::to_owned),
        vmw_qualifiers: p.attr(NS_VMW, "qualifiers").map(str::to_owned),
        key,
    })
}

fn hardware(vhs: &Element) -> Result<Hardware, OvfError> {
    let hw_version = need(vhs, "System")?
        .child(NS_VSSD, "VirtualSystemType")
        .map(|e| e.text.trim().to_owned())
        .ok_or_else(|| OvfError::malformed("System has no vssd:VirtualSystemType"))?;
    let (mut cpus, mut memory_mib, mut controller, mut network) = (None, None, None, None);
    let (mut cdrom, mut video) = (false, false);
    for item in vhs.children_named(NS_OVF, "Item") {
        let field = |name| item.child(NS_RASD, name).map(|e| e.text.trim());
        let resource_type = field("ResourceType").unwrap_or_default();
        let subtype = field("ResourceSubType").unwrap_or_default();
        match resource_type {
            "3" => cpus = Some(quantity(field("VirtualQuantity"), "CPU")?),
            "4" => {
                if field("AllocationUnits") != Some("byte * 2^20") {
                    return Err(OvfError::malformed(
                        "memory Item AllocationUnits is not \"byte * 2^20\" (MiB)",
                    ));
                }
                memory_mib = Some(quantity(field("VirtualQuantity"), "memory")?);
            }
            "20" if subtype == "vmware.nvme.controller" => controller = Some(DiskController::Nvme),
            "6" if subtype == "VirtualSCSI" => controller = Some(DiskController::Pvscsi),
            "6" | "20" => {
                return Err(OvfError::malformed(format!(
                    "disk controller {subtype:?} is not supported (NVMe or VirtualSCSI)"
                )))
            }
            "10" => {
                if !subtype.eq_ignore_ascii_case("VmxNet3") {
                    return Err(OvfError::malformed(format!(
                        "NIC {subtype:?} is not vmxnet3"
                    )));
                }
                network = field("Connection").map(str::to_owned);
            }
            "15" => cdrom = true,
            "24" => video = true,
            _ => {}
        }
    }
    let missing =
        |what: &str| OvfError::malformed(format!("VirtualHardwareSection has no {what} Item"));
    let config = |key: &str| {
        vhs.children_named(NS_VMW, "Config")
            .find(|c| c.attr(NS_VMW, "key") == Some(key))
            .and_then(|c| c.attr(NS_VMW, "value"))
    };
    Ok(Hardware {
        hw_version,
        cpus: u32::try_from(cpus.ok_or_else(|| missing("CPU (ResourceType 3)"))?)
            .map_err(|_| OvfError::malformed("CPU count too large"))?,
        memory_mib: memory_mib.ok_or_else(|| missing("memory (ResourceType 4)"))?,
        disk_controller: controller
            .ok_or_else(|| missing("disk controller (ResourceType 20 or 6)"))?,
        network_name: network
            .ok_or_else(|| missing("vmxnet3 NIC (ResourceType 10) with a Connection"))?,
        nic: NicType::Vmxnet3,
        cdrom,
        video,
        firmware: if config("firmware") == Some("efi") {
            Firmware::Efi
        } else {
            Firmware::Bios
        },
        secure_boot: config("bootOptions.efiSecureBootEnabled")
            .is_some_and(|v| v.eq_ignore_ascii_case("true")),
        soft_power_off: config("powerOpInfo.powerOffType") == Some("soft"),
    })
}

fn quantity(value: Option<&str>, what: &str) -> Result<u64, OvfError> {
    number(
        value.ok_or_else(|| OvfError::malformed(format!("{what} Item has no VirtualQuantity")))?,
        what,
    )
}

fn number(s: &str, what: &str) -> Result<u64, OvfError> {
    s.trim()
        .parse()
        .map_err(|_| OvfError::malformed(format!("{what} {s:?} is not a whole number")))
}

fn need<'a>(parent: &'a Element, name: &str) -> Result<&'a Element, OvfError> {
    parent
        .child(NS_OVF, name)
        .ok_or_else(|| OvfError::malformed(format!("<{}> has no <{name}>", parent.name)))
}

fn need_attr<'a>(el: &'a Element, ns: &str, name: &str) -> Result<&'a str, OvfError> {
    el.attr(ns, name)
        .ok_or_else(|| OvfError::malformed(format!("<{}> has no {name} attribute", el.name)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ovf::{write_descriptor, DiskRef};

    fn disk() -> DiskRef {
        DiskRef {
            file_name: "lb-0.1.0-disk1.vmdk".into(),
            file_size: 123_456,
            capacity_bytes: 1 << 30,
        }
    }

    #[test]
    fn parse_inverts_write() {
        let spec = OvfSpec::example();
        let parsed = parse_descriptor(&write_descriptor(&spec, &disk()).unwrap()).unwrap();
        assert_eq!(parsed.spec, spec);
        assert_eq!(parsed.disk, disk());
        assert_eq!(parsed.disk_format, crate::ovf::FORMAT_STREAM_OPTIMIZED);
    }

    #[test]
    fn round_trips_every_option() {
        let mut spec = OvfSpec::example();
        spec.hardware.disk_controller = DiskController::Pvscsi;
        spec.hardware.secure_boot = true;
        spec.hardware.soft_power_off = false;
        spec.hardware.video = false;
        spec.hardware.hw_version = "vmx-19".into();
        spec.transport = Transport::IsoAndGuestInfo;
        spec.annotation = String::new();
        spec.properties[0].category = String::new();
        spec.properties[1].properties[0].class = Some("appliance".into());
        let parsed = parse_descriptor(&write_descriptor(&spec, &disk()).unwrap()).unwrap();
        assert_eq!(parsed.spec, spec);
    }

    #[test]
    fn escapes_markup_in_every_field() {
        let mut spec = OvfSpec::example();
        let nasty = r#"a <b> & "c" 'd' ]]> </Envelope>"#;
        spec.annotation = nasty.into();
        spec.product.product = nasty.into();
        spec.hardware.network_name = nasty.into();
        spec.properties[0].category = nasty.into();
        let p = &mut spec.properties[0].properties[0];
        p.default = nasty.into();
        p.label = nasty.into();
        p.description = format!("{nasty}\nsecond line");
        p.qualifiers = Some(nasty.into());
        let parsed = parse_descriptor(&write_descriptor(&spec, &disk()).unwrap()).unwrap();
        assert_eq!(parsed.spec, spec);
    }

    #[test]
    fn rejects_descriptor_without_guestinfo_transport() {
        let xml = write_descriptor(&OvfSpec::example(), &disk()).unwrap();
        let xml = String::from_utf8(xml)
            .unwrap()
            .replace(" ovf:transport=\"com.vmware.guestInfo\"", "");
        let err = parse_descriptor(xml.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("transport"), "{err}");
    }

    #[test]
    fn rejects_unknown_property_type() {
        let xml = write_descriptor(&OvfSpec::example(), &disk()).unwrap();
        let xml = String::from_utf8(xml)
            .unwrap()
            .replace("ovf:type=\"uint8\"", "ovf:type=\"ipv4\"");
        let err = parse_descriptor(xml.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("network.prefix"), "{err}");
    }

    #[test]
    fn rejects_other_xml() {
        assert!(matches!(
            parse_descriptor(b"<html/>"),
            Err(OvfError::Malformed { .. })
        ));
    }
}
