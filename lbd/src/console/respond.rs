//! The console's answers, each with the security headers: the shared ones
//! plus a CSP that allows only the console's own script, style and API
//! (no inline script or style at all) and HSTS.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CONTENT_TYPE, LOCATION, STRICT_TRANSPORT_SECURITY};
use hyper::{Response, StatusCode};
use serde::Serialize;

pub type Body = Full<Bytes>;

/// Scripts, styles and fetch() only from the console itself; no frames,
/// plugins, inline code or foreign form targets.
pub const CONTENT_SECURITY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'";
/// A year, as browsers' preload lists expect; no includeSubDomains: the
/// appliance does not speak for its domain's other hosts.
const HSTS: &str = "max-age=31536000";

pub fn respond(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Body> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    let headers = r.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    crate::web::headers::secure(headers, CONTENT_SECURITY);
    headers.insert(STRICT_TRANSPORT_SECURITY, HeaderValue::from_static(HSTS));
    r
}

pub fn html(status: StatusCode, body: String) -> Response<Body> {
    respond(status, "text/html; charset=utf-8", body)
}

pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Response<Body> {
    match serde_json::to_string_pretty(value) {
        Ok(text) => respond(status, "application/json", text),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("encoding the answer: {e}"),
            "report this as a bug",
        ),
    }
}

/// The API's error shape: what went wrong and what to do about it.
#[derive(Debug, Serialize)]
pub struct ApiError<'a> {
    pub error: &'a str,
    pub fix: &'a str,
}

pub fn error(status: StatusCode, error: &str, fix: &str) -> Response<Body> {
    json(status, &ApiError { error, fix })
}

/// 303 See Other: after a form post, the browser GETs `to`.
pub fn see_other(to: &'static str) -> Response<Body> {
    let mut r = respond(StatusCode::SEE_OTHER, "text/plain; charset=utf-8", "");
    r.headers_mut()
        .insert(LOCATION, HeaderValue::from_static(to));
    r
}
