//! The lbd configuration files for this boot: the baked base (or the whole
//! config an admin gave as `lbd.config`), then an overlay init writes from
//! the settings. lbd itself knows nothing of OVF or guestinfo.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use rootfs::paths::{DATA_MOUNT, LBD, LBD_CONFIG};
use settings::Settings;

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
    let mut merged = toml::Table::new();
    for path in configs {
        if let Ok(Ok(table)) = std::fs::read_to_string(path).map(|t| t.parse::<toml::Table>()) {
            merge_tables(&mut merged, table);
        }
    }
    ports_of(&merged)
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
