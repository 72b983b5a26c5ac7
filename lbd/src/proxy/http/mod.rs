//! Mode http: hyper on the client side, one server connection per request
//! on the other (balancing per request, as HAProxy does in http mode).
//!
//! ```text
//!  client --(TLS?)--> ClientIo --> hyper server conn
//!      (head within timeout.http_request, else 408; head at most
//!       global.max_header_size, else 431)
//!      --> handle(request)
//!      request::normalize: CONNECT 405, two/missing/bad Host 400,
//!          absolute-form -> origin-form + Host
//!      redirect_https? ----------------------> 302 https://host/path
//!      route(host, path) -> backend -> connect_server (+PROXY header)
//!      request + X-Forwarded-For/-Proto, hop-by-hop headers removed
//!      --> hyper client conn --> response (body pumped with
//!          timeout.server/timeout.client; server slot held until the body
//!          ends) --> one log line per request
//! ```
//! Protocol upgrades to a protocol in `upgrade_protocols` (WebSocket by
//! default): the request keeps its Upgrade headers; on a 101 both
//! connections are upgraded and bytes copied as in mode tcp, inside this
//! connection's task (see [`upgrade`]).

pub mod body;
pub mod client_io;
pub mod headers;
pub mod request;
pub mod upgrade;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONNECTION, LOCATION, UPGRADE};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use self::body::{pump_response, BoxError, IdleBody};
use self::client_io::ClientIo;
use self::headers::{forwarded_headers, ForwardedFor, HOP_BY_HOP};
use self::upgrade::Tunnels;
use super::route::{host_only, route};
use super::tcp::{connect_server, proxy_header};
use crate::runtime::{FrontendRt, Runtime};

/// hyper's smallest allowed read buffer; `max_header_size` below it still
/// limits the head, the buffer just cannot shrink further.
const MIN_BUF_SIZE: usize = 8192;

type ProxyBody = BoxBody<Bytes, BoxError>;

/// Who is on the other end of a client connection.
#[derive(Debug, Clone, Copy)]
pub struct ClientInfo {
    /// The client (from the PROXY header when accepted).
    pub client: SocketAddr,
    /// The address the client connected to.
    pub local: SocketAddr,
    pub tls: bool,
}

fn local(status: StatusCode, text: &'static str) -> Response<ProxyBody> {
    let mut r = Response::new(
        Full::new(Bytes::from_static(text.as_bytes()))
            .map_err(|e: Infallible| match e {})
            .boxed(),
    );
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// Serves one client connection in mode http.
pub async fn serve<S>(rt: Arc<Runtime>, frontend: Arc<FrontendRt>, io: S, info: ClientInfo)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut superseded = rt.superseded.subscribe();
    let tunnels: Tunnels = Arc::default();
    let max_header_size = usize::try_from(rt.config.global.max_header_size).unwrap_or(usize::MAX);
    let header_timeout = frontend.timeout_http_request;
    // A client that stops reading is dropped after timeout.client, as in
    // HAProxy (`timeout client` covers both directions).
    let (for_hyper, kept) = ClientIo::pair(io, frontend.timeout_client);
    let service = {
        let rt = rt.clone();
        let frontend = frontend.clone();
        let tunnels = tunnels.clone();
        hyper::service::service_fn(move |req| {
            let rt = rt.clone();
            let frontend = frontend.clone();
            let tunnels = tunnels.clone();
            async move { Ok::<_, Infallible>(handle(&rt, &frontend, req, info, &tunnels).await) }
        })
    };
    let mut conn = Box::pin(
        hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(header_timeout)
            .max_header_size(max_header_size)
            .max_buf_size(max_header_size.max(MIN_BUF_SIZE))
            .serve_connection(TokioIo::new(for_hyper), service)
            .with_upgrades(),
    );
    let result = tokio::select! {
        r = conn.as_mut() => r,
        () = until_true(&mut superseded) => {
            // Reload or stop: finish the request in flight, then close
            // (HAProxy closes idle keep-alive connections the same way).
            conn.as_mut().graceful_shutdown();
            conn.as_mut().await
        }
    };
    // hyper's handle on the stream goes with the connection.
    drop(conn);
    kept.end_write_stall();
    match result {
        Err(e) if e.is_timeout() => {
            tracing::debug!(client = %info.client, frontend = %frontend.name, "request head timeout (timeout.http_request)");
            kept.answer_request_timeout().await;
        }
        Err(e) => tracing::debug!(client = %info.client, error = %e, "http connection ended"),
        Ok(()) => {}
    }
    // An upgraded connection runs here, still holding this connection's
    // slots (one at most: after a 101 the connection is the tunnel's).
    let started: Vec<_> = tunnels
        .lock()
        .map(|mut t| t.drain(..).collect())
        .unwrap_or_default();
    for tunnel in started {
        tunnel.await;
    }
}

