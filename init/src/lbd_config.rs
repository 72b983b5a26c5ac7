//! The lbd configuration files for this boot: the baked base (or the whole
//! config an admin gave as `lbd.config`), then an overlay init writes from
//! the settings. lbd itself knows nothing of OVF or guestinfo.

use std::io::Write;
use std::net::IpAddr;
use std::path::Path;
use std::process::{Command, Stdio};

use rootfs::paths::{DATA_MOUNT, LBD, LBD_CONFIG};
use settings::{PeerSoftware, Settings};

/// Written at boot; tmpfs, so a setting removed in vSphere is gone at the
/// next boot.
pub const RUN_DIR: &str = "/run/lbd";
pub const ADMIN_CONFIG: &str = "/run/lbd/admin.toml";
pub const OVERLAY: &str = "/run/lbd/appliance-overlay.toml";

/// Paths to pass to `lbd run -c ...`, in order, and problems to report.
pub struct LbdFiles {
    pub configs: Vec<String>,
    pub problems: Vec<String>,
}

pub fn prepare(settings: &Settings) -> LbdFiles {
    let mut problems = Vec::new();
    let _ = std::fs::create_dir_all(RUN_DIR);
    let mut configs = Vec::new();
    if let Some(text) = &settings.lbd_config {
        match std::fs::write(ADMIN_CONFIG, text) {
            Ok(()) => configs.push(ADMIN_CONFIG.to_string()),
            Err(e) => problems.push(format!(
                "writing {ADMIN_CONFIG}: {e}; using the baked config"
            )),
        }
    }
    if configs.is_empty() && Path::new(LBD_CONFIG).exists() {
        configs.push(LBD_CONFIG.to_string());
    }
    let admin_hash =
        settings
            .admin_password
            .as_ref()
            .and_then(|p| match hash_password(p.expose()) {
                Ok(h) => Some(h),
                Err(e) => {
                    problems.push(format!("admin.password not applied: {e}"));
                    None
                }
            });
    match std::fs::write(OVERLAY, overlay(admin_hash.as_deref())) {
        Ok(()) => configs.push(OVERLAY.to_string()),
        Err(e) => problems.push(format!("writing {OVERLAY}: {e}")),
    }
    LbdFiles { configs, problems }
}

/// The overlay's text: state on the data partition, and the stats admin
/// user when an admin password was set.
pub fn overlay(admin_password_hash: Option<&str>) -> String {
    let mut text =
        String::from("# Written by init from the appliance settings at boot.\n[global]\n");
    text.push_str(&format!(
        "state_file = \"{DATA_MOUNT}/lbd/server-state.json\"\n"
    ));
    if let Some(hash) = admin_password_hash {
        text.push_str("\n[stats.users.admin]\ngroup = \"admin\"\n");
        text.push_str(&format!("password_hash = {}\n", toml_string(hash)));
    }
    text
}

/// TCP ports lbd will listen on (frontends and the stats page), read from
/// its config files layered as lbd layers them (tables merge, later wins),
/// so the firewall opens exactly those. Files that do not parse are skipped:
/// lbd reports them itself.
pub fn listening_ports(configs: &[String]) -> Vec<u16> {
    ports_of(&layered(configs))
}

/// lbd's config files layered as lbd layers them (tables merge, later
/// wins); files that do not parse are skipped (lbd reports them itself).
fn layered(configs: &[String]) -> toml::Table {
    let mut merged = toml::Table::new();
    for path in configs {
        if let Ok(Ok(table)) = std::fs::read_to_string(path).map(|t| t.parse::<toml::Table>()) {
            merge_tables(&mut merged, table);
        }
    }
    merged
}

/// lbd's own default for `global.control_socket`.
pub const DEFAULT_CONTROL_SOCKET: &str = "/run/lbd/lbd.sock";

/// Where lbd answers, from its config files layered as lbd layers them
/// (the status screen asks it there).
pub fn control_socket(configs: &[String]) -> std::path::PathBuf {
    layered(configs)
        .get("global")
        .and_then(|g| g.get("control_socket"))
        .and_then(toml::Value::as_str)
        .unwrap_or(DEFAULT_CONTROL_SOCKET)
        .into()
}

fn merge_tables(base: &mut toml::Table, over: toml::Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge_tables(b, o),
            (_, v) => {
                base.insert(key, v);
            }
        }
    }
}

