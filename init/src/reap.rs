//! Reaping: PID 1 inherits every orphan and must collect its exit status,
//! or zombies pile up.

use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};

/// Collects every exited child without blocking; returns how many.
pub fn reap_zombies() -> usize {
    let mut n = 0;
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => return n,
            Ok(_) => n += 1,
        }
    }
}
