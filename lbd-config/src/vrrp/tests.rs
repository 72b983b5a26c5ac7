use std::path::PathBuf;

use super::*;
use crate::{load_texts, Config};

const BACKEND: &str = "[backends.web.servers.a]\naddress = \"10.9.0.1:80\"\n";

/// Loads `vrrp` (a `[vrrp.vi]` body) and returns the error text, if any.
fn check(vrrp: &str) -> Result<Config, String> {
    let text = format!("{BACKEND}[vrrp.vi]\n{vrrp}");
    load_texts(vec![(PathBuf::from("t.toml"), text)]).map_err(|e| e.to_string())
}

const BASE: &str = "interface = \"eth0\"\nvrid = 51\npriority = 100\n\
                    virtual_ips = [\"10.0.0.100/24\"]\n";

fn expect_err(extra: &str, needle: &str) {
    let err = check(&format!("{BASE}{extra}")).expect_err(needle);
    assert!(err.contains(needle), "expected `{needle}` in:\n{err}");
}

#[test]
fn minimal_instance_takes_defaults() {
    let config = check(BASE).expect("valid");
    let vi = &config.vrrp["vi"];
    assert_eq!(vi.version, 3);
    assert_eq!(vi.advert_interval(), Duration::from_secs(1));
    assert!(vi.preempts());
    assert_eq!(vi.garp_delay, DEFAULT_GARP_DELAY);
    assert!(vi.is_ipv4());
    assert_eq!(
        vi.advertised_ips(),
        vec!["10.0.0.100".parse::<IpAddr>().expect("ip")]
    );
}

#[test]
fn keepalived_v2_unicast_with_tracking() {
    let config = check(&format!(
        "{BASE}version = 2\nunicast_src_ip = \"10.0.0.1\"\nunicast_peers = [\"10.0.0.2\"]\n\
         auth_pass = \"secret\"\nnopreempt = true\n\
         [vrrp.vi.track_backend.web]\nweight = 30\n"
    ))
    .expect("valid");
    let vi = &config.vrrp["vi"];
    assert!(!vi.preempts());
    assert_eq!(vi.track_backend["web"].weight, Some(30));
}

#[test]
fn mixed_families_advertise_one() {
    let config = check(
        "interface = \"eth0\"\nvrid = 1\npriority = 100\nunicast_src_ip = \"fe80::1\"\n\
         virtual_ips = [\"10.0.0.100/24\", \"2001:db8::100/64\"]\n",
    )
    .expect("valid");
    let vi = &config.vrrp["vi"];
    assert!(!vi.is_ipv4());
    assert_eq!(
        vi.advertised_ips(),
        vec!["2001:db8::100".parse::<IpAddr>().expect("ip")]
    );
}

#[test]
fn errors_name_file_line_and_key() {
    // `priority` is on line 6 of the file (2 backend lines, the table, 3 of BASE).
    let err =
        check("interface = \"eth0\"\nvrid = 51\npriority = 0\nvirtual_ips = [\"10.0.0.1\"]\n")
            .expect_err("priority 0");
    assert!(
        err.contains("t.toml:6: vrrp.vi.priority: must be 1 to 254"),
        "{err}"
    );
}

#[test]
fn vrid_zero() {
    let err = check("interface = \"eth0\"\nvrid = 0\npriority = 1\nvirtual_ips = [\"10.0.0.1\"]\n")
        .expect_err("vrid 0");
    assert!(err.contains("vrrp.vi.vrid: must be 1 to 255"), "{err}");
}

#[test]
fn vrid_too_big_is_a_type_error() {
    let err =
        check("interface = \"eth0\"\nvrid = 256\npriority = 1\nvirtual_ips = [\"10.0.0.1\"]\n")
            .expect_err("vrid 256");
    assert!(err.contains("vrrp.vi.vrid"), "{err}");
}

#[test]
fn priority_255_needs_ownership() {
    let owner = "interface = \"eth0\"\nvrid = 1\npriority = 255\nunicast_src_ip = \"10.0.0.100\"\n\
                 virtual_ips = [\"10.0.0.100/24\"]\n";
    check(owner).expect("owner is fine");
    let err =
        check("interface = \"eth0\"\nvrid = 1\npriority = 255\nvirtual_ips = [\"10.0.0.100\"]\n")
            .expect_err("not owner");
    assert!(err.contains("255 is for the address owner"), "{err}");
}

#[test]
fn auth_pass_with_v3_rejected() {
    expect_err("auth_pass = \"secret\"\n", "VRRP v3 has no authentication");
}

#[test]
fn auth_pass_longer_than_8() {
    expect_err(
        "version = 2\nauth_pass = \"123456789\"\n",
        "1 to 8 ASCII characters",
    );
}

#[test]
fn v2_interval_whole_seconds() {
    expect_err(
        "version = 2\nadvert_int = \"500ms\"\n",
        "VRRP v2 counts whole seconds",
    );
}