/// Resolves once the flag is true (never if its sender is gone).
async fn until_true(rx: &mut tokio::sync::watch::Receiver<bool>) {
    if rx.wait_for(|v| *v).await.is_err() {
        std::future::pending::<()>().await;
    }
}

async fn handle(
    rt: &Runtime,
    frontend: &FrontendRt,
    mut req: Request<Incoming>,
    info: ClientInfo,
    tunnels: &Tunnels,
) -> Response<ProxyBody> {
    let start = Instant::now();
    let method = req.method().clone();
    let path = req
        .uri()
        .path_and_query()
        .map_or_else(|| "/".to_string(), ToString::to_string);
    let log = |backend: &str, server: &str, status: StatusCode| {
        tracing::info!(
            target: "lbd::log",
            client = %info.client,
            frontend = %frontend.name,
            backend,
            server,
            %method,
            path = %path,
            status = status.as_u16(),
            tt_ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX),
            "request"
        );
    };
    let host = match request::normalize(&mut req) {
        Ok(host) => host,
        Err(reject) => {
            log("<rejected>", "-", reject.status());
            let mut r = local(reject.status(), "bad request\n");
            *r.body_mut() = Full::new(Bytes::from(format!("{reject}\n")))
                .map_err(|e: Infallible| match e {})
                .boxed();
            // The connection's state after a bad request is unknown: close.
            r.headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
            return r;
        }
    };
    let path = req
        .uri()
        .path_and_query()
        .map_or_else(|| "/".to_string(), ToString::to_string);
    if frontend.config.redirect_https {
        // The host was checked by `normalize`: no `@`, `/` or spaces can
        // reach the Location header.
        let Some(h) = host.as_deref().map(host_only).filter(|h| !h.is_empty()) else {
            log("<redirect>", "-", StatusCode::BAD_REQUEST);
            return local(StatusCode::BAD_REQUEST, "missing Host header\n");
        };
        let Ok(location) = HeaderValue::from_str(&format!("https://{h}{path}")) else {
            log("<redirect>", "-", StatusCode::BAD_REQUEST);
            return local(StatusCode::BAD_REQUEST, "bad Host header\n");
        };
        let mut r = local(StatusCode::FOUND, "moved to https\n");
        r.headers_mut().insert(LOCATION, location);
        log("<redirect>", "-", StatusCode::FOUND);
        return r;
    }
    let backend = route(
        &frontend.config.routes,
        frontend.config.default_backend.as_deref(),
        host.as_deref(),
        req.uri().path(),
    )
    .and_then(|b| rt.backends.get(b))
    .cloned();
    let Some(backend) = backend else {
        log("<none>", "-", StatusCode::SERVICE_UNAVAILABLE);
        return local(
            StatusCode::SERVICE_UNAVAILABLE,
            "no backend for this request\n",
        );
    };
    let (lease, mut stream) = match connect_server(&backend, info.client).await {
        Ok(ok) => ok,
        Err(term) => {
            let status = if term.0 == "sC" {
                StatusCode::GATEWAY_TIMEOUT
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            log(&backend.name, "<NOSRV>", status);
            return local(status, "no server available\n");
        }
    };
    let server_name = lease.server.name.clone();
    if let Some(header) = proxy_header(backend.send_proxy, info.client, info.local) {
        if stream.write_all(&header).await.is_err() {
            log(&backend.name, &server_name, StatusCode::BAD_GATEWAY);
            return local(StatusCode::BAD_GATEWAY, "server closed the connection\n");
        }
    }
    let (mut sender, conn) = match hyper::client::conn::http1::handshake(TokioIo::new(stream)).await
    {
        Ok(ok) => ok,
        Err(_) => {
            log(&backend.name, &server_name, StatusCode::BAD_GATEWAY);
            return local(StatusCode::BAD_GATEWAY, "server handshake failed\n");
        }
    };
    tokio::spawn(async move {
        let _ = conn.with_upgrades().await;
    });
    // A protocol upgrade to an allowed protocol: keep its headers for the
    // server and take the client side's upgrade future before the request
    // moves on. Others lose their Upgrade header with the hop-by-hop ones
    // and go on as plain requests (a server may ignore Upgrade, RFC 9110
    // 7.8).
    let upgrade = upgrade::requested(req.headers())
        .filter(|p| upgrade::allowed(p, &frontend.config.upgrade_protocols))
        .and_then(|p| HeaderValue::from_str(&p).ok())
        .map(|protocol| (protocol, hyper::upgrade::on(&mut req)));
    forwarded_headers(
        req.headers_mut(),
        info,
        ForwardedFor::from_config(
            frontend.config.forwarded_for,
            frontend.config.forwarded_for_replace,
        ),
    );
    if let Some((protocol, _)) = &upgrade {
        req.headers_mut().insert(UPGRADE, protocol.clone());
        req.headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("upgrade"));
    }
    let req = req.map(|b| IdleBody::new(b, frontend.timeout_client));
    let response = tokio::time::timeout(backend.timeouts.server, sender.send_request(req)).await;
    match response {
        Ok(Ok(mut resp))
            if resp.status() == StatusCode::SWITCHING_PROTOCOLS && upgrade.is_some() =>
        {
            log(&backend.name, &server_name, resp.status());
            let server_side = hyper::upgrade::on(&mut resp);
            if let Some((_, client_side)) = upgrade {
                let (idle, _) = backend.timeouts.tunnel_idle(frontend.timeout_client);
                let tunnel =
                    upgrade::tunnel(client_side, server_side, idle, lease, rt.retire.subscribe());
                if let Ok(mut t) = tunnels.lock() {
                    t.push(Box::pin(tunnel));
                }
            }
            let (parts, _) = resp.into_parts();
            Response::from_parts(parts, empty())
        }
        Ok(Ok(resp)) if resp.status() == StatusCode::SWITCHING_PROTOCOLS => {
            // A 101 nobody asked for (or not allowed): not passed on.
            log(&backend.name, &server_name, StatusCode::BAD_GATEWAY);
            local(
                StatusCode::BAD_GATEWAY,
                "unexpected protocol switch from server\n",
            )
        }
        Ok(Ok(resp)) => {
            log(&backend.name, &server_name, resp.status());
            let (mut parts, body) = resp.into_parts();
            for h in HOP_BY_HOP {
                parts.headers.remove(h);
            }
            let body = pump_response(
                body,
                lease,
                backend.timeouts.server,
                frontend.timeout_client,
            );
            Response::from_parts(parts, body.boxed())
        }
        Ok(Err(_)) => {
            log(&backend.name, &server_name, StatusCode::BAD_GATEWAY);
            local(StatusCode::BAD_GATEWAY, "bad response from server\n")
        }
        Err(_) => {
            log(&backend.name, &server_name, StatusCode::GATEWAY_TIMEOUT);
            local(StatusCode::GATEWAY_TIMEOUT, "server timeout\n")
        }
    }
}

fn empty() -> ProxyBody {
    Full::new(Bytes::new())
        .map_err(|e: Infallible| match e {})
        .boxed()
}
