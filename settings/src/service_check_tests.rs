use super::*;
use crate::merge::merge;
use crate::source::Layer;
use lbd_config::{Balance, Mode};

fn merged(source: Source, pairs: &[(&str, &str)]) -> crate::Merged {
    merge([Layer::new(
        source,
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    )])
}

/// Input: slot 1 with every field, slot 2 with servers and a port only.
/// Output: two services; slot 2 named after its slot with the defaults;
/// slot 1's VIP joins the VRRP addresses as /32.
#[test]
fn slots_in_use_become_services() {
    let m = merged(
        Source::OvfEnv,
        &[
            ("service.1.name", "horizon"),
            ("service.1.virtual_ip", "10.0.0.100"),
            ("service.1.ports", "443"),
            ("service.1.servers", "10.0.0.11,10.0.0.12"),
            ("service.1.balance", "source"),
            ("service.1.check", "https"),
            ("service.1.check_path", "/favicon.ico"),
            ("service.1.redirect_http", "True"),
            ("service.2.servers", "cs.example.com:8080"),
            ("service.2.ports", "8080"),
        ],
    );
    assert!(m.errors.is_empty(), "{:?}", m.errors);
    let [horizon, second] = m.settings.services.as_slice() else {
        panic!("{:?}", m.settings.services);
    };
    assert_eq!(horizon.name, "horizon");
    assert_eq!(horizon.balance, Balance::Source);
    assert_eq!(
        horizon.check,
        HealthCheck::Https {
            path: Some("/favicon.ico".into())
        }
    );
    assert_eq!(
        horizon.redirect().map(|l| l.name),
        Some("horizon-http".into())
    );
    assert_eq!(second.name, "service2");
    assert_eq!(second.mode, Mode::Tcp);
    assert_eq!(second.check, HealthCheck::Tcp);
    assert_eq!(second.virtual_ip, None);
    let vips: Vec<String> = m
        .settings
        .vrrp
        .virtual_ips
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(vips, ["10.0.0.100/32"]);
}

/// Input: a VIP also in vrrp.virtual_ips with a prefix. Output: one VRRP
/// address, the admin's /24.
#[test]
fn a_vip_typed_twice_is_held_once() {
    let m = merged(
        Source::OvfEnv,
        &[
            ("vrrp.virtual_ips", "10.0.0.100/24,10.0.0.200/24"),
            ("service.1.virtual_ip", "10.0.0.100"),
            ("service.1.ports", "443"),
            ("service.1.servers", "10.0.0.11"),
        ],
    );
    assert!(m.errors.is_empty(), "{:?}", m.errors);
    let vips: Vec<String> = m
        .settings
        .vrrp
        .virtual_ips
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(vips, ["10.0.0.100/24", "10.0.0.200/24"]);
}

/// Input: slot 1 with servers but no ports, slot 2 named with ports but no
/// servers, slot 3 good. Output: one error per missing field, naming it,
/// with the source that put the slot in use; slot 3 still applies.
#[test]
fn a_slot_in_use_needs_ports_and_servers() {
    let m = merged(
        Source::Guestinfo,
        &[
            ("service.1.servers", "10.0.0.11"),
            ("service.2.name", "apps"),
            ("service.2.ports", "443"),
            ("service.3.servers", "10.0.0.21"),
            ("service.3.ports", "8443"),
        ],
    );
    let keys: Vec<&str> = m.errors.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["service.1.ports", "service.2.servers"]);
    assert_eq!(m.errors[0].source, Source::Guestinfo);
    assert!(
        m.errors[0]
            .message
            .contains("set service.1.ports, e.g. 443"),
        "{}",
        m.errors[0]
    );
    assert!(
        m.errors[1].message.contains("not configured"),
        "{}",
        m.errors[1]
    );
    assert_eq!(m.settings.services.len(), 1);
    assert_eq!(m.settings.services[0].slot, 3);
}

/// Input: a check path with a tcp check, a redirect on a service that
/// takes port 80 itself. Output: both ignored with an error naming the
/// field; the service runs with a tcp check and no redirect.
#[test]
fn fields_that_cannot_apply_are_ignored_loudly() {
    let m = merged(
        Source::OvfEnv,
        &[
            ("service.1.ports", "80,443"),
            ("service.1.servers", "10.0.0.11"),
            ("service.1.check_path", "/health"),
            ("service.1.redirect_http", "true"),
        ],
    );
    let keys: Vec<&str> = m.errors.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["service.1.check_path", "service.1.redirect_http"]);
    assert_eq!(m.errors[0].value, "/health");
    assert!(
        m.errors[0].message.contains("check is tcp"),
        "{}",
        m.errors[0]
    );
    let service = &m.settings.services[0];
    assert_eq!(service.check, HealthCheck::Tcp);
    assert!(!service.redirect_http);
    let names: Vec<String> = service.listeners().into_iter().map(|l| l.name).collect();
    assert_eq!(names, ["service1-80", "service1-443"]);
}

