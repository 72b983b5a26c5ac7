//! The boot firewall gate: lbd's listeners stay down until the kernel has
//! the ruleset.
//!
//! ```text
//!   boot: Gate::new(ruleset).poll(now) --load ok--> [StartLbd]
//!                                       --load err--> [Problem], Retrying(until)
//!   loop: poll(now) when due          --load ok--> [Loaded, StartLbd]
//!                                       --load err--> [Problem], twice the wait
//! ```
//! Without the ruleset, every port of the appliance is open and lbd's
//! listeners (stats page, admin API) would face the network unfiltered;
//! starting lbd later costs only a late start. Plain data: the caller
//! passes the clock and the loader (the real one is [`super::apply`]).

use std::time::{Duration, Instant};

use super::model::Ruleset;
use super::FirewallError;

/// Wait before the first retry; doubled after each failure up to
/// [`RETRY_MAX`]. A failure at boot is usually a module that loaded late
/// or a netlink buffer shortage, both gone a second later.
pub const RETRY_INITIAL: Duration = Duration::from_secs(1);
/// Longest wait between retries: the console gets one line per attempt,
/// so this also throttles the error lines.
pub const RETRY_MAX: Duration = Duration::from_secs(30);

/// Where the gate stands.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Not tried yet.
    Untried,
    /// Failed `attempts` times; try again at `until`.
    Retrying { until: Instant, attempts: u32 },
    /// In the kernel; lbd may run.
    Loaded,
}

/// What the caller does after a [`Gate::poll`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateAction {
    /// The ruleset is in the kernel after `attempts` tries (1: at once).
    Loaded { attempts: u32 },
    /// Start lbd now: the firewall is up. Given once.
    StartLbd,
    /// The ruleset did not load: show `error` on the console and the status
    /// screen; lbd stays down until a later try succeeds.
    Problem {
        error: String,
        attempts: u32,
        retry_in: Duration,
    },
}

/// Holds lbd back until the boot ruleset is loaded.
#[derive(Debug, Clone)]
pub struct Gate {
    ruleset: Ruleset,
    state: State,
}

impl Gate {
    /// A gate for `ruleset`, not tried yet.
    pub fn new(ruleset: Ruleset) -> Self {
        Self {
            ruleset,
            state: State::Untried,
        }
    }

    /// The ruleset this gate loads.
    pub fn ruleset(&self) -> &Ruleset {
        &self.ruleset
    }

    pub fn is_loaded(&self) -> bool {
        self.state == State::Loaded
    }

    /// When the loop must wake for the next try; `None` once loaded.
    pub fn next_deadline(&self) -> Option<Instant> {
        match self.state {
            State::Retrying { until, .. } => Some(until),
            State::Untried | State::Loaded => None,
        }
    }

    /// Tries the load when it is due (at once when untried): returns what
    /// to do, nothing when not due or already loaded.
    pub fn poll(
        &mut self,
        now: Instant,
        load: &mut dyn FnMut(&Ruleset) -> Result<(), FirewallError>,
    ) -> Vec<GateAction> {
        let attempts = match self.state {
            State::Loaded => return Vec::new(),
            State::Retrying { until, .. } if now < until => return Vec::new(),
            State::Retrying { attempts, .. } => attempts + 1,
            State::Untried => 1,
        };
        match load(&self.ruleset) {
            Ok(()) => {
                self.state = State::Loaded;
                vec![GateAction::Loaded { attempts }, GateAction::StartLbd]
            }
            Err(e) => {
                let retry_in = retry_delay(attempts);
                self.state = State::Retrying {
                    until: now + retry_in,
                    attempts,
                };
                vec![GateAction::Problem {
                    error: e.to_string(),
                    attempts,
                    retry_in,
                }]
            }
        }
    }
}

/// The wait after the `failures`-th failure: 1 s, 2 s, 4 s, ... capped.
fn retry_delay(failures: u32) -> Duration {
    let factor = 1u32
        .checked_shl(failures.saturating_sub(1))
        .unwrap_or(u32::MAX);
    RETRY_INITIAL.saturating_mul(factor).min(RETRY_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::firewall::{build_ruleset, FirewallInput};
    use std::io;

    fn ruleset() -> Ruleset {
        build_ruleset(&FirewallInput::from_settings(&settings::Settings::default()))
    }

    /// A loader that fails its first `failures` calls, counting calls.
    fn flaky(
        failures: u32,
        calls: &mut u32,
    ) -> impl FnMut(&Ruleset) -> Result<(), FirewallError> + '_ {
        move |_| {
            *calls += 1;
            if *calls <= failures {
                Err(FirewallError::Socket {
                    source: io::Error::from_raw_os_error(libc::EPROTONOSUPPORT),
                })
            } else {
                Ok(())
            }
        }
    }

    fn starts(actions: &[GateAction]) -> usize {
        actions
            .iter()
            .filter(|a| **a == GateAction::StartLbd)
            .count()
    }

    /// Input: a loader that fails three times, polled at boot and then at
    /// every deadline (and once early, between two deadlines).
    /// Output: a problem naming the error after each failure, waits of
    /// 1, 2 and 4 s, no StartLbd until the fourth try loads, then
    /// Loaded { attempts: 4 } and StartLbd exactly once; nothing after.
    #[test]
    fn lbd_waits_until_the_ruleset_loads() {
        let mut calls = 0;
        let mut load = flaky(3, &mut calls);
        let mut gate = Gate::new(ruleset());
        let t0 = Instant::now();
        let mut now = t0;
        let mut waits = Vec::new();
        for attempt in 1..=3 {
            let actions = gate.poll(now, &mut load);
            assert_eq!(starts(&actions), 0, "attempt {attempt}: {actions:?}");
            match actions.as_slice() {
                [GateAction::Problem {
                    error,
                    attempts,
                    retry_in,
                }] => {
                    assert_eq!(*attempts, attempt);
                    assert!(error.contains("nf_tables netlink socket"), "{error}");
                    waits.push(*retry_in);
                }
                other => panic!("attempt {attempt}: {other:?}"),
            }
            assert!(!gate.is_loaded());
            let due = gate.next_deadline().expect("a retry is scheduled");
            // Not due yet: no load, no action.
            assert!(gate
                .poll(due - Duration::from_millis(1), &mut load)
                .is_empty());
            now = due;
        }
        assert_eq!(
            waits,
            [
                Duration::from_secs(1),
                Duration::from_secs(2),
                Duration::from_secs(4)
            ]
        );
        let actions = gate.poll(now, &mut load);
        assert_eq!(
            actions,
            [GateAction::Loaded { attempts: 4 }, GateAction::StartLbd]
        );
        assert!(gate.is_loaded());
        assert_eq!(gate.next_deadline(), None);
        assert!(gate.poll(now + RETRY_MAX, &mut load).is_empty());
        drop(load);
        assert_eq!(calls, 4, "one load per due poll");
    }

    /// Input: a loader that never works. Output: the wait stops growing
    /// at RETRY_MAX, and lbd never starts.
    #[test]
    fn retries_are_capped_and_never_start_lbd() {
        let mut calls = 0;
        let mut load = flaky(u32::MAX, &mut calls);
        let mut gate = Gate::new(ruleset());
        let mut now = Instant::now();
        let mut last = Duration::ZERO;
        for _ in 0..12 {
            let actions = gate.poll(now, &mut load);
            assert_eq!(starts(&actions), 0);
            if let [GateAction::Problem { retry_in, .. }] = actions.as_slice() {
                last = *retry_in;
            }
            now = gate.next_deadline().expect("retrying");
        }
        assert_eq!(last, RETRY_MAX);
    }
}
