//! Makes a committed revision take effect in the running appliance (the
//! appliance socket's [`Apply`]).
//!
//! ```text
//! settings = merge(every layer read at boot + the revision's)
//! compose lbd's five files -> lbd's loader accepts them?   no: refused
//!   -> write the changed files -> lbd `reload`             fails: old files back
//!   -> firewall (ports, VRRP) -> hostname -> sysctls
//!   -> save as the last good set
//! ```
//! What the kernel cannot take while running (addresses, routes, DNS,
//! NTP, the syslog server) is committed and reported as pending until
//! the next boot, which applies the store like every other source.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use appliance_store::Document;
use nix::sys::signal::Signal;
use settings::{Layer, Settings};

use crate::appliance_socket::store_backend::{Apply, Effect, Power};
use crate::firewall;
use crate::lbd_config::{hash_password, OverlayInputs};
use crate::lbd_files::{compose, Inputs, Primary, Texts};
use crate::line_relay::LineSender;

/// lbd's reload re-reads and re-checks its files and starts listeners.
const RELOAD_TIMEOUT: Duration = Duration::from_secs(20);

/// Settings that take effect without a reboot (DNS, the hostname in
/// /etc/hosts and the syslog server through PID 1's loop, which owns the
/// network state and the consoles). Addresses, routes and NTP servers
/// wait for the next boot.
pub fn live(key: &str) -> bool {
    key.starts_with("service.")
        || key.starts_with("vrrp.")
        || key.starts_with("sysctl.")
        || matches!(
            key,
            "admin.password"
                | "admin.readonly_password"
                | "lbd.config"
                | "firewall.ports"
                | "hostname"
                | "network.dns"
                | "syslog.server"
        )
}

pub struct LiveApply {
    /// Every settings layer but the store's, as read at boot.
    pub lower: Vec<Layer>,
    pub primary: Option<Primary>,
    /// lbd's control socket.
    pub lbd_socket: PathBuf,
    /// The ruleset the kernel has.
    pub firewall: Option<firewall::Ruleset>,
    /// Where the last good set of lbd files is saved.
    pub last_good: PathBuf,
    pub report: LineSender,
    /// The passwords last hashed and their hashes, by key
    /// (`admin.password`, `admin.readonly_password`): hashing again would
    /// rewrite lbd's overlay (a new salt) for nothing.
    pub hashes: std::collections::BTreeMap<&'static str, (String, String)>,
    /// The console's certificate files chosen at boot (a changed
    /// `console.*` takes effect at the next boot, which checks it).
    pub console: Option<lbd_config::layer::ConsoleLayer>,
    /// The status screen's settings line follows every change.
    pub board: std::sync::Arc<crate::status::Board>,
    /// The settings in force after each change, for PID 1's loop (DNS,
    /// /etc/hosts, the syslog server); the relay's line wakes it.
    pub to_loop: std::sync::mpsc::Sender<Settings>,
}

impl LiveApply {
    fn merged(&self, doc: &Document) -> settings::Merged {
        let mut layers = self.lower.clone();
        layers.push(doc.settings_layer());
        settings::merge(layers)
    }

    fn settings(&self, doc: &Document) -> Settings {
        self.merged(doc).settings
    }

    /// lbd's hash of the password `key` holds (a stored hash as it is).
    fn hash(
        &mut self,
        key: &'static str,
        password: Option<&settings::value::Secret>,
    ) -> Result<Option<String>, String> {
        let Some(password) = password else {
            return Ok(None);
        };
        if password.is_hash() {
            return Ok(Some(password.expose().to_owned()));
        }
        let password = password.expose().to_owned();
        if let Some((known, hash)) = self.hashes.get(key) {
            if *known == password {
                return Ok(Some(hash.clone()));
            }
        }
        let hash = hash_password(&password).map_err(|e| format!("{key}: {e}"))?;
        self.hashes.insert(key, (password, hash.clone()));
        Ok(Some(hash))
    }

    fn overlay(&mut self, settings: &Settings) -> Result<OverlayInputs, String> {
        Ok(OverlayInputs {
            admin_hash: self.hash("admin.password", settings.admin_password.as_ref())?,
            readonly_hash: self.hash(
                "admin.readonly_password",
                settings.readonly_password.as_ref(),
            )?,
            console: self.console.clone(),
        })
    }

    fn firewall(&mut self, settings: &Settings, config: &lbd_config::Config) -> Result<(), String> {
        let mut input = firewall::FirewallInput::from_settings(settings);
        input.add_lbd(config);
        let ruleset = firewall::build_ruleset(&input);
        if self.firewall.as_ref() == Some(&ruleset) {
            return Ok(());
        }
        firewall::apply(&ruleset).map_err(|e| format!("firewall not applied: {e}"))?;
        self.report
            .line("init: firewall applied (a configuration change)");
        self.firewall = Some(ruleset);
        Ok(())
    }
}

