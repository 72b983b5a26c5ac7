//! A server address: `IP:port` or `host.name:port`. Names are resolved by
//! lbd itself (no NSS), and retried (lbd's `resolve` module).

use std::fmt;
use std::net::SocketAddr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Where a server is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ServerAddr {
    Ip(SocketAddr),
    Name { host: String, port: u16 },
}

impl ServerAddr {
    pub fn port(&self) -> u16 {
        match self {
            Self::Ip(a) => a.port(),
            Self::Name { port, .. } => *port,
        }
    }

    /// The address when it is a literal IP.
    pub fn ip(&self) -> Option<SocketAddr> {
        match self {
            Self::Ip(a) => Some(*a),
            Self::Name { .. } => None,
        }
    }

    /// The host name, if given by name.
    pub fn host(&self) -> Option<&str> {
        match self {
            Self::Ip(_) => None,
            Self::Name { host, .. } => Some(host),
        }
    }
}

/// True for an RFC 1123 host name (letters, digits, `-`, dots; labels of
/// 1..=63 characters, not starting or ending with `-`), whose last label is
/// not all digits (RFC 3696: that would be a mistyped IP address).
fn valid_host(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    let numeric_tld = host
        .rsplit('.')
        .next()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()));
    !host.is_empty()
        && !numeric_tld
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

/// Parses `IP:port`, `[v6]:port` or `host:port`.
pub fn parse_server_addr(text: &str) -> Result<ServerAddr, String> {
    if let Ok(a) = text.parse::<SocketAddr>() {
        return Ok(ServerAddr::Ip(a));
    }
    let hint = "write IP:port such as 192.0.2.10:443, [2001:db8::1]:443 or cs1.example.com:443";
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| format!("`{text}` has no port: {hint}"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("`{text}`: port `{port}` is not 1..=65535: {hint}"))?;
    if host.parse::<std::net::IpAddr>().is_ok() || host.contains(['[', ']']) || !valid_host(host) {
        return Err(format!("`{text}` is not a valid address: {hint}"));
    }
    Ok(ServerAddr::Name {
        host: host.to_ascii_lowercase(),
        port,
    })
}

impl fmt::Display for ServerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ip(a) => write!(f, "{a}"),
            Self::Name { host, port } => write!(f, "{host}:{port}"),
        }
    }
}

impl<'de> Deserialize<'de> for ServerAddr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_server_addr(&s).map_err(serde::de::Error::custom)
    }
}

impl Serialize for ServerAddr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        assert_eq!(
            parse_server_addr("192.0.2.1:443"),
            Ok(ServerAddr::Ip("192.0.2.1:443".parse().unwrap()))
        );
        assert_eq!(
            parse_server_addr("[2001:db8::1]:443").map(|a| a.port()),
            Ok(443)
        );
        assert_eq!(
            parse_server_addr("CS1.example.com:443"),
            Ok(ServerAddr::Name {
                host: "cs1.example.com".into(),
                port: 443
            })
        );
    }

    #[test]
    fn rejects_bad_names_and_ports() {
        for bad in [
            "cs1",
            "cs1:",
            "cs1:99999",
            "a_b.example:1",
            "-x.example:1",
            "2001:db8::1",
            "[::1:1",
            "1.2.3.4.5:80",
            ":80",
        ] {
            assert!(parse_server_addr(bad).is_err(), "{bad}");
        }
    }
}
