//! Fixture tests of the OVF environment parser (`test_data/ovf_env/`).

use super::*;
use crate::merge::merge;
use crate::value::NetworkMode;

fn fixture(name: &str) -> &'static str {
    match name {
        "vcenter" => include_str!("../test_data/ovf_env/vcenter.xml"),
        "esxi" => include_str!("../test_data/ovf_env/esxi.xml"),
        "other_prefixes_and_entities" => {
            include_str!("../test_data/ovf_env/other_prefixes_and_entities.xml")
        }
        "bad_values" => include_str!("../test_data/ovf_env/bad_values.xml"),
        "unclosed" => include_str!("../test_data/ovf_env/unclosed.xml"),
        "wrong_root" => include_str!("../test_data/ovf_env/wrong_root.xml"),
        "wrong_namespace" => include_str!("../test_data/ovf_env/wrong_namespace.xml"),
        _ => unreachable!("no fixture {name}"),
    }
}

#[test]
fn vcenter_document() {
    let env = OvfEnvironment::parse(fixture("vcenter")).expect("vcenter fixture parses");
    assert_eq!(env.vcenter_id.as_deref(), Some("vm-94765"));
    assert_eq!(env.esx_id, None);
    assert_eq!(env.platform.kind.as_deref(), Some("VMware ESXi"));
    assert_eq!(env.platform.version.as_deref(), Some("8.0.3"));
    assert_eq!(env.platform.vendor.as_deref(), Some("VMware, Inc."));
    assert_eq!(env.platform.locale.as_deref(), Some("en_US"));
    assert_eq!(env.properties.len(), 19);
    assert_eq!(
        env.adapters,
        vec![Adapter {
            mac: "00:50:56:99:c0:4c".to_owned(),
            network: Some("VM Network".to_owned()),
            unit_number: Some(7),
        }]
    );

    let m = merge([env.layer()]);
    assert!(m.errors.is_empty(), "{:?}", m.errors);
    let s = &m.settings;
    assert_eq!(s.hostname, "lb1");
    assert_eq!(s.network.mode, NetworkMode::Static);
    assert_eq!(
        s.network.ipv4.map(|c| c.to_string()).as_deref(),
        Some("192.0.2.10/24")
    );
    assert_eq!(
        s.network.gateway.map(|a| a.to_string()).as_deref(),
        Some("192.0.2.1")
    );
    assert_eq!(s.network.dns.len(), 2);
    assert!(!s.network.slaac, "False from the environment");
    assert_eq!(s.vrrp.priority, 150);
    assert_eq!(s.vrrp.router_id, 51);
    // Escapes in attribute values are undone.
    assert_eq!(
        s.admin_password.as_ref().map(|p| p.expose()),
        Some("p&ss \"word\"")
    );
    assert_eq!(m.origins["hostname"].source, Source::OvfEnv);
    // Left empty in the wizard: still the default's source.
    assert_eq!(m.origins["network.ipv6"].source, Source::Default);
}

#[test]
fn esxi_document() {
    let env = OvfEnvironment::parse(fixture("esxi")).expect("esxi fixture parses");
    assert_eq!(env.vcenter_id, None);
    assert_eq!(env.esx_id.as_deref(), Some("12"));
    assert_eq!(env.adapters.len(), 2);
    assert_eq!(env.adapters[1].network.as_deref(), Some("Backend"));
    let m = merge([env.layer()]);
    assert!(m.errors.is_empty(), "{:?}", m.errors);
    assert_eq!(m.settings.hostname, "lb2");
    assert!(m.settings.network.slaac, "True from the environment");
}

#[test]
fn namespaces_not_prefixes_and_only_our_entity() {
    let env = OvfEnvironment::parse(fixture("other_prefixes_and_entities")).expect("parses");
    assert_eq!(env.id, "lb-a");
    assert_eq!(env.vcenter_id.as_deref(), Some("vm-7"));
    assert_eq!(
        env.properties,
        vec![
            ("appliance.hostname".to_owned(), "lb-a".to_owned()),
            (
                "appliance.network.ntp".to_owned(),
                "ntp1.example, ntp2.example".to_owned()
            ),
        ]
    );
    let m = merge([env.layer()]);
    assert_eq!(
        m.settings.network.ntp,
        vec!["ntp1.example".to_owned(), "ntp2.example".to_owned()]
    );
}

#[test]
fn bad_values_are_reported_and_the_rest_applies() {
    let env = OvfEnvironment::parse(fixture("bad_values")).expect("well-formed");
    let m = merge([env.layer()]);
    assert_eq!(m.settings.hostname, "lb1");
    let keys: Vec<&str> = m.errors.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "network.ipv4",
            "vrrp.priority",
            "network.slaac",
            "no.such.key"
        ]
    );
    assert!(m.errors.iter().all(|e| e.source == Source::OvfEnv));
    assert_eq!(m.errors[0].value, "192.0.2.300/24");
    assert_eq!(m.settings.vrrp.priority, 100, "default stands");
}

#[test]
fn unclosed_element_is_an_xml_error() {
    let err = OvfEnvironment::parse(fixture("unclosed")).expect_err("malformed");
    assert!(matches!(err, OvfEnvError::Xml { .. }), "{err}");
}

#[test]
fn wrong_root_is_named() {
    let err = OvfEnvironment::parse(fixture("wrong_root")).expect_err("not an environment");
    assert!(err.to_string().contains("Envelope"), "{err}");
}

#[test]
fn right_names_in_the_wrong_namespace_are_refused() {
    let err = OvfEnvironment::parse(fixture("wrong_namespace")).expect_err("wrong namespace");
    assert!(matches!(err, OvfEnvError::NotEnvironment { .. }), "{err}");
}

#[test]
fn empty_and_truncated_documents() {
    assert!(matches!(OvfEnvironment::parse(""), Err(OvfEnvError::Empty)));
    assert!(matches!(
        OvfEnvironment::parse("<?xml version=\"1.0\"?>"),
        Err(OvfEnvError::Empty)
    ));
    let doc = fixture("vcenter");
    let cut = &doc[..doc.len() / 2];
    assert!(
        OvfEnvironment::parse(cut).is_err(),
        "half a document is not an environment"
    );
}

#[test]
fn bytes_with_bom_and_bad_utf8() {
    let mut doc = b"\xEF\xBB\xBF".to_vec();
    doc.extend_from_slice(fixture("esxi").as_bytes());
    let env = OvfEnvironment::parse_bytes(&doc).expect("BOM is skipped");
    assert_eq!(env.esx_id.as_deref(), Some("12"));
    let err = OvfEnvironment::parse_bytes(b"<Environment \xff/>").expect_err("not UTF-8");
    assert!(
        matches!(err, OvfEnvError::NotUtf8 { position: 13 }),
        "{err}"
    );
}