impl Apply for LiveApply {
    fn apply(&mut self, before: &Document, after: &Document) -> Result<Effect, String> {
        let old = self.settings(before);
        let new = self.settings(after);
        let overlay = self.overlay(&new)?;
        let composed = compose(&Inputs {
            settings: &new,
            overlay,
            store_services: &after.services,
            primary: self.primary.as_ref(),
        });
        if let Some(problem) = composed.problems.first() {
            return Err(problem.clone());
        }
        let texts = composed.texts;
        let config = texts
            .load()
            .map_err(|e| format!("lbd refuses the result: {}", first_line(&e.to_string())))?;
        let previous = Texts::read_current();
        texts.write()?;
        if let Err(e) = reload(&self.lbd_socket) {
            // lbd keeps running with what it had; the files go back to it.
            let _ = previous.write();
            return Err(format!("lbd did not reload: {e}"));
        }
        self.firewall(&new, &config)?;
        let unauthenticated = crate::vrrp_warning::unauthenticated(&config);
        for u in &unauthenticated {
            self.report.line(&u.console_line());
        }
        self.board
            .set_warnings(crate::vrrp_warning::screen_lines(&unauthenticated));
        let mut effect = Effect::default();
        if old.hostname != new.hostname {
            if let Err(e) = nix::unistd::sethostname(&new.hostname) {
                effect
                    .pending
                    .push(format!("hostname (not set now: {e}; set at the next boot)"));
            }
        }
        if old.sysctls != new.sysctls {
            for line in crate::sysctl::apply_all(&new.sysctls).lines() {
                self.report.line(&format!("init: {line}"));
            }
        }
        if let Err(e) = crate::last_good::save(&self.last_good, &texts, "a configuration change") {
            self.report.line(&format!("init: warning: {e}"));
        }
        for key in changed_keys(before, after) {
            if live(&key) {
                effect.applied.push(key);
            } else {
                effect.pending.push(key);
            }
        }
        if before.services != after.services {
            effect.applied.push("services".into());
        }
        self.board
            .set_settings(crate::status::settings_summary(&self.merged(after)));
        if self.to_loop.send(new).is_ok() {
            self.report
                .line("init: settings changed through the appliance socket");
        }
        Ok(effect)
    }

    fn hash_password(&mut self, password: &str) -> Result<String, String> {
        hash_password(password)
    }

    fn power(&mut self, action: Power) {
        // PID 1's own power signals: the event loop shuts down in order
        // (lbd gives up its virtual IPs first), as for vCenter's request.
        let signal = match action {
            Power::Reboot => Signal::SIGTERM,
            Power::Off => Signal::SIGUSR1,
        };
        if let Err(e) = nix::sys::signal::kill(nix::unistd::getpid(), signal) {
            self.report.line(&format!(
                "init: error: {action:?} requested, not started: {e}"
            ));
        }
    }

    fn log_tail(&mut self, lines: usize, filter: &str) -> Result<Vec<String>, String> {
        let dir = std::path::Path::new(crate::applog::LOG_DIR);
        crate::applog::tail(dir, lines, filter)
            .map_err(|e| format!("reading the appliance log in {}: {e}", dir.display()))
    }
}

/// Keys whose stored value differs between two documents.
fn changed_keys(before: &Document, after: &Document) -> Vec<String> {
    let mut keys: Vec<String> = before
        .settings
        .keys()
        .chain(after.settings.keys())
        .filter(|k| before.settings.get(*k) != after.settings.get(*k))
        .cloned()
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}

/// Asks lbd to reload its files. lbd not running is not an error: its
/// supervisor starts it with the files just written.
fn reload(socket: &std::path::Path) -> Result<(), String> {
    let stream = match UnixStream::connect(socket) {
        Ok(s) => s,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Ok(())
        }
        Err(e) => return Err(format!("{}: {e}", socket.display())),
    };
    let _ = stream.set_read_timeout(Some(RELOAD_TIMEOUT));
    let _ = stream.set_write_timeout(Some(RELOAD_TIMEOUT));
    (&stream)
        .write_all(b"reload\n")
        .map_err(|e| format!("asking lbd to reload: {e}"))?;
    let mut line = String::new();
    BufReader::new(&stream)
        .read_line(&mut line)
        .map_err(|e| format!("waiting for lbd's reload: {e}"))?;
    let reply: serde_json::Value =
        serde_json::from_str(&line).map_err(|e| format!("lbd's answer to reload: {e}"))?;
    if reply["ok"].as_bool() == Some(true) {
        Ok(())
    } else {
        Err(reply["error"]
            .as_str()
            .unwrap_or("no reason given")
            .to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(pairs: &[(&str, &str)]) -> Document {
        Document {
            settings: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            services: Default::default(),
        }
    }

    /// Input: two documents differing in a server list, the NTP servers
    /// and nothing else.
    /// Output: those two keys; a slot takes effect now, NTP at boot.
    #[test]
    fn changed_keys_are_split_into_now_and_next_boot() {
        let before = doc(&[("service.1.servers", "10.0.0.11"), ("hostname", "lb1")]);
        let after = doc(&[
            ("service.1.servers", "10.0.0.11,10.0.0.12"),
            ("hostname", "lb1"),
            ("network.ntp", "10.0.0.2"),
        ]);
        let keys = changed_keys(&before, &after);
        assert_eq!(keys, vec!["network.ntp", "service.1.servers"]);
        assert!(live("service.1.servers"));
        assert!(!live("network.ntp"));
        assert!(live("network.dns"));
    }

    /// Input: a socket path nobody listens on; a fake lbd refusing.
    /// Output: no lbd is fine (its next start reads the files); a refusal
    /// is the error, in lbd's words.
    #[test]
    fn reload_without_lbd_is_fine_and_a_refusal_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lbd.sock");
        reload(&path).expect("no lbd");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let server = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut line = String::new();
            BufReader::new(&stream).read_line(&mut line).unwrap();
            assert_eq!(line, "reload\n");
            (&stream)
                .write_all(
                    b"{\"ok\":false,\"error\":\"frontend web: bind 10.0.0.100:443: in use\"}\n",
                )
                .unwrap();
        });
        let err = reload(&path).unwrap_err();
        assert!(err.contains("in use"), "{err}");
        server.join().unwrap();
    }
}
