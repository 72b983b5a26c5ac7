//! Typed setting values and the parsers that turn one raw string into them.
//!
//! Every parser takes the raw text as it came from a source (already
//! unquoted/unescaped by that source's own parser) and returns either the
//! typed value or a message that tells the admin what a good value looks
//! like. The message never repeats the key or the source: the merge adds
//! those (see [`crate::SettingError`]).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;

/// How the primary NIC gets its IPv4 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NetworkMode {
    /// DHCPv4 client (the default: an OVA deployed without filling the wizard
    /// is still reachable on a network with DHCP).
    #[default]
    Dhcp,
    /// `network.ipv4` and `network.gateway` from the settings.
    Static,
}

impl fmt::Display for NetworkMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Dhcp => "dhcp",
            Self::Static => "static",
        })
    }
}

/// An address with its prefix length, `192.0.2.10/24` or `2001:db8::1/64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpCidr {
    /// The host address (host bits are kept: this is an interface address).
    pub addr: IpAddr,
    /// Prefix length, at most 32 for IPv4 and 128 for IPv6.
    pub prefix: u8,
}

impl fmt::Display for IpCidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// A transport protocol for a firewall port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// TCP only (`443/tcp`, or a bare `443`).
    Tcp,
    /// UDP only (`53/udp`).
    Udp,
}

/// One extra port to open in the inbound firewall.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortRule {
    /// Port number, 1..=65535.
    pub port: u16,
    /// Protocol; a bare number means TCP.
    pub protocol: Protocol,
}

impl fmt::Display for PortRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let proto = match self.protocol {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        };
        write!(f, "{}/{proto}", self.port)
    }
}

/// A secret (password, VRRP auth). `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

/// How a password given as the hash lbd checks begins (an export's
/// `admin.password`, and what the appliance store keeps) rather than in
/// clear text.
pub const PASSWORD_HASH_PREFIX: &str = "$argon2id$";

impl Secret {
    /// The secret itself, for the one place that needs it (lbd's overlay).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether this is already a password hash (lbd's PHC string), to be
    /// used as it is instead of hashed again.
    pub fn is_hash(&self) -> bool {
        is_password_hash(&self.0)
    }

    /// A secret checked by its own parser (a PEM key has newlines, which
    /// [`parse_secret`] refuses).
    pub(crate) fn checked_elsewhere(text: String) -> Self {
        Self(text)
    }
}

pub fn is_password_hash(raw: &str) -> bool {
    raw.trim().starts_with(PASSWORD_HASH_PREFIX)
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(********)")
    }
}

/// Longest hostname (RFC 1123, FQDN in text form).
pub const HOSTNAME_MAX_LEN: usize = 253;
/// Longest label of a hostname.
const LABEL_MAX_LEN: usize = 63;

/// A boolean as the OVF environment (`True`/`False`), TOML and the command
/// line (`true`/`false`, `1`/`0`, `yes`/`no`) spell it.
pub fn parse_bool(raw: &str) -> Result<bool, String> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err("expected true or false".to_owned()),
    }
}

/// `ntp.max_step`: the largest clock step boot time sync may make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaxStep {
    /// Refuse a step of more than this many seconds.
    Seconds(u64),
    /// Step by whatever the servers agree on.
    Any,
}

/// Longest `ntp.max_step` in seconds (about 136 years): past it, say `any`.
pub const MAX_STEP_LIMIT_S: u64 = u32::MAX as u64;

/// `any`, or a whole number of seconds from 1.
pub fn parse_max_step(raw: &str) -> Result<MaxStep, String> {
    if raw.trim().eq_ignore_ascii_case("any") {
        return Ok(MaxStep::Any);
    }
    parse_int_in(raw, 1, MAX_STEP_LIMIT_S)
        .map(MaxStep::Seconds)
        .map_err(|e| format!("{e} seconds, or `any` for no limit"))
}

/// An unsigned integer within `min..=max`.
pub fn parse_int_in(raw: &str, min: u64, max: u64) -> Result<u64, String> {
    let n: u64 = raw
        .trim()
        .parse()
        .map_err(|_| format!("expected a whole number from {min} to {max}"))?;
    if (min..=max).contains(&n) {
        Ok(n)
    } else {
        Err(format!("out of range: expected {min} to {max}"))
    }
}

/// `dhcp` or `static`.
pub fn parse_mode(raw: &str) -> Result<NetworkMode, String> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "dhcp" => Ok(NetworkMode::Dhcp),
        "static" => Ok(NetworkMode::Static),
        _ => Err("expected dhcp or static".to_owned()),
    }
}

