use appliance_api::ValueView;

use super::*;

fn value(key: &str, value: &str, source: &str, live: bool, secret: bool) -> ValueView {
    ValueView {
        key: key.into(),
        value: value.into(),
        source: source.into(),
        label: String::new(),
        category: String::new(),
        description: String::new(),
        live,
        secret,
    }
}

fn view() -> ConfigView {
    ConfigView {
        revision: 4,
        values: vec![
            value("network.dns", "10.0.0.2", "ovf-env", true, false),
            value("network.ntp", "", "default", false, false),
            value("admin.password", "********", "appliance", true, true),
            value("hostname", "lb1", "ovf-env", true, false),
        ],
        services: toml::from_str(
            "[frontends.web]\nbind = [\"10.0.0.10:443\"]\ndefault_backend = \"web\"\n\
             [backends.web.servers.a]\naddress = \"10.0.0.11:443\"\n",
        )
        .expect("literal"),
    }
}

/// Input: a change setting DNS (live), NTP (next boot), the same hostname,
/// a new password, and clearing a value vSphere gave and the stored one.
/// Output: a line per real change, the password hidden both sides, the
/// unchanged hostname and the vSphere value's unset left out, and each key
/// sorted by when it takes effect.
#[test]
fn a_settings_preview_shows_real_changes_and_hides_secrets() {
    let mut change = Change::default();
    for (k, v) in [
        ("network.dns", "10.0.0.3"),
        ("network.ntp", "ntp.example.com"),
        ("hostname", "lb1"),
        ("admin.password", "new secret"),
    ] {
        change.set.insert(k.into(), v.into());
    }
    change.unset = vec!["network.dns".into(), "admin.password".into()];
    let p = preview_of(&view(), &change);
    assert_eq!(p.base, 4);
    let keys: Vec<_> = p.diff.iter().map(|d| d.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "admin.password",
            "network.dns",
            "network.ntp",
            "admin.password"
        ]
    );
    assert_eq!(p.diff[0].before.as_deref(), Some(HIDDEN));
    assert_eq!(p.diff[0].after.as_deref(), Some(HIDDEN));
    assert_eq!(p.diff[1].before.as_deref(), Some("10.0.0.2"));
    assert_eq!(p.diff[2].before, None);
    assert_eq!(p.diff[3].after, None);
    assert!(p.next_boot.contains(&"network.ntp".to_string()));
    assert!(p.live.contains(&"network.dns".to_string()));
    assert!(!p.diff.iter().any(|d| d.key == "hostname"));
}

/// Input: a services layer with a server added, one moved, the frontend
/// unchanged and a TLS key added.
/// Output: one line per changed leaf under `services.`, the key hidden,
/// and "services" among what applies live.
#[test]
fn a_services_preview_is_one_line_per_changed_leaf() {
    let services: toml::Table = toml::from_str(
        "[frontends.web]\nbind = [\"10.0.0.10:443\"]\ndefault_backend = \"web\"\n\
         tls_key = \"-----BEGIN PRIVATE KEY-----\\nMIG\\n-----END PRIVATE KEY-----\"\n\
         [backends.web.servers.a]\naddress = \"10.0.0.21:443\"\n\
         [backends.web.servers.b]\naddress = \"10.0.0.12:443\"\nweight = 5\n",
    )
    .expect("literal");
    let change = Change {
        services: Some(services),
        ..Change::default()
    };
    let p = preview_of(&view(), &change);
    let lines: Vec<_> = p
        .diff
        .iter()
        .map(|d| {
            format!(
                "{} {} -> {}",
                d.key,
                d.before.as_deref().unwrap_or("-"),
                d.after.as_deref().unwrap_or("-")
            )
        })
        .collect();
    assert_eq!(
        lines,
        [
            "services.backends.web.servers.a.address \"10.0.0.11:443\" -> \"10.0.0.21:443\"",
            "services.backends.web.servers.b.address - -> \"10.0.0.12:443\"",
            "services.backends.web.servers.b.weight - -> 5",
            "services.frontends.web.tls_key - -> (hidden)",
        ]
    );
    assert_eq!(p.live, ["services"]);
}

#[test]
fn levels_keep_warnings_and_errors_of_lbd_and_init() {
    let lines = [
        "2026-12-03T10:00:00Z  INFO lbd: console listening",
        "2026-12-03T10:00:01Z  WARN lbd: server web/a is DOWN",
        "2026-12-03T10:00:02Z ERROR lbd: reload refused",
        "init: warning: network.ntp is not reachable",
        "init: error: lbd would refuse its configuration from lbd.config",
        "2026-12-03T10:00:03Z  INFO lbd: check passed error=none",
    ];
    let kept = |level: Level| lines.iter().filter(|l| level.keeps(l)).count();
    assert_eq!(kept(Level::All), 6);
    assert_eq!(kept(Level::Warn), 4);
    assert_eq!(kept(Level::Error), 2);
    assert!(Level::parse(Some("debug")).is_err());
    assert_eq!(Level::parse(None).ok(), Some(Level::All));
}

/// Input: each way a socket call can fail.
/// Output: the status a client can act on (501 plain host, 503 busy,
/// 409 stale base, 400 refused values, 502 no answer).
#[test]
fn socket_failures_map_to_statuses_a_client_can_act_on() {
    let status = |e| bridge_error(e).status().as_u16();
    assert_eq!(status(BridgeError::NoStore("/run/x".into())), 501);
    assert_eq!(status(BridgeError::Busy), 503);
    assert_eq!(
        status(BridgeError::Refused {
            error: "based on revision 7, but the store is at 8: reload".into(),
            problems: vec![],
        }),
        409
    );
    assert_eq!(
        status(BridgeError::Refused {
            error: "bad value".into(),
            problems: vec![],
        }),
        400
    );
    assert_eq!(status(BridgeError::Failed("timed out".into())), 502);
    let named = by_value_key(BridgeError::Refused {
        error: "bad".into(),
        problems: vec![Problem {
            key: "settings.service.1.ports".into(),
            value: "99999".into(),
            message: "out of range".into(),
        }],
    });
    let BridgeError::Refused { problems, .. } = named else {
        panic!("{named:?}")
    };
    assert_eq!(problems[0].key, "service.1.ports");
    assert_eq!(file_safe("lb1.example\"/..;x"), "lb1.example..x");
}
