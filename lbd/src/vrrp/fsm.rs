//! The VRRP state machine of RFC 5798 section 6.4 (and RFC 3768 6.4 for
//! v2), as pure code: `now` and an [`Input`] in, [`Action`]s out. No
//! sockets, no clock reads; the driver owns those and replays expiries of
//! the timers this machine arms.
//!
//! ```text
//!              Startup (priority 255, no fault)
//!   Initialize ----------------------------------------> Master
//!       | Startup                                       ^  |
//!       v            MasterDown timer expired           |  | higher priority advert
//!     Backup -------------------------------------------+  | (or equal, higher address)
//!       ^  <-----------------------------------------------+
//!       |  tracking fault (from Backup or Master)
//!       +-----> Fault ---- fault cleared ----> Backup (or Master if owner)
//!   Shutdown from any state -> Initialize (a master sends priority 0 first)
//! ```
//!
//! Timers (RFC 5798 6.1):
//! `master_down_interval = 3 x master_adver_interval + skew`. v3: `skew = (256 - priority) x master_adver_interval / 256`,
//! with `master_adver_interval` learnt from the master's adverts; v2:
//! `skew = (256 - priority) / 256 s` whatever the interval, which must match
//! ours. Computed in nanoseconds, like Keepalived's microseconds (not the
//! RFC's truncated centiseconds), so lbd and Keepalived time out together.
//! The priority used is the effective one, after tracking.
//!
//! Beyond the RFC, as LB-VRRP.md asks:
//! - a master that hears a lower-priority advert (two masters: a split
//!   brain healing) answers at once and sends a gratuitous ARP burst again
//!   (at most once per `HEAL_ANNOUNCE_GAP`), so the switches learn its MAC
//!   back (Keepalived does not);
//! - a master whose effective priority changes advertises it at once
//!   instead of at the next interval;
//! - `preempt_delay`: a backup that hears a lower-priority master keeps
//!   accepting it for this long, counted from the first such advert, before
//!   letting its master-down timer run out;
//! - Fault: tracking can hold an instance out of the election; a master
//!   entering it sends priority 0 so a backup takes over after skew time.
//! - A backup (with preempt and no `preempt_delay`) that hears its master,
//!   which was at or above it, advertise a priority below its own (the
//!   master's tracked backend or frontend failed) takes over after skew
//!   time, as after a priority-0 advert, instead of waiting out the whole
//!   master-down interval: the master says itself that it is worse now. A
//!   backup that starts and hears a lower master still waits the full
//!   interval (the RFC's case; `preempt_delay` lengthens it).
//! - With exactly one unicast peer (`sole_peer`, a pair) no other backup
//!   can collide, so those two takeovers happen at once: Skew_Time only
//!   orders several backups.

use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::packet::Version;

pub use lbd_config::vrrp::PRIORITY_OWNER;
/// Priority a stopping master advertises (RFC 5798 5.2.4).
pub const PRIORITY_STOP: u8 = 0;
/// A master hearing another master announces again at most this often
/// (a one-way split brain would otherwise mean a burst per advert).
pub const HEAL_ANNOUNCE_GAP: Duration = Duration::from_secs(1);

/// Static parameters of one instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Params {
    pub version: Version,
    /// Configured priority, 1..=255.
    pub priority: u8,
    /// Our own advert interval.
    pub advert_int: Duration,
    pub preempt: bool,
    pub preempt_delay: Duration,
    /// Our source address, which breaks priority ties (higher wins).
    pub primary_addr: IpAddr,
    /// Second gratuitous ARP / NA burst this long after becoming master.
    pub announce_repeat: Option<Duration>,
    /// Then again every this long while master.
    pub announce_refresh: Option<Duration>,
    /// Exactly one unicast peer: takeovers on a priority-0 or a lowered
    /// advert need no skew.
    #[serde(default)]
    pub sole_peer: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum State {
    Initialize,
    Backup,
    Master,
    Fault,
}

/// The timers this machine arms; the driver feeds back their expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Timer {
    /// Master: time to send the next advert.
    Advert,
    /// Backup: the master is presumed down.
    MasterDown,
    /// Master: time for the next gratuitous ARP / NA burst.
    Announce,
}

