//! The typed settings init acts on, and one setter per property.
//!
//! [`Settings::default`] is built by applying every property's default from
//! the table, so the defaults live in one place (the table, which also
//! writes them into the OVF descriptor).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::service::{Service, ServiceSlot, SERVICE_SLOTS};
use crate::table::properties;
use crate::value::{
    parse_bool, parse_cidr, parse_cidr_family, parse_host, parse_hostname, parse_int_in, parse_ip,
    parse_ipv4, parse_lbd_config, parse_list, parse_max_step, parse_mode, parse_port, parse_secret,
    parse_sysctls, parse_syslog_target, IpCidr, MaxStep, NetworkMode, PortRule, Secret,
    SyslogTarget,
};

/// `ntp.max_step`'s default, in seconds: a VM's clock comes from its host
/// (ESXi), which is usually right; a jump beyond this from unauthenticated
/// NTP answers is more likely an attack or a broken server than a real
/// error, and HMAC replay protection depends on the clock.
pub const DEFAULT_NTP_MAX_STEP_S: u64 = 1000;

/// Longest secret accepted (admin password, VRRP auth).
pub const SECRET_MAX_LEN: usize = 128;
/// Shortest `admin.password` accepted in clear text.
pub const ADMIN_PASSWORD_MIN_LEN: usize = 8;

/// Everything init configures from settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// System hostname (`hostname`).
    pub hostname: String,
    /// Addresses, routes, resolvers, time servers.
    pub network: Network,
    /// Extra inbound ports (`firewall.ports`).
    pub firewall_ports: Vec<PortRule>,
    /// VRRP settings that go into lbd's overlay.
    pub vrrp: Vrrp,
    /// Password of lbd's stats/admin user (`admin.password`).
    pub admin_password: Option<Secret>,
    /// Password of the read-only user of the web console and stats page
    /// (`admin.readonly_password`).
    pub readonly_password: Option<Secret>,
    /// The admin's own certificate for the web console (`console.*`);
    /// without one the appliance makes its own.
    pub console: ConsoleCertificate,
    /// A whole lbd TOML config, decoded from base64 (`lbd.config`).
    pub lbd_config: Option<String>,
    /// Extra sysctls, applied after the built-in set (`sysctl`).
    pub sysctls: Vec<(String, String)>,
    /// `syslog.server`: remote syslog (RFC 5424), if set.
    pub syslog: Option<SyslogTarget>,
    /// `ntp.max_step`: the largest clock step boot time sync may make.
    pub ntp_max_step: MaxStep,
    /// `service.N.*`: each slot's fields as parsed.
    pub service_slots: [ServiceSlot; SERVICE_SLOTS],
    /// The slots in use that passed the checks across fields and slots,
    /// in slot order (filled by the merge; empty before it).
    pub services: Vec<Service>,
}

/// `console.certificate` and `console.key`, as canonical PEM (newlines
/// lost in the wizard repaired). Checked against each other by init,
/// which has the TLS stack.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConsoleCertificate {
    /// The server's certificate, then its chain.
    pub certificate: Option<String>,
    /// Its private key.
    pub key: Option<Secret>,
}

/// The primary NIC's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    /// `network.mode`.
    pub mode: NetworkMode,
    /// `network.ipv4`: the static IPv4 address and prefix.
    pub ipv4: Option<IpCidr>,
    /// `network.gateway`: the IPv4 default gateway.
    pub gateway: Option<Ipv4Addr>,
    /// `network.ipv6`: a static IPv6 address and prefix.
    pub ipv6: Option<IpCidr>,
    /// `network.gateway6`: the IPv6 default gateway.
    pub gateway6: Option<Ipv6Addr>,
    /// `network.slaac`: accept IPv6 router advertisements.
    pub slaac: bool,
    /// `network.mtu`.
    pub mtu: u16,
    /// `network.dns`: resolvers (in static mode; DHCP may add its own).
    pub dns: Vec<IpAddr>,
    /// `network.ntp`: SNTP servers, host names or addresses.
    pub ntp: Vec<String>,
}

/// VRRP settings for lbd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vrrp {
    /// `vrrp.router_id`: VRID, 1..=255, the same on both nodes.
    pub router_id: u8,
    /// `vrrp.priority`: 1..=254, higher wins.
    pub priority: u8,
    /// `vrrp.peers`: unicast peers; empty means multicast.
    pub peers: Vec<IpAddr>,
    /// `vrrp.virtual_ips`: the addresses the pair holds.
    pub virtual_ips: Vec<IpCidr>,
    /// `vrrp.auth`: shared secret.
    pub auth: Option<Secret>,
    /// `vrrp.peer_software`: what runs on the other node.
    pub peer_software: PeerSoftware,
}

