//! The console's accept loop.
//!
//! ```text
//!  accept --slot--> peek 1st byte --0x16--> TLS handshake (current cert) --> routes
//!                        |
//!                        `--other--> plain HTTP/1.1 --> 301 https://<host>:<port>/
//! ```
//!
//! The slot is held from accept on, so sockets that connect and send
//! nothing (or a slow handshake) are idle connections the next newcomer
//! may push out, as on the stats page.

use std::net::SocketAddr;
use std::sync::Arc;

use hyper::header::{HeaderValue, HOST, LOCATION};
use hyper::StatusCode;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use super::redirect::location;
use super::respond::respond;
use super::routes::{handle, Console};
use super::tls::TlsHandle;
use crate::web::serve::{connection, HEADER_TIMEOUT};
use crate::web::slots::{Slot, Slots, MAX_CONNECTIONS, MAX_PER_SOURCE};

/// The first byte of a TLS record carrying a handshake (RFC 8446 5.1).
const TLS_HANDSHAKE: u8 = 0x16;

/// Accepts forever.
pub async fn accept_loop(listener: TcpListener, console: Arc<Console>, tls: TlsHandle) {
    let slots = Slots::new(MAX_CONNECTIONS, MAX_PER_SOURCE);
    crate::web::serve::accept_loop(listener, slots, "console", move |stream, peer, slot| {
        one(stream, peer, slot, console.clone(), tls.current())
    })
    .await;
}

async fn one(
    stream: TcpStream,
    peer: SocketAddr,
    slot: Slot,
    console: Arc<Console>,
    tls: Arc<rustls::ServerConfig>,
) {
    let close = slot.close.clone();
    let mut first = [0u8; 1];
    let peeked = tokio::select! {
        p = tokio::time::timeout(HEADER_TIMEOUT, stream.peek(&mut first)) => p,
        () = close.notified() => return,
    };
    match peeked {
        Ok(Ok(1)) => {}
        _ => return,
    }
    if first[0] != TLS_HANDSHAKE {
        redirect(stream, peer, slot).await;
        return;
    }
    let handshake = tokio::select! {
        h = tokio::time::timeout(HEADER_TIMEOUT, TlsAcceptor::from(tls).accept(stream)) => h,
        () = close.notified() => return,
    };
    let stream = match handshake {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "console TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "console TLS handshake timed out");
            return;
        }
    };
    let handler = move |req| {
        let console = console.clone();
        async move { handle(console, req, peer.ip()).await }
    };
    connection(stream, peer, slot, "console", handler).await;
}

/// Plain HTTP: a redirect to HTTPS for every request.
async fn redirect(stream: TcpStream, peer: SocketAddr, slot: Slot) {
    let Ok(local) = stream.local_addr() else {
        return;
    };
    let handler = move |req: hyper::Request<hyper::body::Incoming>| {
        let host = req
            .headers()
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_string);
        async move {
            let to = location(host.as_deref(), local);
            let mut r = respond(
                StatusCode::MOVED_PERMANENTLY,
                "text/plain; charset=utf-8",
                format!("the console speaks HTTPS: {to}\n"),
            );
            if let Ok(v) = HeaderValue::from_str(&to) {
                r.headers_mut().insert(LOCATION, v);
            }
            r
        }
    };
    connection(stream, peer, slot, "console-redirect", handler).await;
}