const TIMERS: [Timer; 3] = [Timer::Advert, Timer::MasterDown, Timer::Announce];

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Input {
    /// The instance starts (RFC "Startup event").
    Startup,
    /// A valid advert for our VRID (the driver already checked TTL,
    /// checksum, peers and auth).
    Advert {
        src: IpAddr,
        priority: u8,
        advert_int: Duration,
    },
    /// A timer armed by [`Action::SetTimer`] fired.
    TimerExpired(Timer),
    /// Graceful stop (RFC "Shutdown event").
    Shutdown,
    /// Tracking changed: total priority to subtract, and whether some
    /// tracked object puts the instance in Fault.
    Tracking { penalty: u32, fault: bool },
}

/// Why the state changed (for logs and the control socket's events).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reason {
    Startup,
    PriorityOwner,
    MasterDown,
    HigherPriority { src: IpAddr, priority: u8 },
    Shutdown,
    Fault,
    FaultCleared,
}

/// What the driver must do, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    SendAdvert {
        priority: u8,
    },
    AddVips,
    RemoveVips,
    /// A burst of gratuitous ARPs (IPv4) / unsolicited NAs (IPv6).
    Announce,
    /// Arm (or re-arm) a timer; feed back `TimerExpired` after `after`.
    SetTimer {
        timer: Timer,
        after: Duration,
    },
    CancelTimer {
        timer: Timer,
    },
    StateChange {
        from: State,
        to: State,
        reason: Reason,
    },
}

/// One VRRP instance's protocol state.
#[derive(Debug, Clone)]
pub struct Fsm {
    params: Params,
    state: State,
    penalty: u32,
    fault: bool,
    /// Learnt from the master's adverts in v3 (RFC 5798 6.4.2).
    master_adver_interval: Duration,
    /// Deadlines of armed timers, indexed like `TIMERS`.
    deadlines: [Option<Instant>; 3],
    /// preempt_delay: until when a lower-priority master is still accepted.
    preempt_at: Option<Instant>,
    /// Last announce sent because another master was heard.
    heal_announced_at: Option<Instant>,
    /// As a backup, the current master's adverts were at or above our
    /// priority: a lower one now means it got worse.
    master_was_above: bool,
}

fn index(timer: Timer) -> usize {
    match timer {
        Timer::Advert => 0,
        Timer::MasterDown => 1,
        Timer::Announce => 2,
    }
}

