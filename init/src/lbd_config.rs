//! The lbd configuration files for this boot: the baked base (or the whole
//! config an admin gave as `lbd.config`), then overlays init writes from
//! the settings (this module's, then the service slots' from
//! [`crate::lbd_services`], then VRRP's once the network is up). lbd itself
//! knows nothing of OVF or guestinfo.
//!
//! The overlays are typed [`Layer`]s of the `lbd_config` crate (the crate,
//! not this module), serialised by it: a key lbd renames breaks init's
//! build, not a boot. What init needs to know of the result (the TCP ports
//! lbd listens on, its VRRP instances' adverts, its control socket) comes
//! from the same crate's effective config ([`effective`]), layered and
//! validated exactly as lbd does it.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use lbd_config::layer::{ConsoleLayer, GlobalLayer, InstanceLayer, StatsLayer};
use lbd_config::vrrp::{AuthType, Cidr, MIN_AUTH_KEY_LEN};
use lbd_config::{Config, ConfigErrors, Dur, Group, Layer, StatsUser, DEFAULT_CONTROL_SOCKET};
use rootfs::paths::LBD;
use settings::PeerSoftware;

/// Written at boot; tmpfs, so a setting removed in vSphere is gone at the
/// next boot.
pub const RUN_DIR: &str = "/run/lbd";
/// lbd's server state (admin drains, weights), on the data partition
/// ([`rootfs::paths::DATA_MOUNT`]): it survives a reboot.
pub const STATE_DIR: &str = "/var/lib/appliance/lbd";
/// The instance init writes; an admin's `lbd.config` may tune it further
/// only through keys the overlay does not set.
pub const VRRP_INSTANCE: &str = "appliance";
/// The stats user the deploy wizard's admin password is for.
pub const ADMIN_USER: &str = "admin";
/// The user `admin.readonly_password` is for: sees, changes nothing.
pub const READONLY_USER: &str = "readonly";

/// argon2 takes well under a second; a hung child must not hold boot.
const HASH_TIMEOUT: Duration = Duration::from_secs(30);
/// Keepalived's PASS carries this many characters of the secret.
const KEEPALIVED_PASS_LEN: usize = 8;
/// Both peer kinds advertise once a second, Keepalived's default.
const ADVERT_INT: Dur = Dur::secs(1);

/// What the overlay carries besides the state file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OverlayInputs {
    /// lbd's hash of `admin.password`: the `admin` user.
    pub admin_hash: Option<String>,
    /// lbd's hash of `admin.readonly_password`: the `readonly` user.
    pub readonly_hash: Option<String>,
    /// The web console's certificate files (`None`: no console this boot,
    /// init could not make or copy a certificate).
    pub console: Option<ConsoleLayer>,
}

/// The overlay: state on the data partition, the stats and console users
/// whose passwords were set, and the console's certificate.
pub fn overlay(inputs: &OverlayInputs) -> Layer {
    let global = GlobalLayer {
        state_file: Some(PathBuf::from(format!("{STATE_DIR}/server-state.json"))),
        ..GlobalLayer::default()
    };
    let users: BTreeMap<String, StatsUser> = [
        (ADMIN_USER, &inputs.admin_hash, Group::Admin),
        (READONLY_USER, &inputs.readonly_hash, Group::ReadOnly),
    ]
    .into_iter()
    .filter_map(|(name, hash, group)| {
        let password_hash = hash.clone()?;
        Some((
            name.to_string(),
            StatsUser {
                password_hash,
                group,
            },
        ))
    })
    .collect();
    let stats = (!users.is_empty()).then(|| StatsLayer {
        users,
        ..StatsLayer::default()
    });
    Layer {
        global: Some(global),
        stats,
        console: inputs.console.clone(),
        ..Layer::default()
    }
}

/// lbd's effective config, or why lbd refuses its files.
pub type Effective = Result<Config, ConfigErrors>;

/// lbd's effective config from `configs` in order, layered and validated
/// as lbd does it (TLS files are only checked to be readable: lbd's own
/// check needs its TLS stack). When it is `Err`, lbd refuses the same
/// files and reports every error itself.
pub fn effective(configs: &[String]) -> Effective {
    let paths: Vec<PathBuf> = configs.iter().map(PathBuf::from).collect();
    lbd_config::load_files(&paths)
}

