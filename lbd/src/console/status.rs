//! `GET /api/v1/status`: this node, its VRRP instances, and each frontend
//! and backend with its servers; built from the same snapshot as `show
//! stat` and the stats page, so every view agrees.

use serde::Serialize;

use crate::daemon::Daemon;
use crate::report::{self, BackendRow, FrontendRow, ServerRow};
use crate::vrrp::status::VrrpRow;

#[derive(Debug, Serialize)]
pub struct Status {
    pub node: Node,
    pub frontends: Vec<Frontend>,
    pub backends: Vec<Backend>,
}

#[derive(Debug, Serialize)]
pub struct Node {
    pub hostname: String,
    /// Each instance: state, effective and configured priority, VIPs,
    /// transitions, seconds in state and the last change's reason.
    pub vrrp: Vec<VrrpRow>,
}

#[derive(Debug, Serialize)]
pub struct Frontend {
    #[serde(flatten)]
    pub row: FrontendRow,
    /// Backends it sends to: the default first, then its routes'.
    pub backends: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Backend {
    #[serde(flatten)]
    pub row: BackendRow,
    pub servers: Vec<ServerRow>,
}

/// The status now.
pub fn status(daemon: &Daemon) -> Status {
    let rt = daemon.runtime();
    let stat = report::stat(&rt, &daemon.listeners);
    let frontends = stat
        .frontends
        .into_iter()
        .map(|row| {
            let mut backends: Vec<String> = Vec::new();
            if let Some(f) = rt.frontends.get(&row.frontend) {
                let routed = f.config.routes.iter().map(|r| &r.backend);
                for b in f.config.default_backend.iter().chain(routed) {
                    if !backends.contains(b) {
                        backends.push(b.clone());
                    }
                }
            }
            Frontend { row, backends }
        })
        .collect();
    let mut servers = stat.servers;
    let backends = stat
        .backends
        .into_iter()
        .map(|row| {
            let (mine, rest) = std::mem::take(&mut servers)
                .into_iter()
                .partition(|s| s.backend == row.backend);
            servers = rest;
            Backend { row, servers: mine }
        })
        .collect();
    Status {
        node: Node {
            hostname: crate::web::hostname(),
            vrrp: daemon.vrrp_status.rows(),
        },
        frontends,
        backends,
    }
}
