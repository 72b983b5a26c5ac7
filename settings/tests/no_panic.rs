//! Property tests: malformed input from any source never panics, and what
//! the sources escape comes back unchanged.

use proptest::prelude::*;
use settings::{
    baked, cmdline, guestinfo, merge, properties, Layer, OvfEnvironment, Settings, Source,
};
use std::path::Path;

const VCENTER: &str = include_str!("../test_data/ovf_env/vcenter.xml");

/// Any text, biased towards the characters the parsers care about.
fn texty() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        proptest::string::string_regex(r#"[<>/="'&;:#x a-zA-Z0-9.,\[\]\n-]{0,200}"#)
            .expect("regex"),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn ovf_env_never_panics(doc in texty()) {
        if let Ok(env) = OvfEnvironment::parse(&doc) {
            let _ = merge([env.layer()]).render();
        }
    }

    #[test]
    fn mangled_real_document_never_panics(
        cut in 0..VCENTER.len(),
        len in 0usize..64,
        insert in texty(),
    ) {
        let mut doc = VCENTER.as_bytes().to_vec();
        let end = (cut + len).min(doc.len());
        doc.splice(cut..end, insert.into_bytes());
        let doc = String::from_utf8_lossy(&doc);
        if let Ok(env) = OvfEnvironment::parse(&doc) {
            let _ = merge([env.layer()]).render();
        }
    }

    #[test]
    fn cmdline_never_panics(line in texty()) {
        let _ = merge([cmdline::parse(&line)]).render();
    }

    #[test]
    fn baked_never_panics(text in texty()) {
        if let Ok(layer) = baked::parse(&text, Path::new("fuzz.toml")) {
            let _ = merge([layer]).render();
        }
    }

    #[test]
    fn every_property_parser_never_panics(raw in texty()) {
        let mut s = Settings::default();
        for p in properties() {
            let _ = p.apply(&mut s, &raw);
        }
    }

    #[test]
    fn guestinfo_never_panics(pairs in proptest::collection::vec((texty(), texty()), 0..8)) {
        let _ = merge([guestinfo::parse(pairs)]).render();
    }

    #[test]
    fn ovf_env_values_round_trip(values in proptest::collection::vec(any::<String>(), 1..6)) {
        // XML cannot carry most control characters; vCenter never sends them.
        let values: Vec<String> = values
            .into_iter()
            .map(|v| v.chars().filter(|c| !c.is_control()).collect())
            .collect();
        let props: String = values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                format!(
                    "<Property oe:key=\"appliance.k{i}\" oe:value=\"{}\"/>",
                    quick_xml::escape::escape(v.as_str())
                )
            })
            .collect();
        let doc = format!(
            "<Environment xmlns=\"http://schemas.dmtf.org/ovf/environment/1\" \
             xmlns:oe=\"http://schemas.dmtf.org/ovf/environment/1\">\
             <PropertySection>{props}</PropertySection></Environment>"
        );
        let env = OvfEnvironment::parse(&doc).expect("generated document is well-formed");
        let got: Vec<String> = env.properties.into_iter().map(|(_, v)| v).collect();
        prop_assert_eq!(got, values);
    }

    #[test]
    fn cmdline_quoted_values_round_trip(value in "[a-zA-Z0-9.,=/: ]{0,40}") {
        let line = format!("quiet appliance.network.ntp=\"{value}\" console=ttyS0");
        let layer = cmdline::parse(&line);
        prop_assert_eq!(layer.pairs, vec![("network.ntp".to_owned(), value)]);
    }

    #[test]
    fn highest_source_with_a_value_wins(
        given in proptest::collection::vec(proptest::option::of(1u8..=254), 5),
    ) {
        // Each of the five sources may or may not set vrrp.priority; the
        // layers are given in reverse order to show the merge sorts them.
        let sources = [
            Source::Baked,
            Source::OvfEnv,
            Source::Guestinfo,
            Source::Appliance,
            Source::Cmdline,
        ];
        let layers: Vec<Layer> = sources
            .iter()
            .zip(&given)
            .rev()
            .map(|(s, v)| {
                let pairs = v.map(|v| ("vrrp.priority".to_owned(), v.to_string())).into_iter().collect();
                Layer::new(*s, pairs)
            })
            .collect();
        let m = merge(layers);
        let expected = sources.iter().zip(&given).rev().find_map(|(s, v)| v.map(|v| (*s, v)));
        match expected {
            Some((source, value)) => {
                prop_assert_eq!(m.settings.vrrp.priority, value);
                prop_assert_eq!(m.origins["vrrp.priority"].source, source);
            }
            None => prop_assert_eq!(m.origins["vrrp.priority"].source, Source::Default),
        }
    }
}
