//! All VRRP instances of `lbd run`: started after the listeners, stopped
//! first on SIGTERM so a backup takes over after skew time while this
//! node drains its connections, and brought in line with the config on
//! reload.
//!
//! Per instance: one [`Driver`] task; one tracking task that follows the
//! event stream (health, admin, frontends, reload) and recomputes the
//! penalty from the current runtime; one notify task for the hooks. All
//! of them, and the driver's sockets, live on VRRP's own runtime
//! ([`own_runtime`](super::own_runtime)), never behind proxy work.
//!
//! On reload, an instance whose config is unchanged keeps running
//! untouched; one where only tracking or hooks changed keeps its state
//! and takes the new tracking and hooks at once; any other change (VRID,
//! interface, priority, addresses, timers...) restarts it gracefully
//! (priority 0 sent, VIPs removed, then started again), as does removing
//! or adding one.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

use super::config::Instance;
use super::driver::{Driver, DriverError};
use super::notify;
use super::status::VrrpStatus;
use super::track::{evaluate, Tracking};
use crate::daemon::Daemon;
use crate::runtime::{Event, Listeners, Runtime};

/// What tracking reads: the current runtime and the listener states.
#[derive(Clone)]
struct Sources {
    runtime: watch::Receiver<Arc<Runtime>>,
    listeners: Arc<Listeners>,
    events: broadcast::Sender<Event>,
    status: Arc<VrrpStatus>,
}

impl Sources {
    fn of(daemon: &Daemon) -> Self {
        Self {
            runtime: daemon.watch_runtime(),
            listeners: daemon.listeners.clone(),
            events: daemon.events.clone(),
            status: daemon.vrrp_status.clone(),
        }
    }

    fn evaluate(&self, cfg: &Instance) -> Tracking {
        let rt = self.runtime.borrow().clone();
        evaluate(
            cfg,
            |b| rt.backends.get(b).map(|be| be.usable_servers()),
            |f| {
                rt.frontends
                    .get(f)
                    .is_some_and(|fe| self.listeners.is_up(f, &fe.config.bind))
            },
        )
    }
}

/// One running instance.
struct Running {
    config: watch::Sender<Instance>,
    stop: watch::Sender<bool>,
    driver: JoinHandle<()>,
    notify_done: watch::Sender<bool>,
    notifier: JoinHandle<()>,
}

impl Running {
    /// Opens and spawns on VRRP's own runtime: entering it first makes the
    /// driver's sockets register with that runtime's reactor and
    /// `tokio::spawn` put the tasks there.
    fn start(name: &str, cfg: &Instance, sources: &Sources) -> Result<Self, DriverError> {
        let vrrp = super::own_runtime::handle();
        let _on_vrrp_runtime = vrrp.enter();
        Self::start_here(name, cfg, sources)
    }

    fn start_here(name: &str, cfg: &Instance, sources: &Sources) -> Result<Self, DriverError> {
        // Subscribed before the driver exists, so its first change is seen.
        let notify_events = sources.events.subscribe();
        let driver = Driver::open(name, cfg, sources.events.clone())?;
        sources.status.started(name, cfg);
        let (config, config_rx) = watch::channel(cfg.clone());
        let (stop, stop_rx) = watch::channel(false);
        // Subscribed before the first evaluation, so a change between the
        // two (a listener reporting in) is not lost.
        let track_events = sources.events.subscribe();
        let (track_tx, track_rx) = watch::channel(sources.evaluate(cfg));
        tokio::spawn(track(
            name.to_string(),
            sources.clone(),
            track_events,
            config_rx.clone(),
            track_tx,
            stop_rx.clone(),
        ));
        let (notify_done, done_rx) = watch::channel(false);
        let notifier = tokio::spawn(notify::run(
            name.to_string(),
            config_rx,
            notify_events,
            done_rx,
        ));
        Ok(Self {
            config,
            stop,
            driver: tokio::spawn(driver.run(stop_rx, track_rx)),
            notify_done,
            notifier,
        })
    }

