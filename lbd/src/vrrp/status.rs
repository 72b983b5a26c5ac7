//! The last known state of each VRRP instance, for `show vrrp` on the
//! control socket (the appliance's status screen reads it): kept from the
//! instances' state-change events, so it never asks a driver anything.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::config::Instance;
use super::fsm::State;
use crate::runtime::Event;

/// One row of `show vrrp`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VrrpRow {
    pub instance: String,
    pub interface: String,
    pub vrid: u8,
    /// MASTER, BACKUP, FAULT or INIT.
    pub state: String,
    /// Effective priority at the last change (after tracking).
    pub priority: u8,
    pub configured_priority: u8,
    pub virtual_ips: Vec<String>,
    /// Why the last change happened.
    pub reason: String,
    /// Seconds in this state.
    pub for_s: u64,
    /// State changes since the instance started (or was last reloaded).
    #[serde(default)]
    pub transitions: u64,
}

#[derive(Debug)]
struct Entry {
    row: VrrpRow,
    since: Instant,
}

/// Every instance's state.
#[derive(Debug, Default)]
pub struct VrrpStatus {
    entries: Mutex<BTreeMap<String, Entry>>,
}

fn word(state: State) -> &'static str {
    match state {
        State::Master => "MASTER",
        State::Backup => "BACKUP",
        State::Fault => "FAULT",
        State::Initialize => "INIT",
    }
}

impl VrrpStatus {
    /// An instance (re)started: INIT until its first change.
    pub fn started(&self, name: &str, cfg: &Instance) {
        let row = VrrpRow {
            instance: name.to_string(),
            interface: cfg.interface.clone(),
            vrid: cfg.vrid,
            state: word(State::Initialize).into(),
            priority: cfg.priority,
            configured_priority: cfg.priority,
            virtual_ips: cfg.virtual_ips.iter().map(ToString::to_string).collect(),
            reason: "starting".into(),
            for_s: 0,
            transitions: 0,
        };
        if let Ok(mut e) = self.entries.lock() {
            e.insert(
                name.to_string(),
                Entry {
                    row,
                    since: Instant::now(),
                },
            );
        }
    }

    /// An instance was removed by a reload.
    pub fn removed(&self, name: &str) {
        if let Ok(mut e) = self.entries.lock() {
            e.remove(name);
        }
    }

    /// Takes in a state change from the event stream.
    pub fn on_event(&self, event: &Event) {
        let Event::Vrrp {
            instance,
            to,
            reason,
            priority,
            ..
        } = event
        else {
            return;
        };
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if let Some(entry) = entries.get_mut(instance) {
            entry.row.state = word(*to).into();
            entry.row.priority = *priority;
            entry.row.reason = format!("{reason:?}");
            entry.row.transitions += 1;
            entry.since = Instant::now();
        }
    }

    /// The rows, by instance name.
    pub fn rows(&self) -> Vec<VrrpRow> {
        let Ok(entries) = self.entries.lock() else {
            return Vec::new();
        };
        entries
            .values()
            .map(|e| VrrpRow {
                for_s: e.since.elapsed().as_secs(),
                ..e.row.clone()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vrrp::fsm::Reason;

    #[test]
    fn rows_follow_state_changes_of_known_instances_only() {
        let cfg: Instance = toml::from_str(
            "interface = \"eth0\"\nvrid = 7\npriority = 100\nvirtual_ips = [\"10.0.0.1/24\"]\n",
        )
        .expect("instance");
        let status = VrrpStatus::default();
        status.started("vi", &cfg);
        assert_eq!(status.rows()[0].state, "INIT");
        let change = |instance: &str| Event::Vrrp {
            instance: instance.into(),
            from: State::Backup,
            to: State::Master,
            reason: Reason::MasterDown,
            priority: 90,
        };
        status.on_event(&change("vi"));
        status.on_event(&change("unknown"));
        let rows = status.rows();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].state, "MASTER");
        assert_eq!(rows[0].priority, 90);
        assert_eq!(rows[0].configured_priority, 100);
        assert_eq!(rows[0].virtual_ips, ["10.0.0.1/24"]);
        assert_eq!(rows[0].reason, "MasterDown");
        assert_eq!(rows[0].transitions, 1, "one change of a known instance");
        status.on_event(&change("vi"));
        assert_eq!(status.rows()[0].transitions, 2);
        status.removed("vi");
        assert!(status.rows().is_empty());
    }
}