/// Input: two slots with one name; two slots on one VIP:port; a slot on
/// every address clashing with a VIP's port; a redirect clashing with
/// another redirect on the same VIP. Output: each later slot refused with
/// the field and the earlier slot named; the first of each pair applies.
#[test]
fn slots_cannot_share_a_name_or_an_address_and_port() {
    let m = merged(
        Source::OvfEnv,
        &[
            ("service.1.name", "web"),
            ("service.1.virtual_ip", "10.0.0.100"),
            ("service.1.ports", "443"),
            ("service.1.servers", "10.0.0.11"),
            ("service.1.redirect_http", "true"),
            ("service.2.name", "web"),
            ("service.2.virtual_ip", "10.0.0.101"),
            ("service.2.ports", "443"),
            ("service.2.servers", "10.0.0.12"),
            ("service.3.virtual_ip", "10.0.0.100"),
            ("service.3.ports", "443"),
            ("service.3.servers", "10.0.0.13"),
            ("service.4.ports", "8443"),
            ("service.4.virtual_ip", "10.0.0.100"),
            ("service.4.servers", "10.0.0.14"),
            ("service.4.redirect_http", "true"),
        ],
    );
    let found: Vec<(&str, bool)> = m
        .errors
        .iter()
        .map(|e| (e.key.as_str(), e.message.contains("service 1")))
        .collect();
    assert_eq!(
        found,
        [
            ("service.2.name", true),
            ("service.3.ports", true),
            ("service.4.redirect_http", true),
        ],
        "{:#?}",
        m.errors
    );
    assert!(
        m.errors[1].message.contains("port 443 on 10.0.0.100"),
        "{}",
        m.errors[1]
    );
    let slots: Vec<usize> = m.settings.services.iter().map(|s| s.slot).collect();
    assert_eq!(slots, [1]);
    // A refused slot's VIP is not held either.
    assert_eq!(m.settings.vrrp.virtual_ips.len(), 1);

    let m = merged(
        Source::OvfEnv,
        &[
            ("service.1.virtual_ip", "10.0.0.100"),
            ("service.1.ports", "443"),
            ("service.1.servers", "10.0.0.11"),
            ("service.2.ports", "443"),
            ("service.2.servers", "10.0.0.12"),
        ],
    );
    assert_eq!(m.errors.len(), 1, "{:?}", m.errors);
    assert!(
        m.errors[0].message.contains("port 443 on every address"),
        "{}",
        m.errors[0]
    );
}

/// Input: a bad value in a slot field from the OVF environment over a good
/// one from the baked file. Output: the usual model: the error names key,
/// value and source, and the baked value stands.
#[test]
fn a_bad_field_keeps_the_lower_value() {
    let m = merge([
        Layer::new(
            Source::Baked,
            vec![
                ("service.1.servers".into(), "10.0.0.11".into()),
                ("service.1.ports".into(), "443".into()),
            ],
        ),
        Layer::new(
            Source::OvfEnv,
            vec![("service.1.servers".into(), "10.0.0.300".into())],
        ),
    ]);
    assert_eq!(m.errors.len(), 1);
    assert_eq!(m.errors[0].key, "service.1.servers");
    assert_eq!(m.errors[0].value, "10.0.0.300");
    assert_eq!(m.errors[0].source, Source::OvfEnv);
    assert_eq!(
        m.errors[0].to_string(),
        "setting service.1.servers = \"10.0.0.300\" from ovf-env ignored: \"10.0.0.300\" is \
         not an address or host:port: list addresses (10.0.0.11,10.0.0.12) or host:port items"
    );
    assert_eq!(m.settings.services[0].servers.len(), 1);
}

/// Input: what vCenter sends: every slot field, the defaults included,
/// slot 2 in use, slot 3 unused but with a VIP typed. Output: slot 2 in
/// full, slot 3's VIP, nothing of slots 1 and 4.
#[test]
fn render_shows_slots_in_use_and_values_someone_typed() {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for n in 1..=4 {
        for (field, default) in [("mode", "tcp"), ("balance", "roundrobin"), ("check", "tcp")] {
            pairs.push((format!("service.{n}.{field}"), default.to_owned()));
        }
        // vCenter spells booleans True/False.
        pairs.push((format!("service.{n}.redirect_http"), "False".to_owned()));
    }
    pairs.push(("service.2.servers".into(), "10.0.0.11".into()));
    pairs.push(("service.2.ports".into(), "443".into()));
    pairs.push(("service.3.virtual_ip".into(), "10.0.0.103".into()));
    let m = merge([Layer::new(Source::OvfEnv, pairs)]);
    let lines = m.render();
    for expected in [
        "service.2.servers = 10.0.0.11 (ovf-env)",
        "service.2.mode = tcp (ovf-env)",
        "service.2.redirect_http = False (ovf-env)",
        "service.3.virtual_ip = 10.0.0.103 (ovf-env)",
    ] {
        assert!(
            lines.contains(&expected.to_owned()),
            "{expected}: {lines:#?}"
        );
    }
    let shown = |n: usize| {
        lines
            .iter()
            .filter(|l| l.starts_with(&format!("service.{n}.")))
            .count()
    };
    assert_eq!((shown(1), shown(3), shown(4)), (0, 1, 0), "{lines:#?}");
}
