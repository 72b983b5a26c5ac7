//! The appliance's store on a plain Linux host: init's own store, backend
//! and appliance socket, in front of a real `lbd run`, as init serves them
//! in the appliance.
//!
//! ```text
//! test --lbd ctl config / console API--> DIR/appliance.sock
//!   (init::appliance_socket::start, the real server)
//!   --> StoreBackend (init's: validate, commit on base, rollback, history)
//!       over appliance_store::Store in DIR/store/
//!   --> HostApply: DIR/services.toml = the revision's services layer,
//!       `lbd ctl reload`; lbd refuses -> the old file back, lbd's error
//! lbd run -c DIR/lbd.toml -c DIR/services.toml   (base + services layer)
//! ```
//!
//! What LiveApply does besides (lbd files composed from settings, the
//! firewall, the hostname, sysctls) belongs to the appliance, not to a
//! test host: a settings change is stored and reported, not applied.

use std::net::SocketAddr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use appliance_store::{Document, Rules, Store};
use init::appliance_socket::store_backend::{Apply, Effect, Power, StoreBackend};
use settings::{Layer, Source};

use super::Lbd;

/// The baked layer's hostname (source `appliance.toml`), which the
/// store's own `hostname` overrides.
pub const BAKED_HOSTNAME: &str = "lb-test";
/// The node name the history records.
pub const NODE: &str = "lb-test";
/// Every revision's `changed_at` (the clock is passed in).
pub const CHANGED_AT: u64 = 1_764_700_000;

/// A running lbd with init's store and appliance socket beside it.
pub struct ApplianceStore {
    dir: PathBuf,
    lbd: Lbd,
    power: Arc<Mutex<Vec<Power>>>,
}

impl ApplianceStore {
    /// Writes `base` (a `console_config` text with its `[console]`) to
    /// `dir/lbd.toml`, with `[console] appliance_socket` pointed at
    /// `dir/appliance.sock`, and an empty `dir/services.toml`; starts lbd
    /// on both; opens a store in `dir/store/` and serves it on the socket.
    pub fn start(dir: &Path, base: &str) -> Self {
        let socket = dir.join("appliance.sock");
        let base = with_appliance_socket(base, &socket);
        let (base_file, services) = (dir.join("lbd.toml"), dir.join("services.toml"));
        std::fs::write(&base_file, &base).expect("write lbd.toml");
        std::fs::write(&services, "").expect("write services.toml");
        let lbd = Lbd::start_files(dir, &[base_file.clone(), services.clone()]);
        let power = Arc::new(Mutex::new(Vec::new()));
        let apply = HostApply {
            lbd_dir: dir.to_path_buf(),
            services,
            log: lbd.log_lines(),
            log_dir: dir.join("log"),
            power: power.clone(),
        };
        let baked = Layer::new(
            Source::Baked,
            vec![("hostname".into(), BAKED_HOSTNAME.into())],
        );
        let rules = Rules {
            lower: vec![baked.clone()],
            lbd_base: vec![(base_file, base)],
        };
        let store = Store::open(&dir.join("store")).expect("open store").store;
        let backend = StoreBackend::new(
            store,
            vec![baked],
            rules,
            NODE.into(),
            Box::new(apply),
            || CHANGED_AT,
        );
        // The group of a directory this process made is the process's own.
        let editors = std::fs::metadata(dir).expect("test dir").gid();
        init::appliance_socket::start(&socket, Box::new(backend), editors)
            .expect("serve the appliance socket (chown to root: run as root)");
        Self {
            dir: dir.to_path_buf(),
            lbd,
            power,
        }
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.join("appliance.sock")
    }

    pub fn lbd(&mut self) -> &mut Lbd {
        &mut self.lbd
    }

    /// Reboots and power-offs asked of the appliance, oldest first.
    pub fn power_requests(&self) -> Vec<Power> {
        self.power.lock().expect("power").clone()
    }

    /// The services layer lbd runs with now.
    pub fn services_file(&self) -> String {
        std::fs::read_to_string(self.dir.join("services.toml")).expect("services.toml")
    }

