//! The web console's way to the appliance store: each call is one request
//! to init's appliance socket (`appliance_api`), made on tokio's blocking
//! pool with a deadline and at most [`MAX_CALLS`] at once, so a slow or
//! stuck init never holds the proxy's threads and the console cannot
//! take all of init's connections. On a plain Linux host there is no
//! socket: every call says so, and the console shows status only.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use appliance_api::client::{call, ClientError};
use appliance_api::{Payload, Problem, Reply, Request};
use tokio::sync::Semaphore;

/// Calls to init at once (init serves 8 connections in all).
pub const MAX_CALLS: usize = 2;
/// Longest wait for one read or write; a commit that reloads lbd and
/// applies settings answers well within it.
pub const TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    #[error("this host has no appliance store ({0} is missing): lbd's configuration is in its files; edit them and run `lbd ctl reload`")]
    NoStore(String),
    #[error("the appliance store is busy with other changes: try again in a moment")]
    Busy,
    /// init understood and refused it: nothing changed.
    #[error("{error}")]
    Refused {
        error: String,
        problems: Vec<Problem>,
    },
    #[error("{0}")]
    Failed(String),
}

#[derive(Debug, Clone)]
pub struct Bridge {
    socket: PathBuf,
    timeout: Duration,
    calls: Arc<Semaphore>,
}

impl Bridge {
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        Self::with_timeout(socket, TIMEOUT)
    }

    pub fn with_timeout(socket: impl Into<PathBuf>, timeout: Duration) -> Self {
        Self {
            socket: socket.into(),
            timeout,
            calls: Arc::new(Semaphore::new(MAX_CALLS)),
        }
    }

    /// Whether there is a store to talk to (the appliance) at all.
    pub fn present(&self) -> bool {
        self.socket.exists()
    }

    /// Sends `request` and returns what init did.
    pub async fn ask(&self, request: Request) -> Result<Payload, BridgeError> {
        if !self.present() {
            return Err(BridgeError::NoStore(self.socket.display().to_string()));
        }
        // Waiting for a free call is bounded too: an admin's click gets an
        // answer, not a spinner behind a stuck init.
        let permit = tokio::time::timeout(self.timeout, self.calls.clone().acquire_owned())
            .await
            .map_err(|_| BridgeError::Busy)?
            .map_err(|_| BridgeError::Busy)?;
        let socket = self.socket.clone();
        let timeout = self.timeout;
        let reply = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            call(&socket, &request, timeout)
        })
        .await
        .map_err(|e| BridgeError::Failed(format!("the appliance socket call stopped: {e}")))?;
        match reply {
            Ok(Reply::Ok { result }) => Ok(result),
            Ok(Reply::Refused { error, problems }) => Err(BridgeError::Refused { error, problems }),
            Err(ClientError::Connect { path, .. }) if !path.exists() => {
                Err(BridgeError::NoStore(path.display().to_string()))
            }
            Err(e) => Err(BridgeError::Failed(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::net::UnixListener;

    use super::*;

    /// A real socket at a temp path answering with `handle`, as init does.
    fn serve(handle: fn(Request) -> Reply) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("lbd-bridge-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("appliance.sock");
        let listener = UnixListener::bind(&path).expect("bind");
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                std::thread::spawn(move || {
                    let mut h = handle;
                    let _ = appliance_api::client::serve(stream, &mut h);
                });
            }
        });
        path
    }

    fn answer(request: Request) -> Reply {
        match request {
            Request::Get => Reply::Ok {
                result: Payload::Valid,
            },
            Request::Reboot => {
                std::thread::sleep(Duration::from_secs(5));
                Reply::Ok {
                    result: Payload::Accepted,
                }
            }
            _ => Reply::Refused {
                error: "bad value".into(),
                problems: vec![Problem {
                    key: "service.1.port".into(),
                    value: "99999".into(),
                    message: "not a port: give 1-65535".into(),
                }],
            },
        }
    }

    /// The console's default socket is where init serves the store.
    #[test]
    fn the_default_socket_is_inits() {
        assert_eq!(lbd_config::DEFAULT_APPLIANCE_SOCKET, appliance_api::SOCKET);
    }

    /// Input: a get, a refused validate, a call to a server that takes
    /// longer than the deadline, and a missing socket.
    /// Output: the payload; the refusal with its problem; a failure naming
    /// the socket; NoStore telling where the configuration is instead.
    #[tokio::test]
    async fn calls_answer_refuse_time_out_or_say_there_is_no_store() {
        let path = serve(answer);
        let bridge = Bridge::with_timeout(&path, Duration::from_millis(300));
        assert_eq!(bridge.ask(Request::Get).await.expect("get"), Payload::Valid);

        let refused = bridge
            .ask(Request::Validate {
                change: Default::default(),
            })
            .await;
        let Err(BridgeError::Refused { problems, .. }) = refused else {
            panic!("{refused:?}")
        };
        assert_eq!(problems[0].key, "service.1.port");

        let slow = bridge.ask(Request::Reboot).await;
        let Err(BridgeError::Failed(message)) = slow else {
            panic!("{slow:?}")
        };
        assert!(message.contains("appliance socket"), "{message}");

        let none = Bridge::new(path.with_file_name("missing.sock"));
        let err = none.ask(Request::Get).await.expect_err("no store");
        assert!(matches!(err, BridgeError::NoStore(_)), "{err:?}");
        assert!(err.to_string().contains("lbd ctl reload"), "{err}");
        let _ = std::fs::remove_dir_all(path.parent().expect("dir"));
    }
}
