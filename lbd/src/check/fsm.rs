//! Health-check state machine: results in, state changes and the next
//! check's delay out. No sockets, no clock reads: `now` is passed in.
//!
//! Counting (HAProxy's rise/fall):
//! - Up: a failure counts towards `fall`; `fall` failures in a row mark the
//!   server down. A success resets the count.
//! - Down: a success counts towards `rise`; `rise` successes in a row mark
//!   it up. A failure resets the count.
//! - Start: up, but one failure away from down (HAProxy's default initial
//!   state): a restart does not interrupt service, and a dead server is out
//!   after its first check.
//!
//! Interval of the next check:
//! - `fastinter` before the first result and while counting towards rise
//!   or fall;
//! - `inter` while fully up; `downinter` while fully down.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

/// Defaults from LB-VRRP.md (HAProxy's).
pub const DEFAULT_INTER: Duration = Duration::from_secs(2);
pub const DEFAULT_RISE: u32 = 2;
pub const DEFAULT_FALL: u32 = 3;

/// Resolved timing of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timing {
    pub inter: Duration,
    pub fastinter: Duration,
    pub downinter: Duration,
    pub rise: u32,
    pub fall: u32,
    pub timeout: Duration,
}

impl Timing {
    /// From the config table; unset values take HAProxy's defaults
    /// (`fastinter` and `downinter` default to `inter`, timeout to `inter`).
    pub fn from_config(c: &crate::config::Check) -> Self {
        let inter = c.inter.map_or(DEFAULT_INTER, |d| d.0);
        Self {
            inter,
            fastinter: c.fastinter.map_or(inter, |d| d.0),
            downinter: c.downinter.map_or(inter, |d| d.0),
            rise: c.rise.unwrap_or(DEFAULT_RISE).max(1),
            fall: c.fall.unwrap_or(DEFAULT_FALL).max(1),
            timeout: c.timeout.map_or(inter, |d| d.0),
        }
    }
}

/// Operational health.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Health {
    Up,
    Down,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Input {
    /// A check passed.
    Passed { reason: String },
    /// A check failed.
    Failed { reason: String },
    /// The agent said `up` or `down`/`fail`/`stopped`: applied at once.
    Forced { health: Health, reason: String },
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    /// Health changed; `after` is how long the previous state lasted.
    StateChange {
        from: Health,
        to: Health,
        reason: String,
        after: Duration,
    },
    /// Run the next check after this delay.
    NextCheck { after: Duration },
}

/// One server's check state.
#[derive(Debug, Clone)]
pub struct CheckFsm {
    timing: Timing,
    health: Health,
    /// Consecutive results against the current state.
    count: u32,
    first: bool,
    since: Instant,
}

impl CheckFsm {
    pub fn new(timing: Timing, now: Instant) -> Self {
        Self {
            timing,
            health: Health::Up,
            count: timing.fall - 1,
            first: true,
            since: now,
        }
    }

    /// Starts from a known health (carried over a reload).
    pub fn with_health(timing: Timing, now: Instant, health: Health) -> Self {
        Self {
            timing,
            health,
            count: 0,
            first: false,
            since: now,
        }
    }

    pub fn health(&self) -> Health {
        self.health
    }

    /// Delay before the very first check.
    pub fn first_delay(&self) -> Duration {
        self.interval()
    }

    fn interval(&self) -> Duration {
        match (self.first, self.health, self.count) {
            (true, _, _) => self.timing.fastinter,
            (false, _, c) if c > 0 => self.timing.fastinter,
            (false, Health::Up, _) => self.timing.inter,
            (false, Health::Down, _) => self.timing.downinter,
        }
    }

    fn change(&mut self, now: Instant, to: Health, reason: String, out: &mut Vec<Action>) {
        let from = self.health;
        self.health = to;
        self.count = 0;
        out.push(Action::StateChange {
            from,
            to,
            reason,
            after: now.saturating_duration_since(self.since),
        });
        self.since = now;
    }

    /// Feeds one result; returns the state change (if any) and the delay
    /// before the next check.
    pub fn handle(&mut self, now: Instant, input: Input) -> Vec<Action> {
        let mut out = Vec::new();
        self.first = false;
        match (self.health, input) {
            (Health::Up, Input::Passed { .. }) | (Health::Down, Input::Failed { .. }) => {
                self.count = 0;
            }
            (Health::Up, Input::Failed { reason }) => {
                self.count += 1;
                if self.count >= self.timing.fall {
                    self.change(now, Health::Down, reason, &mut out);
                }
            }
            (Health::Down, Input::Passed { reason }) => {
                self.count += 1;
                if self.count >= self.timing.rise {
                    self.change(now, Health::Up, reason, &mut out);
                }
            }
            (current, Input::Forced { health, reason }) => {
                if current == health {
                    self.count = 0;
                } else {
                    self.change(now, health, reason, &mut out);
                }
            }
        }
        out.push(Action::NextCheck {
            after: self.interval(),
        });
        out
    }
}

/// Spreads first checks: server `index` of `count` starts at
/// `index * window / count`, so a backend's checks never fire together.
pub fn spread(index: usize, count: usize, window: Duration) -> Duration {
    if count == 0 {
        return Duration::ZERO;
    }
    let i = u32::try_from(index).unwrap_or(u32::MAX);
    let n = u32::try_from(count).unwrap_or(u32::MAX).max(1);
    window / n * i.min(n)
}
