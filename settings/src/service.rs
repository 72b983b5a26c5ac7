//! The deploy wizard's service slots (`service.1.*` to `service.4.*`): one
//! load-balanced service each, typed with lbd's own words (its `Mode`,
//! `Balance`, server addresses and name rule, from `lbd_config`), so what
//! the wizard accepts is what lbd runs.
//!
//! Each field is parsed where it is set ([`ServiceSlot`], by the table's
//! setters); the checks that need several fields or several slots turn the
//! slots into [`Service`]s in the merge (`service_check`). init builds lbd's
//! frontends and backends from those, with the names given here.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use lbd_config::address::parse_server_addr;
use lbd_config::{check_name, Balance, Mode, ServerAddr, BALANCE_NAMES, MAX_NAME_LEN};

use crate::value::{parse_bool, split_list, IpCidr};

/// How many slots the wizard offers.
pub const SERVICE_SLOTS: usize = 4;
/// Longest service name: lbd's limit less the `-65535` a port adds.
pub const SERVICE_NAME_MAX_LEN: usize = MAX_NAME_LEN - "-65535".len();
/// The port `redirect_http` answers on.
pub const REDIRECT_PORT: u16 = 80;
/// What the redirect frontend's name adds to the service's name.
const REDIRECT_SUFFIX: &str = "-http";

/// The slot's `check`, in the wizard's words (`tls` is lbd's `tls-hello`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SlotCheck {
    /// No active check: servers count as up.
    None,
    /// TCP connect.
    #[default]
    Tcp,
    /// A TLS ClientHello answered by a ServerHello.
    Tls,
    /// An HTTP request, status 200 to 399.
    Http,
    /// The same over TLS (what Horizon needs: 503 when disabled).
    Https,
}

/// The `check` values as the wizard offers them.
pub const CHECK_NAMES: [&str; 5] = ["none", "tcp", "tls", "http", "https"];

/// The validated check of a service: a path only where it means something.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthCheck {
    None,
    Tcp,
    Tls,
    /// `path` `None` is lbd's default, `/`.
    Http {
        path: Option<String>,
    },
    Https {
        path: Option<String>,
    },
}

/// One item of `servers`: a bare address or name takes the service's port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerItem {
    /// `10.0.0.11` or `cs1.example.com`: one server per service port.
    Host(String),
    /// `10.0.0.11:8443` or `cs1.example.com:8443`.
    Addr(ServerAddr),
}

impl ServerItem {
    /// The server's address for a listener on `service_port`.
    pub fn address(&self, service_port: u16) -> ServerAddr {
        match self {
            Self::Host(host) => match host.parse::<IpAddr>() {
                Ok(ip) => ServerAddr::Ip(SocketAddr::new(ip, service_port)),
                Err(_) => ServerAddr::Name {
                    host: host.clone(),
                    port: service_port,
                },
            },
            Self::Addr(addr) => addr.clone(),
        }
    }

    /// The server's name in its backend: the host as typed, with `-port`
    /// when the item has its own port; an IPv6 address's `:` become `-`
    /// (lbd's control socket and stats page use `:` as a separator).
    pub fn server_name(&self) -> String {
        let name = match self {
            Self::Host(host) => host.clone(),
            Self::Addr(ServerAddr::Ip(a)) => format!("{}-{}", a.ip(), a.port()),
            Self::Addr(ServerAddr::Name { host, port }) => format!("{host}-{port}"),
        };
        name.replace(':', "-")
    }
}

impl fmt::Display for ServerItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Host(host) => f.write_str(host),
            Self::Addr(addr) => write!(f, "{addr}"),
        }
    }
}

/// One slot as its fields parsed, before the checks across fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceSlot {
    pub name: Option<String>,
    pub virtual_ip: Option<IpCidr>,
    pub ports: Vec<u16>,
    pub mode: Mode,
    pub servers: Vec<ServerItem>,
    pub balance: Balance,
    pub check: SlotCheck,
    pub check_path: Option<String>,
    pub redirect_http: bool,
}

impl ServiceSlot {
    /// A slot is in use when it has servers or a name; the rest alone
    /// (defaults included) configures nothing.
    pub fn in_use(&self) -> bool {
        self.name.is_some() || !self.servers.is_empty()
    }
}

/// A service that passed every check: what init turns into lbd config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// The slot number, 1 to [`SERVICE_SLOTS`].
    pub slot: usize,
    pub name: String,
    /// `None`: the listeners bind every address (0.0.0.0 and [::]).
    pub virtual_ip: Option<IpCidr>,
    /// At least one.
    pub ports: Vec<u16>,
    pub mode: Mode,
    /// At least one.
    pub servers: Vec<ServerItem>,
    pub balance: Balance,
    pub check: HealthCheck,
    pub redirect_http: bool,
}

/// One frontend and backend pair of a service: one per port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// The frontend's and the backend's name.
    pub name: String,
    pub port: u16,
}