/// Where lbd answers (the status screen asks it there): the effective
/// config's, or lbd's default when the files do not load (lbd then does
/// not run, and the status screen says it cannot reach it).
pub fn control_socket(effective: &Effective) -> PathBuf {
    match effective {
        Ok(config) => config.control_socket().to_path_buf(),
        Err(_) => PathBuf::from(DEFAULT_CONTROL_SOCKET),
    }
}

/// The `[vrrp.appliance]` instance for the `vrrp.*` settings, or `None`
/// when no virtual IP is set (a single node). `own_ip` is this node's
/// address on `interface`, needed for unicast peers.
pub fn vrrp_overlay(
    vrrp: &settings::Vrrp,
    interface: &str,
    own_ip: Option<IpAddr>,
) -> Result<Option<Layer>, String> {
    if vrrp.virtual_ips.is_empty() {
        return Ok(None);
    }
    let mut vi = InstanceLayer {
        interface: Some(interface.to_string()),
        vrid: Some(vrrp.router_id),
        priority: Some(vrrp.priority),
        virtual_ips: Some(
            vrrp.virtual_ips
                .iter()
                .map(|c| Cidr {
                    addr: c.addr,
                    prefix: c.prefix,
                })
                .collect(),
        ),
        advert_int: Some(ADVERT_INT),
        ..InstanceLayer::default()
    };
    if !vrrp.peers.is_empty() {
        let Some(own) = own_ip else {
            return Err("vrrp.peers are set but this node has no IPv4 address yet (static network.ipv4 or a DHCP lease): VRRP not configured".into());
        };
        vi.unicast_src_ip = Some(own);
        vi.unicast_peers = Some(vrrp.peers.clone());
    }
    match (vrrp.peer_software, &vrrp.auth) {
        (PeerSoftware::Lbd, None) => vi.version = Some(3),
        // Between two appliances the secret keys lbd's HMAC-SHA256 with
        // replay protection (v3); lbd wants a key long enough to resist
        // guessing from captured adverts.
        (PeerSoftware::Lbd, Some(secret)) => {
            let key = secret.expose();
            if key.chars().count() < MIN_AUTH_KEY_LEN {
                return Err(format!(
                    "vrrp.auth is {} characters: between two appliances it keys an HMAC and \
                     needs {MIN_AUTH_KEY_LEN} or more (e.g. openssl rand -hex 16), the same on both \
                     nodes; VRRP is not started until it is fixed (or set \
                     vrrp.peer_software = keepalived for a Keepalived peer)",
                    key.chars().count()
                ));
            }
            vi.version = Some(3);
            vi.auth_type = Some(AuthType::Hmac);
            vi.auth_key = Some(key.to_string());
        }
        // Keepalived speaks v2 with PASS (its first 8 characters, in clear).
        (PeerSoftware::Keepalived, auth) => {
            vi.version = Some(2);
            vi.auth_pass = auth
                .as_ref()
                .map(|secret| secret.expose().chars().take(KEEPALIVED_PASS_LEN).collect());
        }
    }
    Ok(Some(Layer {
        vrrp: BTreeMap::from([(VRRP_INSTANCE.to_string(), vi)]),
        ..Layer::default()
    }))
}