    /// Graceful stop: priority 0 and VIPs removed by the driver, then the
    /// STOP hook.
    async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.driver.await;
        let _ = self.notify_done.send(true);
        let _ = self.notifier.await;
    }
}

/// Follows whatever can change tracking and sends the new value when it
/// differs.
async fn track(
    name: String,
    sources: Sources,
    mut events: broadcast::Receiver<Event>,
    mut config: watch::Receiver<Instance>,
    out: watch::Sender<Tracking>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Ok(Event::Health { .. } | Event::Reload { .. } | Event::Admin { .. }
                    | Event::Frontend { .. })
                | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Ok(_) => continue,
                Err(broadcast::error::RecvError::Closed) => break,
            },
            changed = config.changed() => if changed.is_err() { break },
            _ = stop.changed() => break,
        }
        let now = sources.evaluate(&config.borrow_and_update());
        out.send_if_modified(|t| {
            let changed = *t != now;
            *t = now;
            changed
        });
    }
    tracing::debug!(instance = %name, "vrrp tracking stopped");
}

/// The same instance apart from tracking and hooks, which apply live.
fn same_election(a: &Instance, b: &Instance) -> bool {
    let strip = |i: &Instance| Instance {
        track_backend: BTreeMap::new(),
        track_frontend: BTreeMap::new(),
        notify: super::config::Notify::default(),
        ..i.clone()
    };
    strip(a) == strip(b)
}

/// The running instances.
#[derive(Default)]
pub struct Service {
    running: BTreeMap<String, Running>,
}

impl Service {
    /// Opens every instance and starts them. An instance whose interface
    /// or address is missing waits in FAULT (logged); any other failure
    /// stops startup: an appliance that cannot run VRRP must say so.
    pub fn start(daemon: &Daemon) -> Result<Self, DriverError> {
        let sources = Sources::of(daemon);
        let mut running = BTreeMap::new();
        for (name, cfg) in &daemon.runtime().config.vrrp {
            running.insert(name.clone(), Running::start(name, cfg, &sources)?);
        }
        Ok(Self { running })
    }

    /// Brings the instances in line with the daemon's (new) config. An
    /// instance that cannot start is logged and left out; the rest runs.
    pub async fn reload(&mut self, daemon: &Daemon) {
        let sources = Sources::of(daemon);
        let wanted = daemon.runtime().config.vrrp.clone();
        let names: Vec<String> = self.running.keys().cloned().collect();
        for name in names {
            let keep = wanted
                .get(&name)
                .is_some_and(|w| same_election(&self.running[&name].config.borrow(), w));
            if keep {
                continue;
            }
            if let Some(old) = self.running.remove(&name) {
                let why = if wanted.contains_key(&name) {
                    "changed: restarting it"
                } else {
                    "removed"
                };
                tracing::info!(instance = %name, "vrrp instance {why}");
                old.stop().await;
                sources.status.removed(&name);
            }
        }
        for (name, cfg) in wanted {
            if let Some(run) = self.running.get(&name) {
                run.config.send_if_modified(|c| {
                    let changed = *c != cfg;
                    *c = cfg;
                    changed
                });
                continue;
            }
            match Running::start(&name, &cfg, &sources) {
                Ok(run) => {
                    tracing::info!(instance = %name, "vrrp instance started");
                    self.running.insert(name, run);
                }
                Err(error) => tracing::error!(%error, "vrrp instance not started"),
            }
        }
    }

    /// Stops every instance, side by side (each may wait for its STOP
    /// hook): priority 0 sent and VIPs removed on return.
    pub async fn stop(self) {
        let mut stopping = tokio::task::JoinSet::new();
        for run in self.running.into_values() {
            stopping.spawn(run.stop());
        }
        while stopping.join_next().await.is_some() {}
    }
}