fn ports_of(config: &toml::Table) -> Vec<u16> {
    let port = |addr: &str| {
        addr.rsplit_once(':')
            .and_then(|(_, p)| p.parse::<u16>().ok())
    };
    let mut ports = Vec::new();
    if let Some(frontends) = config.get("frontends").and_then(toml::Value::as_table) {
        for fe in frontends.values() {
            let binds = fe.get("bind").and_then(toml::Value::as_array);
            for b in binds.into_iter().flatten().filter_map(toml::Value::as_str) {
                ports.extend(port(b));
            }
        }
    }
    if let Some(bind) = config
        .get("stats")
        .and_then(|s| s.get("bind"))
        .and_then(toml::Value::as_str)
    {
        ports.extend(port(bind));
    }
    ports.sort_unstable();
    ports.dedup();
    ports
}

/// Where lbd's VRRP instance comes from: the `vrrp.*` settings plus what
/// only the network step knows (the NIC's name and this node's address).
pub const VRRP_OVERLAY: &str = "/run/lbd/appliance-vrrp.toml";

/// The `[vrrp.appliance]` instance for the `vrrp.*` settings, or `None`
/// when no virtual IP is set (a single node). `own_ip` is this node's
/// address on `interface`, needed for unicast peers.
/// lbd's minimum `auth_key` length for `auth_type = "hmac"`.
const HMAC_KEY_MIN: usize = 16;

