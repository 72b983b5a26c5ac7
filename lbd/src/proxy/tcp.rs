//! Mode tcp: pick a server, connect (with retries on other servers), copy
//! bytes both ways, then write one log line in the spirit of HAProxy's
//! tcplog.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;

use super::copy::CopyEnd;
use super::proxy_protocol::{encode_v1, encode_v2};
use super::splice::copy_tcp;
use crate::config::SendProxy;
use crate::runtime::{AcquireError, BackendRt, FrontendRt, Lease};

/// Bytes a direction carries before it moves to splice(2).
const SPLICE_AFTER: u64 = 128 * 1024;

/// Connect attempts per connection (HAProxy's `retries 3`), each on another
/// server when one is available, else on the same one again.
const CONNECT_ATTEMPTS: usize = 3;

/// HAProxy-style two-letter termination state: who ended it, and in which
/// phase (`--` normal, `SC` no server/connect refused, `sC` connect timeout,
/// `sQ` queue timeout, `cD`/`sD` idle timeout, `CD`/`SD` error by a side,
/// `KD` closed by lbd: the reload or stop deadline passed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Termination(pub &'static str);

/// Connects to a server of `backend`, retrying on another server on failure.
pub async fn connect_server(
    backend: &Arc<BackendRt>,
    client: SocketAddr,
) -> Result<(Lease, TcpStream), Termination> {
    let mut exclude: Option<String> = None;
    let mut last = Termination("SC");
    for _ in 0..CONNECT_ATTEMPTS {
        // A retry prefers another server with a free slot now; failing
        // that, any server (the same one again), queueing as usual.
        let other = exclude
            .as_deref()
            .and_then(|failed| backend.try_acquire(Some(client.ip()), Some(failed)));
        let lease = match other {
            Some(l) => l,
            None => match backend.acquire(Some(client.ip()), None).await {
                Ok(l) => l,
                Err(AcquireError::NoServer) if exclude.is_some() => return Err(last),
                Err(AcquireError::NoServer) => return Err(Termination("SC")),
                Err(AcquireError::QueueTimeout) => return Err(Termination("sQ")),
            },
        };
        let Some(addr) = lease.server.addr() else {
            // Unresolved servers are never picked; a name that stopped
            // resolving in between counts as a refused connect.
            lease.server.connect_errors.fetch_add(1, Ordering::Relaxed);
            exclude = Some(lease.server.name.clone());
            continue;
        };
        match tokio::time::timeout(backend.timeouts.connect, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                return Ok((lease, stream));
            }
            Ok(Err(e)) => {
                tracing::debug!(server = %lease.server.key(), error = %e, "connect failed");
                last = Termination("SC");
            }
            Err(_) => {
                tracing::debug!(server = %lease.server.key(), "connect timeout");
                last = Termination("sC");
            }
        }
        lease.server.connect_errors.fetch_add(1, Ordering::Relaxed);
        exclude = Some(lease.server.name.clone());
    }
    Err(last)
}

/// The PROXY header to send to a server, if the backend wants one.
pub fn proxy_header(kind: SendProxy, client: SocketAddr, local: SocketAddr) -> Option<Vec<u8>> {
    match kind {
        SendProxy::None => None,
        SendProxy::V1 => Some(encode_v1(client, local)),
        SendProxy::V2 => Some(encode_v2(client, local)),
    }
}

/// Serves one client connection in mode tcp. `retire` turns true when
/// this config generation's deadline passed.
pub async fn serve(
    frontend: Arc<FrontendRt>,
    backend: Arc<BackendRt>,
    client: TcpStream,
    peer: SocketAddr,
    local: SocketAddr,
    mut retire: watch::Receiver<bool>,
) {
    let start = Instant::now();
    let log = ConnLog {
        frontend: &frontend.name,
        backend: &backend.name,
        client: peer,
        start,
    };
    let _ = client.set_nodelay(true);
    let (lease, mut server) = match connect_server(&backend, peer).await {
        Ok(ok) => ok,
        Err(term) => {
            log.emit("<NOSRV>", None, (0, 0), term);
            return;
        }
    };
    let connected = start.elapsed();
    if let Some(header) = proxy_header(backend.send_proxy, peer, local) {
        if let Err(e) = server.write_all(&header).await {
            tracing::debug!(server = %lease.server.key(), error = %e, "sending PROXY header failed");
            log.emit(
                &lease.server.name,
                Some(connected),
                (0, 0),
                Termination("SC"),
            );
            return;
        }
    }
    // tcp mode is a tunnel: timeout.tunnel if set, else the shorter of the
    // client and server inactivity timeouts (named in the log).
    let (idle, client_shorter) = backend.timeouts.tunnel_idle(frontend.timeout_client);
    let splice_after = frontend.splice.then_some(SPLICE_AFTER);
    let copy = copy_tcp(&client, &server, idle, splice_after);
    tokio::pin!(copy);
    let retired = async {
        while !*retire.borrow_and_update() {
            if retire.changed().await.is_err() {
                // Generation dropped without retiring: never fire.
                std::future::pending::<()>().await;
            }
        }
    };
    let result = tokio::select! {
        r = &mut copy => r,
        () = retired => {
            log.emit(&lease.server.name, Some(connected), (0, 0), Termination("KD"));
            return;
        }
    };
    lease
        .server
        .bytes_in
        .fetch_add(result.client_to_server, Ordering::Relaxed);
    lease
        .server
        .bytes_out
        .fetch_add(result.server_to_client, Ordering::Relaxed);
    let term = match result.end {
        CopyEnd::Closed => Termination("--"),
        CopyEnd::Idle if client_shorter => Termination("cD"),
        CopyEnd::Idle => Termination("sD"),
        CopyEnd::ClientError => Termination("CD"),
        CopyEnd::ServerError => Termination("SD"),
    };
    log.emit(
        &lease.server.name,
        Some(connected),
        (result.client_to_server, result.server_to_client),
        term,
    );
}

/// The fixed part of a connection's log line.
struct ConnLog<'a> {
    frontend: &'a str,
    backend: &'a str,
    client: SocketAddr,
    start: Instant,
}

impl ConnLog<'_> {
    /// One line per connection: client, frontend, backend/server, connect
    /// and total time, bytes each way, termination state.
    fn emit(&self, server: &str, connect: Option<Duration>, bytes: (u64, u64), term: Termination) {
        let tc = connect.map_or(-1, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        tracing::info!(
            target: "lbd::log",
            client = %self.client,
            frontend = self.frontend,
            backend = self.backend,
            server,
            tc_ms = tc,
            tt_ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX),
            bytes_in = bytes.0,
            bytes_out = bytes.1,
            term = term.0,
            "connection"
        );
    }
}