impl Service {
    /// One listener per port: named after the service with one port,
    /// `<name>-<port>` with several.
    pub fn listeners(&self) -> Vec<Listener> {
        self.ports
            .iter()
            .map(|&port| Listener {
                name: if self.ports.len() == 1 {
                    self.name.clone()
                } else {
                    format!("{}-{port}", self.name)
                },
                port,
            })
            .collect()
    }

    /// The frontend answering port 80 with a redirect, when asked for.
    pub fn redirect(&self) -> Option<Listener> {
        self.redirect_http.then(|| Listener {
            name: format!("{}{REDIRECT_SUFFIX}", self.name),
            port: REDIRECT_PORT,
        })
    }

    /// The addresses a listener on `port` binds.
    pub fn binds(&self, port: u16) -> Vec<SocketAddr> {
        match self.virtual_ip {
            Some(vip) => vec![SocketAddr::new(vip.addr, port)],
            None => vec![
                SocketAddr::from(([0, 0, 0, 0], port)),
                SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, port)),
            ],
        }
    }
}

/// `name`: lbd's name rule, short enough for the `-<port>` suffix.
pub fn parse_name(raw: &str) -> Result<String, String> {
    let name = raw.trim();
    check_name(name)?;
    if name.len() > SERVICE_NAME_MAX_LEN {
        return Err(format!(
            "{name:?} is too long: at most {SERVICE_NAME_MAX_LEN} characters (lbd adds -<port>)"
        ));
    }
    Ok(name.to_owned())
}

/// `virtual_ip`: an address, with a prefix or without (then a host route,
/// /32 or /128, as Keepalived takes it).
pub fn parse_virtual_ip(raw: &str) -> Result<IpCidr, String> {
    let raw = raw.trim();
    let hint = || {
        format!("{raw:?} is not an IP address: write one address like 10.0.0.100 or 10.0.0.100/24")
    };
    let (addr, prefix) = match raw.split_once('/') {
        Some((addr, prefix)) => (addr, Some(prefix)),
        None => (raw, None),
    };
    let addr: IpAddr = addr.parse().map_err(|_| hint())?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        None => max,
        Some(p) => match p.parse::<u8>() {
            Ok(p) if p <= max => p,
            _ => return Err(format!("prefix /{p} is out of range: at most /{max}")),
        },
    };
    Ok(IpCidr { addr, prefix })
}

/// `ports`: `443` or `443,8443`, each 1 to 65535, none twice.
pub fn parse_ports(raw: &str) -> Result<Vec<u16>, String> {
    let mut ports = Vec::new();
    for item in split_list(raw) {
        let port = match item.parse::<u32>() {
            Ok(p @ 1..=65535) => u16::try_from(p).map_err(|_| "out of range".to_owned())?,
            Ok(_) => {
                return Err(format!(
                    "port {item} is out of range: ports are 1 to 65535, e.g. 443 or 443,8443"
                ))
            }
            Err(_) => {
                return Err(format!(
                    "{item:?} is not a port: list port numbers, e.g. 443 or 443,8443"
                ))
            }
        };
        if ports.contains(&port) {
            return Err(format!("port {port} is listed twice"));
        }
        ports.push(port);
    }
    Ok(ports)
}

/// `mode`: `tcp` (TLS passes through) or `http`.
pub fn parse_mode(raw: &str) -> Result<Mode, String> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "tcp" => Ok(Mode::Tcp),
        "http" => Ok(Mode::Http),
        _ => Err("expected tcp (TLS passes through) or http".to_owned()),
    }
}

/// `servers`: addresses or names taking the service port, or `host:port`.
pub fn parse_servers(raw: &str) -> Result<Vec<ServerItem>, String> {
    let mut servers: Vec<ServerItem> = Vec::new();
    for item in split_list(raw) {
        let server = parse_server(item).ok_or_else(|| {
            format!(
                "{item:?} is not an address or host:port: list addresses (10.0.0.11,10.0.0.12) \
                 or host:port items"
            )
        })?;
        if servers.contains(&server) {
            return Err(format!("{item:?} is listed twice"));
        }
        servers.push(server);
    }
    Ok(servers)
}

fn parse_server(item: &str) -> Option<ServerItem> {
    if let Ok(ip) = item.parse::<IpAddr>() {
        return Some(ServerItem::Host(ip.to_string()));
    }
    if item.contains(':') {
        // IP:port, [v6]:port or name:port, by lbd's own parser.
        return parse_server_addr(item).ok().map(ServerItem::Addr);
    }
    // A bare name: lbd's parser checks it once given a port.
    match parse_server_addr(&format!("{item}:1")).ok()? {
        ServerAddr::Name { host, .. } => Some(ServerItem::Host(host)),
        ServerAddr::Ip(_) => None,
    }
}

