//! Counters summed per backend, and rates between two of them.

use std::collections::BTreeMap;

use super::Point;
use crate::report::Stat;

/// A backend's counters at one time, summed over its servers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub connections: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub connect_errors: u64,
    pub active: u32,
    pub servers_up: u32,
    pub servers: u32,
}

/// Growth of a counter; a counter that went down was reset (a reload
/// that rebuilt the server), so all of its value is new.
fn growth(now: u64, before: u64) -> u64 {
    if now >= before {
        now - before
    } else {
        now
    }
}

impl Counters {
    /// Every backend of `stat` with its counters, by name.
    pub fn per_backend(stat: &Stat) -> BTreeMap<String, Counters> {
        let mut out: BTreeMap<String, Counters> = stat
            .backends
            .iter()
            .map(|b| (b.backend.clone(), Counters::default()))
            .collect();
        for s in &stat.servers {
            let c = out.entry(s.backend.clone()).or_default();
            c.connections += s.total;
            c.bytes_in += s.bytes_in;
            c.bytes_out += s.bytes_out;
            c.connect_errors += s.connect_errors;
            c.active += s.active;
            c.servers += 1;
            if s.status == "UP" || s.status == "DRAIN" {
                c.servers_up += 1;
            }
        }
        out
    }

    /// The point at `t` for the `dt` seconds since `before`.
    pub fn point_since(&self, before: &Counters, t: u64, dt: u64) -> Point {
        let dt = dt.max(1) as f64;
        let rate = |now: u64, then: u64| growth(now, then) as f64 / dt;
        Point {
            t,
            connections_per_s: rate(self.connections, before.connections),
            bytes_in_per_s: rate(self.bytes_in, before.bytes_in),
            bytes_out_per_s: rate(self.bytes_out, before.bytes_out),
            connect_errors_per_s: rate(self.connect_errors, before.connect_errors),
            active: self.active,
            servers_up: self.servers_up,
            servers: self.servers,
        }
    }
}
