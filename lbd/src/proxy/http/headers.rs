//! Header rewriting on the way to a server (pure): hop-by-hop headers
//! removed (RFC 9110 7.6.1), `X-Forwarded-For`/`-Proto` added.

use hyper::header::{HeaderMap, HeaderName, HeaderValue, CONNECTION, CONTENT_LENGTH, HOST};

use super::ClientInfo;

/// Headers that belong to one hop and are not forwarded (RFC 9110 7.6.1).
pub const HOP_BY_HOP: [&str; 7] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
    "transfer-encoding",
];

/// Headers a client cannot make hop-by-hop by naming them in
/// `Connection`: the server needs them to route and to frame the message
/// (`Connection: host` must not send a request on without its Host).
const END_TO_END: [HeaderName; 2] = [HOST, CONTENT_LENGTH];

/// Client headers that claim where a request came from; dropped with
/// `forwarded_for_replace`.
const CLIENT_CLAIMS: [&str; 3] = ["x-forwarded-for", "forwarded", "x-real-ip"];

/// What to do with `X-Forwarded-For`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardedFor {
    /// Leave the client's headers alone, add none.
    Off,
    /// Append the client address to the client's list (HAProxy's
    /// `option forwardfor`).
    Append,
    /// The client address only; the client's `Forwarded` and `X-Real-IP`
    /// dropped too.
    Replace,
}

impl ForwardedFor {
    pub fn from_config(add: bool, replace: bool) -> Self {
        match (add, replace) {
            (false, _) => Self::Off,
            (true, false) => Self::Append,
            (true, true) => Self::Replace,
        }
    }
}

/// Removes hop-by-hop headers (and those named in `Connection`, except
/// [`END_TO_END`]) and adds the forwarding headers `mode` asks for.
pub fn forwarded_headers(headers: &mut HeaderMap, info: ClientInfo, mode: ForwardedFor) {
    let named: Vec<String> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|s| s.trim().to_ascii_lowercase()))
        .collect();
    for h in HOP_BY_HOP.iter().copied().map(str::to_string).chain(named) {
        if let Ok(name) = HeaderName::from_bytes(h.as_bytes()) {
            if !END_TO_END.contains(&name) {
                headers.remove(name);
            }
        }
    }
    if mode == ForwardedFor::Off {
        return;
    }
    let xff = HeaderName::from_static("x-forwarded-for");
    if mode == ForwardedFor::Replace {
        for h in CLIENT_CLAIMS {
            headers.remove(h);
        }
    }
    let ip = info.client.ip().to_canonical().to_string();
    // Several X-Forwarded-For lines are one list (RFC 9110 5.3).
    let prev: Vec<&str> = headers
        .get_all(&xff)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let value = if prev.is_empty() {
        ip
    } else {
        format!("{}, {ip}", prev.join(", "))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> ClientInfo {
        ClientInfo {
            client: "192.0.2.7:40000".parse().expect("literal"),
            local: "127.0.0.1:80".parse().expect("literal"),
            tls: false,
        }
    }

    fn map(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(*k, HeaderValue::from_static(v));
        }
        m
    }

    #[test]
    fn connection_cannot_strip_host_or_content_length() {
        let mut h = map(&[
            ("host", "www.example.com"),
            ("content-length", "3"),
            ("connection", "host, content-length, x-secret"),
            ("x-secret", "1"),
        ]);
        forwarded_headers(&mut h, info(), ForwardedFor::Off);
        assert_eq!(
            h.get(HOST).map(|v| v.as_bytes()),
            Some(&b"www.example.com"[..])
        );
        assert!(h.contains_key(CONTENT_LENGTH));
        assert!(!h.contains_key("x-secret"), "named in Connection");
        assert!(!h.contains_key(CONNECTION));
    }

    #[test]
    fn append_keeps_the_client_list_replace_drops_claims() {
        let claims = [
            ("x-forwarded-for", "10.9.9.9"),
            ("x-forwarded-for", "10.8.8.8"),
            ("forwarded", "for=10.9.9.9"),
            ("x-real-ip", "10.9.9.9"),
        ];
        let mut h = map(&claims);
        forwarded_headers(&mut h, info(), ForwardedFor::Append);
        assert_eq!(h["x-forwarded-for"], "10.9.9.9, 10.8.8.8, 192.0.2.7");
        assert!(h.contains_key("forwarded"));
        let mut h = map(&claims);
        forwarded_headers(&mut h, info(), ForwardedFor::Replace);
        assert_eq!(h["x-forwarded-for"], "192.0.2.7");
        assert!(!h.contains_key("forwarded") && !h.contains_key("x-real-ip"));
        assert_eq!(h["x-forwarded-proto"], "http");
    }
}
