//! Writes the descriptor element by element. Layout:
//!
//! ```text
//! Envelope
//!   References/File               the VMDK member and its exact size
//!   DiskSection/Disk              capacity in bytes, streamOptimized format
//!   NetworkSection/Network        the NIC's network
//!   VirtualSystem
//!     AnnotationSection           (when the annotation is not empty)
//!     ProductSection              product header, then Category/Property
//!     OperatingSystemSection      vmw:osType
//!     VirtualHardwareSection      ovf:transport; System, Items, vmw:Config
//! ```

use std::io;

use quick_xml::events::{BytesDecl, BytesText, Event};
use quick_xml::Writer;

use super::{
    validate, DiskRef, OvfError, FORMAT_STREAM_OPTIMIZED, NS_OVF, NS_RASD, NS_VMW, NS_VSSD,
    OS_ID_OTHER_LINUX_64,
};
use crate::spec::{DiskController, Firmware, OvfSpec, Property};

/// `ovf:id` of the one File and `ovf:diskId` of the one Disk.
const FILE_ID: &str = "file1";
const DISK_ID: &str = "vmdisk1";

type Xml = Writer<Vec<u8>>;

/// The descriptor bytes (UTF-8, indented, ending in a newline).
pub fn write_descriptor(spec: &OvfSpec, disk: &DiskRef) -> Result<Vec<u8>, OvfError> {
    validate(spec, disk)?;
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    envelope(&mut w, spec, disk).map_err(|source| OvfError::Write { source })?;
    let mut out = w.into_inner();
    out.push(b'\n');
    Ok(out)
}

fn envelope(w: &mut Xml, spec: &OvfSpec, disk: &DiskRef) -> io::Result<()> {
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    w.create_element("Envelope")
        .with_attributes([
            ("xmlns", NS_OVF),
            ("xmlns:ovf", NS_OVF),
            ("xmlns:rasd", NS_RASD),
            ("xmlns:vssd", NS_VSSD),
            ("xmlns:vmw", NS_VMW),
        ])
        .write_inner_content(|w| {
            w.create_element("References").write_inner_content(|w| {
                let size = disk.file_size.to_string();
                w.create_element("File")
                    .with_attributes([
                        ("ovf:id", FILE_ID),
                        ("ovf:href", disk.file_name.as_str()),
                        ("ovf:size", size.as_str()),
                    ])
                    .write_empty()?;
                Ok(())
            })?;
            section(w, "DiskSection", &[], "Virtual disk information", |w| {
                let capacity = disk.capacity_bytes.to_string();
                w.create_element("Disk")
                    .with_attributes([
                        ("ovf:diskId", DISK_ID),
                        ("ovf:fileRef", FILE_ID),
                        ("ovf:capacity", capacity.as_str()),
                        ("ovf:capacityAllocationUnits", "byte"),
                        ("ovf:format", FORMAT_STREAM_OPTIMIZED),
                    ])
                    .write_empty()?;
                Ok(())
            })?;
            let network = spec.hardware.network_name.as_str();
            section(
                w,
                "NetworkSection",
                &[],
                "The list of logical networks",
                |w| {
                    w.create_element("Network")
                        .with_attribute(("ovf:name", network))
                        .write_inner_content(|w| {
                            text(w, "Description", &format!("The {network} network"))
                        })?;
                    Ok(())
                },
            )?;
            virtual_system(w, spec)
        })?;
    Ok(())
}

fn virtual_system(w: &mut Xml, spec: &OvfSpec) -> io::Result<()> {
    w.create_element("VirtualSystem")
        .with_attribute(("ovf:id", spec.name.as_str()))
        .write_inner_content(|w| {
            text(w, "Info", "A virtual machine")?;
            text(w, "Name", &spec.name)?;
            if !spec.annotation.is_empty() {
                section(
                    w,
                    "AnnotationSection",
                    &[],
                    "A human-readable annotation",
                    |w| text(w, "Annotation", &spec.annotation),
                )?;
            }
            product_section(w, spec)?;
            let os = [
                ("ovf:id", OS_ID_OTHER_LINUX_64),
                ("vmw:osType", spec.guest_os.as_str()),
            ];
            section(
                w,
                "OperatingSystemSection",
                &os,
                "The kind of installed guest operating system",
                |w| text(w, "Description", "Other Linux (64-bit)"),
            )?;
            let transport = [("ovf:transport", spec.transport.as_ovf())];
            section(
                w,
                "VirtualHardwareSection",
                &transport,
                "Virtual hardware requirements",
                |w| hardware(w, spec),
            )
        })?;
    Ok(())
}

