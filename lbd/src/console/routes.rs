//! The console's requests:
//!
//! | path                              | method | who              |
//! |-----------------------------------|--------|------------------|
//! | `/login`                          | GET    | anyone           |
//! | `/login`                          | POST   | anyone (form)    |
//! | `/console.js`, `/console.css`     | GET    | anyone           |
//! | `/api/v1/openapi.json`            | GET    | anyone           |
//! | `/`                               | GET    | logged in        |
//! | `/logout`                         | POST   | session + CSRF   |
//! | `/api/v1/status`                  | GET    | logged in/Basic  |
//! | `/api/v1/servers[/{b}/{s}]`       | POST   | admin, CSRF      |
//! | `/api/v1/config...`, `/logs`      | GET    | logged in/Basic  |
//! | `/api/v1/config...`, `/power`     | POST   | admin, CSRF      |
//!
//! Every request other than GET and HEAD from a session must carry the
//! session's CSRF token (`X-CSRF-Token` header or `csrf` form field);
//! without it the answer is 403 whatever the path.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderValue, CONTENT_TYPE, HOST, ORIGIN, SET_COOKIE};
use hyper::http::request::Parts;
use hyper::{Method, Request, Response, StatusCode};
use ring::rand::SystemRandom;

use super::caller::{cookie, identify, Caller, Via, SESSION_COOKIE};
use super::pages;
use super::respond::{error, html, json, respond, see_other, Body};
use super::session::{same, secret, tag, Session, Sessions};
use super::{api, config_api, status};
use crate::appliance_bridge::Bridge;
use crate::config::Group;
use crate::daemon::Daemon;
use crate::web::auth::{Auth, Users};
use crate::web::form::{decode, field, parse_form};

/// Largest request body (a batch of server changes).
const MAX_BODY: usize = 64 * 1024;
/// The CSRF token's header.
const CSRF_HEADER: &str = "x-csrf-token";
/// Cookie attributes: never sent to scripts, over plain HTTP or with a
/// request another site starts.
const COOKIE_FLAGS: &str = "HttpOnly; Secure; SameSite=Strict; Path=/";

/// The console's state: the daemon, the shared password gate, sessions.
pub struct Console {
    pub daemon: Arc<Daemon>,
    pub auth: Arc<Auth>,
    sessions: Mutex<Sessions>,
    rng: SystemRandom,
    /// The charts' last hours, sampled on a task of its own.
    history: Arc<Mutex<crate::history::History>>,
    /// init's appliance store (`console.appliance_socket`, taken at start).
    bridge: Bridge,
}

impl Console {
    pub fn new(daemon: Arc<Daemon>, auth: Arc<Auth>) -> Self {
        let socket = daemon.runtime().config.console.as_ref().map_or_else(
            || std::path::PathBuf::from(lbd_config::DEFAULT_APPLIANCE_SOCKET),
            |c| c.appliance_socket.clone(),
        );
        Self {
            bridge: Bridge::new(socket),
            history: crate::history::start(daemon.clone()),
            daemon,
            auth,
            sessions: Mutex::new(Sessions::default()),
            rng: SystemRandom::new(),
        }
    }
}

fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    respond(status, "text/plain; charset=utf-8", body)
}

/// Answers one request from `source`.
pub async fn handle(
    console: Arc<Console>,
    req: Request<Incoming>,
    source: IpAddr,
) -> Response<Body> {
    let rt = console.daemon.runtime();
    let Some(cfg) = rt.config.console.clone() else {
        return text(StatusCode::NOT_FOUND, "console disabled in config\n");
    };
    let empty = Users::new();
    let users = rt.config.stats.as_ref().map_or(&empty, |s| &s.users);
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let method = parts.method.clone();
    match (&method, path.as_str()) {
        (&Method::GET, "/console.js") => {
            return respond(
                StatusCode::OK,
                "text/javascript; charset=utf-8",
                pages::SCRIPT,
            )
        }
        (&Method::GET, "/console.css") => {
            return respond(StatusCode::OK, "text/css; charset=utf-8", pages::STYLE)
        }
        (&Method::GET, "/charts.js") => {
            return respond(
                StatusCode::OK,
                "text/javascript; charset=utf-8",
                pages::CHARTS_SCRIPT,
            )
        }
        (&Method::GET, "/charts.css") => {
            return respond(
                StatusCode::OK,
                "text/css; charset=utf-8",
                pages::CHARTS_STYLE,
            )
        }
        (&Method::GET, "/api/v1/openapi.json") => {
            return respond(StatusCode::OK, "application/json", pages::OPENAPI)
        }
        (&Method::GET, "/login") => {
            return html(StatusCode::OK, pages::login(&crate::web::hostname(), None))
        }
        (&Method::POST, "/login") => {
            return login(&console, &parts, body, users, source, cfg.session_idle.0).await
        }
        _ => {}
    }
    let caller = match identify(
        &parts.headers,
        &console.auth,
        &console.sessions,
        users,
        cfg.session_idle.0,
        source,
    )
    .await
    {
        Ok(Some(c)) => c,
        Ok(None) if method == Method::GET && pages::is_page(&path) => return see_other("/login"),
        Ok(None) if method == Method::POST && path == "/logout" => return see_other("/login"),
        Ok(None) => {
            return error(
                StatusCode::UNAUTHORIZED,
                "not logged in, or the session ended",
                "log in at /login, or send HTTP Basic credentials of a [stats.users] user",
            )
        }
        Err(_) => {
            return error(
                StatusCode::UNAUTHORIZED,
                "wrong user name or password",
                "send the credentials of a [stats.users] user",
            )
        }
    };
    if method == Method::GET || method == Method::HEAD {
        if let Some(r) = config_api::get(&console.bridge, &path, parts.uri.query()).await {
            return r;
        }
        return read(&console, &caller, &path, parts.uri.query());
    }
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request body too large",
                &format!("send at most {MAX_BODY} bytes"),
            )
        }
    };
    if let Some(refused) = change_allowed(&caller, &parts.headers, &body, &path) {
        return refused;
    }
    change(&console, &caller, &method, &path, &body).await
}

