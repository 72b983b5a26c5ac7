//! init's netlink configuration and sysctls against the real kernel, each
//! test in network namespaces it creates and removes (even when it fails),
//! checked with `ip -j` and real packets over a veth pair.
//!
//! Needs root, `ip` (iproute2) and `ping` (iputils-ping). Addresses are
//! documentation prefixes that exist only inside the test's namespaces.

mod net_support;

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use init::net::{self, Netlink, Route, RouteOrigin};
use init::sysctl;
use net_support::{addresses, assert_root, cidr, options, pair, run, static_network, Netns};
use serde_json::Value;

#[test]
fn static_configuration_is_applied_and_answers_ping() {
    assert_root();
    let (app, peer) = pair();
    let report = app.enter(|| net::configure(&static_network(), &options()));
    assert!(report.failed.is_empty(), "{:?}", report.lines());
    assert_eq!(
        report.primary.as_ref().map(|l| l.name.as_str()),
        Some("app0")
    );
    assert!(report.no_carrier.is_empty(), "{:?}", report.lines());
    let primary = report.primary.as_ref().expect("primary");
    assert!(
        primary.up && primary.carrier && primary.mtu == 1400,
        "{primary:?}"
    );

    let addrs = addresses(&app, "app0");
    assert!(addrs.contains(&"192.0.2.10/24".to_owned()), "{addrs:?}");
    assert!(addrs.contains(&"2001:db8::10/64".to_owned()), "{addrs:?}");
    let link = app.ip_json(&["link", "show", "app0"]);
    assert_eq!(link[0]["mtu"], 1400);
    assert_eq!(link[0]["operstate"], "UP");
    let lo = app.ip_json(&["link", "show", "lo"]);
    assert!(
        lo[0]["flags"]
            .as_array()
            .is_some_and(|f| f.iter().any(|x| x == "UP")),
        "{lo}"
    );

    let v4 = app.ip_json(&["route", "show", "default"]);
    assert_eq!(v4[0]["gateway"], "192.0.2.1", "{v4}");
    assert_eq!(v4[0]["dev"], "app0");
    assert_eq!(v4[0]["protocol"], "static");
    let v6 = app.ip_json(&["-6", "route", "show", "default"]);
    assert_eq!(v6[0]["gateway"], "2001:db8::1", "{v6}");

    let accept_ra = app.exec("cat", &["/proc/sys/net/ipv6/conf/app0/accept_ra"]);
    assert_eq!(
        String::from_utf8_lossy(&accept_ra.stdout).trim(),
        "0",
        "SLAAC off"
    );
    peer.exec("ping", &["-c", "1", "-W", "5", "192.0.2.10"]);
    // A second run changes nothing and fails nothing (boot retries).
    let again = app.enter(|| net::configure(&static_network(), &options()));
    assert!(again.failed.is_empty(), "{:?}", again.lines());
}

#[test]
fn failures_name_the_interface_and_the_rest_applies() {
    // A gateway outside the subnet cannot be routed to; the address and
    // the IPv6 side must still be configured.
    assert_root();
    let (app, _peer) = pair();
    let mut network = static_network();
    network.gateway = Some(Ipv4Addr::new(198, 51, 100, 1));
    network.slaac = true;
    let report = app.enter(move || net::configure(&network, &options()));
    assert_eq!(report.failed.len(), 1, "{:?}", report.lines());
    assert_eq!(report.failed[0].interface, "app0");
    assert!(
        report.failed[0].reason.contains("198.51.100.1"),
        "{:?}",
        report.failed
    );
    assert!(addresses(&app, "app0").contains(&"192.0.2.10/24".to_owned()));
    let v6 = app.ip_json(&["-6", "route", "show", "default"]);
    assert_eq!(v6[0]["gateway"], "2001:db8::1", "{v6}");
    let accept_ra = app.exec("cat", &["/proc/sys/net/ipv6/conf/app0/accept_ra"]);
    assert_eq!(
        String::from_utf8_lossy(&accept_ra.stdout).trim(),
        "2",
        "SLAAC on"
    );

    let mut missing = static_network();
    missing.ipv4 = None;
    let report = app.enter(move || net::configure(&missing, &options()));
    assert!(
        report
            .failed
            .iter()
            .any(|f| f.interface == "app0" && f.reason.contains("network.ipv4")),
        "{:?}",
        report.lines()
    );
}

