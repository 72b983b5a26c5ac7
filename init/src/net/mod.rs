//! Networking over netlink: links, addresses, routes, DHCPv4, resolv.conf.
//!
//! Boot calls [`configure`] once with the merged settings: it brings `lo`
//! and every Ethernet NIC up, picks the primary NIC (see
//! [`primary_link`]), waits a bounded time for its carrier, and in static
//! mode applies the addresses, MTU and default routes. In DHCP mode it
//! leaves the addresses to [`dhcp`]: boot then calls
//! [`dhcp::acquire_lease`] and [`apply_lease`], and puts the
//! [`dhcp::DhcpClient`] in its poll loop for renewals. Nothing here is
//! fatal: every failure lands in the [`NetReport`] with its interface and
//! reason, and init prints it on the console.

mod carrier;
pub mod dhcp;
pub mod netlink;
pub mod resolv;
mod rtmsg;
pub mod slaac;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::time::Duration;

use settings::value::{IpCidr, NetworkMode};

pub use carrier::wait_for_carrier;
pub use netlink::{Link, Netlink, NetlinkError, Route, RouteOrigin};

/// How long boot waits for the primary NIC's carrier before going on
/// without it (vSphere connects the virtual cable within milliseconds; an
/// unplugged one is reported, not waited for).
pub const CARRIER_TIMEOUT: Duration = Duration::from_secs(5);
/// Where the kernel's sysctls live; tests pass a temp dir instead.
pub const PROC_SYS: &str = crate::sysctl::PROC_SYS;

/// Knobs of [`configure`] that are not settings.
#[derive(Debug, Clone)]
pub struct NetOptions {
    /// Longest wait for the primary NIC's carrier.
    pub carrier_timeout: Duration,
    /// Root of the sysctl tree (`/proc/sys`), for the SLAAC switches.
    pub proc_sys: PathBuf,
    /// The primary NIC by name; `None` picks the first Ethernet NIC.
    pub interface: Option<String>,
}

impl Default for NetOptions {
    fn default() -> Self {
        Self {
            carrier_timeout: CARRIER_TIMEOUT,
            proc_sys: PathBuf::from(PROC_SYS),
            interface: None,
        }
    }
}

/// One step that did not work, with the interface and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetFailure {
    /// Interface name, or `netlink` when no interface was involved.
    pub interface: String,
    /// What was tried and why it failed.
    pub reason: String,
}

/// What [`configure`] did, for the console.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetReport {
    /// The interface the settings apply to.
    pub primary: Option<Link>,
    /// Steps that worked, one line each (`ens192: up`, `ens192: 192.0.2.10/24`).
    pub done: Vec<String>,
    /// NICs still without carrier when boot went on.
    pub no_carrier: Vec<String>,
    /// Steps that failed.
    pub failed: Vec<NetFailure>,
}

impl NetReport {
    fn ok(&mut self, line: String) {
        self.done.push(line);
    }

    fn fail(&mut self, interface: &str, reason: impl fmt::Display) {
        self.failed.push(NetFailure {
            interface: interface.to_owned(),
            reason: reason.to_string(),
        });
    }

    /// Console lines: `net: ...` for each step, `net: error: ...` for each
    /// failure.
    pub fn lines(&self) -> Vec<String> {
        let mut out: Vec<String> = self.done.iter().map(|l| format!("net: {l}")).collect();
        for name in &self.no_carrier {
            out.push(format!(
                "net: warning: {name}: no link (cable disconnected?)"
            ));
        }
        for f in &self.failed {
            out.push(format!("net: error: {}: {}", f.interface, f.reason));
        }
        out
    }
}

/// The NIC the settings configure: the one named in `wanted`, else the
/// Ethernet NIC with the lowest interface index. Lowest index is the first
/// one the kernel probed, which on vSphere and QEMU is the first PCI NIC,
/// i.e. "Network adapter 1" in the VM's settings.
pub fn primary_link<'a>(links: &'a [Link], wanted: Option<&str>) -> Option<&'a Link> {
    match wanted {
        Some(name) => links.iter().find(|l| l.name == name),
        None => links.iter().find(|l| l.ethernet && !l.loopback),
    }
}

/// Brings the network up from settings; see the module doc.
pub fn configure(network: &settings::Network, opts: &NetOptions) -> NetReport {
    let mut report = NetReport::default();
    let mut nl = match Netlink::open() {
        Ok(nl) => nl,
        Err(e) => {
            report.fail("netlink", e);
            return report;
        }
    };
    let links = match nl.links() {
        Ok(l) => l,
        Err(e) => {
            report.fail("netlink", e);
            return report;
        }
    };
    let primary = primary_link(&links, opts.interface.as_deref()).cloned();
    match &primary {
        Some(p) => report.ok(format!(
            "{}: primary interface (mac {})",
            p.name,
            p.mac_text()
        )),
        None => report.fail(
            opts.interface.as_deref().unwrap_or("network"),
            "no Ethernet interface found: the addresses from the settings are not applied",
        ),
    }

    for link in &links {
        let is_primary = primary.as_ref().is_some_and(|p| p.index == link.index);
        if !(link.loopback || link.ethernet || is_primary) {
            continue;
        }
        if !link.loopback {
            // Before the link goes up, so the kernel does not act on an RA
            // the settings turn off.
            let slaac = is_primary && network.slaac;
            match slaac::set(&opts.proc_sys, &link.name, slaac) {
                Ok(()) if slaac => report.ok(format!("{}: IPv6 SLAAC on", link.name)),
                Ok(()) => {}
                // IPv6 disabled in this kernel: nothing to turn off.
                Err(e) if !slaac && e.is_not_found() => {}
                Err(e) => report.fail(&link.name, e),
            }
        }
        if is_primary && link.mtu != u32::from(network.mtu) {
            match nl.set_mtu(link.index, u32::from(network.mtu)) {
                Ok(()) => report.ok(format!("{}: mtu {}", link.name, network.mtu)),
                Err(e) => report.fail(&link.name, e),
            }
        }
        match nl.set_up(link.index) {
            Ok(()) => report.ok(format!("{}: up", link.name)),
            Err(e) => report.fail(&link.name, e),
        }
    }

    let Some(primary) = primary else {
        return report;
    };
    match wait_for_carrier(primary.index, opts.carrier_timeout) {
        Ok(true) => report.ok(format!("{}: link detected", primary.name)),
        Ok(false) => report.no_carrier.push(primary.name.clone()),
        Err(e) => report.fail(&primary.name, e),
    }
    match network.mode {
        NetworkMode::Static => apply_static(&mut nl, &primary, network, &mut report),
        NetworkMode::Dhcp => report.ok(format!("{}: IPv4 address by DHCP", primary.name)),
    }
    // IPv6 is static (or SLAAC) in both modes: the DHCP client is v4 only.
    apply_ipv6(&mut nl, &primary, network, &mut report);
    // Show the state after the changes (up, carrier, MTU).
    let primary = nl.link(&primary.name).unwrap_or(primary);
    report.primary = Some(primary);
    report
}

