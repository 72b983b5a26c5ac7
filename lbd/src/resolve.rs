//! Servers given by name: resolved by lbd with hickory (reads
//! `global.resolv_conf`, never glibc NSS, so it works in the static
//! appliance binary). A name that does not resolve does not stop startup:
//! the server shows UNRESOLVED, takes no traffic, and is retried. A server
//! that resolved once keeps its address through later DNS failures.
//!
//! ```text
//!  one task per named server (per config generation):
//!    lookup_ip(name) --ok--> ServerRt.set_resolved(ip:port), wait RESOLVED_EVERY
//!                    --err-> keep the last address, wait RETRY_EVERY
//! ```

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::{Resolver, TokioResolver};

use crate::runtime::{BackendRt, Runtime, ServerRt};

/// Re-resolve interval after a success (addresses of backends change rarely).
const RESOLVED_EVERY: Duration = Duration::from_secs(30);
/// Retry interval while a name does not resolve.
const RETRY_EVERY: Duration = Duration::from_secs(5);

/// Errors setting up the resolver.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("reading {}: {source}", path.display())]
    Read {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("resolver config from {}: {message}", path.display())]
    Config {
        path: std::path::PathBuf,
        message: String,
    },
}

/// A resolver configured from a resolv.conf file.
pub fn resolver(resolv_conf: &Path) -> Result<TokioResolver, ResolveError> {
    let data = std::fs::read(resolv_conf).map_err(|source| ResolveError::Read {
        path: resolv_conf.to_path_buf(),
        source,
    })?;
    let config_err = |message: String| ResolveError::Config {
        path: resolv_conf.to_path_buf(),
        message,
    };
    let (config, options) = hickory_resolver::system_conf::parse_resolv_conf(data)
        .map_err(|e| config_err(e.to_string()))?;
    Resolver::builder_with_config(config, TokioRuntimeProvider::default())
        .with_options(options)
        .build()
        .map_err(|e| config_err(e.to_string()))
}

/// Starts a resolve task for every server given by name in `rt`.
pub fn spawn_all(rt: &Arc<Runtime>) {
    let named: Vec<(Arc<BackendRt>, Arc<ServerRt>)> = rt
        .backends
        .values()
        .flat_map(|b| b.servers.iter().map(move |s| (b.clone(), s.clone())))
        .filter(|(_, s)| s.address.host().is_some())
        .collect();
    if named.is_empty() {
        return;
    }
    let resolver = match resolver(&rt.config.global.resolv_conf) {
        Ok(r) => Arc::new(r),
        Err(e) => {
            tracing::error!(error = %e, "servers given by name stay unresolved until a reload");
            for (_, s) in &named {
                s.set_last_check(format!("unresolved: {e}"));
            }
            return;
        }
    };
    for (backend, server) in named {
        tokio::spawn(resolve_loop(
            resolver.clone(),
            backend,
            server,
            rt.superseded.subscribe(),
        ));
    }
}

async fn resolve_loop(
    resolver: Arc<TokioResolver>,
    backend: Arc<BackendRt>,
    server: Arc<ServerRt>,
    mut superseded: tokio::sync::watch::Receiver<bool>,
) {
    let (Some(host), port) = (
        server.address.host().map(str::to_string),
        server.address.port(),
    ) else {
        return;
    };
    // Fully qualified: no search-domain guessing for configured names.
    let fqdn = if host.ends_with('.') {
        host.clone()
    } else {
        format!("{host}.")
    };
    let mut failures: u32 = 0;
    loop {
        let wait = match resolver.lookup_ip(fqdn.as_str()).await {
            Ok(lookup) => {
                let ips: Vec<_> = lookup.iter().collect();
                let ip = ips.iter().find(|ip| ip.is_ipv4()).or(ips.first()).copied();
                match ip {
                    Some(ip) => {
                        let new = SocketAddr::new(ip, port);
                        if server.addr() != Some(new) {
                            tracing::info!(server = %server.key(), name = %host, address = %new, "server resolved");
                            server.set_resolved(Some(new));
                            backend.wake_queue();
                        }
                        failures = 0;
                        RESOLVED_EVERY
                    }
                    None => {
                        failures += 1;
                        RETRY_EVERY
                    }
                }
            }
            Err(e) => {
                failures += 1;
                // Throttled: the first failure, then every 12th (once a minute).
                if failures % 12 == 1 {
                    tracing::warn!(server = %server.key(), name = %host, error = %e, kept = ?server.addr(), "name does not resolve; retrying");
                }
                if server.addr().is_none() {
                    server.set_last_check(format!("unresolved: {e}"));
                }
                RETRY_EVERY
            }
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            r = superseded.wait_for(|v| *v) => { let _ = r.is_ok(); return; }
        }
    }
}