#[test]
fn v3_interval_centiseconds() {
    expect_err("advert_int = \"15ms\"\n", "VRRP v3 counts centiseconds");
    expect_err("advert_int = \"41s\"\n", "VRRP v3 counts centiseconds");
    check(&format!("{BASE}advert_int = \"100ms\"\n")).expect("0.1 s is fine");
}

#[test]
fn bad_version() {
    expect_err("version = 4\n", "4 is not a VRRP version");
}

#[test]
fn v2_over_ipv6() {
    let err = check(
        "interface = \"eth0\"\nvrid = 1\npriority = 1\nversion = 2\nvirtual_ips = [\"2001:db8::1\"]\n",
    )
    .expect_err("v2 v6");
    assert!(err.contains("VRRP v2 is IPv4 only"), "{err}");
}

#[test]
fn vip_checks() {
    let vips = |list: &str| {
        check(&format!(
            "interface = \"eth0\"\nvrid = 1\npriority = 1\nvirtual_ips = [{list}]\n"
        ))
        .expect_err(list)
    };
    assert!(vips("").contains("needs at least one address"));
    assert!(vips("\"10.0.0.0/24\"").contains("network or broadcast"));
    assert!(vips("\"10.0.0.255/24\"").contains("network or broadcast"));
    assert!(vips("\"224.0.0.1\"").contains("not a unicast address"));
    assert!(vips("\"10.0.0.1\", \"10.0.0.1/24\"").contains("listed twice"));
    assert!(vips("\"10.0.0.1/33\"").contains("prefix length must be 0 to 32"));
    assert!(vips("\"eth0\"").contains("is not an IP address"));
    // /31 and /32 have no network or broadcast address.
    check("interface = \"e\"\nvrid = 1\npriority = 1\nvirtual_ips = [\"10.0.0.0/31\"]\n")
        .expect("/31");
}

#[test]
fn unicast_checks() {
    expect_err(
        "unicast_peers = [\"10.0.0.2\"]\n",
        "unicast needs `unicast_src_ip`",
    );
    expect_err(
        "unicast_src_ip = \"10.0.0.1\"\nunicast_peers = [\"10.0.0.1\"]\n",
        "is unicast_src_ip itself",
    );
    expect_err(
        "unicast_src_ip = \"10.0.0.1\"\nunicast_peers = [\"fe80::2\"]\n",
        "not of the same family",
    );
    expect_err(
        "unicast_src_ip = \"10.0.0.1\"\nunicast_peers = [\"10.0.0.2\", \"10.0.0.2\"]\n",
        "listed twice",
    );
}

#[test]
fn preempt_conflicts() {
    expect_err(
        "preempt = true\nnopreempt = true\n",
        "contradicts `preempt`",
    );
    expect_err(
        "nopreempt = true\npreempt_delay = \"5s\"\n",
        "has no effect without preemption",
    );
}

#[test]
fn tracking_checks() {
    expect_err(
        "[vrrp.vi.track_backend.nope]\nfault = true\n",
        "no backend `nope` to track",
    );
    expect_err("[vrrp.vi.track_backend.web]\n", "set exactly one of");
    expect_err(
        "[vrrp.vi.track_backend.web]\nweight = 5\nfault = true\n",
        "set exactly one of",
    );
    expect_err(
        "[vrrp.vi.track_backend.web]\nweight = 0\n",
        "weight must be 1 to 254",
    );
}

#[test]
fn interface_name() {
    let err = check("interface = \"a-very-long-interface-name\"\nvrid = 1\npriority = 1\nvirtual_ips = [\"10.0.0.1\"]\n")
        .expect_err("long name");
    assert!(err.contains("vrrp.vi.interface"), "{err}");
}

#[test]
fn duplicate_vrid_on_interface() {
    let text = format!("[vrrp.a]\n{BASE}[vrrp.b]\n{BASE}");
    let err = load_texts(vec![(PathBuf::from("t.toml"), text)])
        .expect_err("duplicate")
        .to_string();
    assert!(err.contains("is also used by vrrp.a"), "{err}");
}

#[test]
fn unknown_key_is_an_error() {
    expect_err("advert_intt = \"1s\"\n", "advert_intt");
}

#[test]
fn frontend_tracking_checks() {
    expect_err(
        "[vrrp.vi.track_frontend.nope]\nweight = 10\n",
        "no frontend `nope` to track: add [frontends.nope]",
    );
    expect_err("[vrrp.vi.track_frontend.nope]\n", "set exactly one of");
    let text = format!(
        "{BACKEND}[frontends.web]\nbind = [\"0.0.0.0:80\"]\ndefault_backend = \"web\"\n\
         [vrrp.vi]\n{BASE}[vrrp.vi.track_frontend.web]\nfault = true\n"
    );
    let config = load_texts(vec![(PathBuf::from("t.toml"), text)]).expect("valid");
    assert!(config.vrrp["vi"].track_frontend["web"].fault);
}

