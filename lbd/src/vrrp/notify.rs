//! Notify hooks: Keepalived's `notify_master` and friends, for admins who
//! still want a script on a state change (most need none: the control
//! socket's `events` stream and the log carry every change).
//!
//! One task per instance runs its hooks one at a time, in the order the
//! changes happened, so a hook for MASTER never overtakes the one for the
//! BACKUP before it. A hook gets `INSTANCE <name> <STATE> <priority>`
//! (Keepalived's generic `notify` arguments), no shell, stdin closed, its
//! output logged; one still running after `notify.timeout` is killed.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;
use tokio::sync::{broadcast, watch};

use super::config::{Instance, Notify};
use super::fsm::State;
use crate::runtime::events::Event;

/// The state word Keepalived passes; `Initialize` after a run is a stop.
pub fn state_word(state: State) -> &'static str {
    match state {
        State::Master => "MASTER",
        State::Backup => "BACKUP",
        State::Fault => "FAULT",
        State::Initialize => "STOP",
    }
}

/// The hooks to run for a change to `state`, in order: the state's own,
/// then the generic one (as Keepalived runs them).
pub fn hooks_for(notify: &Notify, state: State) -> Vec<PathBuf> {
    let own = match state {
        State::Master => &notify.master,
        State::Backup => &notify.backup,
        State::Fault => &notify.fault,
        State::Initialize => &notify.stop,
    };
    own.iter().chain(notify.all.iter()).cloned().collect()
}

/// Runs `name`'s hooks for every state change on `events` until `done`
/// turns true, then runs those still queued (the STOP of a graceful stop)
/// and returns.
pub async fn run(
    name: String,
    config: watch::Receiver<Instance>,
    mut events: broadcast::Receiver<Event>,
    mut done: watch::Receiver<bool>,
) {
    loop {
        let event = tokio::select! {
            e = events.recv() => e,
            _ = done.changed() => break,
        };
        match event {
            Ok(e) => handle(&name, &config, e).await,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(instance = %name, missed = n, "notify hooks too slow: some state changes were not notified");
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
    while let Ok(e) = events.try_recv() {
        handle(&name, &config, e).await;
    }
}

async fn handle(name: &str, config: &watch::Receiver<Instance>, event: Event) {
    let Event::Vrrp {
        instance,
        to,
        priority,
        ..
    } = event
    else {
        return;
    };
    if instance != name {
        return;
    }
    let notify = config.borrow().notify.clone();
    for hook in hooks_for(&notify, to) {
        let args = [
            "INSTANCE".to_string(),
            name.to_string(),
            state_word(to).to_string(),
            priority.to_string(),
        ];
        run_hook(name, &hook, &args, notify.timeout.0).await;
    }
}

/// Runs one hook to its end or its timeout; every outcome is logged,
/// none stops VRRP.
pub async fn run_hook(instance: &str, hook: &Path, args: &[String], timeout: Duration) {
    let spawned = Command::new(hook)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(error) => {
            tracing::error!(instance, hook = %hook.display(), %error,
                "notify hook could not start: check the path and that it is executable");
            return;
        }
    };
    let out = child.stdout.take().map(|o| log_lines(instance, hook, o));
    let err = child.stderr.take().map(|e| log_lines(instance, hook, e));
    let waited = tokio::time::timeout(timeout, async {
        let status = child.wait().await;
        if let Some(o) = out {
            let _ = o.await;
        }
        if let Some(e) = err {
            let _ = e.await;
        }
        status
    })
    .await;
    match waited {
        Ok(Ok(status)) if status.success() => {
            tracing::info!(instance, hook = %hook.display(), args = ?args, "notify hook done");
        }
        Ok(Ok(status)) => {
            tracing::warn!(instance, hook = %hook.display(), %status, "notify hook failed");
        }
        Ok(Err(error)) => {
            tracing::warn!(instance, hook = %hook.display(), %error, "waiting for notify hook");
        }
        Err(_) => {
            let _ = child.kill().await;
            tracing::warn!(instance, hook = %hook.display(), timeout_ms = timeout.as_millis(),
                "notify hook timed out: killed (raise notify.timeout or make the hook quicker)");
        }
    }
}

fn log_lines(
    instance: &str,
    hook: &Path,
    stream: impl AsyncRead + Unpin + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    let instance = instance.to_string();
    let hook = hook.display().to_string();
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            tracing::info!(instance = %instance, hook = %hook, "{line}");
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notify(text: &str) -> Notify {
        toml::from_str(text).expect("notify table")
    }

    #[test]
    fn own_hook_first_then_the_generic_one() {
        let n = notify("master = \"/m\"\nall = \"/a\"\n");
        assert_eq!(
            hooks_for(&n, State::Master),
            [PathBuf::from("/m"), PathBuf::from("/a")]
        );
        assert_eq!(hooks_for(&n, State::Backup), [PathBuf::from("/a")]);
        assert!(hooks_for(&Notify::default(), State::Fault).is_empty());
        assert_eq!(state_word(State::Initialize), "STOP");
    }

    #[tokio::test]
    async fn hooks_run_in_order_with_keepalived_arguments() {
        let dir = std::env::temp_dir().join(format!("lbd-notify-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let log = dir.join("calls");
        let hook = dir.join("hook.sh");
        std::fs::write(
            &hook,
            format!("#!/bin/sh\necho \"$*\" >> {}\n", log.display()),
        )
        .expect("hook");
        std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
        let mut instance: Instance = toml::from_str(
            "interface = \"e\"\nvrid = 1\npriority = 100\nvirtual_ips = [\"10.0.0.1\"]\n",
        )
        .expect("instance");
        instance.notify.all = Some(hook.clone());
        let (_cfg_tx, cfg) = watch::channel(instance);
        let (events, rx) = broadcast::channel(16);
        let (done_tx, done) = watch::channel(false);
        let change = |instance: &str, from, to, priority| Event::Vrrp {
            instance: instance.into(),
            from,
            to,
            reason: super::super::fsm::Reason::Startup,
            priority,
        };
        events
            .send(change("vi", State::Initialize, State::Backup, 100))
            .expect("send");
        events
            .send(change("other", State::Initialize, State::Master, 9))
            .expect("send");
        events
            .send(change("vi", State::Backup, State::Master, 100))
            .expect("send");
        events
            .send(change("vi", State::Master, State::Initialize, 0))
            .expect("send");
        done_tx.send(true).expect("done");
        run("vi".into(), cfg, rx, done).await;
        let calls = std::fs::read_to_string(&log).expect("hook ran");
        assert_eq!(
            calls,
            "INSTANCE vi BACKUP 100\nINSTANCE vi MASTER 100\nINSTANCE vi STOP 0\n"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_missing_or_slow_hook_neither_blocks_nor_panics() {
        run_hook(
            "vi",
            Path::new("/nonexistent/hook"),
            &[],
            Duration::from_secs(1),
        )
        .await;
        let started = std::time::Instant::now();
        run_hook(
            "vi",
            Path::new("/bin/sleep"),
            &["30".into()],
            Duration::from_millis(200),
        )
        .await;
        assert!(
            started.elapsed() < Duration::from_secs(25),
            "the slow hook was killed at its timeout"
        );
    }
}