/// What the other node of the pair runs (`vrrp.peer_software`): it decides
/// the VRRP version and what the shared secret does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerSoftware {
    /// This appliance: VRRP v3, the secret keys lbd's HMAC-SHA256 with
    /// replay protection.
    Lbd,
    /// Keepalived (a migration, one node at a time): VRRP v2, the secret
    /// is sent as PASS, in clear.
    Keepalived,
}

impl Default for Settings {
    fn default() -> Self {
        let mut s = Self::empty();
        for p in properties() {
            // A default that does not parse is a bug in the table, caught by
            // `table::tests::defaults_parse`; leave the empty value then.
            let _ = (p.apply)(&mut s, p.default);
        }
        s
    }
}

impl Settings {
    /// Zero values before the table's defaults are applied.
    fn empty() -> Self {
        Self {
            hostname: String::new(),
            network: Network {
                mode: NetworkMode::Dhcp,
                ipv4: None,
                gateway: None,
                ipv6: None,
                gateway6: None,
                slaac: false,
                mtu: 1500,
                dns: Vec::new(),
                ntp: Vec::new(),
            },
            firewall_ports: Vec::new(),
            vrrp: Vrrp {
                router_id: 1,
                priority: 100,
                peers: Vec::new(),
                virtual_ips: Vec::new(),
                auth: None,
                peer_software: PeerSoftware::Lbd,
            },
            admin_password: None,
            readonly_password: None,
            console: ConsoleCertificate::default(),
            lbd_config: None,
            sysctls: Vec::new(),
            syslog: None,
            ntp_max_step: MaxStep::Seconds(DEFAULT_NTP_MAX_STEP_S),
            service_slots: Default::default(),
            services: Vec::new(),
        }
    }
}

/// Parses `raw` into a `T` whose range fits `min..=max`.
fn int<T: TryFrom<u64>>(raw: &str, min: T, max: T) -> Result<T, String>
where
    u64: From<T>,
{
    let n = parse_int_in(raw, u64::from(min), u64::from(max))?;
    T::try_from(n).map_err(|_| "out of range".to_owned())
}

/// An optional value: empty text clears it.
fn opt<T>(raw: &str, parse: impl Fn(&str) -> Result<T, String>) -> Result<Option<T>, String> {
    if raw.trim().is_empty() {
        Ok(None)
    } else {
        parse(raw).map(Some)
    }
}