#[test]
fn notify_hooks_need_absolute_paths() {
    expect_err(
        "[vrrp.vi.notify]\nmaster = \"notify.sh\"\n",
        "vrrp.vi.notify.master: `notify.sh` must be an absolute path",
    );
    expect_err(
        "[vrrp.vi.notify]\nall = \"/x\"\ntimeout = \"0s\"\n",
        "notify.timeout: must be 1ms to 300s",
    );
    expect_err(
        "[vrrp.vi.notify]\nnotify_master = \"/x\"\n",
        "notify_master",
    );
    let config = check(&format!(
        "{BASE}[vrrp.vi.notify]\nall = \"/usr/local/bin/vrrp-event\"\nstop = \"/bin/true\"\n"
    ))
    .expect("valid");
    let hooks: Vec<_> = config.vrrp["vi"].notify.hooks().map(|(k, _)| k).collect();
    assert_eq!(hooks, ["all", "stop"]);
}

/// Keepalived's "the first IPv6 VIP address should be link local":
/// valid, but `lbd check` warns; a link-local first address or an IPv4
/// instance does not.
#[test]
fn ipv6_first_vip_not_link_local_warns() {
    let warned = |vips: &str| {
        let config = check(&format!(
            "interface = \"eth0\"\nvrid = 51\npriority = 100\nvirtual_ips = [{vips}]\n"
        ))
        .expect("valid");
        let mut out = Vec::new();
        warnings(&config, &mut out);
        out.iter()
            .any(|p| p.key.join(".") == "vrrp.vi.virtual_ips" && p.message.contains("link-local"))
    };
    assert!(warned("\"2001:db8::100/64\""));
    assert!(!warned("\"fe80::51/64\", \"2001:db8::100/64\""));
    assert!(!warned("\"10.0.0.100/24\", \"2001:db8::100/64\""));
}

#[test]
fn auth_pass_alone_means_pass() {
    let config = check(&format!("{BASE}version = 2\nauth_pass = \"secret\"\n")).expect("valid");
    assert_eq!(config.vrrp["vi"].auth(), Some(AuthType::Pass));
    assert_eq!(check(BASE).expect("valid").vrrp["vi"].auth(), None);
}

#[test]
fn auth_type_ah_with_keepalived_v2() {
    let config = check(&format!(
        "{BASE}version = 2\nauth_type = \"ah\"\nauth_pass = \"secret\"\n"
    ))
    .expect("valid");
    assert_eq!(config.vrrp["vi"].auth(), Some(AuthType::Ah));
    expect_err("version = 2\nauth_type = \"ah\"\n", "needs auth_pass");
    expect_err(
        "auth_type = \"ah\"\nauth_pass = \"secret\"\n",
        "\"ah\" is VRRP v2 authentication",
    );
    expect_err(
        "version = 2\nauth_type = \"pass\"\nauth_pass = \"secret123\"\n",
        "Keepalived silently cuts longer ones",
    );
    expect_err("auth_type = \"md5\"\n", "unknown variant");
}

#[test]
fn auth_type_hmac_needs_v3_and_a_key() {
    let config = check(&format!(
        "{BASE}auth_type = \"hmac\"\nauth_key = \"0123456789abcdef\"\n"
    ))
    .expect("valid");
    assert_eq!(config.vrrp["vi"].auth(), Some(AuthType::Hmac));
    expect_err("auth_type = \"hmac\"\n", "both lbd nodes must have");
    expect_err(
        "auth_type = \"hmac\"\nauth_key = \"short\"\n",
        "is 5 characters: use a random shared secret of at least 16",
    );
    expect_err(
        "version = 2\nauth_type = \"hmac\"\nauth_key = \"0123456789abcdef\"\n",
        "lbd-to-lbd only and runs over VRRP v3",
    );
    expect_err(
        "auth_type = \"hmac\"\nauth_key = \"0123456789abcdef\"\nauth_pass = \"x\"\n",
        "uses auth_key, not auth_pass",
    );
    expect_err(
        "auth_key = \"0123456789abcdef\"\n",
        "set auth_type = \"hmac\" or remove it",
    );
}

/// Input: an IPv6 instance with hmac (lbd seals and checks the trailer
/// over IPv6 too). Output: valid.
#[test]
fn hmac_over_ipv6_is_valid() {
    let config = check(
        "interface = \"eth0\"\nvrid = 51\npriority = 100\nauth_type = \"hmac\"\n\
         auth_key = \"0123456789abcdef0123\"\nvirtual_ips = [\"2001:db8::1/64\"]\n",
    )
    .expect("hmac over IPv6");
    assert_eq!(config.vrrp["vi"].auth(), Some(AuthType::Hmac));
    assert!(!config.vrrp["vi"].is_ipv4());
}
