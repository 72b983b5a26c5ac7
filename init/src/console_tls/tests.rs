use std::os::unix::fs::MetadataExt;

use super::*;

const NOW: i64 = 1_796_256_000;

fn admin_pair(host: &str) -> (String, String) {
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec![host.to_string()])
        .expect("params")
        .self_signed(&key)
        .expect("cert");
    (cert.pem(), key.serialize_pem())
}

/// Settings as the wizard delivers them (PEM on one line included).
fn settings(pairs: &[(&str, &str)]) -> Settings {
    let merged = settings::merge([settings::Layer::new(
        settings::Source::OvfEnv,
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )]);
    assert!(merged.errors.is_empty(), "{:?}", merged.errors);
    merged.settings
}

fn paths(dir: &Path) -> Paths {
    Paths {
        kept: dir.join("data/tls"),
        cert: dir.join("run/console.crt"),
        key: dir.join("run/console.key"),
    }
}

fn run_dir(dir: &Path) {
    std::fs::create_dir_all(dir.join("run")).expect("run dir");
}

/// Input: no admin certificate, two boots. Output: a self-signed pair
/// copied for lbd (lbd's, 0600), the same fingerprint both times.
#[test]
fn without_an_admin_certificate_the_kept_one_is_served() {
    let dir = tempfile::tempdir().unwrap();
    run_dir(dir.path());
    let p = paths(dir.path());
    let s = settings(&[("hostname", "lb1")]);
    let (first, lines) = prepare(&s, &p, NOW);
    let first = first.expect("a console");
    assert_eq!(first.origin, Origin::SelfSigned);
    assert!(
        lines[0].contains("made the web console's certificate"),
        "{lines:?}"
    );
    for file in [&p.cert, &p.key] {
        let meta = std::fs::metadata(file).expect("written");
        assert_eq!(meta.mode() & 0o777, 0o600, "{}", file.display());
        assert_eq!(meta.uid(), crate::supervise::LBD_UID, "{}", file.display());
    }
    let (second, lines) = prepare(&s, &p, NOW + 60);
    assert_eq!(second.expect("a console").fingerprint, first.fingerprint);
    assert!(lines.is_empty(), "{lines:?}");
}

/// Input: an admin pair pasted on one line each. Output: it is served,
/// with its own fingerprint.
#[test]
fn a_good_admin_pair_is_served() {
    let dir = tempfile::tempdir().unwrap();
    run_dir(dir.path());
    let (cert, key) = admin_pair("lb.example.com");
    let s = settings(&[
        ("console.certificate", &cert.replace('\n', "")),
        ("console.key", &key.replace('\n', " ")),
    ]);
    let (in_use, lines) = prepare(&s, &paths(dir.path()), NOW);
    let in_use = in_use.expect("a console");
    assert_eq!(in_use.origin, Origin::Admin);
    assert!(lines.is_empty(), "{lines:?}");
    let served = std::fs::read_to_string(dir.path().join("run/console.crt")).unwrap();
    assert_eq!(served, cert);
}

/// Input: an admin certificate with another pair's key, then a
/// certificate without its key. Output: each an error naming the
/// settings and the fix, and the self-signed pair served instead.
#[test]
fn a_bad_admin_pair_falls_back_to_the_self_signed_one() {
    let dir = tempfile::tempdir().unwrap();
    run_dir(dir.path());
    let (cert, _) = admin_pair("lb");
    let (_, other_key) = admin_pair("lb");
    let s = settings(&[("console.certificate", &cert), ("console.key", &other_key)]);
    let (in_use, lines) = prepare(&s, &paths(dir.path()), NOW);
    assert_eq!(in_use.expect("never no console").origin, Origin::SelfSigned);
    let e = &lines[0];
    assert!(
        e.starts_with("init: error: console.certificate and console.key"),
        "{e}"
    );
    assert!(
        e.contains("not the certificate's") && e.contains("issued for"),
        "{e}"
    );
    assert!(e.contains("self-signed certificate instead"), "{e}");

    let s = settings(&[("console.certificate", &cert)]);
    let (in_use, lines) = prepare(&s, &paths(dir.path()), NOW);
    assert_eq!(in_use.expect("never no console").origin, Origin::SelfSigned);
    assert!(
        lines[0].contains("without console.key: set both"),
        "{lines:?}"
    );
}

#[test]
fn the_announcement_has_the_url_and_fingerprint() {
    let in_use = InUse {
        pair: Pair::new(String::new(), "secret".into()),
        fingerprint: Fingerprint([0x0f; 32]),
        origin: Origin::SelfSigned,
    };
    let line = announce(&in_use, "192.0.2.10", 5480);
    assert!(
        line.starts_with(
            "init: web console https://192.0.2.10:5480/ certificate (self-signed) SHA-256 0F:0F:"
        ),
        "{line}"
    );
    assert_eq!(url("2001:db8::1", 5480), "https://[2001:db8::1]:5480/");
    assert!(!format!("{in_use:?}").contains("secret"));
}

#[test]
fn static_addresses_are_named_and_dhcp_ones_not() {
    let s = settings(&[
        ("hostname", "lb1"),
        ("network.mode", "static"),
        ("network.ipv4", "192.0.2.10/24"),
        ("network.gateway", "192.0.2.1"),
    ]);
    assert_eq!(
        names(&s).addresses,
        ["192.0.2.10".parse::<IpAddr>().unwrap()]
    );
    let dhcp = settings(&[("hostname", "lb1"), ("network.ipv4", "192.0.2.10/24")]);
    assert!(names(&dhcp).addresses.is_empty());
    assert_eq!(names(&dhcp).hostname, "lb1");
}