#[test]
fn netlink_links_routes_flush_and_carrier() {
    assert_root();
    let (app, peer) = pair();
    peer.ip(&["link", "set", "peer0", "down"]);
    let (links, carrier_down) = app.enter(|| {
        let mut nl = Netlink::open().expect("netlink");
        let link = nl.link("app0").expect("app0 exists");
        nl.set_up(link.index).expect("up");
        let down = net::wait_for_carrier(link.index, Duration::from_millis(300)).expect("wait");
        (nl.links().expect("links"), down)
    });
    assert!(!carrier_down, "peer is down: no carrier");
    let app0 = links.iter().find(|l| l.name == "app0").expect("listed");
    assert_eq!(app0.kind.as_deref(), Some("veth"));
    assert!(app0.mac.is_some() && app0.ethernet && !app0.loopback && app0.up && !app0.carrier);
    assert!(links.iter().any(|l| l.name == "lo" && l.loopback));
    assert!(matches!(net::primary_link(&links, None), Some(l) if l.name == "app0"));

    // Carrier arrives while waiting: the event wakes the wait.
    let peer_name = peer.name.clone();
    let waiter = app.enter(move || {
        let mut nl = Netlink::open().expect("netlink");
        let link = nl.link("app0").expect("app0");
        run("ip", &["-n", &peer_name, "link", "set", "peer0", "up"]);
        net::wait_for_carrier(link.index, Duration::from_secs(10)).expect("wait")
    });
    assert!(waiter, "carrier after the peer came up");

    let (listed, flushed, after) = app.enter(|| {
        let mut nl = Netlink::open().expect("netlink");
        let link = nl.link("app0").expect("app0");
        nl.add_address(link.index, cidr("192.0.2.10/24"))
            .expect("v4");
        nl.add_address(link.index, cidr("2001:db8::10/64"))
            .expect("v6");
        let extra = Route {
            destination: cidr("198.51.100.0/24"),
            gateway: Some("192.0.2.1".parse().expect("addr")),
            ifindex: link.index,
            metric: Some(50),
            protocol: RouteOrigin::Static,
        };
        nl.add_route(&extra).expect("extra route");
        nl.add_route(&extra).expect("adding again replaces");
        let listed = nl.addresses(link.index).expect("list");
        let routes = Command::new("ip")
            .args(["-j", "route", "show", "198.51.100.0/24"])
            .output();
        nl.delete_route(&extra).expect("delete route");
        let flushed = nl.flush_addresses(link.index).expect("flush");
        let after = nl.addresses(link.index).expect("list");
        let routes = routes.expect("ip route").stdout;
        (listed, (flushed, routes), after)
    });
    let (flushed, routes) = flushed;
    assert!(listed.contains(&cidr("192.0.2.10/24")) && listed.contains(&cidr("2001:db8::10/64")));
    let routes: Value = serde_json::from_slice(&routes).expect("JSON");
    assert_eq!(routes[0]["gateway"], "192.0.2.1", "{routes}");
    assert_eq!(routes[0]["metric"], 50);
    assert_eq!(flushed.len(), 2, "{flushed:?}");
    assert!(
        after
            .iter()
            .all(|c| matches!(c.addr, IpAddr::V6(a) if a.segments()[0] == 0xfe80)),
        "{after:?}"
    );
    assert!(app
        .ip_json(&["route", "show", "198.51.100.0/24"])
        .as_array()
        .is_some_and(Vec::is_empty));
}

#[test]
fn sysctl_plan_applies_to_a_real_kernel() {
    // Global keys (kernel.*, fs.*) are only checked to exist: writing them
    // would change the host. The net.* keys are per namespace, so they are
    // written for real in a fresh one, with two bad overrides among them.
    assert_root();
    let host = Path::new(sysctl::PROC_SYS);
    for s in sysctl::plan(&[], &[], &[]) {
        if !s.optional && !s.name.starts_with("net.") {
            let path = sysctl::path_of(host, &s.name).expect("valid name");
            assert!(path.is_file(), "{} is missing in this kernel", s.name);
        }
    }
    let ns = Netns::new("sysctl");
    let report = ns.enter(|| {
        let root = Path::new(sysctl::PROC_SYS);
        let overrides = [
            ("net.core.somaxconn", "1024"),
            ("net.ipv4.ip_nonlocal_bind", "abc"),
            ("net.nope.key", "1"),
        ]
        .map(|(n, v)| (n.to_owned(), v.to_owned()));
        let list: Vec<sysctl::Sysctl> = sysctl::plan(
            &sysctl::interfaces(root, "ipv4"),
            &sysctl::interfaces(root, "ipv6"),
            &overrides,
        )
        .into_iter()
        .filter(|s| s.name.starts_with("net."))
        .collect();
        sysctl::apply(root, &list)
    });
    let failed: Vec<String> = report.failed.iter().map(ToString::to_string).collect();
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert!(
        matches!(&report.failed[0], sysctl::SysctlError::BadValue { name, .. } if name == "net.ipv4.ip_nonlocal_bind"),
        "{failed:?}"
    );
    assert!(
        matches!(&report.failed[1], sysctl::SysctlError::Missing { name } if name == "net.nope.key"),
        "{failed:?}"
    );
    assert!(
        report
            .applied
            .contains(&"net.ipv4.conf.lo.send_redirects=0".to_owned()),
        "{:?}",
        report.applied
    );
    let read = |key: &str| {
        let out = ns.exec("cat", &[&format!("/proc/sys/{key}")]);
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    assert_eq!(
        read("net/ipv4/ip_nonlocal_bind"),
        "1",
        "the bad override left the default"
    );
    assert_eq!(
        read("net/ipv4/ip_forward"),
        "0",
        "a proxy does not route: forwarding stays off"
    );
    assert_eq!(read("net/ipv6/ip_nonlocal_bind"), "1");
    assert_eq!(read("net/ipv4/conf/all/rp_filter"), "1");
    assert_eq!(read("net/ipv4/conf/all/send_redirects"), "0");
    assert_eq!(read("net/ipv4/tcp_syncookies"), "1");
    assert_eq!(read("net/core/somaxconn"), "1024");
}

#[test]
fn no_ethernet_nic_is_reported_and_lo_still_comes_up() {
    assert_root();
    let ns = Netns::new("bare");
    let report = ns.enter(|| net::configure(&static_network(), &options()));
    assert!(report.primary.is_none());
    assert!(
        report
            .failed
            .iter()
            .any(|f| f.reason.contains("no Ethernet interface")),
        "{:?}",
        report.lines()
    );
    let lo = ns.ip_json(&["link", "show", "lo"]);
    assert!(
        lo[0]["flags"]
            .as_array()
            .is_some_and(|f| f.iter().any(|x| x == "UP")),
        "{lo}"
    );
}