/// GET requests of a logged-in caller.
fn read(console: &Console, caller: &Caller, path: &str, query: Option<&str>) -> Response<Body> {
    match path {
        page if pages::is_page(page) => {
            let csrf = match &caller.via {
                Via::Session { csrf, .. } => csrf.as_str(),
                Via::Basic => "",
            };
            let vrrp = console
                .daemon
                .vrrp_status
                .rows()
                .first()
                .map_or_else(|| "no VRRP".to_string(), |r| r.state.clone());
            let view = pages::View {
                node: &crate::web::hostname(),
                vrrp: &vrrp,
                user: &caller.user,
                group: caller.group,
                csrf,
            };
            match pages::page(page, &view) {
                Some(body) => html(StatusCode::OK, body),
                None => not_found(page),
            }
        }
        "/api/v1/status" => json(StatusCode::OK, &status::status(&console.daemon)),
        "/api/v1/history" => history(console, query),
        _ => not_found(path),
    }
}

/// `GET /api/v1/history[?since=UNIX_SECONDS]`: the charts' points.
fn history(console: &Console, query: Option<&str>) -> Response<Body> {
    let since = match query.and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("since="))) {
        None => 0,
        Some(n) => match n.parse::<u64>() {
            Ok(n) => n,
            Err(_) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "since is not a number of seconds",
                    "give since=UNIX_SECONDS, or leave it out for the whole history",
                )
            }
        },
    };
    match console.history.lock() {
        Ok(h) => json(StatusCode::OK, &h.view(since)),
        Err(_) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the history is being rebuilt",
            "try again in a few seconds",
        ),
    }
}

fn not_found(path: &str) -> Response<Body> {
    match path {
        "/" | "/api/v1/status" | "/api/v1/history" | "/logout" | "/api/v1/servers" => error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed here",
            "see /api/v1/openapi.json",
        ),
        p if config_api::owns(p) => error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed here",
            "see /api/v1/openapi.json",
        ),
        p if p.starts_with("/api/v1/servers/") => error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed here",
            "POST a change; GET /api/v1/status to read",
        ),
        _ => error(
            StatusCode::NOT_FOUND,
            "no such page",
            "see /api/v1/openapi.json",
        ),
    }
}

/// The CSRF rule and the role rule, for any request that is not a read.
fn change_allowed(
    caller: &Caller,
    headers: &HeaderMap,
    body: &Bytes,
    path: &str,
) -> Option<Response<Body>> {
    match &caller.via {
        Via::Session { csrf, .. } => {
            let form;
            let sent = match headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()) {
                Some(token) => Some(token),
                None => {
                    form = parse_form(&String::from_utf8_lossy(body));
                    field(&form, "csrf")
                }
            };
            if !sent.is_some_and(|t| same(t, csrf)) {
                return Some(error(
                    StatusCode::FORBIDDEN,
                    "missing or wrong CSRF token",
                    "send the session's token in X-CSRF-Token (the dashboard's lbd-csrf meta tag); reload the page and retry",
                ));
            }
        }
        Via::Basic => {
            let is_json = headers
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.trim_start().starts_with("application/json"));
            if !is_json {
                return Some(error(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "changes with HTTP Basic must be sent as application/json",
                    "add -H 'Content-Type: application/json'",
                ));
            }
        }
    }
    if caller.group != Group::Admin && path != "/logout" {
        return Some(error(
            StatusCode::FORBIDDEN,
            &format!(
                "user {} is read-only: it may look but not change anything",
                caller.user
            ),
            "log in as a user of group admin",
        ));
    }
    None
}

