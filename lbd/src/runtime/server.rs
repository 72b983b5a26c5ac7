//! Live state of one server: health, admin state, weight and counters, all
//! atomics so the proxy, checks, stats and control socket share them
//! without a lock.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::config::{Server, ServerAddr};

/// Admin state set by an operator (HAProxy's ready/drain/maint).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AdminState {
    /// Takes new connections.
    #[default]
    Ready,
    /// Keeps its connections, takes no new ones (not even `source` clients
    /// hashed to it: they go to the next server on the ring).
    Drain,
    /// Out of service; also not health-checked.
    Maint,
}

impl AdminState {
    fn to_u8(self) -> u8 {
        match self {
            Self::Ready => 0,
            Self::Drain => 1,
            Self::Maint => 2,
        }
    }

    fn from_u8(v: u8) -> Self {
        match v {
            1 => Self::Drain,
            2 => Self::Maint,
            _ => Self::Ready,
        }
    }

    /// Parses the word used on the control socket and stats page.
    pub fn parse(word: &str) -> Option<Self> {
        match word {
            "ready" => Some(Self::Ready),
            "drain" => Some(Self::Drain),
            "maint" => Some(Self::Maint),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ready => "ready",
            Self::Drain => "drain",
            Self::Maint => "maint",
        }
    }
}

/// One server's shared state.
#[derive(Debug)]
pub struct ServerRt {
    pub name: String,
    pub backend: String,
    /// As configured (IP or name).
    pub address: ServerAddr,
    /// The address connections go to; `None` while a name is unresolved.
    resolved: RwLock<Option<SocketAddr>>,
    pub backup: bool,
    pub maxconn: Option<u32>,
    pub config_weight: u32,
    /// Port health checks connect to.
    pub check_port: u16,
    pub checked: bool,
    weight: AtomicU32,
    up: AtomicBool,
    admin: AtomicU8,
    /// Admin state asked for by the agent (not persisted).
    agent_admin: AtomicU8,
    /// Connections open now; shared with the previous generation's server
    /// of the same name and address, so a reload keeps counting old
    /// connections for leastconn and maxconn.
    pub active: Arc<AtomicU32>,
    /// Health came from the previous generation (reload), not a fresh start.
    pub inherited: bool,
    /// Connections since start.
    pub total: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub connect_errors: AtomicU64,
    /// Last check result in words, for stats.
    pub last_check: Mutex<String>,
    /// When health or an admin state last changed (the console's "time in
    /// state"); carried over a reload like health.
    changed: Mutex<Instant>,
    /// An admin turned this server's health checks off (HAProxy's
    /// `disable health`): no probes, and the server counts as up.
    checks_off: AtomicBool,
    /// The last [`CHECK_LOG`] check results, oldest first.
    check_log: Mutex<std::collections::VecDeque<CheckRecord>>,
}

/// Check results a server remembers (the console's check history).
pub const CHECK_LOG: usize = 10;

/// One check result: when (Unix seconds), passed or not, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckRecord {
    pub at: u64,
    pub ok: bool,
    pub reason: String,
}

impl ServerRt {
    /// `prev` is the same server in the previous generation, if its address
    /// did not change: health, counters and open connections carry over.
    pub fn new(
        backend: &str,
        name: &str,
        cfg: &Server,
        checked: bool,
        prev: Option<&ServerRt>,
    ) -> Self {
        let server = Self::fresh(backend, name, cfg, checked, prev.map(|p| p.active.clone()));
        if let Some(p) = prev {
            server.set_up(p.is_up());
            if server.addr().is_none() {
                server.set_resolved(p.addr());
            }
            for (new, old) in [
                (&server.total, &p.total),
                (&server.bytes_in, &p.bytes_in),
                (&server.bytes_out, &p.bytes_out),
                (&server.connect_errors, &p.connect_errors),
            ] {
                new.store(old.load(Ordering::Relaxed), Ordering::Relaxed);
            }
            server.set_last_check(p.last_check());
            server.set_agent_admin(p.agent_admin());
            server.set_checks_off(p.checks_off());
            if let (Ok(mut new), Ok(old)) = (server.check_log.lock(), p.check_log.lock()) {
                new.clone_from(&old);
            }
            if let Ok(mut g) = server.changed.lock() {
                *g = p.changed();
            }
        }
        server
    }

