//! A DHCPv4 lease: what the server's ACK gave us and when it runs out.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use dhcproto::v4::{DhcpOption, Message, OptionCode};
use serde::{Deserialize, Serialize};
use settings::value::{parse_hostname, IpCidr};

/// Lease time meaning "forever" (RFC 2132 section 9.2).
const INFINITE: u32 = u32::MAX;

/// An address lease and the options that came with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// Our address (`yiaddr`).
    pub address: Ipv4Addr,
    /// Prefix length from the subnet mask (option 1).
    pub prefix: u8,
    /// Routers, best first (option 3).
    pub routers: Vec<Ipv4Addr>,
    /// DNS resolvers (option 6).
    pub dns: Vec<Ipv4Addr>,
    /// NTP servers (option 42).
    pub ntp: Vec<Ipv4Addr>,
    /// Host name the server assigns (option 12).
    pub hostname: Option<String>,
    /// Domain name (option 15).
    pub domain: Option<String>,
    /// Domain search list (option 119).
    pub search: Vec<String>,
    /// Interface MTU (option 26).
    pub mtu: Option<u16>,
    /// The leasing server (option 54).
    pub server: Ipv4Addr,
    /// When the lease started: the time the REQUEST went out (RFC 2131
    /// section 4.4.1), on the driver's clock.
    pub start: Duration,
    /// Lease length (option 51); `None` for an infinite lease.
    pub length: Option<Duration>,
    /// T1 after `start` (option 58, else half the lease).
    pub t1: Option<Duration>,
    /// T2 after `start` (option 59, else 7/8 of the lease).
    pub t2: Option<Duration>,
}

impl Lease {
    /// Reads a lease out of an ACK. `None` when the ACK lacks an address
    /// or a lease time (both required by RFC 2131 for a REQUEST's ACK).
    pub fn from_ack(
        msg: &Message,
        start: Duration,
        fallback_server: Option<Ipv4Addr>,
    ) -> Option<Self> {
        let address = msg.yiaddr();
        if address.is_unspecified() {
            return None;
        }
        let opts = msg.opts();
        let secs = match opts.get(OptionCode::AddressLeaseTime) {
            Some(DhcpOption::AddressLeaseTime(s)) => *s,
            _ => return None,
        };
        let server = match opts.get(OptionCode::ServerIdentifier) {
            Some(DhcpOption::ServerIdentifier(ip)) => Some(*ip),
            _ => fallback_server,
        }?;
        let prefix = match opts.get(OptionCode::SubnetMask) {
            Some(DhcpOption::SubnetMask(mask)) => {
                prefix_of(*mask).unwrap_or_else(|| classful(address))
            }
            _ => classful(address),
        };
        let (length, t1, t2) = times(
            secs,
            opts.get(OptionCode::Renewal),
            opts.get(OptionCode::Rebinding),
        );
        let list = |code| match opts.get(code) {
            Some(
                DhcpOption::Router(v) | DhcpOption::DomainNameServer(v) | DhcpOption::NtpServers(v),
            ) => v.clone(),
            _ => Vec::new(),
        };
        // Names from the network end up in /etc/hosts, resolv.conf and
        // sethostname(2): only valid host names pass.
        let text = |code| match opts.get(code) {
            Some(DhcpOption::Hostname(s) | DhcpOption::DomainName(s)) => {
                parse_hostname(s.trim_end_matches('\0')).ok()
            }
            _ => None,
        };
        let search = match opts.get(OptionCode::DomainSearch) {
            Some(DhcpOption::DomainSearch(names)) => names
                .iter()
                .filter_map(|n| parse_hostname(&n.to_string()).ok())
                .collect(),
            _ => Vec::new(),
        };
        let mtu = match opts.get(OptionCode::InterfaceMtu) {
            // RFC 2132 section 5.1: at least 68.
            Some(DhcpOption::InterfaceMtu(m)) if *m >= 68 => Some(*m),
            _ => None,
        };
        Some(Self {
            address,
            prefix,
            routers: list(OptionCode::Router),
            dns: list(OptionCode::DomainNameServer),
            ntp: list(OptionCode::NtpServers),
            hostname: text(OptionCode::Hostname),
            domain: text(OptionCode::DomainName),
            search,
            mtu,
            server,
            start,
            length,
            t1,
            t2,
        })
    }