impl Fsm {
    pub fn new(params: Params) -> Self {
        let master_adver_interval = params.advert_int;
        Self {
            params,
            state: State::Initialize,
            penalty: 0,
            fault: false,
            master_adver_interval,
            deadlines: [None; 3],
            preempt_at: None,
            heal_announced_at: None,
            master_was_above: false,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn params(&self) -> &Params {
        &self.params
    }

    /// Our source address once known (an instance waiting in Fault for
    /// its interface learns it when the interface appears).
    pub fn set_primary_addr(&mut self, addr: IpAddr) {
        self.params.primary_addr = addr;
    }

    /// Priority after tracking: the owner stays 255; others lose the
    /// penalty but stay in 1..=254 (0 would mean "stopping").
    pub fn effective_priority(&self) -> u8 {
        if self.params.priority == PRIORITY_OWNER {
            return PRIORITY_OWNER;
        }
        let lowered = u32::from(self.params.priority).saturating_sub(self.penalty);
        u8::try_from(lowered.clamp(1, 254)).expect("clamped to 1..=254")
    }

    /// Skew_Time (RFC 5798 6.1, RFC 3768 6.1).
    pub fn skew(&self) -> Duration {
        let weight = 256 - u32::from(self.effective_priority());
        match self.params.version {
            Version::V3 => self.master_adver_interval * weight / 256,
            Version::V2 => Duration::from_secs(1) * weight / 256,
        }
    }

    /// How long a backup waits once its master said it stops or got worse.
    fn takeover_wait(&self) -> Duration {
        if self.params.sole_peer {
            Duration::ZERO
        } else {
            self.skew()
        }
    }

    /// Arms the master-down timer to fire after `after`, unless it is
    /// already due sooner.
    fn shorten_master_down(&mut self, now: Instant, after: Duration, out: &mut Vec<Action>) {
        let sooner = self.deadlines[index(Timer::MasterDown)].is_none_or(|at| now + after < at);
        if sooner {
            self.set_timer(now, Timer::MasterDown, after, out);
        }
    }

    /// Master_Down_Interval.
    pub fn master_down_interval(&self) -> Duration {
        self.master_adver_interval * 3 + self.skew()
    }

    pub fn handle(&mut self, now: Instant, input: Input) -> Vec<Action> {
        let mut out = Vec::new();
        match input {
            Input::Startup => self.startup(now, Reason::Startup, &mut out),
            Input::Advert {
                src,
                priority,
                advert_int,
            } => self.advert(now, src, priority, advert_int, &mut out),
            Input::TimerExpired(timer) => {
                if self.take_due(timer, now) {
                    self.expired(now, timer, &mut out);
                }
            }
            Input::Shutdown => self.shutdown(&mut out),
            Input::Tracking { penalty, fault } => self.tracking(now, penalty, fault, &mut out),
        }
        out
    }

    fn set_timer(&mut self, now: Instant, timer: Timer, after: Duration, out: &mut Vec<Action>) {
        self.deadlines[index(timer)] = Some(now + after);
        out.push(Action::SetTimer { timer, after });
    }

    fn cancel_timers(&mut self, out: &mut Vec<Action>) {
        for timer in TIMERS {
            if self.deadlines[index(timer)].take().is_some() {
                out.push(Action::CancelTimer { timer });
            }
        }
    }

    /// An expiry counts only if the timer is armed and due: a late wakeup
    /// for a cancelled or re-armed timer is ignored.
    fn take_due(&mut self, timer: Timer, now: Instant) -> bool {
        let slot = &mut self.deadlines[index(timer)];
        match *slot {
            Some(at) if now >= at => {
                *slot = None;
                true
            }
            _ => false,
        }
    }

    fn change(&mut self, to: State, reason: Reason, out: &mut Vec<Action>) {
        out.push(Action::StateChange {
            from: self.state,
            to,
            reason,
        });
        self.state = to;
    }

    /// Initialize -> Master (owner), Backup or Fault.
    fn startup(&mut self, now: Instant, reason: Reason, out: &mut Vec<Action>) {
        if !matches!(self.state, State::Initialize | State::Fault) {
            return;
        }
        if self.fault {
            if self.state != State::Fault {
                self.change(State::Fault, Reason::Fault, out);
            }
        } else if self.effective_priority() == PRIORITY_OWNER {
            let reason = if reason == Reason::Startup {
                Reason::PriorityOwner
            } else {
                reason
            };
            self.become_master(now, reason, out);
        } else {
            self.become_backup(now, reason, out);
        }
    }

    fn become_master(&mut self, now: Instant, reason: Reason, out: &mut Vec<Action>) {
        self.cancel_timers(out);
        self.preempt_at = None;
        out.push(Action::AddVips);
        out.push(Action::SendAdvert {
            priority: self.effective_priority(),
        });
        out.push(Action::Announce);
        self.set_timer(now, Timer::Advert, self.params.advert_int, out);
        if let Some(after) = self.params.announce_repeat.or(self.params.announce_refresh) {
            self.set_timer(now, Timer::Announce, after, out);
        }
        self.change(State::Master, reason, out);
    }

    fn become_backup(&mut self, now: Instant, reason: Reason, out: &mut Vec<Action>) {
        let was_master = self.state == State::Master;
        self.master_was_above = false;
        self.cancel_timers(out);
        if was_master {
            out.push(Action::RemoveVips);
        }
        self.set_timer(now, Timer::MasterDown, self.master_down_interval(), out);
        self.change(State::Backup, reason, out);
    }

    /// Leaves Master or Backup for `to` (Initialize or Fault); a master
    /// says so with priority 0 first, then drops its addresses.
    fn step_down(&mut self, to: State, reason: Reason, out: &mut Vec<Action>) {
        let was_master = self.state == State::Master;
        self.cancel_timers(out);
        self.preempt_at = None;
        if was_master {
            out.push(Action::SendAdvert {
                priority: PRIORITY_STOP,
            });
            out.push(Action::RemoveVips);
        }
        self.change(to, reason, out);
    }

    fn advert(
        &mut self,
        now: Instant,
        src: IpAddr,
        priority: u8,
        advert_int: Duration,
        out: &mut Vec<Action>,
    ) {
        // RFC 3768 7.1: a v2 interval different from ours is discarded.
        if self.params.version == Version::V2 && advert_int != self.params.advert_int {
            return;
        }
        let local = self.effective_priority();
        match self.state {
            State::Initialize | State::Fault => {}
            State::Backup => {
                if priority == PRIORITY_STOP {
                    self.master_was_above = false;
                    let wait = self.takeover_wait();
                    self.set_timer(now, Timer::MasterDown, wait, out);
                    return;
                }
                let lower = priority < local;
                let accept = if !self.params.preempt || !lower {
                    self.preempt_at = None;
                    self.master_was_above = !lower;
                    true
                } else if self.params.preempt_delay.is_zero() {
                    if self.master_was_above {
                        let wait = self.takeover_wait();
                        self.shorten_master_down(now, wait, out);
                    }
                    false
                } else {
                    now < *self
                        .preempt_at
                        .get_or_insert(now + self.params.preempt_delay)
                };
                if accept {
                    if self.params.version == Version::V3 {
                        self.master_adver_interval = advert_int;
                    }
                    let after = self.master_down_interval();
                    self.set_timer(now, Timer::MasterDown, after, out);
                }
            }
            State::Master => {
                if priority == PRIORITY_STOP {
                    out.push(Action::SendAdvert { priority: local });
                    self.set_timer(now, Timer::Advert, self.params.advert_int, out);
                } else if priority > local || (priority == local && src > self.params.primary_addr)
                {
                    if self.params.version == Version::V3 {
                        self.master_adver_interval = advert_int;
                    }
                    self.become_backup(now, Reason::HigherPriority { src, priority }, out);
                    self.master_was_above = true;
                } else {
                    // Two masters: the other one yields on this advert; tell
                    // the segment where the addresses are again.
                    out.push(Action::SendAdvert { priority: local });
                    self.set_timer(now, Timer::Advert, self.params.advert_int, out);
                    let due = self
                        .heal_announced_at
                        .is_none_or(|at| now >= at + HEAL_ANNOUNCE_GAP);
                    if due {
                        self.heal_announced_at = Some(now);
                        out.push(Action::Announce);
                    }
                }
            }
        }
    }

    fn expired(&mut self, now: Instant, timer: Timer, out: &mut Vec<Action>) {
        match (self.state, timer) {
            (State::Master, Timer::Advert) => {
                out.push(Action::SendAdvert {
                    priority: self.effective_priority(),
                });
                self.set_timer(now, Timer::Advert, self.params.advert_int, out);
            }
            (State::Master, Timer::Announce) => {
                out.push(Action::Announce);
                if let Some(after) = self.params.announce_refresh {
                    self.set_timer(now, Timer::Announce, after, out);
                }
            }
            (State::Backup, Timer::MasterDown) => {
                self.become_master(now, Reason::MasterDown, out);
            }
            _ => {}
        }
    }

    fn shutdown(&mut self, out: &mut Vec<Action>) {
        if self.state != State::Initialize {
            self.step_down(State::Initialize, Reason::Shutdown, out);
        }
        // Back to the configured interval for a later Startup.
        self.master_adver_interval = self.params.advert_int;
    }

    fn tracking(&mut self, now: Instant, penalty: u32, fault: bool, out: &mut Vec<Action>) {
        let before = self.effective_priority();
        self.penalty = penalty;
        self.fault = fault;
        match self.state {
            State::Initialize => {}
            State::Backup | State::Master if fault => {
                self.step_down(State::Fault, Reason::Fault, out);
            }
            State::Fault if !fault => self.startup(now, Reason::FaultCleared, out),
            State::Master if self.effective_priority() != before => {
                out.push(Action::SendAdvert {
                    priority: self.effective_priority(),
                });
                self.set_timer(now, Timer::Advert, self.params.advert_int, out);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
#[path = "fsm_tests.rs"]
mod tests;
