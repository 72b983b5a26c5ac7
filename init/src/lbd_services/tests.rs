use std::net::IpAddr;
use std::path::PathBuf;

use lbd_config::{Balance, Config, Mode};
use settings::{OvfEnvironment, Settings};

use super::*;
use crate::lbd_config::{overlay, vrrp_overlay, OverlayInputs};

/// The config baked into the image (appliance.toml's `[lbd] config`).
const BAKED: &str = include_str!("../../../lbd/examples/appliance-image.toml");
/// The seed deployment as an admin would write it for lbd.
const SEED_TOML: &str = include_str!("seed.toml");
/// A PHC string of the form `lbd hash-password` prints.
const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";
/// This node's address in the seed.
const OWN_IP: &str = "10.0.0.2";

/// The seed deployment in wizard properties only: two slots, VRRP router
/// id, priority and a peer; no lbd.config and no vrrp.virtual_ips (the
/// slots' VIPs are typed once, in the slots).
const SEED: &[(&str, &str)] = &[
    ("hostname", "lb1"),
    ("network.mode", "static"),
    ("network.ipv4", "10.0.0.2/24"),
    ("vrrp.router_id", "51"),
    ("vrrp.priority", "150"),
    ("vrrp.peers", "10.0.0.3"),
    ("service.1.name", "horizon"),
    ("service.1.virtual_ip", "10.0.0.100"),
    ("service.1.ports", "443"),
    ("service.1.mode", "tcp"),
    ("service.1.servers", "10.0.0.11,10.0.0.12"),
    ("service.1.balance", "source"),
    ("service.1.check", "https"),
    ("service.1.check_path", "/favicon.ico"),
    ("service.1.redirect_http", "True"),
    ("service.2.name", "appvolumes"),
    ("service.2.virtual_ip", "10.0.0.101"),
    ("service.2.ports", "443"),
    ("service.2.servers", "10.0.0.21,10.0.0.22"),
    ("service.2.check", "https"),
];

/// `pairs` as vCenter delivers them: an OVF environment document, parsed
/// and merged as init does at boot.
fn settings_from_wizard(pairs: &[(&str, &str)]) -> Settings {
    let pairs: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let env = OvfEnvironment::parse(&settings::environment_xml(&pairs)).expect("valid document");
    let merged = settings::merge([env.layer()]);
    assert!(merged.errors.is_empty(), "{:?}", merged.errors);
    merged.settings
}

/// The texts init writes for `settings` after the baked config, in the
/// order it passes them to lbd.
fn init_files(settings: &Settings) -> Vec<(PathBuf, String)> {
    let own: IpAddr = OWN_IP.parse().expect("literal");
    let services = services_layer(&settings.services).expect("services");
    let vrrp = vrrp_overlay(&settings.vrrp, "eth0", Some(own))
        .expect("valid VRRP settings")
        .expect("the slots' VIPs start VRRP");
    vec![
        ("appliance-image.toml".into(), BAKED.to_owned()),
        (
            "appliance-overlay.toml".into(),
            overlay(&OverlayInputs {
                admin_hash: Some(HASH.into()),
                ..OverlayInputs::default()
            })
            .to_toml("")
            .expect("serialises"),
        ),
        (
            "appliance-services.toml".into(),
            services
                .to_toml("Written by init (a test).")
                .expect("serialises"),
        ),
        (
            "appliance-vrrp.toml".into(),
            vrrp.to_toml("").expect("serialises"),
        ),
    ]
}

fn load(files: Vec<(PathBuf, String)>) -> Config {
    lbd_config::load_texts(files).unwrap_or_else(|e| panic!("lbd refuses the files:\n{e}"))
}

/// Input: the seed deployment in wizard properties only. Output: lbd's
/// loader (what `lbd check` runs) accepts the baked config with every
/// overlay init writes, and lbd listens on the VIPs' 443 and 80 and the
/// stats page, which is what init's firewall lets in.
#[test]
fn seed_overlays_pass_lbd_check() {
    let config = load(init_files(&settings_from_wizard(SEED)));
    assert_eq!(config.listening_ports(), [80, 443, 8404]);
    let mut input = crate::firewall::FirewallInput::default();
    input.add_lbd(&config);
    let ruleset = crate::firewall::render_nft(&crate::firewall::build_ruleset(&input));
    for port in ["80", "443", "8404"] {
        assert!(
            ruleset.contains(&format!("tcp dport {port} accept")),
            "{ruleset}"
        );
    }
}