/// `balance`: one of lbd's algorithms, as its TOML spells them.
pub fn parse_balance(raw: &str) -> Result<Balance, String> {
    Balance::from_name(&raw.trim().to_ascii_lowercase())
        .ok_or_else(|| format!("expected one of {}", BALANCE_NAMES.join(", ")))
}

/// `check`: none, tcp, tls, http or https.
pub fn parse_check(raw: &str) -> Result<SlotCheck, String> {
    let checks = [
        SlotCheck::None,
        SlotCheck::Tcp,
        SlotCheck::Tls,
        SlotCheck::Http,
        SlotCheck::Https,
    ];
    let raw = raw.trim().to_ascii_lowercase();
    CHECK_NAMES
        .iter()
        .zip(checks)
        .find_map(|(name, check)| (*name == raw).then_some(check))
        .ok_or_else(|| format!("expected one of {}", CHECK_NAMES.join(", ")))
}

/// `check_path`: an absolute request path without spaces.
pub fn parse_check_path(raw: &str) -> Result<String, String> {
    let path = raw.trim();
    if !path.starts_with('/') || path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must start with / and contain no spaces, e.g. /favicon.ico".to_owned());
    }
    Ok(path.to_owned())
}

/// `redirect_http`: a boolean as every source spells it.
pub fn parse_redirect(raw: &str) -> Result<bool, String> {
    parse_bool(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_take_the_service_port_or_their_own() {
        let servers = parse_servers("10.0.0.11, cs2.Example.com,10.0.0.13:8443,[2001:db8::1]:443")
            .expect("valid");
        let addrs: Vec<String> = servers.iter().map(|s| s.address(443).to_string()).collect();
        assert_eq!(
            addrs,
            [
                "10.0.0.11:443",
                "cs2.example.com:443",
                "10.0.0.13:8443",
                "[2001:db8::1]:443"
            ]
        );
        let names: Vec<String> = servers.iter().map(ServerItem::server_name).collect();
        assert_eq!(
            names,
            [
                "10.0.0.11",
                "cs2.example.com",
                "10.0.0.13-8443",
                "2001-db8--1-443"
            ]
        );
    }

    #[test]
    fn bad_servers_say_how_to_list_them() {
        let e = parse_servers("10.0.0.11,10.0.0.300").expect_err("bad address");
        assert_eq!(
            e,
            "\"10.0.0.300\" is not an address or host:port: list addresses \
             (10.0.0.11,10.0.0.12) or host:port items"
        );
        for bad in ["cs1:99999", "a_b", "-x", "10.0.0.1:0x"] {
            assert!(parse_servers(bad).is_err(), "{bad}");
        }
        assert!(parse_servers("10.0.0.11,10.0.0.11")
            .expect_err("twice")
            .contains("listed twice"));
    }

    #[test]
    fn ports_in_range_and_once() {
        assert_eq!(parse_ports("443, 8443"), Ok(vec![443, 8443]));
        let e = parse_ports("443,70000").expect_err("range");
        assert!(e.contains("port 70000 is out of range"), "{e}");
        assert!(parse_ports("0").is_err());
        assert!(parse_ports("https")
            .expect_err("word")
            .contains("not a port"));
        assert!(parse_ports("443,443").is_err());
    }

    #[test]
    fn a_virtual_ip_without_prefix_is_a_host_route() {
        assert_eq!(
            parse_virtual_ip("10.0.0.100").map(|c| c.to_string()),
            Ok("10.0.0.100/32".to_owned())
        );
        assert_eq!(
            parse_virtual_ip("2001:db8::64").map(|c| c.to_string()),
            Ok("2001:db8::64/128".to_owned())
        );
        assert_eq!(parse_virtual_ip("10.0.0.100/24").map(|c| c.prefix), Ok(24));
        assert!(parse_virtual_ip("10.0.0.100/33").is_err());
        assert!(parse_virtual_ip("vip.example.com").is_err());
    }

    #[test]
    fn names_follow_lbd_and_leave_room_for_a_port() {
        assert_eq!(parse_name(" horizon "), Ok("horizon".to_owned()));
        assert!(parse_name("app volumes").is_err());
        assert!(parse_name(&"x".repeat(SERVICE_NAME_MAX_LEN + 1))
            .expect_err("long")
            .contains("too long"));
    }

    #[test]
    fn value_maps() {
        assert_eq!(parse_balance("Source"), Ok(Balance::Source));
        assert_eq!(parse_balance("static-rr"), Ok(Balance::StaticRr));
        assert!(parse_balance("hash").expect_err("no").contains("leastconn"));
        assert_eq!(parse_check("TLS"), Ok(SlotCheck::Tls));
        assert!(parse_check("agent").is_err());
        assert_eq!(parse_mode("http"), Ok(Mode::Http));
        assert!(parse_check_path("favicon.ico").is_err());
        assert!(parse_check_path("/a b").is_err());
    }
}