/// A hostname or FQDN: labels of letters, digits and inner hyphens.
pub fn parse_hostname(raw: &str) -> Result<String, String> {
    let name = raw.trim().trim_end_matches('.');
    if name.is_empty() || name.len() > HOSTNAME_MAX_LEN {
        return Err(format!("expected 1 to {HOSTNAME_MAX_LEN} characters"));
    }
    for label in name.split('.') {
        let ok_chars = label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if label.is_empty()
            || label.len() > LABEL_MAX_LEN
            || !ok_chars
            || label.starts_with('-')
            || label.ends_with('-')
        {
            return Err(format!(
                "label {label:?} is not valid: use letters, digits and inner hyphens, \
                 1 to {LABEL_MAX_LEN} characters per label"
            ));
        }
    }
    Ok(name.to_ascii_lowercase())
}

/// One IP address (v4 or v6).
pub fn parse_ip(raw: &str) -> Result<IpAddr, String> {
    IpAddr::from_str(raw.trim()).map_err(|_| "expected an IP address like 192.0.2.1".to_owned())
}

/// One IPv4 address.
pub fn parse_ipv4(raw: &str) -> Result<Ipv4Addr, String> {
    Ipv4Addr::from_str(raw.trim()).map_err(|_| "expected an IPv4 address like 192.0.2.1".to_owned())
}

/// `address/prefix`, either family.
pub fn parse_cidr(raw: &str) -> Result<IpCidr, String> {
    let raw = raw.trim();
    let hint = || format!("{raw:?} is not address/prefix like 192.0.2.10/24");
    let (addr, prefix) = raw.split_once('/').ok_or_else(hint)?;
    let addr = IpAddr::from_str(addr).map_err(|_| hint())?;
    let prefix: u8 = prefix.parse().map_err(|_| hint())?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    if prefix > max {
        return Err(format!("prefix /{prefix} is out of range: at most /{max}"));
    }
    Ok(IpCidr { addr, prefix })
}

/// `address/prefix` of one family.
pub fn parse_cidr_family(raw: &str, v4: bool) -> Result<IpCidr, String> {
    let cidr = parse_cidr(raw)?;
    match (cidr.addr.is_ipv4(), v4) {
        (true, true) | (false, false) => Ok(cidr),
        (_, true) => Err("expected an IPv4 address/prefix like 192.0.2.10/24".to_owned()),
        (_, false) => Err("expected an IPv6 address/prefix like 2001:db8::10/64".to_owned()),
    }
}

