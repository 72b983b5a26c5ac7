//! The control socket: a Unix stream socket speaking JSON lines. Each
//! request line gets one response line `{"ok":true,"result":...}` or
//! `{"ok":false,"error":"..."}`; `events` turns the connection into a
//! stream of event lines.
//!
//! The socket is created mode 0660 in a directory made if missing; a stale
//! socket file from a killed lbd is replaced, a live one is an error, and
//! anything that is not a socket is refused and left alone.

use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;

use super::command::{parse, Command, HELP, MAX_LINE};
use crate::daemon::Daemon;
use crate::report;

/// Socket file mode: owner and group (the status screen's group) only.
const SOCKET_MODE: u32 = 0o660;

/// Errors setting up the control socket.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("another lbd answers on {}: stop it or set global.control_socket", path.display())]
    InUse { path: PathBuf },
    #[error(
        "control socket path {} is not a socket (left untouched): set global.control_socket \
         to a free path, or move that file away",
        path.display()
    )]
    NotASocket { path: PathBuf },
    #[error("creating control socket {}: {source}", path.display())]
    Bind { path: PathBuf, source: io::Error },
}

/// Binds `path` and serves it in the background.
pub fn start(path: &Path, daemon: Arc<Daemon>) -> Result<JoinHandle<()>, ControlError> {
    let err = |source| ControlError::Bind {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    remove_stale_socket(path)?;
    let listener = UnixListener::bind(path).map_err(err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(SOCKET_MODE)).map_err(err)?;
    Ok(tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    tokio::spawn(serve(stream, daemon.clone()));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "control socket accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    }))
}

/// Makes room for a fresh socket at `path`: a live lbd there is an error,
/// a stale socket from a killed lbd is removed. Anything else at the path
/// (a file, a directory, a symlink: a mistyped `global.control_socket`)
/// is left alone and refused; lbd used to delete whatever it found.
fn remove_stale_socket(path: &Path) -> Result<(), ControlError> {
    // symlink_metadata: a link is judged itself, never followed.
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(ControlError::Bind {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    if !meta.file_type().is_socket() {
        return Err(ControlError::NotASocket {
            path: path.to_path_buf(),
        });
    }
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        return Err(ControlError::InUse {
            path: path.to_path_buf(),
        });
    }
    std::fs::remove_file(path).map_err(|source| ControlError::Bind {
        path: path.to_path_buf(),
        source,
    })
}

async fn write_line(stream: &mut UnixStream, value: &Value) -> io::Result<()> {
    let mut line = value.to_string();
    line.push('\n');
    stream.write_all(line.as_bytes()).await
}

/// Serves one client: request lines in, response lines out.
async fn serve(mut stream: UnixStream, daemon: Arc<Daemon>) {
    let mut pending: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        while let Some(pos) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=pos).collect();
            let text = String::from_utf8_lossy(&line).to_string();
            if text.trim().is_empty() {
                continue;
            }
            let reply = match parse(&text) {
                Ok(Command::Events) => {
                    stream_events(&mut stream, &daemon).await;
                    return;
                }
                Ok(cmd) => match execute(&daemon, cmd).await {
                    Ok(result) => json!({"ok": true, "result": result}),
                    Err(error) => json!({"ok": false, "error": error}),
                },
                Err(error) => json!({"ok": false, "error": error}),
            };
            if write_line(&mut stream, &reply).await.is_err() {
                return;
            }
        }
        if pending.len() > MAX_LINE {
            let _ = write_line(
                &mut stream,
                &json!({"ok": false, "error": format!("request longer than {MAX_LINE} bytes")}),
            )
            .await;
            return;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => pending.extend_from_slice(&chunk[..n]),
        }
    }
}

async fn stream_events(stream: &mut UnixStream, daemon: &Daemon) {
    let mut rx = daemon.events.subscribe();
    if write_line(stream, &json!({"ok": true, "result": "streaming events"}))
        .await
        .is_err()
    {
        return;
    }
    loop {
        let value = match rx.recv().await {
            Ok(event) => serde_json::to_value(&event).unwrap_or(Value::Null),
            Err(RecvError::Lagged(n)) => json!({"event": "lagged", "missed": n}),
            Err(RecvError::Closed) => return,
        };
        if write_line(stream, &value).await.is_err() {
            return;
        }
    }
}

