//! Host/path routing for mode http (pure): first matching route wins, then
//! the default backend.

use crate::config::Route;

/// The host part of a Host header value: port removed, lower-cased;
/// `[v6]:port` keeps the brackets.
pub fn host_only(host: &str) -> String {
    let host = host.trim();
    let without_port = if host.starts_with('[') {
        host.find(']').map_or(host, |end| &host[..=end])
    } else {
        host.rsplit_once(':').map_or(host, |(h, p)| {
            if p.bytes().all(|b| b.is_ascii_digit()) {
                h
            } else {
                host
            }
        })
    };
    without_port.to_ascii_lowercase()
}

/// The backend for a request with `host` (Host header) and `path`.
pub fn route<'a>(
    routes: &'a [Route],
    default: Option<&'a str>,
    host: Option<&str>,
    path: &str,
) -> Option<&'a str> {
    let host = host.map(host_only);
    routes
        .iter()
        .find(|r| {
            let host_ok = r
                .host
                .as_deref()
                .is_none_or(|want| host.as_deref() == Some(want.to_ascii_lowercase().as_str()));
            let path_ok = r.path_prefix.as_deref().is_none_or(|p| path.starts_with(p));
            host_ok && path_ok
        })
        .map(|r| r.backend.as_str())
        .or(default)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(host: Option<&str>, prefix: Option<&str>, backend: &str) -> Route {
        Route {
            host: host.map(str::to_string),
            path_prefix: prefix.map(str::to_string),
            backend: backend.into(),
        }
    }

    #[test]
    fn first_match_then_default() {
        let routes = vec![
            r(Some("api.example.com"), None, "api"),
            r(None, Some("/static/"), "static"),
            r(Some("www.example.com"), Some("/admin"), "admin"),
        ];
        assert_eq!(
            route(&routes, Some("www"), Some("API.example.com:8443"), "/x"),
            Some("api")
        );
        assert_eq!(
            route(&routes, Some("www"), Some("other"), "/static/a.css"),
            Some("static")
        );
        assert_eq!(
            route(&routes, Some("www"), Some("www.example.com"), "/admin/x"),
            Some("admin")
        );
        assert_eq!(
            route(&routes, Some("www"), Some("www.example.com"), "/"),
            Some("www")
        );
        assert_eq!(route(&routes, None, None, "/"), None);
    }

    #[test]
    fn host_forms() {
        assert_eq!(host_only("Example.COM:80"), "example.com");
        assert_eq!(host_only("[2001:db8::1]:443"), "[2001:db8::1]");
        assert_eq!(host_only("example.com"), "example.com");
        assert_eq!(host_only("a:b"), "a:b");
    }
}
