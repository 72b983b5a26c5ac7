//! Events for the control socket's stream (`lbd ctl events`): the
//! appliance's status screen and VRRP tracking (issue 4) follow these.

use serde::{Deserialize, Serialize};

/// One thing that changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A health check moved a server up or down.
    Health {
        server: String,
        up: bool,
        reason: String,
        after_ms: u64,
        usable_left: usize,
    },
    /// An operator or agent changed a server's admin state.
    Admin {
        server: String,
        state: String,
        by: String,
    },
    /// A weight changed.
    Weight {
        server: String,
        weight: u32,
        by: String,
    },
    /// A frontend started or stopped accepting connections.
    Frontend {
        frontend: String,
        accepting: bool,
        reason: String,
    },
    /// A reload was tried.
    Reload { ok: bool, message: String },
    /// A VRRP instance changed state.
    Vrrp {
        instance: String,
        from: crate::vrrp::fsm::State,
        to: crate::vrrp::fsm::State,
        reason: crate::vrrp::fsm::Reason,
        /// Effective priority after the change (tracking included).
        priority: u8,
    },
}
