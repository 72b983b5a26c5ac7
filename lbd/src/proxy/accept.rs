//! Accept loops: one task per bound address. Each connection is handed to
//! the frontend that owns the address in the *current* runtime, so a reload
//! swaps configs under a listener without closing it.
//!
//! ```text
//!  listener(addr) --accept--> [frontend maxconn] [global maxconn] [per source]
//!        |                          permits held by the connection task
//!        +-- runtime (watch) --> frontend --> tcp::serve / http::serve
//! ```
//! When maxconn is reached the loop stops accepting and new clients wait in
//! the kernel backlog, as with HAProxy. The frontend's permit is taken
//! first, so a full frontend waits on its own cap without holding a
//! global slot another frontend could use. A client over
//! `maxconn_per_source` is closed at once.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio_rustls::TlsAcceptor;

use super::http::{self, ClientInfo};
use super::proxy_protocol::read_header;
use super::tcp;
use crate::config::Mode;
use crate::runtime::{AddrState, FrontendRt, Listeners, Runtime};

/// Pause after an accept error (EMFILE and friends) so the loop does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);
/// Accept failing this long without a success counts as not listening
/// (one EMFILE under a burst must not move a VIP).
const FAILING_AFTER: Duration = Duration::from_secs(1);

/// Shared handles an accept loop needs.
#[derive(Clone)]
pub struct AcceptCtx {
    pub runtime: watch::Receiver<Arc<Runtime>>,
    pub global_slots: Arc<Semaphore>,
    /// Open client connections across generations.
    pub active: Arc<AtomicU32>,
    pub stop: watch::Receiver<bool>,
    /// Where the loop reports whether it is accepting.
    pub listeners: Arc<Listeners>,
}

fn frontend_for(rt: &Runtime, addr: SocketAddr) -> Option<Arc<FrontendRt>> {
    rt.frontends
        .values()
        .find(|f| f.config.bind.contains(&addr))
        .cloned()
}

/// Counts a connection in each counter while alive.
struct Counted([Arc<AtomicU32>; 2]);

impl Counted {
    fn new(counters: [Arc<AtomicU32>; 2]) -> Self {
        for c in &counters {
            c.fetch_add(1, Ordering::Relaxed);
        }
        Self(counters)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        for c in &self.0 {
            c.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Runs until `stop` turns true or the address leaves the config.
pub async fn accept_loop(addr: SocketAddr, listener: TcpListener, mut ctx: AcceptCtx) {
    serve_addr(addr, &listener, &mut ctx).await;
    ctx.listeners.closed(addr);
}

async fn serve_addr(addr: SocketAddr, listener: &TcpListener, ctx: &mut AcceptCtx) {
    let mut disabled = ctx.listeners.watch_disabled();
    let mut failing_since: Option<std::time::Instant> = None;
    // What was last reported, so the hot path does not lock per accept.
    let mut reported: Option<(String, bool)> = None;
    let listeners = ctx.listeners.clone();
    let mut report = |name: &str, state: AddrState| {
        let accepting = state == AddrState::Accepting;
        if reported
            .as_ref()
            .is_none_or(|(n, a)| n != name || *a != accepting)
        {
            listeners.report(addr, name, state);
            reported = Some((name.to_string(), accepting));
        }
    };
    loop {
        if *ctx.stop.borrow() {
            return;
        }
        let rt = ctx.runtime.borrow_and_update().clone();
        let Some(frontend) = frontend_for(&rt, addr) else {
            tracing::info!(%addr, "listener closed: address no longer in config");
            return;
        };
        if disabled.borrow_and_update().contains(&frontend.name) {
            // Paused by an operator: clients wait in the backlog.
            tokio::select! {
                _ = disabled.changed() => {}
                _ = ctx.stop.changed() => {}
                _ = ctx.runtime.changed() => {}
            }
            continue;
        }
        if failing_since.is_none() {
            report(&frontend.name, AddrState::Accepting);
        }
        let permits = tokio::select! {
            p = async {
                let f = frontend.slots.clone().acquire_owned().await;
                let g = ctx.global_slots.clone().acquire_owned().await;
                (g, f)
            } => p,
            _ = ctx.stop.changed() => continue,
            _ = ctx.runtime.changed() => continue,
            _ = disabled.changed() => continue,
        };
        let (Ok(global), Ok(local)) = permits else {
            return;
        };
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = ctx.stop.changed() => continue,
            _ = ctx.runtime.changed() => continue,
            _ = disabled.changed() => continue,
        };
        let (stream, peer) = match accepted {
            Ok(ok) => {
                failing_since = None;
                ok
            }
            Err(e) => {
                tracing::warn!(%addr, error = %e, "accept failed");
                let since = *failing_since.get_or_insert_with(std::time::Instant::now);
                if since.elapsed() >= FAILING_AFTER {
                    report(&frontend.name, AddrState::Failing(e.to_string()));
                }
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                continue;
            }
        };
        let source = match &frontend.per_source {
            Some(limit) => match limit.enter(peer.ip()) {
                Some(slot) => Some(slot),
                None => {
                    tracing::info!(frontend = %frontend.name, %peer, "connection closed: maxconn_per_source reached");
                    continue;
                }
            },
            None => None,
        };
        let ctx_active = ctx.active.clone();
        tokio::spawn(async move {
            let _slots = (global, local, source);
            let _counted = Counted::new([ctx_active, frontend.active.clone()]);
            dispatch(&rt, frontend, stream, peer).await;
        });
    }
}

/// Time allowed for a PROXY header or a TLS handshake at connection start.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

async fn dispatch(
    rt: &Arc<Runtime>,
    frontend: Arc<FrontendRt>,
    mut stream: TcpStream,
    peer: SocketAddr,
) {
    let local = stream.local_addr().unwrap_or(peer);
    let (client, local) = if frontend.config.accept_proxy {
        match read_header(&mut stream, HANDSHAKE_TIMEOUT.min(frontend.timeout_client)).await {
            Ok(h) => (h.source.unwrap_or(peer), h.destination.unwrap_or(local)),
            Err(e) => {
                tracing::info!(frontend = %frontend.name, %peer, error = %e, "connection dropped");
                return;
            }
        }
    } else {
        (peer, local)
    };
    match frontend.config.mode {
        Mode::Tcp => {
            let Some(backend) = frontend
                .config
                .default_backend
                .as_ref()
                .and_then(|b| rt.backends.get(b))
                .cloned()
            else {
                return;
            };
            tcp::serve(
                frontend,
                backend,
                stream,
                client,
                local,
                rt.retire.subscribe(),
            )
            .await;
        }
        Mode::Http => {
            let _ = stream.set_nodelay(true);
            let info = ClientInfo {
                client,
                local,
                tls: frontend.config.tls.is_some(),
            };
            match (&frontend.config.tls, &frontend.tls) {
                (None, _) => http::serve(rt.clone(), frontend, stream, info).await,
                (Some(_), Some(config)) => {
                    let accept = TlsAcceptor::from(config.clone()).accept(stream);
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, accept).await {
                        Ok(Ok(tls)) => http::serve(rt.clone(), frontend, tls, info).await,
                        Ok(Err(e)) => tracing::debug!(%client, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%client, "TLS handshake timeout"),
                    }
                }
                (Some(_), None) => {
                    tracing::error!(frontend = %frontend.name, "TLS configured but certificate failed to load: connection closed");
                }
            }
        }
    }
}
