//! Checks on a request before it is routed (pure): RFC 9112 section 3.2
//! (one valid Host; an absolute-form target wins over Host) and methods a
//! reverse proxy does not serve.

use hyper::header::{HeaderValue, HOST};
use hyper::{Method, Request, StatusCode, Uri, Version};

/// Why a request is answered by lbd instead of a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Reject {
    #[error("CONNECT is not served here: lbd is a reverse proxy")]
    Connect,
    #[error("more than one Host header")]
    TwoHosts,
    #[error("missing Host header")]
    MissingHost,
    #[error("bad Host header")]
    BadHost,
}

impl Reject {
    pub fn status(self) -> StatusCode {
        match self {
            Self::Connect => StatusCode::METHOD_NOT_ALLOWED,
            Self::TwoHosts | Self::MissingHost | Self::BadHost => StatusCode::BAD_REQUEST,
        }
    }
}

/// Checks `req` and brings it to the form servers expect: an
/// absolute-form target (`GET http://host/path`) becomes origin-form with
/// its authority as the only Host (RFC 9112 3.2.2: the target's authority
/// wins over Host). Returns the host the request is for (`host[:port]`),
/// `None` only for HTTP/1.0 without one.
pub fn normalize<B>(req: &mut Request<B>) -> Result<Option<String>, Reject> {
    if req.method() == Method::CONNECT {
        return Err(Reject::Connect);
    }
    let mut hosts = req.headers().get_all(HOST).iter();
    let header = hosts.next().cloned();
    if hosts.next().is_some() {
        // RFC 9112 3.2: more than one Host is answered with 400, never
        // routed on one and forwarded with both.
        return Err(Reject::TwoHosts);
    }
    if let Some(authority) = req.uri().authority().cloned() {
        let host = authority.as_str();
        if !valid_host(host) {
            return Err(Reject::BadHost);
        }
        let value = HeaderValue::from_str(host).map_err(|_| Reject::BadHost)?;
        req.headers_mut().insert(HOST, value);
        let origin = req
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .parse::<Uri>()
            .map_err(|_| Reject::BadHost)?;
        *req.uri_mut() = origin;
        return Ok(Some(host.to_string()));
    }
    match header {
        Some(value) => {
            let host = value.to_str().map_err(|_| Reject::BadHost)?;
            if valid_host(host) {
                Ok(Some(host.to_string()))
            } else {
                Err(Reject::BadHost)
            }
        }
        None if req.version() == Version::HTTP_10 => Ok(None),
        None => Err(Reject::MissingHost),
    }
}

/// `host[:port]` where host is a DNS name or IPv4 address (letters,
/// digits, `-`, `.`, `_`) or a bracketed IPv6 address. Stricter than RFC
/// 3986's reg-name on purpose: this value is routed on and written into
/// redirects, and no real host name needs `@`, `%` or sub-delimiters.
pub fn valid_host(value: &str) -> bool {
    let (host, port) = if let Some(rest) = value.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else {
            return false;
        };
        if v6.parse::<std::net::Ipv6Addr>().is_err() {
            return false;
        }
        match after.strip_prefix(':') {
            Some(port) => ("v6", Some(port)),
            None if after.is_empty() => ("v6", None),
            None => return false,
        }
    } else {
        match value.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (value, None),
        }
    };
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    let port_ok = port.is_none_or(|p| p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    host_ok && port_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: &str, uri: &str, hosts: &[&str]) -> Request<()> {
        let mut b = Request::builder().method(method).uri(uri);
        for h in hosts {
            b = b.header(HOST, *h);
        }
        b.body(()).expect("request")
    }

    #[test]
    fn host_forms() {
        for good in [
            "example.com",
            "a.example.com:8443",
            "10.0.0.1:80",
            "[2001:db8::1]:443",
            "[::1]",
            "my_host",
            "x:",
        ] {
            assert!(valid_host(good), "{good}");
        }
        for bad in [
            "",
            "good@evil",
            "a b",
            "evil.com/x",
            "[::1",
            "[zz]:1",
            "h:99999x",
            "h:1:2",
            "a%2fb",
            ":80",
        ] {
            assert!(!valid_host(bad), "{bad}");
        }
    }

    #[test]
    fn two_hosts_are_rejected() {
        let mut r = req("GET", "/", &["a.example.com", "b.example.com"]);
        assert_eq!(normalize(&mut r), Err(Reject::TwoHosts));
        assert_eq!(Reject::TwoHosts.status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn absolute_form_wins_over_host_and_becomes_origin_form() {
        let mut r = req(
            "GET",
            "http://api.example.com:8080/x?y=1",
            &["www.example.com"],
        );
        assert_eq!(normalize(&mut r), Ok(Some("api.example.com:8080".into())));
        assert_eq!(r.uri().to_string(), "/x?y=1");
        let hosts: Vec<_> = r.headers().get_all(HOST).iter().collect();
        assert_eq!(hosts, ["api.example.com:8080"]);
    }

    #[test]
    fn userinfo_in_the_target_is_rejected() {
        let mut r = req("GET", "http://good@evil.example/", &[]);
        assert_eq!(normalize(&mut r), Err(Reject::BadHost));
    }

    #[test]
    fn connect_and_missing_host() {
        let mut r = req("CONNECT", "example.com:443", &["example.com:443"]);
        assert_eq!(normalize(&mut r), Err(Reject::Connect));
        assert_eq!(Reject::Connect.status(), StatusCode::METHOD_NOT_ALLOWED);
        let mut r = req("GET", "/", &[]);
        assert_eq!(normalize(&mut r), Err(Reject::MissingHost));
        let mut r = req("GET", "/", &[]);
        *r.version_mut() = Version::HTTP_10;
        assert_eq!(normalize(&mut r), Ok(None));
        let mut r = req("GET", "/", &["good@evil"]);
        assert_eq!(normalize(&mut r), Err(Reject::BadHost));
    }
}
