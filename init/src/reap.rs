//! Reaping: PID 1 inherits every orphan and must collect its exit status,
//! or zombies pile up. The statuses are handed back so the supervisor gets
//! its own child's instead of losing it here.

use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};

/// Collects every exited child without blocking.
pub fn reap_zombies() -> Vec<WaitStatus> {
    let mut reaped = Vec::new();
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => return reaped,
            Ok(status) => reaped.push(status),
        }
    }
}
