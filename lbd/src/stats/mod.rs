//! The stats and admin page (HAProxy's `stats uri`, default :8404):
//!
//! | path          | method | who            | what                          |
//! |---------------|--------|----------------|-------------------------------|
//! | `/`           | GET    | any user       | HTML, refreshes itself        |
//! | `/stats.json` | GET    | any user       | the `show stat` snapshot      |
//! | `/stats.csv`  | GET    | any user       | server rows                   |
//! | `/metrics`    | GET    | any user       | Prometheus text               |
//! | `/action`     | POST   | admin + CSRF   | ready/drain/maint, weight     |
//!
//! With no users configured the page is read-only without a login and
//! actions are refused. The listen address is taken at start; users and
//! refresh follow reloads.
//!
//! Idle and slowloris sockets cannot lock admins out: [`slots`] closes the
//! longest-idle connection to let a new one in. Every answer carries
//! headers that forbid framing, sniffing, caching and referrers, and a
//! CSP that allows the page's inline style and its forms, nothing else.

pub mod render;

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, LOCATION, WWW_AUTHENTICATE};
use hyper::{Method, Request, Response, StatusCode};

use self::render::{Node, Page};
use crate::config::Group;
use crate::daemon::Daemon;
use crate::proxy::listen::{bind, ListenError};
use crate::report;
use crate::runtime::AdminState;
use crate::web::auth::{Auth, User};
use crate::web::form::{field, parse_form};
use crate::web::hostname;
use crate::web::slots::{Slots, MAX_CONNECTIONS, MAX_PER_SOURCE};

/// Largest admin form body.
const MAX_FORM: usize = 4096;
/// The page is one document with an inline `<style>` and forms posting
/// to itself: no scripts, images, fonts or frames from anywhere.
const CONTENT_SECURITY: &str = "default-src 'none'; style-src 'unsafe-inline'; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Errors starting the stats server.
#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    #[error("stats listener: {0}")]
    Listen(#[from] ListenError),
}

type Body = Full<Bytes>;

fn respond(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Body> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    crate::web::headers::secure(r.headers_mut(), CONTENT_SECURITY);
    r
}

fn text(status: StatusCode, body: impl Into<String>) -> Response<Body> {
    respond(status, "text/plain; charset=utf-8", body.into())
}

/// Binds `addr` and serves the page in the background; `auth` is the
/// daemon's, shared with the console.
pub fn start(addr: SocketAddr, daemon: Arc<Daemon>, auth: Arc<Auth>) -> Result<(), StatsError> {
    let listener = bind(addr)?;
    let slots = Slots::new(MAX_CONNECTIONS, MAX_PER_SOURCE);
    let serve = move |stream, peer: SocketAddr, slot| {
        let daemon = daemon.clone();
        let auth = auth.clone();
        let handler = move |req| {
            let daemon = daemon.clone();
            let auth = auth.clone();
            async move { handle(req, peer.ip(), &daemon, &auth).await }
        };
        crate::web::serve::connection(stream, peer, slot, "stats", handler)
    };
    tokio::spawn(crate::web::serve::accept_loop(
        listener, slots, "stats", serve,
    ));
    tracing::info!(%addr, "stats page listening");
    Ok(())
}

async fn handle(
    req: Request<Incoming>,
    source: std::net::IpAddr,
    daemon: &Daemon,
    auth: &Auth,
) -> Response<Body> {
    let rt = daemon.runtime();
    let Some(stats) = rt.config.stats.clone() else {
        return text(StatusCode::NOT_FOUND, "stats disabled in config\n");
    };
    let user: Option<User> = if stats.users.is_empty() {
        None
    } else {
        let header = req
            .headers()
            .get(AUTHORIZATION)
            .and_then(|h| h.to_str().ok());
        match auth.check(&stats.users, source, header).await {
            Some(u) => Some(u),
            None => {
                let mut r = text(StatusCode::UNAUTHORIZED, "login required\n");
                r.headers_mut().insert(
                    WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"lbd stats\""),
                );
                return r;
            }
        }
    };
    let is_admin = user.as_ref().is_some_and(|u| u.group == Group::Admin);
    let snapshot = || report::stat(&rt, &daemon.listeners);
    let hostname = hostname();
    let vrrp = daemon.vrrp_status.rows();
    let node = Node {
        hostname: &hostname,
        vrrp: &vrrp,
    };
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/") => {
            let token = user
                .as_ref()
                .filter(|_| is_admin)
                .map(|u| auth.csrf_token(&u.name));
            let page = Page {
                user: user.as_ref().map(|u| u.name.as_str()),
                csrf: token.as_deref(),
                refresh_s: stats.refresh.0.as_secs().max(1),
                message: None,
                node: &node,
            };
            respond(
                StatusCode::OK,
                "text/html; charset=utf-8",
                render::html(&snapshot(), &page),
            )
        }
        (&Method::GET, "/stats.json") => respond(
            StatusCode::OK,
            "application/json",
            serde_json::to_string(&snapshot()).unwrap_or_default(),
        ),
        (&Method::GET, "/stats.csv") => respond(
            StatusCode::OK,
            "text/csv; charset=utf-8",
            render::csv(&snapshot()),
        ),
        (&Method::GET, "/metrics") => respond(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            render::prometheus(
                &snapshot(),
                &node,
                daemon.reloads.load(std::sync::atomic::Ordering::Relaxed),
                daemon.current_connections(),
                crate::log_queue::dropped(),
            ),
        ),
        (&Method::POST, "/action") => match user {
            Some(u) if u.group == Group::Admin => action(req, daemon, auth, &u).await,
            _ => text(StatusCode::FORBIDDEN, "admin group required for actions\n"),
        },
        (_, "/" | "/stats.json" | "/stats.csv" | "/metrics" | "/action") => {
            text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n")
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

async fn action(
    req: Request<Incoming>,
    daemon: &Daemon,
    auth: &Auth,
    user: &User,
) -> Response<Body> {
    let body = match Limited::new(req.into_body(), MAX_FORM).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return text(StatusCode::PAYLOAD_TOO_LARGE, "form too large\n"),
    };
    let form = parse_form(&String::from_utf8_lossy(&body));
    if !field(&form, "csrf").is_some_and(|t| auth.csrf_ok(&user.name, t)) {
        return text(
            StatusCode::FORBIDDEN,
            "missing or wrong CSRF token: reload the page and retry\n",
        );
    }
    let Some(server) = field(&form, "server") else {
        return text(StatusCode::BAD_REQUEST, "missing server\n");
    };
    let rt = daemon.runtime();
    let result = match field(&form, "action") {
        Some("weight") => match field(&form, "weight").and_then(|w| w.parse::<u32>().ok()) {
            Some(w) => daemon.admin.set_weight(&rt, server, w),
            None => return text(StatusCode::BAD_REQUEST, "weight must be a number 0..=256\n"),
        },
        Some(a) => match AdminState::parse(a) {
            Some(state) => daemon.admin.set_state(&rt, server, state),
            None => {
                return text(
                    StatusCode::BAD_REQUEST,
                    "action must be ready, drain, maint or weight\n",
                )
            }
        },
        None => return text(StatusCode::BAD_REQUEST, "missing action\n"),
    };
    match result {
        Ok(()) => {
            tracing::info!(user = %user.name, %server, "stats page action");
            let mut r = text(StatusCode::SEE_OTHER, "done\n");
            r.headers_mut()
                .insert(LOCATION, HeaderValue::from_static("/"));
            r
        }
        Err(e) => text(StatusCode::BAD_REQUEST, format!("{e}\n")),
    }
}