/// Runs one command against the daemon.
pub async fn execute(daemon: &Daemon, cmd: Command) -> Result<Value, String> {
    let rt = daemon.runtime();
    let to_value = |v: &dyn erased::Ser| v.value();
    match cmd {
        Command::Help => Ok(Value::String(HELP.into())),
        Command::ShowStat => Ok(to_value(&report::stat(&rt, &daemon.listeners))),
        Command::ShowVrrp => Ok(to_value(&daemon.vrrp_status.rows())),
        Command::ShowInfo => {
            let stat = report::stat(&rt, &daemon.listeners);
            let info = report::Info {
                name: "lbd".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                pid: std::process::id(),
                uptime_s: daemon.started.elapsed().as_secs(),
                config_files: daemon
                    .paths
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect(),
                reloads: daemon.reloads.load(std::sync::atomic::Ordering::Relaxed),
                current_connections: daemon.current_connections(),
                maxconn: rt.config.global.maxconn,
                frontends: stat.frontends.len(),
                backends: stat.backends.len(),
                servers: stat.servers.len(),
                servers_up: stat.servers.iter().filter(|s| s.status == "UP").count(),
                stats: rt.config.stats.as_ref().map(|s| s.bind.to_string()),
                log_lines_dropped: crate::log_queue::dropped(),
            };
            Ok(to_value(&info))
        }
        Command::SetState { server, state } => daemon
            .admin
            .set_state(&rt, &server, state)
            .map(|()| json!(format!("{server} is now {}", state.as_str())))
            .map_err(|e| e.to_string()),
        Command::SetWeight { server, weight } => daemon
            .admin
            .set_weight(&rt, &server, weight)
            .map(|()| json!(format!("{server} weight is now {weight}")))
            .map_err(|e| e.to_string()),
        Command::SetFrontend { frontend, disabled } => daemon
            .admin
            .set_frontend_disabled(&rt, &daemon.listeners, &frontend, disabled)
            .map(|()| {
                let now = if disabled {
                    "disabled: not accepting (clients wait in the backlog)"
                } else {
                    "enabled: accepting"
                };
                json!(format!("frontend {frontend} is now {now}"))
            })
            .map_err(|e| e.to_string()),
        Command::Reload => daemon
            .reload()
            .await
            .map(Value::String)
            .map_err(|e| e.to_string()),
        Command::Events => Err("events is a stream: send it alone".into()),
    }
}

/// Serializing through a trait object without generics in the closure.
mod erased {
    pub trait Ser {
        fn value(&self) -> serde_json::Value;
    }

    impl<T: serde::Serialize> Ser for T {
        fn value(&self) -> serde_json::Value {
            serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("lbd-control-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    /// Input: a regular file (a mistyped `global.control_socket` pointing
    /// at an admin's file) where the socket should go.
    /// Output: an error naming the path and the fix; the file is untouched.
    #[test]
    fn a_regular_file_at_the_socket_path_survives() {
        let dir = temp_dir("file");
        let path = dir.join("lbd.toml");
        std::fs::write(&path, "precious").expect("write");
        let err = remove_stale_socket(&path).expect_err("must refuse");
        let text = err.to_string();
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert!(text.contains("not a socket"), "{text}");
        assert_eq!(std::fs::read_to_string(&path).expect("kept"), "precious");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Input: a socket file nobody listens on (lbd was killed).
    /// Output: it is removed, so bind can create a fresh one.
    #[test]
    fn a_stale_socket_is_removed() {
        let dir = temp_dir("stale");
        let path = dir.join("lbd.sock");
        drop(std::os::unix::net::UnixListener::bind(&path).expect("bind"));
        assert!(path.exists());
        remove_stale_socket(&path).expect("stale socket removed");
        assert!(std::fs::symlink_metadata(&path).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Input: a symlink at the socket path pointing at a regular file.
    /// Output: refused; neither the link nor its target is removed.
    #[test]
    fn a_symlink_at_the_socket_path_is_refused() {
        let dir = temp_dir("link");
        let target = dir.join("target");
        std::fs::write(&target, "keep").expect("write");
        let path = dir.join("lbd.sock");
        std::os::unix::fs::symlink(&target, &path).expect("symlink");
        assert!(remove_stale_socket(&path).is_err());
        assert!(std::fs::symlink_metadata(&path).is_ok());
        assert_eq!(std::fs::read_to_string(&target).expect("kept"), "keep");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
