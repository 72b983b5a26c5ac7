//! Structure of the generated descriptor: well-formed (xmllint), every
//! Section starts with Info, unique InstanceIDs, every property present.

use std::collections::HashSet;
use std::process::Command;

use ova::ovf::dom::{parse_xml, Element};
use ova::ovf::{write_descriptor, DiskRef, NS_OVF, NS_RASD, NS_VMW};
use ova::{DiskController, OvfSpec};

fn disk() -> DiskRef {
    DiskRef {
        file_name: "lb-0.1.0-disk1.vmdk".into(),
        file_size: 4_321_000,
        capacity_bytes: 2 << 30,
    }
}

fn descriptor(spec: &OvfSpec) -> (Vec<u8>, Element) {
    let xml = write_descriptor(spec, &disk()).unwrap();
    let root = parse_xml(&xml).unwrap();
    (xml, root)
}

#[test]
fn xmllint_accepts_it() {
    let (xml, _) = descriptor(&OvfSpec::example());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lb.ovf");
    std::fs::write(&path, &xml).unwrap();
    let out = Command::new("xmllint")
        .arg("--noout")
        .arg(&path)
        .output()
        .expect("xmllint is installed (Debian libxml2-utils)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_section_starts_with_info() {
    for controller in [DiskController::Nvme, DiskController::Pvscsi] {
        let mut spec = OvfSpec::example();
        spec.hardware.disk_controller = controller;
        let (_, root) = descriptor(&spec);
        let sections: Vec<_> = root
            .descendants()
            .into_iter()
            .filter(|e| e.name.ends_with("Section"))
            .collect();
        assert!(
            sections.len() >= 6,
            "found only {} sections",
            sections.len()
        );
        for s in sections {
            let first = s
                .children
                .first()
                .unwrap_or_else(|| panic!("{} is empty", s.name));
            assert_eq!(
                (first.ns.as_str(), first.name.as_str()),
                (NS_OVF, "Info"),
                "in {}",
                s.name
            );
            assert!(!first.text.trim().is_empty(), "empty Info in {}", s.name);
        }
    }
}

#[test]
fn items_have_unique_instance_ids_and_names() {
    let (_, root) = descriptor(&OvfSpec::example());
    let items: Vec<_> = root
        .descendants()
        .into_iter()
        .filter(|e| e.ns == NS_OVF && e.name == "Item")
        .collect();
    assert_eq!(
        items.len(),
        8,
        "cpu, memory, nvme, ide, disk, cdrom, nic, video"
    );
    let mut ids = HashSet::new();
    for item in &items {
        let id = &item.child(NS_RASD, "InstanceID").expect("InstanceID").text;
        assert!(ids.insert(id.clone()), "InstanceID {id} twice");
        assert!(item
            .child(NS_RASD, "ElementName")
            .is_some_and(|e| !e.text.is_empty()));
        // CIM schema order: rasd elements sorted by name.
        let names: Vec<_> = item.children.iter().map(|c| c.name.clone()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
    }
    // Every Parent names an existing Item.
    for item in &items {
        if let Some(parent) = item.child(NS_RASD, "Parent") {
            assert!(
                ids.contains(&parent.text),
                "Parent {} does not exist",
                parent.text
            );
        }
    }
}

#[test]
fn states_what_vsphere_needs() {
    let (xml, root) = descriptor(&OvfSpec::example());
    let text = String::from_utf8(xml).unwrap();
    for needle in [
        r#"<File ovf:id="file1" ovf:href="lb-0.1.0-disk1.vmdk" ovf:size="4321000"/>"#,
        r#"ovf:capacity="2147483648" ovf:capacityAllocationUnits="byte" ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized""#,
        r#"<VirtualHardwareSection ovf:transport="com.vmware.guestInfo">"#,
        "<vssd:VirtualSystemType>vmx-13</vssd:VirtualSystemType>",
        r#"<OperatingSystemSection ovf:id="101" vmw:osType="other4xLinux64Guest">"#,
        "<rasd:ResourceSubType>vmware.nvme.controller</rasd:ResourceSubType>",
        "<rasd:ResourceType>20</rasd:ResourceType>",
        "<rasd:HostResource>ovf:/disk/vmdisk1</rasd:HostResource>",
        "<rasd:ResourceSubType>VmxNet3</rasd:ResourceSubType>",
        "<rasd:Connection>VM Network</rasd:Connection>",
        r#"<Network ovf:name="VM Network">"#,
        "<rasd:ResourceSubType>vmware.cdrom.remotepassthrough</rasd:ResourceSubType>",
        "<rasd:ResourceType>24</rasd:ResourceType>",
        r#"<vmw:Config ovf:required="false" vmw:key="firmware" vmw:value="efi"/>"#,
        r#"<vmw:Config ovf:required="false" vmw:key="bootOptions.efiSecureBootEnabled" vmw:value="false"/>"#,
        r#"<vmw:Config ovf:required="false" vmw:key="powerOpInfo.powerOffType" vmw:value="soft"/>"#,
        "<Category>Network</Category>",
        r#"ovf:password="true""#,
        r#"vmw:qualifiers="Ip""#,
        r#"ovf:qualifiers="ValueMap{&quot;dhcp&quot;,&quot;static&quot;}""#,
    ] {
        assert!(text.contains(needle), "missing {needle}\n{text}");
    }
    // The NIC's network is declared in NetworkSection.
    let nets: Vec<_> = root
        .child(NS_OVF, "NetworkSection")
        .unwrap()
        .children_named(NS_OVF, "Network")
        .map(|n| n.attr(NS_OVF, "name").unwrap().to_owned())
        .collect();
    assert_eq!(nets, ["VM Network"]);
    assert_eq!(
        root.descendants()
            .into_iter()
            .filter(|e| e.ns == NS_VMW && e.name == "Config")
            .count(),
        3
    );
}

#[test]
fn every_property_appears_with_type_label_and_description() {
    let spec = OvfSpec::example();
    let (_, root) = descriptor(&spec);
    let props: Vec<_> = root
        .descendants()
        .into_iter()
        .filter(|e| e.ns == NS_OVF && e.name == "Property")
        .collect();
    let expected: Vec<_> = spec.properties.iter().flat_map(|g| &g.properties).collect();
    assert_eq!(props.len(), expected.len());
    for (el, p) in props.iter().zip(expected) {
        assert_eq!(el.attr(NS_OVF, "key"), Some(p.key.as_str()));
        assert_eq!(el.attr(NS_OVF, "type"), Some(p.kind.as_ovf()));
        assert_eq!(el.attr(NS_OVF, "userConfigurable"), Some("true"));
        assert_eq!(
            el.child(NS_OVF, "Label").map(|l| l.text.as_str()),
            Some(p.label.as_str())
        );
        assert_eq!(
            el.child(NS_OVF, "Description").map(|l| l.text.as_str()),
            Some(p.description.as_str())
        );
    }
}

#[test]
fn same_spec_same_bytes() {
    assert_eq!(
        descriptor(&OvfSpec::example()).0,
        descriptor(&OvfSpec::example()).0
    );
}