/// POST (and other changes) of a caller that passed the CSRF and role rules.
async fn change(
    console: &Console,
    caller: &Caller,
    method: &Method,
    path: &str,
    body: &Bytes,
) -> Response<Body> {
    if method != Method::POST {
        return not_found(path);
    }
    if path == "/logout" {
        return logout(console, caller);
    }
    if let Some(r) = config_api::post(&console.bridge, caller, path, body).await {
        return r;
    }
    let changes = if path == "/api/v1/servers" {
        api::batch(body)
    } else if let Some(key) = path.strip_prefix("/api/v1/servers/") {
        match key.split_once('/') {
            Some((b, s)) if !b.is_empty() && !s.is_empty() && !s.contains('/') => {
                api::one(format!("{}/{}", decode(b), decode(s)), body)
            }
            _ => {
                return error(
                    StatusCode::NOT_FOUND,
                    "expected /api/v1/servers/{backend}/{server}",
                    "name the server as GET /api/v1/status lists it",
                )
            }
        }
    } else {
        return not_found(path);
    };
    match changes {
        Ok(changes) => api::apply(console.daemon.clone(), &caller.user, changes).await,
        Err(bad) => bad.response(),
    }
}

/// The cookie that carries `id`, or (empty) the one that ends it.
fn session_cookie(id: Option<&str>) -> HeaderValue {
    let value = match id {
        Some(id) => format!("{SESSION_COOKIE}={id}; {COOKIE_FLAGS}"),
        None => format!("{SESSION_COOKIE}=; Max-Age=0; {COOKIE_FLAGS}"),
    };
    HeaderValue::from_str(&value)
        .unwrap_or_else(|_| HeaderValue::from_static("lbd_session=; Max-Age=0"))
}

fn logout(console: &Console, caller: &Caller) -> Response<Body> {
    if let Via::Session { id, .. } = &caller.via {
        if let Ok(mut s) = console.sessions.lock() {
            s.remove(id);
        }
        tracing::info!(user = %caller.user, "console logout");
    }
    let mut r = see_other("/login");
    r.headers_mut().insert(SET_COOKIE, session_cookie(None));
    r
}

/// A login form's Origin, when the browser sends one, must be this very
/// console: another site cannot log a browser in as someone else.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    origin == format!("https://{host}")
}

async fn login(
    console: &Console,
    parts: &Parts,
    body: Incoming,
    users: &Users,
    source: IpAddr,
    idle: std::time::Duration,
) -> Response<Body> {
    let node = crate::web::hostname();
    let refuse = |status, message: &str| html(status, pages::login(&node, Some(message)));
    if !same_origin(&parts.headers) {
        return refuse(
            StatusCode::FORBIDDEN,
            "This login form was sent from another site.",
        );
    }
    let Ok(body) = Limited::new(body, 4096)
        .collect()
        .await
        .map(|b| b.to_bytes())
    else {
        return refuse(StatusCode::PAYLOAD_TOO_LARGE, "The form is too large.");
    };
    let form = parse_form(&String::from_utf8_lossy(&body));
    let (Some(name), Some(password)) = (field(&form, "user"), field(&form, "password")) else {
        return refuse(StatusCode::BAD_REQUEST, "Enter a user name and a password.");
    };
    let Some(user) = console.auth.login(users, source, name, password).await else {
        tracing::warn!(%source, user = %name, "console login failed");
        let message = if users.is_empty() {
            "No users are configured: add [stats.users] (lbd hash-password makes the hash)."
        } else {
            "Wrong user name or password."
        };
        return refuse(StatusCode::UNAUTHORIZED, message);
    };
    let (Ok(id), Ok(csrf)) = (secret(&console.rng), secret(&console.rng)) else {
        return refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            "No system randomness for a session.",
        );
    };
    let password_tag = users
        .get(&user.name)
        .map(|u| tag(&u.password_hash))
        .unwrap_or_default();
    if let Ok(mut s) = console.sessions.lock() {
        // A new id at every login: a planted cookie never becomes a session.
        if let Some(old) = cookie(&parts.headers, SESSION_COOKIE) {
            s.remove(&old);
        }
        s.insert(
            &id,
            Session::new(
                user.name.clone(),
                user.group,
                csrf,
                password_tag,
                Instant::now(),
            ),
            idle,
        );
    }
    tracing::info!(%source, user = %user.name, role = pages::role(user.group), "console login");
    let mut r = see_other("/");
    r.headers_mut()
        .insert(SET_COOKIE, session_cookie(Some(&id)));
    r
}
