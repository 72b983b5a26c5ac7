//! `lbd run`: load the config, bind every listener, start accept loops and
//! health checks, then wait for signals.
//!
//! ```text
//!  config files --load--> Runtime --watch--> accept loops (one per address)
//!                            |                 `-> connection tasks
//!                            `--> health-check tasks (one per server)
//!  SIGTERM/SIGINT: stop accepting, wait for connections up to stop_deadline
//! ```

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{watch, Semaphore};

use crate::admin::Admin;
use crate::config::{load_files, ConfigErrors};
use crate::proxy::accept::{accept_loop, AcceptCtx};
use crate::proxy::listen::{bind, ListenError};
use crate::runtime::Runtime;

/// Errors that stop `lbd run` from starting.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("config rejected:\n{0}")]
    Config(#[from] ConfigErrors),
    #[error("{0}")]
    Listen(#[from] ListenError),
    #[error("installing signal handler: {0}")]
    Signal(std::io::Error),
}

/// A per-process random seed (std's RandomState is seeded by the OS).
fn seed() -> u64 {
    std::hash::RandomState::new().build_hasher().finish()
}

/// Runs the daemon until SIGTERM or SIGINT.
pub async fn run(paths: Vec<PathBuf>) -> Result<(), DaemonError> {
    let config = load_files(&paths)?;
    let global_max = usize::try_from(config.global.maxconn).unwrap_or(usize::MAX);
    let stop_deadline = config.global.stop_deadline.0;
    let admin = Admin::shared(config.global.state_file.clone());
    let runtime = Arc::new(Runtime::new(config, seed()));
    admin.apply_to(&runtime);

    let mut listeners = BTreeMap::new();
    for fe in runtime.frontends.values() {
        for addr in &fe.config.bind {
            listeners.insert(*addr, bind(*addr)?);
        }
    }
    let mut term = signal(SignalKind::terminate()).map_err(DaemonError::Signal)?;
    let mut int = signal(SignalKind::interrupt()).map_err(DaemonError::Signal)?;

    let (_rt_tx, rt_rx) = watch::channel(runtime.clone());
    let (stop_tx, stop_rx) = watch::channel(false);
    let global_slots = Arc::new(Semaphore::new(global_max));
    let ctx = AcceptCtx {
        runtime: rt_rx,
        global_slots: global_slots.clone(),
        stop: stop_rx.clone(),
    };
    let addrs: Vec<SocketAddr> = listeners.keys().copied().collect();
    for (addr, listener) in listeners {
        tokio::spawn(accept_loop(addr, listener, ctx.clone()));
    }
    crate::check::driver::spawn_all(&runtime, &stop_rx);
    tracing::info!(listeners = ?addrs, "ready");

    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: stopping"),
        _ = int.recv() => tracing::info!("SIGINT: stopping"),
    }
    let _ = stop_tx.send(true);
    // Every connection holds one global slot: all slots back means all done.
    let all = u32::try_from(global_max).unwrap_or(u32::MAX);
    match tokio::time::timeout(stop_deadline, global_slots.acquire_many(all)).await {
        Ok(_) => tracing::info!("all connections closed: stopped"),
        Err(_) => tracing::warn!(
            open = global_max.saturating_sub(global_slots.available_permits()),
            "stop deadline reached: closing remaining connections"
        ),
    }
    Ok(())
}
