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

/// The wizard's text of a PEM block: its newlines dropped.
fn one_line(label: &str) -> String {
    format!("-----BEGIN {label}-----MIIBAAAA-----END {label}-----")
}

fn ovf_env(pairs: &[(&str, &str)]) -> crate::Merged {
    crate::merge([crate::Layer::new(
        crate::Source::OvfEnv,
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )])
}

/// Input: a certificate and key pasted on one line each, from vSphere.
/// Output: both repaired to PEM; the key is masked in the console lines
/// and in its `Debug`, the certificate is not a secret.
#[test]
fn console_certificate_and_key_are_repaired_and_the_key_masked() {
    let m = ovf_env(&[
        ("console.certificate", &one_line("CERTIFICATE")),
        ("console.key", &one_line("PRIVATE KEY")),
    ]);
    assert!(m.errors.is_empty(), "{:?}", m.errors);
    let cert = m.settings.console.certificate.as_deref().expect("set");
    assert_eq!(
        cert,
        "-----BEGIN CERTIFICATE-----\nMIIBAAAA\n-----END CERTIFICATE-----\n"
    );
    let key = m.settings.console.key.as_ref().expect("set");
    assert!(key.expose().starts_with("-----BEGIN PRIVATE KEY-----\n"));
    assert!(!format!("{:?}", m.settings).contains("MIIBAAAA\n-----END PRIVATE"));
    let key_prop = find("console.key").expect("in the table");
    assert!(key_prop.password && key_prop.masked() && !key_prop.hashed);
    let lines = m.render();
    assert!(
        lines.contains(&"console.key = ******** (ovf-env)".to_owned()),
        "{lines:#?}"
    );
}

/// Input: garbage as the certificate, a certificate as the key.
/// Output: errors naming each property and what to paste; nothing set.
#[test]
fn bad_console_pem_is_refused_naming_the_property_and_fix() {
    let m = ovf_env(&[
        ("console.certificate", "my cert"),
        ("console.key", &one_line("CERTIFICATE")),
    ]);
    assert_eq!(m.settings.console, crate::ConsoleCertificate::default());
    let text: Vec<String> = m.errors.iter().map(ToString::to_string).collect();
    assert_eq!(text.len(), 2, "{text:?}");
    assert!(
        text[0].contains("console.certificate") && text[0].contains("paste the PEM file"),
        "{text:?}"
    );
    assert!(
        text[1].contains("console.key") && text[1].contains("goes in console.certificate"),
        "{text:?}"
    );
}

/// Input: a read-only password, once long enough and once too short.
/// Output: set and hashed like admin.password; the short one refused
/// with the minimum and what empty does.
#[test]
fn readonly_password_follows_the_admin_password_rules() {
    let p = find("admin.readonly_password").expect("in the table");
    assert!(p.password && p.hashed);
    assert_eq!(p.ovf_qualifiers().as_deref(), Some("MinLen(0),MaxLen(128)"));
    let m = ovf_env(&[("admin.readonly_password", "look-dont-touch")]);
    assert_eq!(
        m.settings.readonly_password.as_ref().map(|s| s.expose()),
        Some("look-dont-touch")
    );
    let m = ovf_env(&[("admin.readonly_password", "short")]);
    assert!(m.settings.readonly_password.is_none());
    let e = m.errors[0].to_string();
    assert!(
        e.contains("admin.readonly_password") && e.contains("at least 8"),
        "{e}"
    );
    assert!(e.contains("no read-only user"), "{e}");
    assert!(!e.contains("short"), "the value is masked: {e}");
}