/// Hashes with `lbd hash-password`, so init links no password hashing of
/// its own and the format is always the one lbd checks.
pub fn hash_password(password: &str) -> Result<String, String> {
    let out = crate::reap::output(
        Command::new(LBD).arg("hash-password"),
        format!("{password}\n").as_bytes(),
        HASH_TIMEOUT,
    )
    .map_err(|e| format!("running {LBD} hash-password: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "lbd hash-password: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let hash = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if hash.is_empty() {
        return Err("lbd hash-password printed nothing".into());
    }
    Ok(hash)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const OVERLAY_HEADER: &str = "Written by init (a test).";
    const VRRP_OVERLAY_HEADER: &str = OVERLAY_HEADER;

    /// A layer as `crate::lbd_files` writes it.
    fn write_overlay(path: &str, header: &str, layer: &Layer) -> Result<(), String> {
        let text = layer.to_toml(header).map_err(|e| e.to_string())?;
        std::fs::write(path, text).map_err(|e| e.to_string())
    }

    fn vrrp(peers: &[&str], auth: Option<&str>) -> settings::Vrrp {
        let mut s = settings::merge([settings::Layer::new(
            settings::Source::Cmdline,
            [
                ("vrrp.virtual_ips", "192.0.2.100/24"),
                ("vrrp.priority", "150"),
                ("vrrp.peers", &peers.join(",")),
                ("vrrp.auth", auth.unwrap_or("")),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        )]);
        assert!(s.errors.is_empty(), "{:?}", s.errors);
        std::mem::replace(&mut s.settings.vrrp, settings::merge([]).settings.vrrp)
    }

    /// The text init writes for `vrrp`, parsed back as plain TOML: the
    /// tests check the keys as they land in the file.
    fn written(vrrp: &settings::Vrrp, own: Option<IpAddr>) -> toml::Table {
        let layer = vrrp_overlay(vrrp, "eth0", own).unwrap().unwrap();
        toml::from_str(&layer.to_toml("test").unwrap()).unwrap()
    }

    fn appliance(t: &toml::Table) -> toml::Table {
        t["vrrp"]["appliance"].as_table().unwrap().clone()
    }

    /// Input: two VIP settings, unicast peers, no secret.
    /// Output: a v3 unicast instance on the NIC, with this node as source.
    #[test]
    fn vrrp_overlay_from_settings() {
        let own = Some("192.0.2.10".parse().unwrap());
        let t = written(&vrrp(&["192.0.2.11"], None), own);
        let v = appliance(&t);
        assert_eq!(v["interface"].as_str(), Some("eth0"));
        assert_eq!(v["priority"].as_integer(), Some(150));
        assert_eq!(v["version"].as_integer(), Some(3));
        assert_eq!(v["advert_int"].as_str(), Some("1s"));
        assert_eq!(v["unicast_src_ip"].as_str(), Some("192.0.2.10"));
        assert_eq!(v["unicast_peers"][0].as_str(), Some("192.0.2.11"));
        assert_eq!(v["virtual_ips"][0].as_str(), Some("192.0.2.100/24"));
        assert!(v.get("auth_type").is_none());
    }

    #[test]
    fn a_secret_between_appliances_keys_hmac_and_must_be_long() {
        let v = appliance(&written(&vrrp(&[], Some("0123456789abcdef")), None));
        assert_eq!(v["version"].as_integer(), Some(3));
        assert_eq!(v["auth_type"].as_str(), Some("hmac"));
        assert_eq!(v["auth_key"].as_str(), Some("0123456789abcdef"));
        let short = vrrp_overlay(&vrrp(&[], Some("secret")), "eth0", None).unwrap_err();
        assert!(short.contains("vrrp.auth is 6 characters"), "{short}");
        assert!(short.contains("16 or more"), "{short}");
    }

    #[test]
    fn a_keepalived_peer_gets_v2_and_pass() {
        let mut v = vrrp(&[], Some("longer-than-8"));
        v.peer_software = settings::PeerSoftware::Keepalived;
        let t = appliance(&written(&v, None));
        assert_eq!(t["version"].as_integer(), Some(2));
        assert_eq!(t["auth_pass"].as_str(), Some("longer-t"));
        assert!(t.get("auth_type").is_none());
        v.auth = None;
        let t = appliance(&written(&v, None));
        assert_eq!(t["version"].as_integer(), Some(2));
        assert!(t.get("auth_pass").is_none());
    }

    #[test]
    fn peers_need_an_address_and_no_vip_means_no_vrrp() {
        assert!(vrrp_overlay(&vrrp(&["192.0.2.11"], None), "eth0", None).is_err());
        let mut none = vrrp(&[], None);
        none.virtual_ips.clear();
        assert_eq!(vrrp_overlay(&none, "eth0", None), Ok(None));
    }

    /// Paths of `files` (name, text) written into `dir`, in order.
    fn files_in(dir: &Path, files: &[(&str, &str)]) -> Vec<String> {
        files
            .iter()
            .map(|(name, text)| {
                let path = dir.join(name);
                std::fs::write(&path, text).unwrap();
                path.display().to_string()
            })
            .collect()
    }

    #[test]
    fn control_socket_follows_lbd_layering() {
        let dir = tempfile::tempdir().unwrap();
        let base = ("base.toml", "[global]\nmaxconn = 10\n");
        let files = files_in(dir.path(), &[base]);
        assert_eq!(
            control_socket(&effective(&files)),
            PathBuf::from(DEFAULT_CONTROL_SOCKET)
        );
        let over = ("over.toml", "[global]\ncontrol_socket = \"/run/x.sock\"\n");
        let files = files_in(dir.path(), &[base, over]);
        assert_eq!(
            control_socket(&effective(&files)),
            PathBuf::from("/run/x.sock")
        );
        // lbd refuses a file that does not parse, so it does not run at
        // all: the status screen gets lbd's default and says it cannot
        // reach lbd, and init goes on.
        let broken = ("broken.toml", "[global\ncontrol_socket = \"/run/y.sock\"\n");
        let files = files_in(dir.path(), &[base, over, broken]);
        assert!(effective(&files).is_err());
        assert_eq!(
            control_socket(&effective(&files)),
            PathBuf::from(DEFAULT_CONTROL_SOCKET)
        );
    }

    #[test]
    fn ports_follow_lbd_layering() {
        let dir = tempfile::tempdir().unwrap();
        let base = "[backends.b.servers.s]\naddress = \"192.0.2.1:443\"\n\
                    [frontends.a]\nbind = [\"0.0.0.0:443\", \"[::]:443\"]\ndefault_backend = \"b\"\n\
                    [frontends.b]\nbind = [\"0.0.0.0:80\"]\ndefault_backend = \"b\"\n\
                    [stats]\nbind = \"0.0.0.0:8404\"\n";
        // The overlay moves frontend b; a's binds and the stats page stay.
        let over = "[frontends.b]\nbind = [\"10.0.0.1:8080\"]\n";
        let files = files_in(dir.path(), &[("base.toml", base), ("over.toml", over)]);
        let config = effective(&files).unwrap();
        assert_eq!(config.listening_ports(), [443, 8080, 8404]);
    }

    fn admin_only(hash: &str) -> OverlayInputs {
        OverlayInputs {
            admin_hash: Some(hash.into()),
            ..OverlayInputs::default()
        }
    }

    #[test]
    fn overlay_is_valid_toml_with_escaped_hash() {
        let text = overlay(&admin_only("$argon2id$v=19$\"x\\"))
            .to_toml(OVERLAY_HEADER)
            .unwrap();
        assert!(text.starts_with("# Written by init"), "{text}");
        let t: toml::Table = toml::from_str(&text).unwrap();
        assert_eq!(
            t["stats"]["users"]["admin"]["password_hash"].as_str(),
            Some("$argon2id$v=19$\"x\\")
        );
        assert_eq!(
            t["stats"]["users"]["admin"]["group"].as_str(),
            Some("admin")
        );
        assert_eq!(
            t["global"]["state_file"].as_str(),
            Some("/var/lib/appliance/lbd/server-state.json")
        );
        let plain: toml::Table =
            toml::from_str(&overlay(&OverlayInputs::default()).to_toml("").unwrap()).unwrap();
        assert!(plain.get("stats").is_none());
    }

    /// The config baked into the image (appliance.toml's `[lbd] config`).
    const BAKED: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../lbd/examples/appliance-image.toml"
    );
    /// A PHC string of the form `lbd hash-password` prints.
    const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";

    /// Input: the baked config, then both overlays init writes, for each
    /// kind of peer (an lbd with and without a secret, unicast; a
    /// Keepalived with PASS, multicast). Output: lbd's own loader accepts
    /// every stack, with the overlays' values in force, and the firewall
    /// learns lbd's ports and where the adverts come from.
    #[test]
    fn overlays_pass_lbd_validation_on_the_baked_config() {
        let own: IpAddr = "192.0.2.10".parse().unwrap();
        let peer: IpAddr = "192.0.2.11".parse().unwrap();
        let unicast = vrrp(&["192.0.2.11"], None);
        let hmac = vrrp(&["192.0.2.11"], Some("0123456789abcdef"));
        let mut keepalived = vrrp(&[], Some("secret"));
        keepalived.peer_software = PeerSoftware::Keepalived;
        for (case, settings, auth) in [
            ("unicast", unicast, None),
            ("hmac", hmac, Some(AuthType::Hmac)),
            ("keepalived", keepalived, Some(AuthType::Pass)),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let over = dir.path().join("appliance-overlay.toml");
            let vrrp_over = dir.path().join("appliance-vrrp.toml");
            write_overlay(
                &over.display().to_string(),
                OVERLAY_HEADER,
                &overlay(&admin_only(HASH)),
            )
            .unwrap();
            let layer = vrrp_overlay(&settings, "eth0", Some(own)).unwrap().unwrap();
            write_overlay(
                &vrrp_over.display().to_string(),
                VRRP_OVERLAY_HEADER,
                &layer,
            )
            .unwrap();
            let files = [
                BAKED.to_string(),
                over.display().to_string(),
                vrrp_over.display().to_string(),
            ];
            let config = effective(&files).unwrap_or_else(|e| panic!("{case}: {e}"));
            assert_eq!(
                config.global.state_file,
                Path::new("/var/lib/appliance/lbd/server-state.json"),
                "{case}"
            );
            let admin = &config.stats.as_ref().expect("stats").users[ADMIN_USER];
            assert_eq!(admin.group, Group::Admin, "{case}");
            let vi = &config.vrrp[VRRP_INSTANCE];
            assert_eq!((vi.priority, vi.auth()), (150, auth), "{case}");
            // The image ships no services: only the stats page listens.
            assert!(config.frontends.is_empty(), "{case}");
            assert_eq!(config.listening_ports(), [8404], "{case}");
            let adverts = config.vrrp_adverts();
            assert_eq!(adverts.len(), 1, "{case}");
            assert_eq!(
                adverts[0].protocol,
                lbd_config::vrrp::IPPROTO_VRRP,
                "{case}"
            );
            let expected = if case == "keepalived" {
                lbd_config::vrrp::AdvertSource::Group("224.0.0.18".parse().unwrap())
            } else {
                lbd_config::vrrp::AdvertSource::Peers(vec![peer])
            };
            assert_eq!(adverts[0].source, expected, "{case}");
        }
    }

    /// Input: both passwords' hashes and the console's files, over the
    /// baked config. Output: lbd's loader gives an `admin` admin and a
    /// `readonly` read-only user, the console on the copies, and :5480
    /// among the ports the firewall opens.
    #[test]
    fn overlay_with_readonly_user_and_console_loads() {
        let inputs = OverlayInputs {
            admin_hash: Some(HASH.into()),
            readonly_hash: Some(HASH.replace("c2Fsd", "b3RoZ")),
            console: Some(ConsoleLayer {
                cert: Some("/run/lbd/console.crt".into()),
                key: Some("/run/lbd/console.key".into()),
                ..ConsoleLayer::default()
            }),
        };
        let text = overlay(&inputs).to_toml(OVERLAY_HEADER).unwrap();
        let t: toml::Table = toml::from_str(&text).unwrap();
        assert_eq!(
            t["stats"]["users"]["readonly"]["group"].as_str(),
            Some("read-only")
        );
        assert_eq!(
            t["console"]["cert"].as_str(),
            Some("/run/lbd/console.crt"),
            "{text}"
        );
        assert!(t["console"].get("bind").is_none(), "lbd's default: {text}");
        let dir = tempfile::tempdir().unwrap();
        let over = dir.path().join("overlay.toml");
        write_overlay(
            &over.display().to_string(),
            OVERLAY_HEADER,
            &overlay(&inputs),
        )
        .unwrap();
        let config = effective(&[BAKED.to_string(), over.display().to_string()])
            .unwrap_or_else(|e| panic!("{e}"));
        let users = &config.stats.as_ref().expect("stats").users;
        assert_eq!(users[ADMIN_USER].group, Group::Admin);
        assert_eq!(users[READONLY_USER].group, Group::ReadOnly);
        let console = config.console.as_ref().expect("console");
        assert_eq!(console.key, Path::new("/run/lbd/console.key"));
        assert_eq!(config.listening_ports(), [5480, 8404]);

        // Only the read-only password: no admin user is invented.
        let readonly_only = OverlayInputs {
            admin_hash: None,
            ..inputs
        };
        let t: toml::Table = toml::from_str(&overlay(&readonly_only).to_toml("").unwrap()).unwrap();
        let users = t["stats"]["users"].as_table().unwrap();
        assert_eq!(users.keys().collect::<Vec<_>>(), ["readonly"]);
    }
}