// One setter per property, named after its key; the table points at them.
pub(crate) fn set_hostname(s: &mut Settings, raw: &str) -> Result<(), String> {
    s.hostname = parse_hostname(raw)?;
    Ok(())
}
pub(crate) fn set_mode(s: &mut Settings, raw: &str) -> Result<(), String> {
    s.network.mode = parse_mode(raw)?;
    Ok(())
}
pub(crate) fn set_ipv4(s: &mut Settings, raw: &str) -> Result<(), String> {
    s.network.ipv4 = opt(raw, |r| parse_cidr_family(r, true))?;
    Ok(())
}
pub(crate) fn set_gateway(s: &mut Settings, raw: &str) -> Result<(), String> {
    s.network.gateway = opt(raw, parse_ipv4)?;
    Ok(())
}
pub(crate) fn set_ipv6(s: &mut Settings, raw: &str) -> Result<(), String> {
    s.network.ipv6 = opt(raw, |r| parse_cidr_family(r, false))?;
    Ok(())
}
pub(crate) fn set_gateway6(s: &mut Settings, raw: &str) -> Result<(), String> {
    s.network.gateway6 = opt(raw, |r| match parse_ip(r)? {
        IpAddr::V6(a) => Ok(a),
        IpAddr::V4(_) => Err("expected an IPv6 address like 2001:db8::1".to_owned()),
    })?;
    Ok(())
}
pub(crate) fn set_slaac(s: &mut Settings, raw: &str) -> Result<(), String> {
    s.network.slaac = parse_bool(raw)?;
    Ok(())
}
pub(crate) fn set_mtu(s: &mut Settings, raw: &str) -> Result<(), String> {
    s.network.mtu = int(raw, 576_u16, 9000)?;
    Ok(())
}
pub(crate) fn set_dns(s: &mut Settings, raw: &str) -> Result<(), String> {
    s.network.dns = parse_list(raw, parse_ip)?;
    Ok(())
}
pub(crate) fn set_ntp(s: &mut Settings, raw: &str) -> Result<(), String> {
    s.network.ntp = parse_list(raw, parse_host)?;
    Ok(())
}
pub(crate) fn set_ntp_max_step(s: &mut Settings, raw: &str) -> Result<(), String> {
    s.ntp_max_step = parse_max_step(raw)?;
    Ok(())
}
pub(crate) fn set_firewall_ports(s: &mut Settings, raw: &str) -> Result<(), String> {
    s.firewall_ports = parse_list(raw, parse_port)?;
    Ok(())
}
pub(crate) fn set_syslog(s: &mut Settings, raw: &str) -> Result<(), String> {
    s.syslog = opt(raw, parse_syslog_target)?;
    Ok(())
}
pub(crate) fn set_router_id(s: &mut Settings, raw: &str) -> Result<(), String> {
    s.vrrp.router_id = int(raw, 1_u8, 255)?;
    Ok(())
}
pub(crate) fn set_priority(s: &mut Settings, raw: &str) -> Result<(), String> {
    // 255 is reserved for the address owner (RFC 9568 section 6.1); lbd
    // never owns the virtual IPs.
    s.vrrp.priority = int(raw, 1_u8, 254)?;
    Ok(())
}
pub(crate) fn set_peers(s: &mut Settings, raw: &str) -> Result<(), String> {
    s.vrrp.peers = parse_list(raw, parse_ip)?;
    Ok(())
}
pub(crate) fn set_virtual_ips(s: &mut Settings, raw: &str) -> Result<(), String> {
    s.vrrp.virtual_ips = parse_list(raw, parse_cidr)?;
    Ok(())
}
pub(crate) fn set_vrrp_auth(s: &mut Settings, raw: &str) -> Result<(), String> {
    s.vrrp.auth = opt(raw, |r| parse_secret(r, SECRET_MAX_LEN))?;
    Ok(())
}
pub(crate) fn set_peer_software(s: &mut Settings, raw: &str) -> Result<(), String> {
    s.vrrp.peer_software = match raw.trim().to_ascii_lowercase().as_str() {
        "lbd" => PeerSoftware::Lbd,
        "keepalived" => PeerSoftware::Keepalived,
        _ => {
            return Err("expected lbd (the other node is this appliance) or keepalived".to_owned())
        }
    };
    Ok(())
}
pub(crate) fn set_admin_password(s: &mut Settings, raw: &str) -> Result<(), String> {
    s.admin_password = opt(raw, |r| parse_login_password(r, "disable the admin page"))?;
    Ok(())
}
pub(crate) fn set_readonly_password(s: &mut Settings, raw: &str) -> Result<(), String> {
    s.readonly_password = opt(raw, |r| parse_login_password(r, "have no read-only user"))?;
    Ok(())
}
pub(crate) fn set_console_certificate(s: &mut Settings, raw: &str) -> Result<(), String> {
    s.console.certificate = opt(raw, crate::pem::parse_certificate_chain)?;
    Ok(())
}
pub(crate) fn set_console_key(s: &mut Settings, raw: &str) -> Result<(), String> {
    s.console.key = opt(raw, |r| {
        crate::pem::parse_private_key(r).map(Secret::checked_elsewhere)
    })?;
    Ok(())
}

/// A password in clear must be long enough to survive guessing at the
/// login (a one-character password fell to the first few tries); lbd's
/// hash of one (an export, the store's copy) was checked when it was set.
/// `empty_does` says what leaving it empty does instead.
fn parse_login_password(raw: &str, empty_does: &str) -> Result<Secret, String> {
    let secret = parse_secret(raw, SECRET_MAX_LEN)?;
    let length = raw.chars().count();
    if !secret.is_hash() && length < ADMIN_PASSWORD_MIN_LEN {
        return Err(format!(
            "is {length} characters: use at least {ADMIN_PASSWORD_MIN_LEN} (a passphrase \
             or the output of `openssl rand -base64 12`), or leave it empty to {empty_does}"
        ));
    }
    Ok(secret)
}
pub(crate) fn set_lbd_config(s: &mut Settings, raw: &str) -> Result<(), String> {
    s.lbd_config = opt(raw, parse_lbd_config)?;
    Ok(())
}
pub(crate) fn set_sysctls(s: &mut Settings, raw: &str) -> Result<(), String> {
    s.sysctls = parse_sysctls(raw)?;
    Ok(())
}
