//! The appliance socket: init serves the store to its editors (`lbd ctl
//! config`, later the web console and the console setup), JSON lines as
//! `appliance_api` defines them.
//!
//! ```text
//! listener thread --accept--> one thread per connection (at most
//!   MAX_CONNECTIONS) --request--> Desired (behind a mutex: one change at
//!   a time) --reply--> client
//! ```
//!
//! PID 1 must never go down because of a request: every request runs
//! inside `catch_unwind`, so a bug answers "internal error" and the
//! socket keeps serving; a stuck client only holds its own thread until
//! its read timeout.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use appliance_api::{Reply, Request};

/// Connections served at once; more wait in the listen backlog.
const MAX_CONNECTIONS: usize = 8;
/// A client that sends nothing for this long is dropped.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);

/// What the socket serves: the store and everything that applies a
/// change. One implementation in the appliance; tests bring their own.
pub mod store_backend;

pub trait Desired: Send {
    fn handle(&mut self, request: Request) -> Reply;
}

/// Binds `path` and serves it in the background. It changes the
/// appliance, so only root and the group `editors` may connect: that is
/// lbd's group, whose web console edits the configuration for its
/// logged-in admins (lbd checks the login and the role; init checks the
/// values).
pub fn start(path: &Path, desired: Box<dyn Desired>, editors: u32) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
        std::os::unix::fs::chown(dir, Some(0), Some(editors))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o750))?;
    }
    // A socket file left by an earlier init (this is tmpfs, so only after
    // a restart of the serving thread) would make bind fail.
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path)?;
    std::os::unix::fs::lchown(path, Some(0), Some(editors))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
    let desired = Arc::new(Mutex::new(desired));
    let active = Arc::new(AtomicUsize::new(0));
    std::thread::Builder::new()
        .name("appliance-socket".into())
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                if active.load(Ordering::SeqCst) >= MAX_CONNECTIONS {
                    refuse_busy(stream);
                    continue;
                }
                active.fetch_add(1, Ordering::SeqCst);
                let desired = Arc::clone(&desired);
                let finished = Arc::clone(&active);
                let spawned = std::thread::Builder::new()
                    .name("appliance-client".into())
                    .spawn(move || {
                        serve_client(stream, &desired);
                        finished.fetch_sub(1, Ordering::SeqCst);
                    });
                if spawned.is_err() {
                    active.fetch_sub(1, Ordering::SeqCst);
                }
            }
        })?;
    Ok(())
}

fn serve_client(stream: UnixStream, desired: &Mutex<Box<dyn Desired>>) {
    let _ = stream.set_read_timeout(Some(CLIENT_TIMEOUT));
    let _ = stream.set_write_timeout(Some(CLIENT_TIMEOUT));
    let _ = appliance_api::client::serve(stream, &mut |request| answer(desired, request));
}

/// One request, with a panic in the handler turned into a refusal.
pub fn answer(desired: &Mutex<Box<dyn Desired>>, request: Request) -> Reply {
    // A handler that panicked while holding the lock poisons it; the
    // store's files are written atomically, so the state behind it is
    // still whole and the next request may use it.
    let mut guard = match desired.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    };
    match catch_unwind(AssertUnwindSafe(|| guard.handle(request))) {
        Ok(reply) => reply,
        Err(_) => Reply::refused(
            "internal error in init while handling the request (nothing was changed unless a later get shows it); the console log has details",
        ),
    }
}

fn refuse_busy(stream: UnixStream) {
    let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
    let reply = Reply::refused(format!(
        "{MAX_CONNECTIONS} clients are connected already: try again"
    ));
    if let Ok(mut line) = serde_json::to_string(&reply) {
        line.push('\n');
        let _ = std::io::Write::write_all(&mut &stream, line.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use appliance_api::client::call;
    use appliance_api::Payload;

    /// Answers `get` with Valid and panics on anything else.
    struct Fragile;

    impl Desired for Fragile {
        fn handle(&mut self, request: Request) -> Reply {
            match request {
                Request::Get => Reply::Ok {
                    result: Payload::Valid,
                },
                other => panic!("a bug met {other:?}"),
            }
        }
    }

    /// Input: a request whose handler panics, then a normal one.
    /// Output: the first is refused as an internal error, the second is
    /// answered: the socket (and PID 1) lives on. The socket and its
    /// directory are root's and the editors' group's only.
    #[test]
    fn a_panicking_request_is_refused_and_serving_goes_on() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run/appliance.sock");
        if std::fs::metadata(dir.path()).unwrap().uid() != 0 {
            eprintln!("skipped: chown to root needs root");
            return;
        }
        start(&path, Box::new(Fragile), 101).unwrap();
        let socket = std::fs::metadata(&path).unwrap();
        assert_eq!(socket.permissions().mode() & 0o777, 0o660);
        assert_eq!((socket.uid(), socket.gid()), (0, 101));
        let parent = std::fs::metadata(path.parent().unwrap()).unwrap();
        assert_eq!(parent.permissions().mode() & 0o777, 0o750);
        assert_eq!((parent.uid(), parent.gid()), (0, 101));
        let timeout = Duration::from_secs(5);
        let Reply::Refused { error, .. } = call(&path, &Request::Reboot, timeout).unwrap() else {
            panic!("a panic was answered as success");
        };
        assert!(error.contains("internal error"), "{error}");
        assert_eq!(
            call(&path, &Request::Get, timeout).unwrap(),
            Reply::Ok {
                result: Payload::Valid
            }
        );
    }
}
