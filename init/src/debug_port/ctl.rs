//! The debug port's commands that talk to the appliance socket: `ctl
//! ARGS` runs the real `lbd ctl` in the guest, `commits N` commits in a
//! loop. Each runs in its own thread (a commit reloads lbd: PID 1's loop
//! must not wait for it) and answers on the console through the relay.

use std::path::Path;
use std::process::Command;
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
    };
    match call(socket, &request, timeout).map_err(|e| e.to_string())? {
        Reply::Ok {
            result: Payload::Committed { revision, .. },
        } => Ok(revision.revision),
        other => Err(format!("commit answered {other:?}")),
    }
}

fn spawn(relay: LineSender, work: impl FnOnce() + Send + 'static) {
    if let Err(e) = std::thread::Builder::new()
        .name("debug-ctl".into())
        .spawn(work)
    {
        relay.line(&format!("{PREFIX} error: no thread: {e}"));
    }
}
