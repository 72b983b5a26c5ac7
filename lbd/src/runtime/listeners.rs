//! Whether each frontend is accepting connections, across config
//! generations: what `track_frontend` in VRRP follows, what `show stat`
//! and the events stream report.
//!
//! A frontend is up when it is not disabled by an operator and every one
//! of its bind addresses has a running accept loop that is not failing.
//! The accept loops report here; an operator's `disable frontend NAME`
//! pauses them (clients wait in the kernel backlog, as with HAProxy's
//! `disable frontend`) and, with tracking, moves the VIP to the peer.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Mutex;

use tokio::sync::{broadcast, watch};

use super::Event;

/// What one bind address is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddrState {
    Accepting,
    /// Accept has kept failing (EMFILE and friends).
    Failing(String),
}

/// Listener states of the whole daemon.
#[derive(Debug)]
pub struct Listeners {
    addrs: Mutex<BTreeMap<SocketAddr, (String, AddrState)>>,
    disabled: watch::Sender<BTreeSet<String>>,
    events: broadcast::Sender<Event>,
}

impl Listeners {
    pub fn new(events: broadcast::Sender<Event>) -> Self {
        Self {
            addrs: Mutex::default(),
            disabled: watch::channel(BTreeSet::new()).0,
            events,
        }
    }

    /// Records what `addr`'s accept loop (serving `frontend`) is doing;
    /// a change is announced on the events stream.
    pub fn report(&self, addr: SocketAddr, frontend: &str, state: AddrState) {
        let Ok(mut addrs) = self.addrs.lock() else {
            return;
        };
        let entry = (frontend.to_string(), state.clone());
        if addrs.get(&addr) == Some(&entry) {
            return;
        }
        addrs.insert(addr, entry);
        drop(addrs);
        let (accepting, reason) = match state {
            AddrState::Accepting => (true, format!("accepting on {addr}")),
            AddrState::Failing(why) => (false, format!("accept failing on {addr}: {why}")),
        };
        self.announce(frontend, accepting, reason);
    }

    /// `addr`'s accept loop has ended (address dropped, or stopping).
    pub fn closed(&self, addr: SocketAddr) {
        let removed = self.addrs.lock().ok().and_then(|mut a| a.remove(&addr));
        if let Some((frontend, _)) = removed {
            self.announce(&frontend, false, format!("listener on {addr} closed"));
        }
    }

    /// Disables or enables `frontend`; returns whether that changed it.
    pub fn set_disabled(&self, frontend: &str, disabled: bool) -> bool {
        let changed = self.disabled.send_if_modified(|set| {
            if disabled {
                set.insert(frontend.to_string())
            } else {
                set.remove(frontend)
            }
        });
        if changed {
            let reason = if disabled {
                "disabled by an operator"
            } else {
                "enabled by an operator"
            };
            self.announce(frontend, !disabled, reason.to_string());
        }
        changed
    }

    pub fn is_disabled(&self, frontend: &str) -> bool {
        self.disabled.borrow().contains(frontend)
    }

    /// The disabled set, for accept loops to wait on.
    pub fn watch_disabled(&self) -> watch::Receiver<BTreeSet<String>> {
        self.disabled.subscribe()
    }

    /// True when `frontend` is enabled and every address in `bind` is
    /// accepting.
    pub fn is_up(&self, frontend: &str, bind: &[SocketAddr]) -> bool {
        if self.is_disabled(frontend) {
            return false;
        }
        let Ok(addrs) = self.addrs.lock() else {
            return false;
        };
        bind.iter().all(|a| {
            addrs
                .get(a)
                .is_some_and(|(_, s)| *s == AddrState::Accepting)
        })
    }

    fn announce(&self, frontend: &str, accepting: bool, reason: String) {
        tracing::info!(frontend, accepting, %reason, "frontend listener");
        let _ = self.events.send(Event::Frontend {
            frontend: frontend.to_string(),
            accepting,
            reason,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn up_needs_every_address_accepting_and_no_operator_disable() {
        let (tx, mut rx) = broadcast::channel(16);
        let l = Listeners::new(tx);
        let a: SocketAddr = "127.0.0.1:1".parse().expect("addr");
        let b: SocketAddr = "127.0.0.1:2".parse().expect("addr");
        assert!(!l.is_up("web", &[a, b]), "nothing reported yet");
        l.report(a, "web", AddrState::Accepting);
        assert!(!l.is_up("web", &[a, b]), "b not accepting yet");
        l.report(b, "web", AddrState::Accepting);
        assert!(l.is_up("web", &[a, b]));
        l.report(b, "web", AddrState::Failing("too many open files".into()));
        assert!(!l.is_up("web", &[a, b]));
        l.report(b, "web", AddrState::Accepting);
        assert!(l.set_disabled("web", true));
        assert!(!l.set_disabled("web", true), "no change the second time");
        assert!(!l.is_up("web", &[a, b]));
        assert!(l.set_disabled("web", false));
        assert!(l.is_up("web", &[a, b]));
        l.closed(a);
        assert!(!l.is_up("web", &[a, b]));

        // Each change once on the stream, none for repeats.
        let mut seen = Vec::new();
        while let Ok(Event::Frontend { accepting, .. }) = rx.try_recv() {
            seen.push(accepting);
        }
        assert_eq!(seen, [true, true, false, true, false, true, false]);
    }
}
