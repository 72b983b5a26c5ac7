//! One HTTP/1.1 connection of an admin listener, held by a [`Slot`]: busy
//! while a request is answered, idle otherwise, closed when the slot is
//! taken away for a newcomer.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};

use tokio::net::{TcpListener, TcpStream};

use super::slots::{Slot, Slots};

/// Accepts on `listener` forever, giving each connection a slot of
/// `slots` (or dropping it when every slot is busy) and handing it to
/// `serve`.
pub async fn accept_loop<S, F>(
    listener: TcpListener,
    slots: Arc<Slots>,
    what: &'static str,
    serve: S,
) where
    S: Fn(TcpStream, SocketAddr, Slot) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(ok) => ok,
            Err(e) => {
                tracing::warn!(listener = what, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        match slots.admit(peer.ip(), Instant::now()) {
            Ok(slot) => {
                tokio::spawn(serve(stream, peer, slot));
            }
            Err(e) => tracing::debug!(listener = what, %peer, error = %e, "connection refused"),
        }
    }
}

/// Time allowed for a client to send its request headers (slowloris guard).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Answers requests on `io` with `handle` until the client closes, the
/// connection fails, or `slot` is taken away. `what` names the listener
/// in logs.
pub async fn connection<I, H, F>(io: I, peer: SocketAddr, slot: Slot, what: &'static str, handle: H)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let slot = Arc::new(slot);
    let close = slot.close.clone();
    let service = hyper::service::service_fn(move |req| {
        let handle = handle.clone();
        let slot = slot.clone();
        async move {
            slot.busy();
            let response = handle(req).await;
            slot.idle(Instant::now());
            Ok::<_, Infallible>(response)
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(TokioIo::new(io), service);
    tokio::select! {
        ended = conn => if let Err(e) = ended {
            tracing::debug!(listener = what, error = %e, "connection ended");
        },
        () = close.notified() => {
            tracing::debug!(listener = what, %peer, "idle connection closed to make room");
        }
    }
}
