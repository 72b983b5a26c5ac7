use super::*;

#[test]
fn defaults_parse() {
    let mut s = Settings::default();
    for p in properties() {
        assert_eq!(p.apply(&mut s, p.default), Ok(()), "default of {}", p.key);
    }
}

#[test]
fn keys_are_unique_and_not_prefixes_of_each_other() {
    // A key that is a prefix of another (`network.ipv6` and
    // `network.ipv6.x`) could not be written as TOML tables.
    for a in properties() {
        for b in properties() {
            if a.key != b.key {
                assert!(
                    !b.key.starts_with(&format!("{}.", a.key)),
                    "{} / {}",
                    a.key,
                    b.key
                );
            }
        }
        assert_eq!(properties().iter().filter(|p| p.key == a.key).count(), 1);
    }
}

#[test]
fn categories_are_contiguous() {
    // A <Category> element groups the properties after it, so each
    // category's properties must follow one another.
    let mut seen: Vec<&str> = Vec::new();
    for p in properties() {
        if seen.last() != Some(&p.category) {
            assert!(
                !seen.contains(&p.category),
                "category {} split at {}",
                p.category,
                p.key
            );
            seen.push(p.category);
        }
    }
}

#[test]
fn qualifiers_render_as_ovf_spells_them() {
    let mode = find("network.mode").expect("in table");
    assert_eq!(
        mode.ovf_qualifiers().as_deref(),
        Some("ValueMap{\"dhcp\",\"static\"}")
    );
    let host = find("hostname").expect("in table");
    assert_eq!(
        host.ovf_qualifiers().as_deref(),
        Some("MinLen(1),MaxLen(253)")
    );
    assert_eq!(host.env_key(), "appliance.hostname");
    assert_eq!(host.guestinfo_key(), "guestinfo.appliance.hostname");
    assert!(find("network.ipv4")
        .expect("in table")
        .ovf_qualifiers()
        .is_none());
}

#[test]
fn ip_qualifier_only_on_single_address_properties() {
    for p in properties().iter().filter(|p| p.ip) {
        let mut s = Settings::default();
        assert!(p.apply(&mut s, "192.0.2.1,192.0.2.2").is_err(), "{}", p.key);
    }
}

/// Input: `ntp.max_step` unset, a number, `any`, and bad values.
/// Output: the default bound, that number, no bound; errors that say what
/// a good value looks like.
#[test]
fn ntp_max_step_parses() {
    use crate::value::MaxStep;
    let mut s = Settings::default();
    assert_eq!(
        s.ntp_max_step,
        MaxStep::Seconds(crate::DEFAULT_NTP_MAX_STEP_S)
    );
    let p = find("ntp.max_step").expect("in the table");
    p.apply(&mut s, "86400").expect("a number");
    assert_eq!(s.ntp_max_step, MaxStep::Seconds(86_400));
    p.apply(&mut s, "ANY").expect("any");
    assert_eq!(s.ntp_max_step, MaxStep::Any);
    for bad in ["0", "-5", "1h", ""] {
        let e = p.apply(&mut s, bad).expect_err(bad);
        assert!(e.contains("or `any`"), "{bad}: {e}");
    }
    assert_eq!(s.ntp_max_step, MaxStep::Any, "a bad value changes nothing");
}
