//! Security headers on every answer of an admin listener.

use hyper::header::{
    HeaderMap, HeaderValue, CACHE_CONTROL, CONTENT_SECURITY_POLICY, REFERRER_POLICY,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};

/// Adds the headers both listeners send, with the listener's own CSP.
pub fn secure(headers: &mut HeaderMap, csp: &'static str) {
    // Admin pages show live state and carry tokens: never from a cache.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // Clickjacking: an admin's click on a framed page could drain servers.
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(csp));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // Nothing to other sites; but same-origin, not no-referrer: under
    // no-referrer browsers send `Origin: null` on form posts, and the
    // console's login checks that the Origin is the console itself.
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
}
