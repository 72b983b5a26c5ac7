//! Reaping: PID 1 inherits every orphan and must collect its exit status,
//! or zombies pile up. The statuses are handed back so the supervisor gets
//! its own child's instead of losing it here.
//!
//! A helper thread's own child (`lbd hash-password` for a change through
//! the appliance socket, `lbd ctl` from the debug port) may be reaped here
//! before the thread waits for it: the last statuses are kept, and
//! [`wait_child`] finds its child's there.

use std::collections::VecDeque;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, ExitStatus};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};

/// Statuses kept for helper threads; a thread asks within milliseconds.
const KEPT: usize = 64;
static RECENT: Mutex<VecDeque<(i32, i32)>> = Mutex::new(VecDeque::new());

/// Collects every exited child without blocking.
pub fn reap_zombies() -> Vec<WaitStatus> {
    let mut reaped = Vec::new();
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => return reaped,
            Ok(status) => {
                keep(status);
                reaped.push(status);
            }
        }
    }
}

fn keep(status: WaitStatus) {
    let raw = match status {
        WaitStatus::Exited(_, code) => (code & 0xff) << 8,
        WaitStatus::Signaled(_, signal, _) => signal as i32,
        _ => return,
    };
    let Some(pid) = status.pid() else { return };
    if let Ok(mut recent) = RECENT.lock() {
        if recent.len() == KEPT {
            recent.pop_front();
        }
        recent.push_back((pid.as_raw(), raw));
    }
}

fn kept(pid: u32) -> Option<ExitStatus> {
    let pid = i32::try_from(pid).ok()?;
    let recent = RECENT.lock().ok()?;
    recent
        .iter()
        .rev()
        .find(|(p, _)| *p == pid)
        .map(|(_, raw)| ExitStatus::from_raw(*raw))
}

/// Waits up to `timeout` for a helper thread's `child`, whether this
/// thread or PID 1's loop reaps it; kills it when time is up.
pub fn wait_child(child: &mut Child, timeout: Duration) -> Result<ExitStatus, String> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(status),
            Ok(None) => {}
            // ECHILD: PID 1's loop reaped it first.
            Err(_) => {}
        }
        if let Some(status) = kept(child.id()) {
            return Ok(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            return Err(format!("no exit after {} s: killed", timeout.as_secs()));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// What a helper thread's child said and how it ended.
pub struct Output {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// `std::process::Command::output` for a helper thread of PID 1 (see the
/// module doc), with `input` on its stdin and a time limit.
pub fn output(
    command: &mut std::process::Command,
    input: &[u8],
    timeout: Duration,
) -> Result<Output, String> {
    use std::io::{Read, Write};
    use std::process::Stdio;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input)
            .map_err(|e| format!("writing its input: {e}"))?;
    }
    let mut stderr_pipe = child.stderr.take();
    let stderr = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(pipe) = stderr_pipe.as_mut() {
            let _ = pipe.read_to_end(&mut buf);
        }
        buf
    });
    let mut stdout = Vec::new();
    if let Some(mut pipe) = child.stdout.take() {
        let _ = pipe.read_to_end(&mut stdout);
    }
    let status = wait_child(&mut child, timeout)?;
    Ok(Output {
        status,
        stdout,
        stderr: stderr.join().unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// Input: a child reaped by the loop's `reap_zombies` before its
    /// owner waits (as PID 1 does to any exited child), and one the owner
    /// reaps itself.
    /// Output: both owners get the real exit code.
    #[test]
    fn a_child_reaped_by_the_loop_still_reports_its_status() {
        let mut child = Command::new("sh").args(["-c", "exit 3"]).spawn().unwrap();
        // What reap_zombies does, for this child only: the test binary's
        // other tests have children of their own.
        let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
        keep(waitpid(pid, None).unwrap());
        let status = wait_child(&mut child, Duration::from_secs(5)).unwrap();
        assert_eq!(status.code(), Some(3));
        let mut own = Command::new("sh").args(["-c", "exit 4"]).spawn().unwrap();
        assert_eq!(
            wait_child(&mut own, Duration::from_secs(5)).unwrap().code(),
            Some(4)
        );
    }
}