    fn fresh(
        backend: &str,
        name: &str,
        cfg: &Server,
        checked: bool,
        active: Option<Arc<AtomicU32>>,
    ) -> Self {
        Self {
            inherited: active.is_some(),
            name: name.to_string(),
            backend: backend.to_string(),
            address: cfg.address.clone(),
            resolved: RwLock::new(cfg.address.ip()),
            backup: cfg.backup,
            maxconn: cfg.maxconn,
            config_weight: cfg.weight,
            check_port: cfg.check_port.unwrap_or(cfg.address.port()),
            checked,
            weight: AtomicU32::new(cfg.weight),
            // Servers start up, one failed check away from down (as in
            // HAProxy): a restart does not interrupt service.
            up: AtomicBool::new(true),
            admin: AtomicU8::new(0),
            agent_admin: AtomicU8::new(0),
            active: active.unwrap_or_default(),
            total: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            connect_errors: AtomicU64::new(0),
            last_check: Mutex::new(if checked {
                "pending".into()
            } else {
                "no check".into()
            }),
            changed: Mutex::new(Instant::now()),
            checks_off: AtomicBool::new(false),
            check_log: Mutex::new(std::collections::VecDeque::new()),
        }
    }

    /// Where to connect now (`None`: name not resolved yet).
    pub fn addr(&self) -> Option<SocketAddr> {
        self.resolved.read().map_or(None, |g| *g)
    }

    /// Records the result of resolving the server's name.
    pub fn set_resolved(&self, addr: Option<SocketAddr>) {
        if let Ok(mut g) = self.resolved.write() {
            *g = addr;
        }
    }

    pub fn weight(&self) -> u32 {
        self.weight.load(Ordering::Relaxed)
    }

    pub fn set_weight(&self, w: u32) {
        self.weight.store(w, Ordering::Relaxed);
    }

    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    pub fn set_up(&self, up: bool) {
        if self.up.swap(up, Ordering::Relaxed) != up {
            self.touch();
        }
    }

    /// The last change of health or admin state.
    pub fn changed(&self) -> Instant {
        self.changed.lock().map_or_else(|_| Instant::now(), |g| *g)
    }

    fn touch(&self) {
        if let Ok(mut g) = self.changed.lock() {
            *g = Instant::now();
        }
    }

    pub fn admin(&self) -> AdminState {
        AdminState::from_u8(self.admin.load(Ordering::Relaxed))
    }

    pub fn set_admin(&self, s: AdminState) {
        if self.admin.swap(s.to_u8(), Ordering::Relaxed) != s.to_u8() {
            self.touch();
        }
    }

    pub fn agent_admin(&self) -> AdminState {
        AdminState::from_u8(self.agent_admin.load(Ordering::Relaxed))
    }

    pub fn set_agent_admin(&self, s: AdminState) {
        if self.agent_admin.swap(s.to_u8(), Ordering::Relaxed) != s.to_u8() {
            self.touch();
        }
    }

    /// The stricter of the operator's and the agent's admin state.
    pub fn effective_admin(&self) -> AdminState {
        AdminState::from_u8(
            self.admin
                .load(Ordering::Relaxed)
                .max(self.agent_admin.load(Ordering::Relaxed)),
        )
    }

    pub fn active(&self) -> u32 {
        self.active.load(Ordering::Relaxed)
    }

    /// Up and ready: may take new connections if it has a free slot.
    pub fn in_service(&self) -> bool {
        self.is_up() && self.effective_admin() == AdminState::Ready && self.addr().is_some()
    }

    /// `in_service` and under maxconn.
    pub fn has_slot(&self) -> bool {
        self.in_service() && self.maxconn.is_none_or(|m| self.active() < m)
    }

    pub fn set_last_check(&self, text: String) {
        if let Ok(mut g) = self.last_check.lock() {
            *g = text;
        }
    }

    /// Remembers a check's result (and shows it as the last check).
    pub fn record_check(&self, ok: bool, reason: &str) {
        self.set_last_check(reason.to_owned());
        let at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if let Ok(mut log) = self.check_log.lock() {
            if log.len() == CHECK_LOG {
                log.pop_front();
            }
            log.push_back(CheckRecord {
                at,
                ok,
                reason: reason.to_owned(),
            });
        }
    }

    /// The last check results, oldest first.
    pub fn check_log(&self) -> Vec<CheckRecord> {
        self.check_log
            .lock()
            .map(|g| g.iter().cloned().collect())
            .unwrap_or_default()
    }

    pub fn checks_off(&self) -> bool {
        self.checks_off.load(Ordering::Relaxed)
    }

    pub fn set_checks_off(&self, off: bool) {
        self.checks_off.store(off, Ordering::Relaxed);
    }

    pub fn last_check(&self) -> String {
        self.last_check
            .lock()
            .map(|g| g.clone())
            .unwrap_or_default()
    }

    /// The key used in the state file and on the control socket.
    pub fn key(&self) -> String {
        format!("{}/{}", self.backend, self.name)
    }
}
