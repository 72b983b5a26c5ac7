//! Plain HTTP on the console's port: every request gets a 301 to the same
//! host over HTTPS. The `Host` header is the client's text, so it goes
//! into `Location` only when it is a hostname or an IP literal; anything
//! else (`a@evil`, `evil/x`, spaces, a second port) is replaced by the
//! address the client connected to, so the answer never points elsewhere.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

/// The host part of a `Host` header (its port dropped), if it is a DNS
/// name or an IP literal; IPv6 comes back in brackets.
pub fn valid_host(header: &str) -> Option<String> {
    let header = header.trim();
    if let Some(rest) = header.strip_prefix('[') {
        let (ip, after) = rest.split_once(']')?;
        let ip: Ipv6Addr = ip.parse().ok()?;
        if !after.is_empty() && !is_port(after.strip_prefix(':')?) {
            return None;
        }
        return Some(format!("[{ip}]"));
    }
    let host = match header.split_once(':') {
        Some((host, port)) if is_port(port) => host,
        Some(_) => return None,
        None => header,
    };
    if host.parse::<std::net::Ipv4Addr>().is_ok() || is_dns_name(host) {
        Some(host.to_ascii_lowercase())
    } else {
        None
    }
}

fn is_port(s: &str) -> bool {
    !s.is_empty() && s.len() <= 5 && s.bytes().all(|b| b.is_ascii_digit())
}

/// RFC 1123 labels: letters, digits and inner hyphens, 1-63 each, 253 in
/// all; one trailing dot allowed.
fn is_dns_name(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// The `Location` for a plain request that arrived at `local`.
pub fn location(host_header: Option<&str>, local: SocketAddr) -> String {
    let host = host_header
        .and_then(valid_host)
        .unwrap_or_else(|| match local.ip() {
            IpAddr::V4(ip) => ip.to_string(),
            IpAddr::V6(ip) => format!("[{ip}]"),
        });
    format!("https://{host}:{}/", local.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_literals_are_kept_without_their_port() {
        assert_eq!(
            valid_host("lb1.example.com").as_deref(),
            Some("lb1.example.com")
        );
        assert_eq!(valid_host("LB1:5480").as_deref(), Some("lb1"));
        assert_eq!(valid_host("10.0.0.5:80").as_deref(), Some("10.0.0.5"));
        assert_eq!(valid_host("[fe80::1]:5480").as_deref(), Some("[fe80::1]"));
        assert_eq!(valid_host("[::1]").as_deref(), Some("[::1]"));
        assert_eq!(valid_host("host.").as_deref(), Some("host."));
    }

    #[test]
    fn junk_is_refused() {
        for bad in [
            "a@evil",
            "evil.com/x",
            "a b",
            "",
            ":80",
            "host:80:80",
            "host:port",
            "-a.b",
            "a..b",
            "[::1]x",
            "[not-ip]",
            "evil.com\r\nSet-Cookie: x",
            "é.com",
            &"a".repeat(64),
        ] {
            assert_eq!(valid_host(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_refused_host_falls_back_to_the_local_address() {
        let v4: SocketAddr = "192.0.2.7:5480".parse().expect("literal");
        assert_eq!(location(Some("a@evil"), v4), "https://192.0.2.7:5480/");
        assert_eq!(location(None, v4), "https://192.0.2.7:5480/");
        assert_eq!(location(Some("lb1:5480"), v4), "https://lb1:5480/");
        let v6: SocketAddr = "[2001:db8::1]:5480".parse().expect("literal");
        assert_eq!(location(Some("x y"), v6), "https://[2001:db8::1]:5480/");
    }
}