/// A comma (or space) separated list; empty items are skipped.
pub fn split_list(raw: &str) -> impl Iterator<Item = &str> {
    raw.split([',', ' ', '\t', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// Parses every item of a list with `item`, naming the first bad one.
pub fn parse_list<T>(raw: &str, item: fn(&str) -> Result<T, String>) -> Result<Vec<T>, String> {
    split_list(raw)
        .map(|s| item(s).map_err(|e| format!("item {s:?}: {e}")))
        .collect()
}

/// A host for NTP: a hostname or an IP address.
pub fn parse_host(raw: &str) -> Result<String, String> {
    if let Ok(ip) = parse_ip(raw) {
        return Ok(ip.to_string());
    }
    parse_hostname(raw).map_err(|_| "expected a hostname or an IP address".to_owned())
}

/// `443`, `443/tcp` or `53/udp`.
pub fn parse_port(raw: &str) -> Result<PortRule, String> {
    let hint = || "expected port or port/tcp or port/udp, port 1 to 65535".to_owned();
    let (port, protocol) = match raw.trim().split_once('/') {
        None => (raw.trim(), Protocol::Tcp),
        Some((p, proto)) => match proto.to_ascii_lowercase().as_str() {
            "tcp" => (p, Protocol::Tcp),
            "udp" => (p, Protocol::Udp),
            _ => return Err(hint()),
        },
    };
    match port.parse::<u16>() {
        Ok(port) if port != 0 => Ok(PortRule { port, protocol }),
        _ => Err(hint()),
    }
}

/// A secret: any text without control characters, within `max` bytes.
pub fn parse_secret(raw: &str, max: usize) -> Result<Secret, String> {
    if raw.len() > max {
        return Err(format!("too long: at most {max} bytes"));
    }
    if raw.chars().any(char::is_control) {
        return Err("contains a control character".to_owned());
    }
    Ok(Secret(raw.to_owned()))
}

/// `name=value` pairs of sysctls, comma separated:
/// `net.core.somaxconn=4096,net.ipv4.tcp_fin_timeout=15`.
pub fn parse_sysctls(raw: &str) -> Result<Vec<(String, String)>, String> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|item| {
            let (name, value) = item
                .split_once('=')
                .ok_or_else(|| format!("item {item:?} is not name=value"))?;
            let (name, value) = (name.trim(), value.trim());
            let name_ok = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-/".contains(&b))
                && !name.contains("..");
            if !name_ok {
                return Err(format!("item {item:?}: sysctl name {name:?} is not valid"));
            }
            if value.is_empty() || value.chars().any(char::is_control) {
                return Err(format!("item {item:?}: value must be non-empty text"));
            }
            Ok((name.replace('/', "."), value.to_owned()))
        })
        .collect()
}

/// Base64 of a whole lbd TOML file: decodes it and checks it is TOML.
/// lbd itself validates the schema when it loads the file.
pub fn parse_lbd_config(raw: &str) -> Result<String, String> {
    use base64::Engine as _;
    let compact: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|e| format!("not base64 (encode the file with `base64 -w0 lbd.toml`): {e}"))?;
    let text = String::from_utf8(bytes).map_err(|_| "decoded config is not UTF-8".to_owned())?;
    text.parse::<toml::Table>()
        .map_err(|e| format!("decoded config is not TOML: {}", e.message()))?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bools_as_ovf_and_cmdline_spell_them() {
        assert_eq!(parse_bool("True"), Ok(true));
        assert_eq!(parse_bool("False"), Ok(false));
        assert_eq!(parse_bool("1"), Ok(true));
        assert!(parse_bool("maybe").is_err());
    }

    #[test]
    fn cidr_checks_prefix_per_family() {
        let c = parse_cidr("192.0.2.10/24").expect("valid");
        assert_eq!(c.to_string(), "192.0.2.10/24");
        assert!(parse_cidr("192.0.2.10/33").is_err());
        assert!(parse_cidr("2001:db8::1/128").is_ok());
        assert!(parse_cidr("192.0.2.10").is_err());
        assert!(parse_cidr_family("2001:db8::1/64", true).is_err());
    }

    #[test]
    fn hostnames() {
        assert_eq!(
            parse_hostname("LB1.example.com."),
            Ok("lb1.example.com".to_owned())
        );
        assert!(parse_hostname("-lb").is_err());
        assert!(parse_hostname("lb_1").is_err());
        assert!(parse_hostname(&"a".repeat(64)).is_err());
        assert!(parse_hostname("").is_err());
    }

    #[test]
    fn ports() {
        assert_eq!(
            parse_list("443, 53/udp", parse_port),
            Ok(vec![
                PortRule {
                    port: 443,
                    protocol: Protocol::Tcp
                },
                PortRule {
                    port: 53,
                    protocol: Protocol::Udp
                },
            ])
        );
        assert!(parse_port("0").is_err());
        assert!(parse_port("70000").is_err());
        assert!(parse_port("80/sctp").is_err());
    }

    #[test]
    fn sysctls() {
        assert_eq!(
            parse_sysctls("net.core.somaxconn=4096, net/ipv4/tcp_fin_timeout = 15"),
            Ok(vec![
                ("net.core.somaxconn".to_owned(), "4096".to_owned()),
                ("net.ipv4.tcp_fin_timeout".to_owned(), "15".to_owned()),
            ])
        );
        assert!(parse_sysctls("net.core.somaxconn").is_err());
        assert!(parse_sysctls("../../etc=1").is_err());
    }

    #[test]
    fn lbd_config_must_be_base64_toml() {
        // "[stats]\nport = 8404\n"
        assert_eq!(
            parse_lbd_config("W3N0YXRzXQpwb3J0ID0gODQwNAo="),
            Ok("[stats]\nport = 8404\n".to_owned())
        );
        assert!(parse_lbd_config("not base64!").is_err());
        // "[stats" (unclosed table header)
        assert!(parse_lbd_config("W3N0YXRz").is_err());
    }

    #[test]
    fn secret_debug_is_masked() {
        let s = parse_secret("hunter2", 64).expect("valid");
        assert_eq!(format!("{s:?}"), "Secret(********)");
        assert!(parse_secret("a\nb", 64).is_err());
    }
}

/// Where remote syslog goes: `192.0.2.5` (UDP 514), `192.0.2.5:1514`,
/// `udp://[2001:db8::5]:514` or `tcp://192.0.2.5:601`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyslogTarget {
    pub protocol: Protocol,
    pub addr: std::net::SocketAddr,
}

pub fn parse_syslog_target(raw: &str) -> Result<SyslogTarget, String> {
    let hint = || {
        "expected IP, IP:port, udp://IP:port or tcp://IP:port (a host name is not looked up)"
            .to_owned()
    };
    let raw = raw.trim();
    let (protocol, rest) = if let Some(r) = raw.strip_prefix("udp://") {
        (Protocol::Udp, r)
    } else if let Some(r) = raw.strip_prefix("tcp://") {
        (Protocol::Tcp, r)
    } else {
        (Protocol::Udp, raw)
    };
    let default_port = match protocol {
        Protocol::Udp => 514,
        Protocol::Tcp => 601,
    };
    let addr = match rest.parse::<std::net::SocketAddr>() {
        Ok(a) => a,
        Err(_) => {
            let ip = rest.trim_start_matches('[').trim_end_matches(']');
            let ip: IpAddr = ip.parse().map_err(|_| hint())?;
            std::net::SocketAddr::new(ip, default_port)
        }
    };
    if addr.port() == 0 {
        return Err(hint());
    }
    Ok(SyslogTarget { protocol, addr })
}