fn apply_static(
    nl: &mut Netlink,
    link: &Link,
    network: &settings::Network,
    report: &mut NetReport,
) {
    match network.ipv4 {
        Some(cidr) => add_address(nl, link, cidr, report),
        None => report.fail(
            &link.name,
            "network.mode is static but network.ipv4 is empty: set network.ipv4 (like 192.0.2.10/24) or use network.mode=dhcp",
        ),
    }
    if let Some(gw) = network.gateway {
        add_default_route(nl, link, IpAddr::V4(gw), RouteOrigin::Static, report);
    }
}

fn apply_ipv6(nl: &mut Netlink, link: &Link, network: &settings::Network, report: &mut NetReport) {
    if let Some(cidr) = network.ipv6 {
        add_address(nl, link, cidr, report);
    }
    if let Some(gw) = network.gateway6 {
        add_default_route(nl, link, IpAddr::V6(gw), RouteOrigin::Static, report);
    }
}

fn add_address(nl: &mut Netlink, link: &Link, cidr: IpCidr, report: &mut NetReport) {
    match nl.add_address(link.index, cidr) {
        Ok(()) => report.ok(format!("{}: address {cidr}", link.name)),
        Err(e) => report.fail(&link.name, e),
    }
}

fn add_default_route(
    nl: &mut Netlink,
    link: &Link,
    gateway: IpAddr,
    protocol: RouteOrigin,
    report: &mut NetReport,
) {
    let route = default_route(link.index, gateway, protocol);
    match nl.add_route(&route) {
        Ok(()) => report.ok(format!("{}: default via {gateway}", link.name)),
        Err(e) => report.fail(&link.name, e),
    }
}

/// A default route (`0.0.0.0/0` or `::/0`) via `gateway`.
pub fn default_route(ifindex: u32, gateway: IpAddr, protocol: RouteOrigin) -> Route {
    let any = match gateway {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    Route {
        destination: IpCidr {
            addr: any,
            prefix: 0,
        },
        gateway: Some(gateway),
        ifindex,
        metric: None,
        protocol,
    }
}

/// Applies a DHCP lease to `link`: the address with its prefix, then a
/// default route via the first router. When `previous` is a lease with a
/// different address, that address is removed first.
pub fn apply_lease(link: &Link, lease: &dhcp::Lease, previous: Option<&dhcp::Lease>) -> NetReport {
    let mut report = NetReport::default();
    let mut nl = match Netlink::open() {
        Ok(nl) => nl,
        Err(e) => {
            report.fail(&link.name, e);
            return report;
        }
    };
    if let Some(old) = previous {
        if old.cidr() != lease.cidr() {
            remove_lease_with(&mut nl, link, old, &mut report);
        }
    }
    if let Some(mtu) = lease.mtu {
        // Option 26 wins over the settings' MTU only when it is smaller:
        // the network says frames bigger than this do not get through.
        if u32::from(mtu) < link.mtu {
            match nl.set_mtu(link.index, u32::from(mtu)) {
                Ok(()) => report.ok(format!("{}: mtu {mtu} (DHCP)", link.name)),
                Err(e) => report.fail(&link.name, e),
            }
        }
    }
    add_address(&mut nl, link, lease.cidr(), &mut report);
    if let Some(router) = lease.routers.first() {
        add_default_route(
            &mut nl,
            link,
            IpAddr::V4(*router),
            RouteOrigin::Dhcp,
            &mut report,
        );
    }
    report
}

/// Removes a lease's address and default route (lease expired or
/// released).
pub fn remove_lease(link: &Link, lease: &dhcp::Lease) -> NetReport {
    let mut report = NetReport::default();
    match Netlink::open() {
        Ok(mut nl) => remove_lease_with(&mut nl, link, lease, &mut report),
        Err(e) => report.fail(&link.name, e),
    }
    report
}

fn remove_lease_with(nl: &mut Netlink, link: &Link, lease: &dhcp::Lease, report: &mut NetReport) {
    if let Some(router) = lease.routers.first() {
        let route = default_route(link.index, IpAddr::V4(*router), RouteOrigin::Dhcp);
        // Gone already when the address went first; not worth a warning.
        let _ = nl.delete_route(&route);
    }
    match nl.delete_address(link.index, lease.cidr()) {
        Ok(()) => report.ok(format!("{}: removed {}", link.name, lease.cidr())),
        Err(e) => report.fail(&link.name, e),
    }
}