    /// The address with its prefix, for netlink.
    pub fn cidr(&self) -> IpCidr {
        IpCidr {
            addr: IpAddr::V4(self.address),
            prefix: self.prefix,
        }
    }

    /// DNS resolvers as `IpAddr`s, for resolv.conf.
    pub fn resolvers(&self) -> Vec<IpAddr> {
        self.dns.iter().map(|ip| IpAddr::V4(*ip)).collect()
    }

    /// When to start RENEWING.
    pub fn renew_at(&self) -> Option<Duration> {
        self.t1.map(|t| self.start + t)
    }

    /// When to start REBINDING.
    pub fn rebind_at(&self) -> Option<Duration> {
        self.t2.map(|t| self.start + t)
    }

    /// When the lease ends.
    pub fn expires_at(&self) -> Option<Duration> {
        self.length.map(|t| self.start + t)
    }

    /// Same address, routes and options (times aside): a renewal that
    /// changes nothing needs no reconfiguration.
    pub fn same_config(&self, other: &Self) -> bool {
        let strip = |l: &Self| Self {
            start: Duration::ZERO,
            length: None,
            t1: None,
            t2: None,
            ..l.clone()
        };
        strip(self) == strip(other)
    }
}

/// Lease length, T1 and T2; defaults and sanity per RFC 2131 section 4.4.5
/// (T1 = 0.5, T2 = 0.875 of the lease, and T1 <= T2 <= lease).
fn times(
    secs: u32,
    renewal: Option<&DhcpOption>,
    rebinding: Option<&DhcpOption>,
) -> (Option<Duration>, Option<Duration>, Option<Duration>) {
    if secs == INFINITE {
        return (None, None, None);
    }
    let length = u64::from(secs);
    let default_t1 = length / 2;
    let default_t2 = length * 7 / 8;
    let t2 = match rebinding {
        Some(DhcpOption::Rebinding(t)) if u64::from(*t) <= length => u64::from(*t),
        _ => default_t2,
    };
    let t1 = match renewal {
        Some(DhcpOption::Renewal(t)) if u64::from(*t) <= t2 => u64::from(*t),
        _ => default_t1.min(t2),
    };
    (
        Some(Duration::from_secs(length)),
        Some(Duration::from_secs(t1)),
        Some(Duration::from_secs(t2)),
    )
}

/// Prefix length of a contiguous netmask; `None` for `255.0.255.0`.
pub fn prefix_of(mask: Ipv4Addr) -> Option<u8> {
    let bits = u32::from(mask);
    let ones = bits.leading_ones();
    if bits.checked_shl(ones).unwrap_or(0) != 0 {
        return None;
    }
    u8::try_from(ones).ok()
}

/// The historical class mask, when the server sent none.
fn classful(addr: Ipv4Addr) -> u8 {
    match addr.octets()[0] {
        0..=127 => 8,
        128..=191 => 16,
        _ => 24,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netmask_to_prefix() {
        assert_eq!(prefix_of(Ipv4Addr::new(255, 255, 255, 0)), Some(24));
        assert_eq!(prefix_of(Ipv4Addr::new(255, 255, 255, 255)), Some(32));
        assert_eq!(prefix_of(Ipv4Addr::new(0, 0, 0, 0)), Some(0));
        assert_eq!(prefix_of(Ipv4Addr::new(255, 0, 255, 0)), None);
    }

    #[test]
    fn t1_t2_defaults_and_bad_values() {
        let d = Duration::from_secs;
        assert_eq!(
            times(3600, None, None),
            (Some(d(3600)), Some(d(1800)), Some(d(3150)))
        );
        // T2 beyond the lease and T1 beyond T2 fall back to the defaults.
        assert_eq!(
            times(
                100,
                Some(&DhcpOption::Renewal(99)),
                Some(&DhcpOption::Rebinding(200))
            ),
            (Some(d(100)), Some(d(50)), Some(d(87)))
        );
        assert_eq!(times(u32::MAX, None, None), (None, None, None));
    }
}
