//! `lbd run`: load the config, bind every listener, start accept loops and
//! health checks, answer the control socket, reload on SIGHUP, stop on
//! SIGTERM.
//!
//! ```text
//!  config files --load--> Runtime (generation N) --watch--> accept loops (one per address)
//!                            |                                 `-> connection tasks
//!                            +--> check tasks (superseded)
//!  reload: load+validate --> Runtime N+1 (state carried by name) --> watch
//!          N: checks stop now; its connections close at reload_deadline (retire)
//!  SIGTERM: stop accepting, wait for connections up to stop_deadline
//! ```

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{broadcast, watch, Semaphore};

use crate::admin::Admin;
use crate::config::{load_files, ConfigErrors};
use crate::proxy::accept::{accept_loop, AcceptCtx};
use crate::proxy::listen::{bind, ListenError};
use crate::runtime::{Event, Listeners, Runtime, EVENT_BACKLOG};
use crate::vrrp::service::Service;
use crate::vrrp::status::VrrpStatus;

/// Errors that stop `lbd run` from starting, or a reload from applying.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("config rejected:\n{0}")]
    Config(#[from] ConfigErrors),
    #[error("starting VRRP: {0}")]
    Vrrp(#[from] crate::vrrp::driver::DriverError),
    #[error("{0}")]
    Listen(#[from] ListenError),
    #[error("installing signal handler: {0}")]
    Signal(std::io::Error),
    #[error("{0}")]
    Stats(#[from] crate::stats::StatsError),
    #[error("{0}")]
    Console(#[from] crate::console::ConsoleError),
    #[error("{0}")]
    ConsoleTls(#[from] crate::console::tls::ConsoleTlsError),
    #[error("stats and console auth: {0}")]
    Auth(#[from] crate::web::auth::AuthError),
    #[error("control socket: {0}")]
    Control(#[from] crate::control::server::ControlError),
}

/// A per-process random seed (std's RandomState is seeded by the OS).
fn seed() -> u64 {
    std::hash::RandomState::new().build_hasher().finish()
}

/// The running daemon: what the control socket and stats page act on.
pub struct Daemon {
    pub paths: Vec<PathBuf>,
    pub admin: Arc<Admin>,
    pub events: broadcast::Sender<Event>,
    pub started: Instant,
    pub reloads: AtomicU64,
    /// Which frontends are accepting (VRRP's `track_frontend`).
    pub listeners: Arc<Listeners>,
    /// VRRP instances' last states (`show vrrp`).
    pub vrrp_status: Arc<VrrpStatus>,
    runtime_tx: watch::Sender<Arc<Runtime>>,
    global_slots: Arc<Semaphore>,
    active: Arc<AtomicU32>,
    stop_rx: watch::Receiver<bool>,
    bound: Mutex<BTreeMap<SocketAddr, ()>>,
    reload_lock: tokio::sync::Mutex<()>,
    /// VRRP instances, brought in line with the config on reload.
    vrrp: tokio::sync::Mutex<Option<Service>>,
    /// The console's certificate, when it runs: replaced at reload.
    console_tls: Mutex<Option<crate::console::tls::TlsHandle>>,
}

impl Daemon {
    /// The current generation.
    pub fn runtime(&self) -> Arc<Runtime> {
        self.runtime_tx.borrow().clone()
    }

    /// Follows generation changes (VRRP tracking).
    pub fn watch_runtime(&self) -> watch::Receiver<Arc<Runtime>> {
        self.runtime_tx.subscribe()
    }

    /// Open client connections across all generations.
    pub fn current_connections(&self) -> u32 {
        self.active.load(Ordering::Relaxed)
    }

    fn accept_ctx(&self) -> AcceptCtx {
        AcceptCtx {
            runtime: self.runtime_tx.subscribe(),
            global_slots: self.global_slots.clone(),
            active: self.active.clone(),
            stop: self.stop_rx.clone(),
            listeners: self.listeners.clone(),
        }
    }

    /// Binds addresses of `rt` not bound yet and starts their accept loops.
    fn bind_new(&self, rt: &Runtime) -> Result<(), ListenError> {
        let wanted: Vec<SocketAddr> = rt
            .frontends
            .values()
            .flat_map(|f| f.config.bind.clone())
            .collect();
        let mut bound = self.bound.lock().map_err(|_| ListenError::Socket {
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
            source: std::io::Error::other("listener registry poisoned"),
        })?;
        // Addresses dropped from the config: their loops exit on the swap.
        bound.retain(|a, ()| wanted.contains(a));
        let mut fresh = Vec::new();
        for addr in wanted {
            if !bound.contains_key(&addr) {
                fresh.push((addr, bind(addr)?));
            }
        }
        for (addr, listener) in fresh {
            bound.insert(addr, ());
            tokio::spawn(accept_loop(addr, listener, self.accept_ctx()));
        }
        Ok(())
    }

    /// Checks the config files again and, if valid, swaps in a new
    /// generation. On error the running generation stays untouched.
    pub async fn reload(&self) -> Result<String, DaemonError> {
        let _one_at_a_time = self.reload_lock.lock().await;
        let result = self.try_reload();
        let (ok, message) = match &result {
            Ok(m) => (true, m.clone()),
            Err(e) => (false, e.to_string()),
        };
        if ok {
            tracing::info!(%message, "reload applied");
        } else {
            tracing::error!(error = %message, "reload rejected: still serving the previous config");
        }
        if ok {
            if let Some(vrrp) = self.vrrp.lock().await.as_mut() {
                vrrp.reload(self).await;
            }
        }
        let _ = self.events.send(Event::Reload { ok, message });
        result
    }

    fn try_reload(&self) -> Result<String, DaemonError> {
        let config = load_files(&self.paths)?;
        let console_tls = self.console_certificate(&config)?;
        let old = self.runtime();
        let deadline = config.global.reload_deadline.0;
        let next = Arc::new(Runtime::next(
            config,
            seed(),
            Some(&old),
            self.events.clone(),
        ));
        self.admin.apply_to(&next);
        self.bind_new(&next)?;
        crate::resolve::spawn_all(&next);
        crate::check::driver::spawn_all(&next);
        let _ = old.superseded.send(true);
        self.runtime_tx.send_replace(next);
        if let Some((handle, tls)) = console_tls {
            handle.replace(tls);
        }
        self.reloads.fetch_add(1, Ordering::Relaxed);
        // Old connections (long Horizon tunnels) may finish up to the deadline.
        tokio::spawn(async move {
            tokio::time::sleep(deadline).await;
            let _ = old.retire.send(true);
        });
        Ok(format!(
            "new config applied; old connections may run up to {}s",
            deadline.as_secs()
        ))
    }
}

impl Daemon {
    /// The console's certificate of a new config, read before the swap so
    /// a bad one rejects the reload. The listener itself starts only with
    /// lbd: a `[console]` added or moved by a reload waits for a restart.
    #[allow(clippy::type_complexity)]
    fn console_certificate(
        &self,
        config: &crate::config::Config,
    ) -> Result<Option<(crate::console::tls::TlsHandle, Arc<rustls::ServerConfig>)>, DaemonError>
    {
        let Some(console) = &config.console else {
            return Ok(None);
        };
        let running = self.console_tls.lock().ok().and_then(|h| h.clone());
        let Some(handle) = running else {
            tracing::warn!("[console] was added by a reload: restart lbd to start it");
            return Ok(None);
        };
        let old_bind = self.runtime().config.console.as_ref().map(|c| c.bind);
        if old_bind.is_some_and(|b| b != console.bind) {
            tracing::warn!(bind = %console.bind, "console.bind is taken at start: restart lbd to move it");
        }
        Ok(Some((handle, crate::console::tls::load(console)?)))
    }
}

/// Runs the daemon until SIGTERM or SIGINT.
pub async fn run(paths: Vec<PathBuf>) -> Result<(), DaemonError> {
    let config = load_files(&paths)?;
    for w in crate::config::validate::warnings(&config) {
        tracing::warn!(key = %w.key.join("."), "config: {}", w.message);
    }
    match crate::rlimit::raise_nofile() {
        Ok(n) if n < u64::from(config.global.maxconn) * 2 => {
            tracing::warn!(
                open_files = n,
                maxconn = config.global.maxconn,
                "open-file limit below 2 x maxconn"
            );
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "could not raise the open-file limit"),
    }
    let global_max = config.global.maxconn;
    let stop_deadline = config.global.stop_deadline.0;
    let socket_path = config.global.control_socket.clone();
    let admin = Admin::shared(config.global.state_file.clone());
    let events = broadcast::channel(EVENT_BACKLOG).0;
    let runtime = Arc::new(Runtime::next(config, seed(), None, events.clone()));
    admin.apply_to(&runtime);
    let listeners = Arc::new(Listeners::new(events.clone()));
    admin.apply_frontends(&runtime, &listeners);

    let mut term = signal(SignalKind::terminate()).map_err(DaemonError::Signal)?;
    let mut int = signal(SignalKind::interrupt()).map_err(DaemonError::Signal)?;
    let mut hup = signal(SignalKind::hangup()).map_err(DaemonError::Signal)?;

    let (stop_tx, stop_rx) = watch::channel(false);
    let vrrp_status = Arc::new(VrrpStatus::default());
    let mut vrrp_events = events.subscribe();
    let status = vrrp_status.clone();
    tokio::spawn(async move {
        loop {
            match vrrp_events.recv().await {
                Ok(event) => status.on_event(&event),
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => break,
            }
        }
    });
    let daemon = Arc::new(Daemon {
        paths,
        admin,
        events,
        started: Instant::now(),
        reloads: AtomicU64::new(0),
        listeners: listeners.clone(),
        vrrp_status: vrrp_status.clone(),
        runtime_tx: watch::channel(runtime.clone()).0,
        global_slots: Arc::new(Semaphore::new(
            usize::try_from(global_max).unwrap_or(usize::MAX),
        )),
        active: Arc::default(),
        stop_rx,
        bound: Mutex::new(BTreeMap::new()),
        reload_lock: tokio::sync::Mutex::new(()),
        vrrp: tokio::sync::Mutex::new(None),
        console_tls: Mutex::new(None),
    });
    daemon.bind_new(&runtime)?;
    // One password gate for the stats page and the console.
    let auth = Arc::new(crate::web::auth::Auth::new()?);
    let _control = crate::control::server::start(&socket_path, daemon.clone())?;
    if let Some(stats) = &runtime.config.stats {
        crate::stats::start(stats.bind, daemon.clone(), auth.clone())?;
    }
    if let Some(console) = &runtime.config.console {
        let tls = crate::console::start(console, daemon.clone(), auth.clone())?;
        if let Ok(mut slot) = daemon.console_tls.lock() {
            *slot = Some(tls);
        }
    }
    crate::resolve::spawn_all(&runtime);
    crate::check::driver::spawn_all(&runtime);
    *daemon.vrrp.lock().await = Some(Service::start(&daemon)?);
    let addrs: Vec<SocketAddr> = runtime
        .frontends
        .values()
        .flat_map(|f| f.config.bind.clone())
        .collect();
    tracing::info!(listeners = ?addrs, control = %socket_path.display(), "ready");

    loop {
        tokio::select! {
            _ = term.recv() => { tracing::info!("SIGTERM: stopping"); break; }
            _ = int.recv() => { tracing::info!("SIGINT: stopping"); break; }
            _ = hup.recv() => {
                tracing::info!("SIGHUP: reloading");
                let _ = daemon.reload().await;
            }
        }
    }
    // VRRP first: priority 0 out and VIPs gone, so a backup takes over
    // after skew time while connections here drain.
    let vrrp = daemon.vrrp.lock().await.take();
    if let Some(vrrp) = vrrp {
        vrrp.stop().await;
    }
    let _ = stop_tx.send(true);
    let _ = daemon.runtime().superseded.send(true);
    // Every connection holds one global slot: all slots back means all done.
    match tokio::time::timeout(stop_deadline, daemon.global_slots.acquire_many(global_max)).await {
        Ok(_) => tracing::info!("all connections closed: stopped"),
        Err(_) => tracing::warn!(
            open = daemon.current_connections(),
            "stop deadline reached: closing remaining connections"
        ),
    }
    let _ = std::fs::remove_file(&socket_path);
    Ok(())
}
