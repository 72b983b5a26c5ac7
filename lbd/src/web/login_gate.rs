//! Password checks off the proxy's threads.
//!
//! An argon2id verification costs tens of milliseconds of CPU by design.
//! Run inside an async handler it held a runtime worker that also proxies,
//! checks and sends VRRP adverts: about 22 wrong logins a second raised
//! proxied round trips from 2 ms to seconds. So a verification here:
//! - runs on tokio's blocking pool, never on a runtime worker;
//! - waits for one of [`MAX_CONCURRENT`] permits, so a flood of logins
//!   takes at most that many cores' worth of hashing;
//! - costs the same for a user that does not exist (a fixed hash with
//!   lbd's parameters is checked instead), so timing does not tell which
//!   names exist;
//! - after failures from one address, starts only after a delay that
//!   doubles per failure ([`Slowdown`]), spent asleep, holding no thread.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use crate::password::verify_password;

/// Verifications running at once (a core's worth on a 2-vCPU appliance).
pub const MAX_CONCURRENT: usize = 1;
/// A PHC string with `lbd hash-password`'s parameters whose password
/// nobody knows: unknown users are checked against it.
const UNKNOWN_USER_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$2PK8j70hyWgP52udB1a/Yw$z7q3fQpVac/170jziVHF5AB+CPmxkFA0MJt35tkoSmI";

/// The per-address delay policy: plain data, `now` passed in.
#[derive(Debug, Default)]
pub struct Slowdown {
    failures: HashMap<IpAddr, (u32, Instant)>,
}

impl Slowdown {
    /// First delay after one failure; doubles with each further failure.
    pub const FIRST: Duration = Duration::from_millis(250);
    pub const MAX: Duration = Duration::from_secs(8);
    /// Failures older than this are forgotten.
    pub const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);
    /// Addresses remembered at most (a spray from many sources must not
    /// grow memory without bound).
    pub const MAX_SOURCES: usize = 4096;

    /// How long a new attempt from `source` waits before it is checked.
    pub fn delay(&self, source: IpAddr, now: Instant) -> Duration {
        match self.failures.get(&source) {
            Some(&(count, last)) if now.duration_since(last) < Self::FORGET_AFTER => {
                let doublings = count.saturating_sub(1).min(16);
                Self::FIRST.saturating_mul(1 << doublings).min(Self::MAX)
            }
            _ => Duration::ZERO,
        }
    }

    pub fn failed(&mut self, source: IpAddr, now: Instant) {
        if self.failures.len() >= Self::MAX_SOURCES && !self.failures.contains_key(&source) {
            self.failures
                .retain(|_, (_, last)| now.duration_since(*last) < Self::FORGET_AFTER);
            if self.failures.len() >= Self::MAX_SOURCES {
                // Still full of fresh failures: forget the oldest.
                if let Some(oldest) = self
                    .failures
                    .iter()
                    .min_by_key(|(_, (_, l))| *l)
                    .map(|(a, _)| *a)
                {
                    self.failures.remove(&oldest);
                }
            }
        }
        let entry = self.failures.entry(source).or_insert((0, now));
        entry.0 = entry.0.saturating_add(1);
        entry.1 = now;
    }

    pub fn succeeded(&mut self, source: IpAddr) {
        self.failures.remove(&source);
    }
}

/// The gate every password check goes through (one per daemon: the stats
/// page and the console share it, so a flood on both still hashes on at
/// most [`MAX_CONCURRENT`] cores and failures slow a source on both).
pub struct LoginGate {
    permits: Arc<Semaphore>,
    slowdown: Mutex<Slowdown>,
    /// Verifications run so far (tests read it).
    verifications: AtomicUsize,
    /// The most that ran at once (tests read it).
    peak: AtomicUsize,
    running: AtomicUsize,
}

impl Default for LoginGate {
    fn default() -> Self {
        Self {
            permits: Arc::new(Semaphore::new(MAX_CONCURRENT)),
            slowdown: Mutex::new(Slowdown::default()),
            verifications: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            running: AtomicUsize::new(0),
        }
    }
}

impl LoginGate {
    /// True when `password` matches `hash`; `None` for a user that does
    /// not exist (false, at the same cost).
    pub async fn verify(&self, source: IpAddr, password: String, hash: Option<String>) -> bool {
        let delay = self
            .slowdown
            .lock()
            .map(|s| s.delay(source, Instant::now()))
            .unwrap_or(Slowdown::MAX);
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let Ok(_permit) = self.permits.clone().acquire_owned().await else {
            return false;
        };
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| UNKNOWN_USER_HASH.to_string());
        let now_running = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now_running, Ordering::SeqCst);
        self.verifications.fetch_add(1, Ordering::SeqCst);
        let matched = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
            .await
            .unwrap_or(false);
        self.running.fetch_sub(1, Ordering::SeqCst);
        let ok = matched && known;
        if let Ok(mut s) = self.slowdown.lock() {
            if ok {
                s.succeeded(source);
            } else {
                s.failed(source, Instant::now());
            }
        }
        ok
    }

    pub fn verifications(&self) -> usize {
        self.verifications.load(Ordering::SeqCst)
    }

    pub fn peak_concurrency(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
#[path = "login_gate_tests.rs"]
mod tests;
