//! The last hours of the node in memory, for the web console's charts: one
//! point per backend every [`STEP`] (connections, bytes and connect errors
//! per second, open connections, servers up), each server's state changes,
//! and VRRP state changes to mark on the time axis. Nothing is written to
//! disk: a restart starts a fresh history, as HAProxy's counters do.
//!
//! [`History::record`] is pure (a snapshot and a time in, points out), so
//! the rates are tested without a clock; [`start`] samples the running
//! daemon every [`STEP`] on a task of its own.

mod rates;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

use crate::report::Stat;
use crate::vrrp::status::VrrpRow;

pub use rates::Counters;

/// Time between two points.
pub const STEP: Duration = Duration::from_secs(10);
/// Points kept per backend: six hours at [`STEP`].
pub const KEEP: usize = 6 * 60 * 6;
/// State changes kept per server and VRRP marks kept in all: enough for a
/// flapping server without growing without bound.
pub const KEEP_CHANGES: usize = 512;

/// One backend at one time. Rates are per second over the step before it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Point {
    /// Unix seconds.
    pub t: u64,
    pub connections_per_s: f64,
    pub bytes_in_per_s: f64,
    pub bytes_out_per_s: f64,
    pub connect_errors_per_s: f64,
    /// Open connections to the backend's servers.
    pub active: u32,
    pub servers_up: u32,
    pub servers: u32,
}

/// A server's state from time `t` (UP, DOWN, DRAIN or MAINT).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub t: u64,
    pub status: String,
}

/// A VRRP state change seen between two samples.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mark {
    pub t: u64,
    pub instance: String,
    pub state: String,
    pub reason: String,
}

#[derive(Debug, Default)]
struct BackendTrack {
    points: VecDeque<Point>,
    last: Option<(u64, Counters)>,
}

/// The whole history; see the module docs.
#[derive(Debug, Default)]
pub struct History {
    backends: BTreeMap<String, BackendTrack>,
    /// `backend/server` to its changes, oldest first.
    servers: BTreeMap<String, VecDeque<Change>>,
    marks: VecDeque<Mark>,
    /// Each instance's state and transition count at the last sample.
    vrrp_seen: BTreeMap<String, (String, u64)>,
}

/// What the console's `/api/v1/history` returns.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct View {
    pub step_s: u64,
    pub backends: BTreeMap<String, Vec<Point>>,
    pub servers: BTreeMap<String, Vec<Change>>,
    pub vrrp: Vec<Mark>,
}

fn push_bounded<T>(queue: &mut VecDeque<T>, item: T, keep: usize) {
    if queue.len() == keep {
        queue.pop_front();
    }
    queue.push_back(item);
}

impl History {
    /// Takes in the snapshot `stat` and VRRP rows seen at Unix second `t`.
    /// A backend's first sample only sets its baseline (no rate without a
    /// step before it); a sample at or before the last one is ignored, so
    /// a clock stepped backwards cannot make negative time.
    pub fn record(&mut self, t: u64, stat: &Stat, vrrp: &[VrrpRow]) {
        for (backend, now) in Counters::per_backend(stat) {
            let track = self.backends.entry(backend).or_default();
            match track.last {
                Some((then, _)) if t <= then => continue,
                Some((then, before)) => {
                    let point = now.point_since(&before, t, t - then);
                    push_bounded(&mut track.points, point, KEEP);
                }
                None => {}
            }
            track.last = Some((t, now));
        }
        // Backends gone after a reload keep their points until they age
        // out, so a chart does not vanish mid-incident.
        let oldest = t.saturating_sub(STEP.as_secs() * KEEP as u64);
        self.backends
            .retain(|_, track| track.last.is_some_and(|(last, _)| last >= oldest));

        for row in &stat.servers {
            let key = format!("{}/{}", row.backend, row.server);
            let changes = self.servers.entry(key).or_default();
            if changes.back().map(|c| c.status.as_str()) != Some(row.status.as_str()) {
                let change = Change {
                    t,
                    status: row.status.clone(),
                };
                push_bounded(changes, change, KEEP_CHANGES);
            }
            // Changes older than the window go, but the one in force at
            // its left edge stays.
            while changes.len() > 1 && changes[1].t <= oldest {
                changes.pop_front();
            }
        }
        let present: std::collections::BTreeSet<String> = stat
            .servers
            .iter()
            .map(|r| format!("{}/{}", r.backend, r.server))
            .collect();
        self.servers.retain(|name, changes| {
            present.contains(name) || changes.back().is_some_and(|c| c.t >= oldest)
        });

        for row in vrrp {
            let seen = (row.state.clone(), row.transitions);
            let changed = match self.vrrp_seen.get(&row.instance) {
                Some((state, transitions)) => {
                    *state != row.state || *transitions != row.transitions
                }
                // The first sample marks where the history starts only when
                // the instance has already moved (it started before us).
                None => row.transitions > 0,
            };
            if changed {
                let mark = Mark {
                    t,
                    instance: row.instance.clone(),
                    state: row.state.clone(),
                    reason: row.reason.clone(),
                };
                push_bounded(&mut self.marks, mark, KEEP_CHANGES);
            }
            self.vrrp_seen.insert(row.instance.clone(), seen);
        }
    }

    /// Everything newer than `since` (Unix seconds; 0 for all).
    pub fn view(&self, since: u64) -> View {
        View {
            step_s: STEP.as_secs(),
            backends: self
                .backends
                .iter()
                .map(|(name, track)| {
                    let points = track.points.iter().filter(|p| p.t > since).copied();
                    (name.clone(), points.collect())
                })
                .collect(),
            servers: self
                .servers
                .iter()
                .map(|(name, changes)| {
                    // The change in force at `since` stays, so a timeline
                    // can be drawn from its left edge.
                    let first = changes.iter().rposition(|c| c.t <= since).unwrap_or(0);
                    (name.clone(), changes.iter().skip(first).cloned().collect())
                })
                .collect(),
            vrrp: self.marks.iter().filter(|m| m.t > since).cloned().collect(),
        }
    }
}

/// Unix seconds now; 0 if the clock is before 1970 (it never is on a
/// running appliance, and a zero only makes the first samples ignored).
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Samples `daemon` every [`STEP`] into the returned history, on a task
/// of its own (a snapshot is a walk over the servers' atomics: no locks
/// the proxy holds, no I/O).
pub fn start(daemon: Arc<crate::daemon::Daemon>) -> Arc<Mutex<History>> {
    let history = Arc::new(Mutex::new(History::default()));
    let shared = history.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(STEP);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let stat = crate::report::stat(&daemon.runtime(), &daemon.listeners);
            let vrrp = daemon.vrrp_status.rows();
            match shared.lock() {
                Ok(mut h) => h.record(unix_now(), &stat, &vrrp),
                // A panic while recording poisoned it: start over rather
                // than stop the charts for good.
                Err(poisoned) => {
                    let mut h = poisoned.into_inner();
                    *h = History::default();
                }
            }
        }
    });
    history
}
