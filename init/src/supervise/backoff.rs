//! When to restart a service that exited: quickly at first, then slower
//! up to a cap, and quickly again once it has run well for a while.

use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartPolicy {
    /// Delay before the first restart.
    pub initial: Duration,
    /// Longest delay between restarts.
    pub max: Duration,
    /// A run this long resets the delay to `initial`.
    pub healthy_after: Duration,
    /// This many quick exits in a row is a crash loop, reported loudly.
    pub crash_loop_after: u32,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(30),
            healthy_after: Duration::from_secs(60),
            crash_loop_after: 5,
        }
    }
}

/// Backoff state: pure, the caller passes the clock.
#[derive(Debug, Clone)]
pub struct Backoff {
    policy: RestartPolicy,
    started_at: Option<Instant>,
    /// Exits in a row that came before `healthy_after`.
    quick_exits: u32,
}

/// What to do after an exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartPlan {
    pub delay: Duration,
    /// 1 for the first restart after a healthy run.
    pub attempt: u32,
    pub crash_loop: bool,
}

impl Backoff {
    pub fn new(policy: RestartPolicy) -> Self {
        Self {
            policy,
            started_at: None,
            quick_exits: 0,
        }
    }

    pub fn on_start(&mut self, now: Instant) {
        self.started_at = Some(now);
    }

    /// The service exited at `now`: how long to wait before starting it again.
    pub fn on_exit(&mut self, now: Instant) -> RestartPlan {
        let ran = self
            .started_at
            .take()
            .map(|s| now.saturating_duration_since(s))
            .unwrap_or_default();
        if ran >= self.policy.healthy_after {
            self.quick_exits = 0;
        }
        self.quick_exits = self.quick_exits.saturating_add(1);
        // initial, 2x, 4x, ... capped.
        let factor = 1u32.checked_shl(self.quick_exits - 1).unwrap_or(u32::MAX);
        let delay = self
            .policy
            .initial
            .saturating_mul(factor)
            .min(self.policy.max);
        RestartPlan {
            delay,
            attempt: self.quick_exits,
            crash_loop: self.quick_exits >= self.policy.crash_loop_after,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Input: a service that dies right after each start, six times, then
    /// runs for two minutes and dies again.
    /// Output: delays 100, 200, 400, 800, 1600 ms (crash loop from the 5th),
    /// then back to 100 ms after the healthy run.
    #[test]
    fn quick_exits_back_off_and_a_healthy_run_resets() {
        let mut b = Backoff::new(RestartPolicy::default());
        let t0 = Instant::now();
        let mut now = t0;
        let mut delays = Vec::new();
        let mut loops = Vec::new();
        for _ in 0..5 {
            b.on_start(now);
            now += ms(10);
            let plan = b.on_exit(now);
            delays.push(plan.delay);
            loops.push(plan.crash_loop);
            now += plan.delay;
        }
        assert_eq!(delays, [ms(100), ms(200), ms(400), ms(800), ms(1600)]);
        assert_eq!(loops, [false, false, false, false, true]);

        b.on_start(now);
        now += Duration::from_secs(120);
        let plan = b.on_exit(now);
        assert_eq!(plan.delay, ms(100));
        assert_eq!(plan.attempt, 1);
        assert!(!plan.crash_loop);
    }

    #[test]
    fn delay_is_capped() {
        let mut b = Backoff::new(RestartPolicy::default());
        let now = Instant::now();
        let mut last = Duration::ZERO;
        for _ in 0..40 {
            b.on_start(now);
            last = b.on_exit(now).delay;
        }
        assert_eq!(last, Duration::from_secs(30));
    }
}