    /// `lbd ctl --appliance-socket SOCKET config WORDS`: (success, stdout, stderr).
    pub fn config(&self, words: &[&str]) -> (bool, String, String) {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_lbd"))
            .arg("ctl")
            .arg("--appliance-socket")
            .arg(self.socket())
            .arg("config")
            .args(words)
            .output()
            .expect("run lbd ctl config");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

/// `base` with `[console] appliance_socket = socket` (a table edit, not
/// text pasted into lbd's config).
fn with_appliance_socket(base: &str, socket: &Path) -> String {
    let mut table: toml::Table = toml::from_str(base).expect("the base config is TOML");
    let console = table
        .get_mut("console")
        .and_then(toml::Value::as_table_mut)
        .expect("the base config has a [console] section (console_config)");
    console.insert(
        "appliance_socket".into(),
        toml::Value::String(socket.display().to_string()),
    );
    toml::to_string(&table).expect("the base config as TOML")
}

/// What LiveApply does for the services layer, on a test host.
struct HostApply {
    /// Where lbd's control socket (`lbd.sock`) is.
    lbd_dir: PathBuf,
    services: PathBuf,
    /// lbd's stderr lines, the appliance log of this host.
    log: Arc<Mutex<Vec<String>>>,
    log_dir: PathBuf,
    power: Arc<Mutex<Vec<Power>>>,
}

impl Apply for HostApply {
    fn apply(&mut self, before: &Document, after: &Document) -> Result<Effect, String> {
        let text = toml::to_string(&after.services)
            .map_err(|e| format!("the store's services as TOML: {e}"))?;
        let previous = std::fs::read_to_string(&self.services)
            .map_err(|e| format!("reading {}: {e}", self.services.display()))?;
        std::fs::write(&self.services, text)
            .map_err(|e| format!("writing {}: {e}", self.services.display()))?;
        let (ok, _, err) = super::ctl(&self.lbd_dir, "reload");
        if !ok {
            // lbd keeps running with what it had; the file goes back to it.
            let _ = std::fs::write(&self.services, previous);
            let why = err.trim();
            let why = why.strip_prefix("lbd: ").unwrap_or(why);
            return Err(format!("lbd did not reload: {why}"));
        }
        let mut effect = Effect::default();
        for key in changed_keys(before, after) {
            // The host is not the appliance: settings are stored only.
            if init::live_apply::live(&key) {
                effect.applied.push(key);
            } else {
                effect.pending.push(key);
            }
        }
        if before.services != after.services {
            effect.applied.push("services".into());
        }
        Ok(effect)
    }

    fn hash_password(&mut self, password: &str) -> Result<String, String> {
        lbd::password::hash_password(password).map_err(|e| e.to_string())
    }

    fn power(&mut self, action: Power) {
        self.power.lock().expect("power").push(action);
    }

    /// init's own tail over lbd's lines so far, written as the appliance
    /// log (`applog::LOG_FILE`) in `DIR/log`.
    fn log_tail(&mut self, lines: usize, filter: &str) -> Result<Vec<String>, String> {
        let mut text = self.log.lock().expect("log").join("\n");
        text.push('\n');
        std::fs::create_dir_all(&self.log_dir).map_err(|e| e.to_string())?;
        std::fs::write(self.log_dir.join(init::applog::LOG_FILE), text)
            .map_err(|e| e.to_string())?;
        init::applog::tail(&self.log_dir, lines, filter).map_err(|e| e.to_string())
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

/// A services layer of one TCP frontend `name` on `bind` over a backend
/// `name` with `servers` (named s1, s2, ...), in lbd's own layer types.
pub fn service(name: &str, bind: SocketAddr, servers: &[SocketAddr]) -> toml::Table {
    use lbd_config::address::ServerAddr;
    use lbd_config::layer::{BackendLayer, FrontendLayer, Layer, ServerLayer};
    let frontend = FrontendLayer {
        bind: Some(vec![bind]),
        default_backend: Some(name.into()),
        ..FrontendLayer::default()
    };
    let backend = BackendLayer {
        servers: (1..)
            .zip(servers)
            .map(|(n, addr)| {
                let server = ServerLayer {
                    address: Some(ServerAddr::Ip(*addr)),
                    ..ServerLayer::default()
                };
                (format!("s{n}"), server)
            })
            .collect(),
        ..BackendLayer::default()
    };
    let layer = Layer {
        frontends: [(name.to_owned(), frontend)].into_iter().collect(),
        backends: [(name.to_owned(), backend)].into_iter().collect(),
        ..Layer::default()
    };
    toml::Table::try_from(&layer).expect("a layer is a TOML table")
}

/// Two services layers as one (`b`'s frontends and backends beside `a`'s).
pub fn both(a: &toml::Table, b: &toml::Table) -> toml::Table {
    let mut out = a.clone();
    for (section, tables) in b {
        let Some(tables) = tables.as_table() else {
            continue;
        };
        let into = out
            .entry(section.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if let Some(into) = into.as_table_mut() {
            into.extend(tables.clone());
        }
    }
    out
}