fn product_section(w: &mut Xml, spec: &OvfSpec) -> io::Result<()> {
    let p = &spec.product;
    section(
        w,
        "ProductSection",
        &[],
        "Information about the installed software",
        |w| {
            text(w, "Product", &p.product)?;
            text(w, "Vendor", &p.vendor)?;
            text(w, "Version", &p.version)?;
            text(w, "FullVersion", &p.full_version)?;
            text(w, "ProductUrl", &p.product_url)?;
            text(w, "VendorUrl", &p.vendor_url)?;
            for group in &spec.properties {
                if !group.category.is_empty() {
                    text(w, "Category", &group.category)?;
                }
                for prop in &group.properties {
                    property(w, prop)?;
                }
            }
            Ok(())
        },
    )
}

fn property(w: &mut Xml, p: &Property) -> io::Result<()> {
    let bool_str = |b: bool| if b { "true" } else { "false" };
    let mut e = w
        .create_element("Property")
        .with_attribute(("ovf:key", p.key.as_str()))
        .with_attribute(("ovf:type", p.kind.as_ovf()))
        .with_attribute(("ovf:value", p.default.as_str()))
        .with_attribute(("ovf:userConfigurable", bool_str(p.user_configurable)));
    if let Some(class) = &p.class {
        e = e.with_attribute(("ovf:class", class.as_str()));
    }
    if p.password {
        e = e.with_attribute(("ovf:password", "true"));
    }
    if let Some(q) = &p.qualifiers {
        e = e.with_attribute(("ovf:qualifiers", q.as_str()));
    }
    if let Some(q) = &p.vmw_qualifiers {
        e = e.with_attribute(("vmw:qualifiers", q.as_str()));
    }
    e.write_inner_content(|w| {
        text(w, "Label", &p.label)?;
        text(w, "Description", &p.description)
    })?;
    Ok(())
}

