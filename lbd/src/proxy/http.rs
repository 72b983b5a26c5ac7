//! Mode http: hyper on the client side, one server connection per request
//! on the other (balancing per request, as HAProxy does in http mode).
//!
//! ```text
//!  client --(TLS?)--> hyper server conn --> handle(request)
//!      redirect_https? ----------------------> 302 https://host/path
//!      route(host, path) -> backend -> connect_server (+PROXY header)
//!      request + X-Forwarded-For/-Proto, hop-by-hop headers removed
//!      --> hyper client conn --> response (body streamed; server slot held
//!          until the body ends) --> one log line per request
//! ```
//! Protocol upgrades (WebSocket): the request keeps its Upgrade headers;
//! on a 101 both connections are upgraded and bytes copied as in mode tcp.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper::header::{HeaderName, HeaderValue, CONNECTION, HOST, LOCATION, UPGRADE};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use super::copy::copy_bidirectional;
use super::route::{host_only, route};
use super::tcp::{connect_server, proxy_header};
use crate::runtime::{FrontendRt, Lease, Runtime};

/// Headers that belong to one hop and are not forwarded (RFC 9110 7.6.1).
const HOP_BY_HOP: [&str; 7] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
    "transfer-encoding",
];

type ProxyBody = BoxBody<Bytes, hyper::Error>;

/// Who is on the other end of a client connection.
#[derive(Debug, Clone, Copy)]
pub struct ClientInfo {
    /// The client (from the PROXY header when accepted).
    pub client: SocketAddr,
    /// The address the client connected to.
    pub local: SocketAddr,
    pub tls: bool,
}

/// A response body that holds the server slot until it ends.
struct LeasedBody {
    inner: Incoming,
    _lease: Lease,
}

impl Body for LeasedBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
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
    let timeout = frontend.timeout_client;
    let mut superseded = rt.superseded.subscribe();
    let service = hyper::service::service_fn(move |req| {
        let rt = rt.clone();
        let frontend = frontend.clone();
        async move { Ok::<_, Infallible>(handle(&rt, &frontend, req, info).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(timeout)
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        () = until_true(&mut superseded) => {
            // Reload or stop: finish the request in flight, then close
            // (HAProxy closes idle keep-alive connections the same way).
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(client = %info.client, error = %e, "http connection ended");
    }
}

/// Resolves once the flag is true (never if its sender is gone).
async fn until_true(rx: &mut tokio::sync::watch::Receiver<bool>) {
    if rx.wait_for(|v| *v).await.is_err() {
        std::future::pending::<()>().await;
    }
}

fn request_host(req: &Request<Incoming>) -> Option<String> {
    req.headers()
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| req.uri().authority().map(|a| a.to_string()))
}

async fn handle(
    rt: &Runtime,
    frontend: &FrontendRt,
    mut req: Request<Incoming>,
    info: ClientInfo,
) -> Response<ProxyBody> {
    let start = Instant::now();
    let method = req.method().clone();
    let path = req
        .uri()
        .path_and_query()
        .map_or_else(|| "/".to_string(), ToString::to_string);
    let host = request_host(&req);
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
    if frontend.config.redirect_https {
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
    // A protocol upgrade (WebSocket): keep its headers for the server and
    // take the client side's upgrade future before the request moves on.
    let upgrade = wants_upgrade(&req).then(|| {
        (
            req.headers().get(UPGRADE).cloned(),
            hyper::upgrade::on(&mut req),
        )
    });
    forwarded_headers(&mut req, info, frontend.config.forwarded_for);
    if let Some((Some(protocol), _)) = &upgrade {
        req.headers_mut().insert(UPGRADE, protocol.clone());
        req.headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("upgrade"));
    }
    let response = tokio::time::timeout(backend.timeouts.server, sender.send_request(req)).await;
    match response {
        Ok(Ok(mut resp))
            if resp.status() == StatusCode::SWITCHING_PROTOCOLS && upgrade.is_some() =>
        {
            log(&backend.name, &server_name, resp.status());
            let server_side = hyper::upgrade::on(&mut resp);
            if let Some((_, client_side)) = upgrade {
                let (idle, _) = backend.timeouts.tunnel_idle(frontend.timeout_client);
                tokio::spawn(tunnel(client_side, server_side, idle, lease));
            }
            let (parts, _) = resp.into_parts();
            Response::from_parts(parts, empty())
        }
        Ok(Ok(resp)) => {
            log(&backend.name, &server_name, resp.status());
            let (mut parts, body) = resp.into_parts();
            for h in HOP_BY_HOP {
                parts.headers.remove(h);
            }
            Response::from_parts(
                parts,
                LeasedBody {
                    inner: body,
                    _lease: lease,
                }
                .boxed(),
            )
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

/// `Connection: upgrade` with an `Upgrade` header.
fn wants_upgrade(req: &Request<Incoming>) -> bool {
    let connection_upgrade = req
        .headers()
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| {
            v.split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
        });
    connection_upgrade && req.headers().contains_key(UPGRADE)
}

fn empty() -> ProxyBody {
    Full::new(Bytes::new())
        .map_err(|e: Infallible| match e {})
        .boxed()
}

/// After a 101, copies bytes between the two upgraded connections, holding
/// the server slot until the tunnel ends.
async fn tunnel(
    client: hyper::upgrade::OnUpgrade,
    server: hyper::upgrade::OnUpgrade,
    idle: Duration,
    lease: Lease,
) {
    match tokio::try_join!(client, server) {
        Ok((c, s)) => {
            let r = copy_bidirectional(TokioIo::new(c), TokioIo::new(s), idle).await;
            lease
                .server
                .bytes_in
                .fetch_add(r.client_to_server, Ordering::Relaxed);
            lease
                .server
                .bytes_out
                .fetch_add(r.server_to_client, Ordering::Relaxed);
        }
        Err(e) => tracing::debug!(server = %lease.server.key(), error = %e, "upgrade failed"),
    }
}

/// Removes hop-by-hop headers and, when `add` is set, adds
/// `X-Forwarded-For` (appended to any list the client sent) and
/// `X-Forwarded-Proto`.
fn forwarded_headers(req: &mut Request<Incoming>, info: ClientInfo, add: bool) {
    let headers = req.headers_mut();
    // Headers named in Connection are hop-by-hop too.
    let named: Vec<String> = headers
        .get_all(hyper::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|s| s.trim().to_ascii_lowercase()))
        .collect();
    for h in HOP_BY_HOP.iter().copied().map(str::to_string).chain(named) {
        if let Ok(name) = HeaderName::from_bytes(h.as_bytes()) {
            headers.remove(name);
        }
    }
    if !add {
        return;
    }
    let ip = info.client.ip().to_canonical().to_string();
    let xff = HeaderName::from_static("x-forwarded-for");
    let value = match headers.get(&xff).and_then(|v| v.to_str().ok()) {
        Some(prev) => format!("{prev}, {ip}"),
        None => ip,
    };
    if let Ok(v) = HeaderValue::from_str(&value) {
        headers.insert(xff, v);
    }
    let proto = if info.tls { "https" } else { "http" };
    headers.insert(
        HeaderName::from_static("x-forwarded-proto"),
        HeaderValue::from_static(proto),
    );
}
