//! Snapshots of the running state for `show stat`, `show info`, the stats
//! page (HTML, JSON, CSV) and Prometheus metrics: one source for all views.

use std::sync::atomic::Ordering;

use serde::{Deserialize, Serialize};

use crate::runtime::{AdminState, Listeners, Runtime};

/// One server row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerRow {
    pub backend: String,
    pub server: String,
    pub address: String,
    /// UP, DOWN, DRAIN or MAINT: what an admin reads first.
    pub status: String,
    pub health_up: bool,
    pub admin: String,
    pub agent_admin: String,
    pub weight: u32,
    pub config_weight: u32,
    pub backup: bool,
    pub active: u32,
    pub maxconn: Option<u32>,
    pub total: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub connect_errors: u64,
    pub last_check: String,
    /// Seconds since health or an admin state last changed.
    #[serde(default)]
    pub for_s: u64,
    /// "on", "off" (an admin turned them off) or "none" (not checked).
    #[serde(default)]
    pub checks: String,
    /// The last check results, oldest first.
    #[serde(default)]
    pub check_log: Vec<crate::runtime::server::CheckRecord>,
}

#[cfg(test)]
impl ServerRow {
    /// An UP server of `backend` with no traffic, for tests to adjust.
    pub fn example(backend: &str, server: &str) -> Self {
        Self {
            backend: backend.into(),
            server: server.into(),
            address: "192.0.2.1:443".into(),
            status: "UP".into(),
            health_up: true,
            admin: "ready".into(),
            agent_admin: "ready".into(),
            weight: 1,
            config_weight: 1,
            backup: false,
            active: 0,
            maxconn: None,
            total: 0,
            bytes_in: 0,
            bytes_out: 0,
            connect_errors: 0,
            last_check: String::new(),
            checks: "on".into(),
            check_log: Vec::new(),
            for_s: 0,
        }
    }
}

/// One frontend row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrontendRow {
    pub frontend: String,
    pub bind: Vec<String>,
    pub mode: String,
    /// OPEN (accepting), STOP (disabled by an operator) or DOWN (a
    /// listener not accepting).
    pub status: String,
    pub active: u32,
    pub maxconn: u32,
}

/// One backend row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackendRow {
    pub backend: String,
    pub balance: String,
    pub servers: usize,
    pub usable: usize,
}

/// Everything `show stat` returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stat {
    pub frontends: Vec<FrontendRow>,
    pub backends: Vec<BackendRow>,
    pub servers: Vec<ServerRow>,
}

fn word<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Takes a snapshot of `rt`, with frontend states from `listeners`.
pub fn stat(rt: &Runtime, listeners: &Listeners) -> Stat {
    let frontends = rt
        .frontends
        .values()
        .map(|f| FrontendRow {
            frontend: f.name.clone(),
            bind: f.config.bind.iter().map(ToString::to_string).collect(),
            mode: word(&f.config.mode),
            status: if listeners.is_disabled(&f.name) {
                "STOP"
            } else if listeners.is_up(&f.name, &f.config.bind) {
                "OPEN"
            } else {
                "DOWN"
            }
            .into(),
            active: f.active.load(Ordering::Relaxed),
            maxconn: f.maxconn,
        })
        .collect();
    let backends = rt
        .backends
        .values()
        .map(|b| BackendRow {
            backend: b.name.clone(),
            balance: word(&b.config.balance),
            servers: b.servers.len(),
            usable: b.usable_servers(),
        })
        .collect();
    let servers = rt
        .all_servers()
        .map(|s| {
            let status = match (s.effective_admin(), s.is_up(), s.addr().is_some()) {
                (AdminState::Maint, _, _) => "MAINT",
                (_, _, false) => "UNRESOLVED",
                (_, false, true) => "DOWN",
                (AdminState::Drain, true, true) => "DRAIN",
                (AdminState::Ready, true, true) => "UP",
            };
            ServerRow {
                backend: s.backend.clone(),
                server: s.name.clone(),
                address: match (s.address.host(), s.addr()) {
                    (Some(_), Some(a)) => format!("{} ({a})", s.address),
                    (Some(_), None) => format!("{} (unresolved)", s.address),
                    (None, _) => s.address.to_string(),
                },
                status: status.into(),
                health_up: s.is_up(),
                admin: s.admin().as_str().into(),
                agent_admin: s.agent_admin().as_str().into(),
                weight: s.weight(),
                config_weight: s.config_weight,
                backup: s.backup,
                active: s.active(),
                maxconn: s.maxconn,
                total: s.total.load(Ordering::Relaxed),
                bytes_in: s.bytes_in.load(Ordering::Relaxed),
                bytes_out: s.bytes_out.load(Ordering::Relaxed),
                connect_errors: s.connect_errors.load(Ordering::Relaxed),
                last_check: s.last_check(),
                for_s: s.changed().elapsed().as_secs(),
                checks: match (s.checked, s.checks_off()) {
                    (false, _) => "none",
                    (true, true) => "off",
                    (true, false) => "on",
                }
                .into(),
                check_log: s.check_log(),
            }
        })
        .collect();
    Stat {
        frontends,
        backends,
        servers,
    }
}

/// `show info`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Info {
    pub name: String,
    pub version: String,
    pub pid: u32,
    pub uptime_s: u64,
    pub config_files: Vec<String>,
    pub reloads: u64,
    pub current_connections: u32,
    pub maxconn: u32,
    pub frontends: usize,
    pub backends: usize,
    pub servers: usize,
    pub servers_up: usize,
    /// The stats/admin page's address, when there is one.
    pub stats: Option<String>,
    /// Log lines dropped since start because the log's reader (init, a
    /// pipe, syslog) fell behind: lbd never waits for its log.
    #[serde(default)]
    pub log_lines_dropped: u64,
}