/// Input: the seed deployment in wizard properties; the same deployment
/// written by hand (seed.toml). Output: on the baked config both give lbd
/// the same frontends, backends (servers, balance, checks) and VRRP
/// instance with the same VIPs.
#[test]
fn seed_from_the_wizard_is_the_hand_written_config() {
    let from_wizard = load(init_files(&settings_from_wizard(SEED)));
    let by_hand = load(vec![
        ("appliance-image.toml".into(), BAKED.to_owned()),
        ("seed.toml".into(), SEED_TOML.to_owned()),
    ]);
    assert_eq!(from_wizard.frontends, by_hand.frontends);
    assert_eq!(from_wizard.backends, by_hand.backends);
    let checks = |c: &Config| -> Vec<_> { c.backends.values().map(|b| b.check.clone()).collect() };
    assert_eq!(checks(&from_wizard), checks(&by_hand));
    assert_eq!(from_wizard.vrrp, by_hand.vrrp);
    let vips: Vec<String> = from_wizard.vrrp["appliance"]
        .virtual_ips
        .iter()
        .map(|c| format!("{}/{}", c.addr, c.prefix))
        .collect();
    assert_eq!(vips, ["10.0.0.100/32", "10.0.0.101/32"]);
    assert_eq!(from_wizard.backends["horizon"].balance, Balance::Source);
}

/// Input: one slot with two ports, no VIP, servers with and without a
/// port, a tls check. Output: the overlay as written: a frontend and a
/// backend per port named <name>-<port>, binding every address, the bare
/// server taking each listener's port.
#[test]
fn what_init_writes_for_a_slot() {
    let settings = settings_from_wizard(&[
        ("service.1.name", "web"),
        ("service.1.ports", "443,8443"),
        ("service.1.servers", "10.0.0.11,10.0.0.12:9443"),
        ("service.1.check", "tls"),
    ]);
    let text = services_layer(&settings.services)
        .expect("one service")
        .to_toml("")
        .expect("serialises");
    let expected = r#"[frontends.web-443]
bind = ["0.0.0.0:443", "[::]:443"]
mode = "tcp"
default_backend = "web-443"

[frontends.web-8443]
bind = ["0.0.0.0:8443", "[::]:8443"]
mode = "tcp"
default_backend = "web-8443"

[backends.web-443]
mode = "tcp"
balance = "roundrobin"

[backends.web-443.check]
type = "tls-hello"

[backends.web-443.servers."10.0.0.11"]
address = "10.0.0.11:443"

[backends.web-443.servers."10.0.0.12-9443"]
address = "10.0.0.12:9443"

[backends.web-8443]
mode = "tcp"
balance = "roundrobin"

[backends.web-8443.check]
type = "tls-hello"

[backends.web-8443.servers."10.0.0.11"]
address = "10.0.0.11:8443"

[backends.web-8443.servers."10.0.0.12-9443"]
address = "10.0.0.12:9443"
"#;
    assert_eq!(text, expected);
    let config = load(vec![
        ("appliance-image.toml".into(), BAKED.to_owned()),
        ("appliance-services.toml".into(), text),
    ]);
    assert_eq!(config.listening_ports(), [443, 8404, 8443]);
}

/// Input: an http slot without a check. Output: mode http on both sides,
/// no check table; no slots at all: no overlay.
#[test]
fn mode_http_without_check_and_no_slots() {
    let settings = settings_from_wizard(&[
        ("service.3.ports", "8080"),
        ("service.3.servers", "app.example.com"),
        ("service.3.mode", "http"),
        ("service.3.check", "none"),
    ]);
    let layer = services_layer(&settings.services).expect("one service");
    let backend = &layer.backends["service3"];
    assert_eq!(backend.mode, Some(Mode::Http));
    assert_eq!(backend.check, None);
    assert_eq!(layer.frontends["service3"].mode, Some(Mode::Http));
    assert!(services_layer(&settings_from_wizard(&[]).services).is_none());
}
