//! What the kernel says right now, for the status screen: addresses (the
//! VIPs lbd holds included), the default gateway, the resolvers, the host
//! name and the uptime. Read fresh at every refresh, so the screen shows
//! the machine's state, not what init meant to set.

use std::net::{IpAddr, Ipv4Addr};

/// `(interface, "addr/prefix")` of every non-loopback address, IPv6
/// link-local ones left out (every NIC has one; they only take room).
pub fn addresses() -> Vec<(String, String)> {
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for ifa in addrs {
        let (Some(addr), Some(mask)) = (ifa.address, ifa.netmask) else {
            continue;
        };
        let (ip, prefix) =
            if let (Some(a), Some(m)) = (addr.as_sockaddr_in(), mask.as_sockaddr_in()) {
                (IpAddr::V4(a.ip()), u32::from(m.ip()).count_ones())
            } else if let (Some(a), Some(m)) = (addr.as_sockaddr_in6(), mask.as_sockaddr_in6()) {
                (IpAddr::V6(a.ip()), u128::from(m.ip()).count_ones())
            } else {
                continue;
            };
        let link_local_v6 = matches!(ip, IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80);
        if ip.is_loopback() || link_local_v6 {
            continue;
        }
        out.push((ifa.interface_name, format!("{ip}/{prefix}")));
    }
    out
}

/// The IPv4 default gateway from `/proc/net/route` text.
pub fn default_gateway(route_table: &str) -> Option<Ipv4Addr> {
    route_table.lines().skip(1).find_map(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let (dest, gateway) = (cols.get(1)?, cols.get(2)?);
        if *dest != "00000000" {
            return None;
        }
        // The kernel prints the address as a host-order (little-endian
        // here) hex word.
        let word = u32::from_str_radix(gateway, 16).ok()?;
        Some(Ipv4Addr::from(word.to_le_bytes()))
    })
}

/// `nameserver` lines of resolv.conf text.
pub fn resolvers(resolv_conf: &str) -> Vec<String> {
    resolv_conf
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .map(|rest| rest.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Whole seconds from `/proc/uptime` text.
pub fn uptime_seconds(proc_uptime: &str) -> u64 {
    proc_uptime
        .split(['.', ' '])
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// A stats page bound to every address is shown at the first one.
pub fn reachable_stats(bind: &str, addresses: &[(String, String)]) -> String {
    let first_v4 = addresses
        .iter()
        .filter_map(|(_, a)| a.split('/').next())
        .find(|a| a.parse::<Ipv4Addr>().is_ok());
    match (bind.strip_prefix("0.0.0.0:"), first_v4) {
        (Some(port), Some(ip)) => format!("{ip}:{port}"),
        _ => bind.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_from_the_route_table() {
        let table = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\n\
                     ens192\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\n\
                     ens192\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\n";
        assert_eq!(default_gateway(table), Some(Ipv4Addr::new(192, 0, 2, 1)));
        assert_eq!(default_gateway("Iface\tDestination\n"), None);
        assert_eq!(default_gateway("garbage\nx 00000000 zz\n"), None);
    }

    #[test]
    fn resolvers_uptime_and_stats_address() {
        assert_eq!(
            resolvers("# by init\nnameserver 192.0.2.53\nsearch example.com\nnameserver ::1\n"),
            ["192.0.2.53", "::1"]
        );
        assert_eq!(uptime_seconds("7384.52 1234.00\n"), 7384);
        assert_eq!(uptime_seconds(""), 0);
        let addrs = vec![("ens192".to_string(), "192.0.2.10/24".to_string())];
        assert_eq!(reachable_stats("0.0.0.0:8404", &addrs), "192.0.2.10:8404");
        assert_eq!(reachable_stats("10.0.0.5:8404", &addrs), "10.0.0.5:8404");
        assert_eq!(reachable_stats("0.0.0.0:8404", &[]), "0.0.0.0:8404");
    }

    #[test]
    fn loopback_is_left_out() {
        assert!(addresses().iter().all(|(_, a)| !a.starts_with("127.")));
    }
}
