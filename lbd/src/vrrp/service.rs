//! All VRRP instances of `lbd run`: started after the listeners, stopped
//! first on SIGTERM so a backup takes over after skew time while this
//! node drains its connections.
//!
//! Per instance: one [`Driver`] task, and one tracking task that follows
//! the control socket's event stream (health, reload) and recomputes the
//! penalty from the current runtime's usable servers.

use std::sync::Arc;

use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

use super::driver::{Driver, DriverError};
use super::track::{evaluate, Tracking};
use crate::daemon::Daemon;
use crate::runtime::events::Event;

/// The running instances.
pub struct Service {
    stop: watch::Sender<bool>,
    drivers: Vec<JoinHandle<()>>,
}

impl Service {
    /// Opens every instance and starts them. An instance whose interface
    /// or address is missing waits in FAULT (logged); any other failure
    /// stops startup: an appliance that cannot run VRRP must say so.
    pub fn start(daemon: &Arc<Daemon>) -> Result<Self, DriverError> {
        let runtime = daemon.runtime();
        let (stop, stop_rx) = watch::channel(false);
        let mut opened = Vec::new();
        for (name, cfg) in &runtime.config.vrrp {
            opened.push((
                name.clone(),
                cfg.clone(),
                Driver::open(name, cfg, daemon.events.clone())?,
            ));
        }
        let mut drivers = Vec::new();
        for (name, cfg, driver) in opened {
            let usable =
                |d: &Daemon, b: &str| d.runtime().backends.get(b).map(|be| be.usable_servers());
            let initial = evaluate(&cfg, |b| usable(daemon, b));
            let (track_tx, track_rx) = watch::channel(initial);
            let mut events = daemon.events.subscribe();
            let mut stop_track = stop_rx.clone();
            let d = daemon.clone();
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        event = events.recv() => match event {
                            Ok(Event::Health { .. } | Event::Reload { .. } | Event::Admin { .. })
                            | Err(broadcast::error::RecvError::Lagged(_)) => {
                                let now: Tracking = evaluate(&cfg, |b| usable(&d, b));
                                track_tx.send_if_modified(|t| {
                                    let changed = *t != now;
                                    *t = now;
                                    changed
                                });
                            }
                            Ok(_) => {}
                            Err(broadcast::error::RecvError::Closed) => break,
                        },
                        _ = stop_track.changed() => break,
                    }
                }
                tracing::debug!(instance = %name, "vrrp tracking stopped");
            });
            drivers.push(tokio::spawn(driver.run(stop_rx.clone(), track_rx)));
        }
        Ok(Self { stop, drivers })
    }

    /// Stops every instance: priority 0 sent and VIPs removed on return.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.drivers {
            let _ = task.await;
        }
    }
}