/// One rasd Item: `(field, value)` pairs, written in the CIM schema's
/// (alphabetical) element order whatever order they were pushed in.
struct Item {
    required: bool,
    fields: Vec<(&'static str, String)>,
}

fn hardware(w: &mut Xml, spec: &OvfSpec) -> io::Result<()> {
    let hw = &spec.hardware;
    w.create_element("System").write_inner_content(|w| {
        text(w, "vssd:ElementName", "Virtual Hardware Family")?;
        text(w, "vssd:InstanceID", "0")?;
        text(w, "vssd:VirtualSystemIdentifier", &spec.name)?;
        text(w, "vssd:VirtualSystemType", &hw.hw_version)
    })?;
    for item in items(spec) {
        let mut e = w.create_element("Item");
        if !item.required {
            e = e.with_attribute(("ovf:required", "false"));
        }
        let mut fields = item.fields;
        fields.sort_by_key(|(name, _)| *name);
        e.write_inner_content(|w| {
            for (name, value) in &fields {
                text(w, &format!("rasd:{name}"), value)?;
            }
            Ok(())
        })?;
    }
    let mut configs = Vec::new();
    if hw.firmware == Firmware::Efi {
        configs.push(("firmware", "efi"));
        configs.push((
            "bootOptions.efiSecureBootEnabled",
            if hw.secure_boot { "true" } else { "false" },
        ));
    }
    configs.push((
        "powerOpInfo.powerOffType",
        if hw.soft_power_off { "soft" } else { "hard" },
    ));
    for (key, value) in configs {
        w.create_element("vmw:Config")
            .with_attributes([
                ("ovf:required", "false"),
                ("vmw:key", key),
                ("vmw:value", value),
            ])
            .write_empty()?;
    }
    Ok(())
}

/// The Items with InstanceIDs 1, 2, ... in the order vSphere's own exports use.
fn items(spec: &OvfSpec) -> Vec<Item> {
    let hw = &spec.hardware;
    let mut items: Vec<Item> = Vec::new();
    let mut add = |required: bool, fields: Vec<(&'static str, String)>| -> String {
        let id = (items.len() + 1).to_string();
        let mut fields = fields;
        fields.push(("InstanceID", id.clone()));
        items.push(Item { required, fields });
        id
    };
    let s = |v: &str| v.to_owned();
    add(
        true,
        vec![
            ("AllocationUnits", s("hertz * 10^6")),
            ("Description", s("Number of Virtual CPUs")),
            ("ElementName", format!("{} virtual CPU(s)", hw.cpus)),
            ("ResourceType", s("3")),
            ("VirtualQuantity", hw.cpus.to_string()),
        ],
    );
    add(
        true,
        vec![
            ("AllocationUnits", s("byte * 2^20")),
            ("Description", s("Memory Size")),
            ("ElementName", format!("{}MB of memory", hw.memory_mib)),
            ("ResourceType", s("4")),
            ("VirtualQuantity", hw.memory_mib.to_string()),
        ],
    );
    let controller = match hw.disk_controller {
        DiskController::Nvme => add(
            true,
            vec![
                ("Address", s("0")),
                ("Description", s("NVME Controller")),
                ("ElementName", s("NVME Controller 0")),
                ("ResourceSubType", s("vmware.nvme.controller")),
                ("ResourceType", s("20")),
            ],
        ),
        DiskController::Pvscsi => add(
            true,
            vec![
                ("Address", s("0")),
                ("Description", s("SCSI Controller")),
                ("ElementName", s("SCSI Controller 0")),
                ("ResourceSubType", s("VirtualSCSI")),
                ("ResourceType", s("6")),
            ],
        ),
    };
    let ide = hw.cdrom.then(|| {
        add(
            true,
            vec![
                ("Address", s("1")),
                ("Description", s("IDE Controller")),
                ("ElementName", s("VirtualIDEController 1")),
                ("ResourceType", s("5")),
            ],
        )
    });
    add(
        true,
        vec![
            ("AddressOnParent", s("0")),
            ("ElementName", s("Hard disk 1")),
            ("HostResource", format!("ovf:/disk/{DISK_ID}")),
            ("Parent", controller),
            ("ResourceType", s("17")),
        ],
    );
    if let Some(ide) = ide {
        add(
            false,
            vec![
                ("AddressOnParent", s("0")),
                ("AutomaticAllocation", s("false")),
                ("ElementName", s("CD/DVD drive 1")),
                ("Parent", ide),
                ("ResourceSubType", s("vmware.cdrom.remotepassthrough")),
                ("ResourceType", s("15")),
            ],
        );
    }
    add(
        true,
        vec![
            ("AddressOnParent", s("7")),
            ("AutomaticAllocation", s("true")),
            ("Connection", s(&hw.network_name)),
            (
                "Description",
                format!("VmxNet3 ethernet adapter on \"{}\"", hw.network_name),
            ),
            ("ElementName", s("Network adapter 1")),
            ("ResourceSubType", s("VmxNet3")),
            ("ResourceType", s("10")),
        ],
    );
    if hw.video {
        add(
            false,
            vec![
                ("AutomaticAllocation", s("false")),
                ("ElementName", s("Video card")),
                ("ResourceType", s("24")),
            ],
        );
    }
    items
}

/// A Section: the element, its attributes, `<Info>` first, then the body.
fn section(
    w: &mut Xml,
    name: &str,
    attrs: &[(&str, &str)],
    info: &str,
    body: impl FnOnce(&mut Xml) -> io::Result<()>,
) -> io::Result<()> {
    w.create_element(name)
        .with_attributes(attrs.iter().copied())
        .write_inner_content(|w| {
            text(w, "Info", info)?;
            body(w)
        })?;
    Ok(())
}

/// `<name>escaped text</name>`.
fn text(w: &mut Xml, name: &str, value: &str) -> io::Result<()> {
    w.create_element(name)
        .write_text_content(BytesText::new(value))?;
    Ok(())
}