pub fn vrrp_overlay(
    vrrp: &settings::Vrrp,
    interface: &str,
    own_ip: Option<IpAddr>,
) -> Result<Option<String>, String> {
    if vrrp.virtual_ips.is_empty() {
        return Ok(None);
    }
    let list = |items: Vec<String>| {
        items
            .iter()
            .map(|i| toml_string(i))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut t =
        String::from("# Written by init from the vrrp.* settings at boot.\n[vrrp.appliance]\n");
    t.push_str(&format!("interface = {}\n", toml_string(interface)));
    t.push_str(&format!(
        "vrid = {}\npriority = {}\n",
        vrrp.router_id, vrrp.priority
    ));
    let vips = vrrp
        .virtual_ips
        .iter()
        .map(|c| format!("{}/{}", c.addr, c.prefix))
        .collect();
    t.push_str(&format!("virtual_ips = [{}]\n", list(vips)));
    if !vrrp.peers.is_empty() {
        let Some(own) = own_ip else {
            return Err("vrrp.peers are set but this node has no IPv4 address yet (static network.ipv4 or a DHCP lease): VRRP not configured".into());
        };
        t.push_str(&format!(
            "unicast_src_ip = {}\n",
            toml_string(&own.to_string())
        ));
        let peers = vrrp.peers.iter().map(ToString::to_string).collect();
        t.push_str(&format!("unicast_peers = [{}]\n", list(peers)));
    }
    match (vrrp.peer_software, &vrrp.auth) {
        (PeerSoftware::Lbd, None) => t.push_str("version = 3\nadvert_int = \"1s\"\n"),
        // Between two appliances the secret keys lbd's HMAC-SHA256 with
        // replay protection (v3); lbd wants a key long enough to resist
        // guessing from captured adverts.
        (PeerSoftware::Lbd, Some(secret)) => {
            let key = secret.expose();
            if key.chars().count() < HMAC_KEY_MIN {
                return Err(format!(
                    "vrrp.auth is {} characters: between two appliances it keys an HMAC and \
                     needs {HMAC_KEY_MIN} or more (e.g. openssl rand -hex 16), the same on both \
                     nodes; VRRP is not started until it is fixed (or set \
                     vrrp.peer_software = keepalived for a Keepalived peer)",
                    key.chars().count()
                ));
            }
            t.push_str(&format!(
                "version = 3\nadvert_int = \"1s\"\nauth_type = \"hmac\"\nauth_key = {}\n",
                toml_string(key)
            ));
        }
        // Keepalived speaks v2 with PASS (its first 8 characters, in clear).
        (PeerSoftware::Keepalived, auth) => {
            t.push_str("version = 2\nadvert_int = \"1s\"\n");
            if let Some(secret) = auth {
                let pass: String = secret.expose().chars().take(8).collect();
                t.push_str(&format!("auth_pass = {}\n", toml_string(&pass)));
            }
        }
    }
    Ok(Some(t))
}

fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Hashes with `lbd hash-password`, so init links no password hashing of
/// its own and the format is always the one lbd checks.
fn hash_password(password: &str) -> Result<String, String> {
    let mut child = Command::new(LBD)
        .arg("hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("running {LBD} hash-password: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(format!("{password}\n").as_bytes())
            .map_err(|e| format!("writing to lbd hash-password: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("lbd hash-password: {e}"))?;
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

    /// Input: two VIP settings, unicast peers, no secret.
    /// Output: a v3 unicast instance on the NIC, with this node as source.
    #[test]
    fn vrrp_overlay_from_settings() {
        let own = Some("192.0.2.10".parse().unwrap());
        let text = vrrp_overlay(&vrrp(&["192.0.2.11"], None), "eth0", own)
            .unwrap()
            .unwrap();
        let t: toml::Table = toml::from_str(&text).unwrap();
        let v = &t["vrrp"]["appliance"];
        assert_eq!(v["interface"].as_str(), Some("eth0"));
        assert_eq!(v["priority"].as_integer(), Some(150));
        assert_eq!(v["version"].as_integer(), Some(3));
        assert_eq!(v["unicast_src_ip"].as_str(), Some("192.0.2.10"));
        assert_eq!(v["unicast_peers"][0].as_str(), Some("192.0.2.11"));
        assert_eq!(v["virtual_ips"][0].as_str(), Some("192.0.2.100/24"));
    }

    fn appliance(text: &str) -> toml::Table {
        let t: toml::Table = toml::from_str(text).unwrap();
        t["vrrp"]["appliance"].as_table().unwrap().clone()
    }

    #[test]
    fn a_secret_between_appliances_keys_hmac_and_must_be_long() {
        let text = vrrp_overlay(&vrrp(&[], Some("0123456789abcdef")), "eth0", None)
            .unwrap()
            .unwrap();
        let v = appliance(&text);
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
        let t = appliance(&vrrp_overlay(&v, "eth0", None).unwrap().unwrap());
        assert_eq!(t["version"].as_integer(), Some(2));
        assert_eq!(t["auth_pass"].as_str(), Some("longer-t"));
        v.auth = None;
        let t = appliance(&vrrp_overlay(&v, "eth0", None).unwrap().unwrap());
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

    #[test]
    fn control_socket_follows_lbd_layering() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("base.toml");
        let over = dir.path().join("over.toml");
        std::fs::write(&base, "[global]\nmaxconn = 10\n").unwrap();
        let files = [base.display().to_string()];
        assert_eq!(
            control_socket(&files),
            std::path::PathBuf::from(DEFAULT_CONTROL_SOCKET)
        );
        std::fs::write(&over, "[global]\ncontrol_socket = \"/run/x.sock\"\n").unwrap();
        let files = [base.display().to_string(), over.display().to_string()];
        assert_eq!(
            control_socket(&files),
            std::path::PathBuf::from("/run/x.sock")
        );
    }

    #[test]
    fn ports_follow_lbd_layering() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("base.toml");
        let over = dir.path().join("over.toml");
        std::fs::write(
            &base,
            "[frontends.a]\nbind = [\"0.0.0.0:443\", \"[::]:443\"]\n[frontends.b]\nbind = [\"0.0.0.0:80\"]\n[stats]\nbind = \"0.0.0.0:8404\"\n",
        )
        .unwrap();
        // The overlay moves frontend b; a's binds and the stats page stay.
        std::fs::write(&over, "[frontends.b]\nbind = [\"10.0.0.1:8080\"]\n").unwrap();
        let files = [base.display().to_string(), over.display().to_string()];
        assert_eq!(listening_ports(&files), [443, 8080, 8404]);
    }

    #[test]
    fn overlay_is_valid_toml_with_escaped_hash() {
        let text = overlay(Some("$argon2id$v=19$\"x\\"));
        let t: toml::Table = toml::from_str(&text).unwrap();
        assert_eq!(
            t["stats"]["users"]["admin"]["password_hash"].as_str(),
            Some("$argon2id$v=19$\"x\\")
        );
        assert_eq!(
            t["global"]["state_file"].as_str(),
            Some("/var/lib/appliance/lbd/server-state.json")
        );
        let plain: toml::Table = toml::from_str(&overlay(None)).unwrap();
        assert!(plain.get("stats").is_none());
    }
}
