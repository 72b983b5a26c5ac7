//! What the admin listeners share: the stats page (:8404, plain HTTP with
//! Basic auth) and the console (:5480, HTTPS with sessions).
//!
//! - [`auth`]: users' password checks (Basic and the login form) and the
//!   stats page's CSRF tokens; [`login_gate`]: the checks off the proxy's
//!   threads, one at a time, slowed per source;
//! - [`slots`]: bounded connections, the longest-idle evicted first;
//! - [`form`]: urlencoded forms; [`headers`]: the security headers every
//!   answer carries; [`serve`]: one HTTP/1.1 connection held by a slot.

pub mod auth;
pub mod form;
pub mod headers;
pub mod login_gate;
pub mod serve;
pub mod slots;

/// The node's name, read per request: init may change it live. procfs is
/// in memory, so the read never waits on a disk.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "lbd".to_owned())
}
