//! The running configuration: frontends and backends with live state,
//! built from a validated [`Config`]. One `Runtime` per config generation;
//! a reload builds a new one and carries server state over by name.

pub mod backend;
pub mod events;
pub mod listeners;
pub mod per_source;
pub mod server;
pub mod share;

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU32;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, watch, Semaphore};

pub use backend::{AcquireError, BackendRt, BackendTimeouts, Lease};
pub use events::Event;
pub use listeners::{AddrState, Listeners};
pub use per_source::{SourceLimit, SourceSlot};
pub use server::{AdminState, ServerRt};

use crate::config::{Config, Frontend, Timeouts};

/// Events kept for slow event-stream readers before they miss some.
pub const EVENT_BACKLOG: usize = 256;

/// One frontend's shared state.
#[derive(Debug)]
pub struct FrontendRt {
    pub name: String,
    pub config: Frontend,
    /// Client-side inactivity timeout.
    pub timeout_client: Duration,
    /// Mode http: time to send a request head (`timeout.http_request`).
    pub timeout_http_request: Duration,
    /// Open connections per client address (`maxconn_per_source`).
    pub per_source: Option<Arc<SourceLimit>>,
    /// Free connection slots (`maxconn`). The accept loop holds one while
    /// it waits, so count open connections with `active`.
    pub slots: Arc<Semaphore>,
    /// Client connections open now.
    pub active: Arc<AtomicU32>,
    /// This frontend's cap: its own `maxconn`, else its share of
    /// `global.maxconn` (see [`share`]).
    pub maxconn: u32,
    /// Mode tcp may use splice(2) (`global.splice`).
    pub splice: bool,
    /// TLS termination, when configured and loadable.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

/// Everything one config generation serves.
#[derive(Debug)]
pub struct Runtime {
    pub config: Config,
    pub frontends: BTreeMap<String, Arc<FrontendRt>>,
    pub backends: BTreeMap<String, Arc<BackendRt>>,
    /// State changes for the control socket's event stream.
    pub events: broadcast::Sender<Event>,
    /// Turns true when this generation is no longer current (reload or
    /// stop): its checks stop and its idle HTTP keep-alive connections close.
    pub superseded: watch::Sender<bool>,
    /// Turns true when this generation's connections must close (reload
    /// deadline passed, or stop deadline).
    pub retire: watch::Sender<bool>,
}

fn pick(
    own: &Timeouts,
    defaults: &Timeouts,
    f: fn(&Timeouts) -> Option<crate::config::Dur>,
    fallback: u64,
) -> Duration {
    f(own)
        .or(f(defaults))
        .map_or(Duration::from_secs(fallback), |d| d.0)
}

impl Runtime {
    /// Builds live state for `config` (already validated).
    pub fn new(config: Config, seed: u64) -> Self {
        Self::next(config, seed, None, broadcast::channel(EVENT_BACKLOG).0)
    }

    /// Builds the next generation: servers with the same backend, name and
    /// address keep health, counters and open-connection counts from `prev`.
    pub fn next(
        config: Config,
        seed: u64,
        prev: Option<&Runtime>,
        events: broadcast::Sender<Event>,
    ) -> Self {
        let d = &config.defaults.timeout;
        let backends = config
            .backends
            .iter()
            .map(|(name, b)| {
                let t = BackendTimeouts {
                    connect: pick(&b.timeout, d, |t| t.connect, 5),
                    server: pick(&b.timeout, d, |t| t.server, 50),
                    queue: pick(&b.timeout, d, |t| t.queue, 10),
                    tunnel: b.timeout.tunnel.or(d.tunnel).map(|t| t.0),
                };
                let old = prev.and_then(|p| p.backends.get(name)).map(|b| b.as_ref());
                (
                    name.clone(),
                    Arc::new(BackendRt::new(name, b, t, seed, old)),
                )
            })
            .collect();
        let own: Vec<Option<u32>> = config.frontends.values().map(|f| f.maxconn).collect();
        let caps = share::frontend_caps(config.global.maxconn, &own);
        let frontends = config
            .frontends
            .iter()
            .zip(caps)
            .map(|((name, f), maxconn)| {
                let fe = FrontendRt {
                    name: name.clone(),
                    config: f.clone(),
                    timeout_client: pick(&f.timeout, d, |t| t.client, 50),
                    timeout_http_request: pick(
                        &f.timeout,
                        d,
                        |t| t.http_request,
                        crate::config::DEFAULT_HTTP_REQUEST_TIMEOUT_SECS,
                    ),
                    per_source: f.maxconn_per_source.map(SourceLimit::new),
                    active: Arc::default(),
                    splice: config.global.splice,
                    slots: Arc::new(Semaphore::new(
                        usize::try_from(maxconn).unwrap_or(usize::MAX),
                    )),
                    maxconn,
                    tls: f.tls.as_ref().and_then(|files| {
                        crate::proxy::tls_server::server_config(files)
                            .map_err(
                                |e| tracing::error!(frontend = %name, error = %e, "TLS disabled"),
                            )
                            .ok()
                    }),
                };
                (name.clone(), Arc::new(fe))
            })
            .collect();
        Self {
            config,
            frontends,
            backends,
            events,
            superseded: watch::channel(false).0,
            retire: watch::channel(false).0,
        }
    }

    /// Finds `backend/server`.
    pub fn server(&self, key: &str) -> Option<(&Arc<BackendRt>, &Arc<ServerRt>)> {
        let (b, s) = key.split_once('/')?;
        let backend = self.backends.get(b)?;
        Some((backend, backend.server(s)?))
    }

    /// All servers of all backends, in order.
    pub fn all_servers(&self) -> impl Iterator<Item = &Arc<ServerRt>> {
        self.backends.values().flat_map(|b| b.servers.iter())
    }
}
