//! The debug port's commands that take long: `ctl ARGS` runs the real
//! `lbd ctl` in the guest, `commits N` commits through the appliance
//! socket in a loop, `log N` writes numbered log lines. Each runs in its
//! own thread (a commit reloads lbd, 100 000 lines take minutes on a
//! serial console: PID 1's loop must not wait for them) and answers on
//! the console through the relay.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use appliance_api::client::call;
use appliance_api::{Change, Payload, Reply, Request};
use rootfs::paths::LBD;

use crate::line_relay::LineSender;

const PREFIX: &str = "init: debug port:";
/// A key every appliance has whose change takes effect at once and
/// costs nothing at boot.
const CTL_TIMEOUT: Duration = Duration::from_secs(60);
const COMMIT_KEY: &str = "sysctl.net.ipv4.tcp_fin_timeout";

pub fn run_ctl(words: Vec<String>, relay: LineSender) {
    spawn(relay.clone(), move || {
        let mut command = Command::new(LBD);
        command.arg("ctl").args(&words);
        match crate::reap::output(&mut command, b"", CTL_TIMEOUT) {
            Ok(out) => {
                for line in String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .chain(String::from_utf8_lossy(&out.stderr).lines())
                {
                    relay.line(&format!("{PREFIX} ctl| {line}"));
                }
                relay.line(&format!(
                    "{PREFIX} ctl exited with {}",
                    out.status.code().unwrap_or(-1)
                ));
            }
            Err(e) => relay.line(&format!("{PREFIX} error: running {LBD} ctl: {e}")),
        }
    });
}

pub fn run_commits(n: u32, relay: LineSender) {
    spawn(relay.clone(), move || {
        let socket = Path::new(appliance_api::SOCKET);
        for i in 1..=n {
            match commit_one(socket, i) {
                Ok(revision) => {
                    relay.line(&format!("{PREFIX} commit {i} of {n}: revision {revision}"))
                }
                Err(e) => {
                    relay.line(&format!("{PREFIX} error: commit {i} of {n}: {e}"));
                    return;
                }
            }
        }
        relay.line(&format!("{PREFIX} commits done"));
    });
}

/// Writes `n` numbered lines through the relay, paced by the loop that
/// prints them; `running` is set meanwhile, so one `log` runs at a time.
pub fn run_log(n: u32, relay: LineSender, running: Arc<AtomicBool>) {
    let done = Arc::clone(&running);
    let started = spawn(relay.clone(), move || {
        for i in 0..n {
            relay.line_paced(&format!("init: debug log line {i} of {n}"));
        }
        done.store(false, Ordering::SeqCst);
        relay.line_paced(&format!("{PREFIX} log done ({n} lines)"));
    });
    if !started {
        running.store(false, Ordering::SeqCst);
    }
}

fn commit_one(socket: &Path, i: u32) -> Result<u64, String> {
    let timeout = Duration::from_secs(30);
    let base = match call(socket, &Request::Get, timeout).map_err(|e| e.to_string())? {
        Reply::Ok {
            result: Payload::Config(view),
        } => view.revision,
        other => return Err(format!("get answered {other:?}")),
    };
    let change = Change {
        set: [(COMMIT_KEY.to_owned(), (30 + i % 30).to_string())].into(),
        ..Change::default()
    };
    let request = Request::Commit {
        base,
        change,
        summary: Some(format!("debug port commit {i}")),
        changed_by: None,
    };
    match call(socket, &request, timeout).map_err(|e| e.to_string())? {
        Reply::Ok {
            result: Payload::Committed { revision, .. },
        } => Ok(revision.revision),
        other => Err(format!("commit answered {other:?}")),
    }
}

/// Runs `work` on its own thread; false (and said on the console) if
/// there is none.
fn spawn(relay: LineSender, work: impl FnOnce() + Send + 'static) -> bool {
    match std::thread::Builder::new()
        .name("debug-port".into())
        .spawn(work)
    {
        Ok(_) => true,
        Err(e) => {
            relay.line(&format!("{PREFIX} error: no thread: {e}"));
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Input: `log 5000` (far more than the relay's pipe holds).
    /// Output: the call returns at once with the flag set; every line
    /// then arrives in order, then "log done", and the flag is clear.
    #[test]
    fn log_lines_come_from_a_thread_whole() {
        let (tx, mut rx) = crate::line_relay::pair().unwrap();
        let running = Arc::new(AtomicBool::new(true));
        run_log(5000, tx, Arc::clone(&running));
        let mut lines = Vec::new();
        while lines
            .last()
            .is_none_or(|l: &String| !l.contains("log done"))
        {
            lines.extend(rx.read_lines());
            std::thread::yield_now();
        }
        assert_eq!(lines.len(), 5001);
        assert_eq!(lines[0], "init: debug log line 0 of 5000");
        assert_eq!(lines[4999], "init: debug log line 4999 of 5000");
        assert_eq!(lines[5000], format!("{PREFIX} log done (5000 lines)"));
        assert!(!running.load(Ordering::SeqCst));
    }
}
