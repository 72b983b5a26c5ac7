//! init's networking against the real kernel: netlink configuration and
//! the DHCP client, each test in network namespaces it creates and removes
//! (even when it fails), checked with `ip -j` and real packets over a veth
//! pair; DHCP against a real dnsmasq.
//!
//! Needs root, `ip` (iproute2), `ping` (iputils-ping) and `dnsmasq`
//! (`apt-get install -y iproute2 iputils-ping dnsmasq`). Addresses are
//! documentation prefixes that exist only inside the test's namespaces.

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use init::net::dhcp::{self, State};
use init::net::{self, NetOptions, Netlink, Route, RouteOrigin};
use init::sysctl;
use serde_json::Value;
use settings::value::{IpCidr, NetworkMode};

static NEXT_ID: AtomicU32 = AtomicU32::new(0);

fn assert_root() {
    // /proc/self belongs to the process's effective user.
    let root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    assert!(
        root,
        "these tests create network namespaces: run them as root"
    );
}

/// Runs a command, failing the test with its output when it fails.
fn run(program: &str, args: &[&str]) -> Output {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {program} (is it installed?): {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A named network namespace, deleted (with its veth end) when dropped.
struct Netns {
    name: String,
}

impl Netns {
    fn new(role: &str) -> Self {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let name = format!("nettest-{}-{id}-{role}", std::process::id());
        run("ip", &["netns", "add", &name]);
        Self { name }
    }

    fn ip(&self, args: &[&str]) -> Output {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        run("ip", &all)
    }

    fn ip_json(&self, args: &[&str]) -> Value {
        let mut all = vec!["-j"];
        all.extend_from_slice(args);
        let out = self.ip(&all);
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("ip {args:?}: not JSON: {e}"))
    }

    fn exec(&self, program: &str, args: &[&str]) -> Output {
        let mut all = vec!["netns", "exec", self.name.as_str(), program];
        all.extend_from_slice(args);
        run("ip", &all)
    }

    /// Runs `f` on a thread that has entered this namespace; the thread
    /// ends with `f`, so the test's own thread never changes namespace.
    fn enter<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/run/netns/{}", self.name);
        let handle = std::thread::spawn(move || {
            let ns = File::open(&path).unwrap_or_else(|e| panic!("opening {path}: {e}"));
            // SAFETY: `ns` is an open namespace fd for the whole call;
            // setns(2) only changes this thread's network namespace.
            let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
            f()
        });
        match handle.join() {
            Ok(v) => v,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// Two namespaces joined by a veth pair: `app0` in `app`, `peer0` in
/// `peer` with 192.0.2.1/24 and 2001:db8::1/64, up.
fn pair() -> (Netns, Netns) {
    let app = Netns::new("app");
    let peer = Netns::new("peer");
    app.ip(&[
        "link", "add", "app0", "type", "veth", "peer", "name", "peer0", "netns", &peer.name,
    ]);
    peer.ip(&["addr", "add", "192.0.2.1/24", "dev", "peer0"]);
    peer.ip(&["addr", "add", "2001:db8::1/64", "dev", "peer0", "nodad"]);
    peer.ip(&["link", "set", "peer0", "up"]);
    peer.ip(&["link", "set", "lo", "up"]);
    (app, peer)
}

fn cidr(s: &str) -> IpCidr {
    let (a, p) = s.split_once('/').expect("test cidr");
    IpCidr {
        addr: a.parse().expect("test address"),
        prefix: p.parse().expect("test prefix"),
    }
}

fn static_network() -> settings::Network {
    settings::Network {
        mode: NetworkMode::Static,
        ipv4: Some(cidr("192.0.2.10/24")),
        gateway: Some(Ipv4Addr::new(192, 0, 2, 1)),
        ipv6: Some(cidr("2001:db8::10/64")),
        gateway6: Some("2001:db8::1".parse().expect("test address")),
        slaac: false,
        mtu: 1400,
        dns: vec![IpAddr::V4(Ipv4Addr::new(192, 0, 2, 53))],
        ntp: Vec::new(),
    }
}

fn options() -> NetOptions {
    NetOptions {
        carrier_timeout: Duration::from_secs(5),
        ..NetOptions::default()
    }
}

/// `ip -j addr show dev <dev>` as `addr/prefix` strings.
fn addresses(ns: &Netns, dev: &str) -> Vec<String> {
    let v = ns.ip_json(&["addr", "show", "dev", dev]);
    v[0]["addr_info"]
        .as_array()
        .expect("addr_info list")
        .iter()
        .map(|a| format!("{}/{}", a["local"].as_str().unwrap_or("?"), a["prefixlen"]))
        .collect()
}

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

/// dnsmasq serving 192.0.2.50-60 on `peer0`, killed when dropped.
struct Dnsmasq {
    child: Child,
    leases: PathBuf,
}

impl Dnsmasq {
    fn start(ns: &Netns) -> Self {
        let leases = std::env::temp_dir().join(format!("{}.leases", ns.name));
        let _ = std::fs::remove_file(&leases);
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &ns.name,
                "dnsmasq",
                "--keep-in-foreground",
                "--conf-file=/dev/null",
            ])
            .args([
                "--port=0",
                "--interface=peer0",
                "--bind-interfaces",
                "--user=root",
                "--pid-file",
            ])
            .arg(format!("--dhcp-leasefile={}", leases.display()))
            .args([
                "--dhcp-range=192.0.2.50,192.0.2.60,255.255.255.0,600",
                "--dhcp-authoritative",
            ])
            .args([
                "--dhcp-option=option:router,192.0.2.1",
                "--dhcp-option=option:dns-server,192.0.2.53",
            ])
            .args([
                "--dhcp-option=option:ntp-server,192.0.2.123",
                "--dhcp-option=option:domain-name,example.net",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting dnsmasq (apt-get install -y dnsmasq): {e}"));
        Self { child, leases }
    }

    /// Waits (bounded) until the lease file does or does not name `addr`.
    fn wait_lease(&mut self, addr: &str, present: bool) -> bool {
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("dnsmasq exited: {status}");
            }
            let text = std::fs::read_to_string(&self.leases).unwrap_or_default();
            if text.contains(addr) == present {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.leases);
    }
}

#[test]
fn dhcp_lease_from_dnsmasq_renew_and_release() {
    assert_root();
    let (app, peer) = pair();
    let mut server = Dnsmasq::start(&peer);
    let outcome = app.enter(|| {
        let mut network = static_network();
        network.mode = NetworkMode::Dhcp;
        network.ipv6 = None;
        network.gateway6 = None;
        let report = net::configure(&network, &options());
        assert!(report.failed.is_empty(), "{:?}", report.lines());
        let link = report.primary.expect("primary link");
        let (mut client, lease) =
            dhcp::acquire_lease(&link.name, Some("lbtest"), Duration::from_secs(15))
                .expect("lease");
        let applied = net::apply_lease(&link, &lease, None);
        assert!(applied.failed.is_empty(), "{:?}", applied.lines());
        let addrs = Command::new("ip")
            .args(["-j", "addr", "show", "dev", "app0"])
            .output();
        let routes = Command::new("ip")
            .args(["-j", "route", "show", "default"])
            .output();

        // Renewal at T1, on a clock passed in: the unicast REQUEST reaches
        // dnsmasq and its ACK brings the client back to BOUND.
        let t1 = lease.renew_at().expect("finite lease");
        let origin = client.next_deadline().expect("T1 timer") - t1;
        let mut now = origin + t1;
        let events = client.on_timer(now);
        assert!(events.is_empty(), "{events:?}");
        assert_eq!(client.state(), State::Renewing);
        let end = Instant::now() + Duration::from_secs(10);
        while client.state() != State::Bound && Instant::now() < end {
            let mut fds = [nix::poll::PollFd::new(
                client.fd(),
                nix::poll::PollFlags::POLLIN,
            )];
            let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(500u16));
            now += Duration::from_millis(1);
            let events = client.on_readable(now);
            assert!(
                !events.iter().any(|e| matches!(e, dhcp::Event::Failed(_))),
                "{events:?}"
            );
        }
        let renewed = client.state() == State::Bound;
        (lease, addrs, routes, renewed, client)
    });
    let (lease, addrs, routes, renewed, mut client) = outcome;
    let addr = lease.address.to_string();
    let octets = lease.address.octets();
    assert!(
        octets[..3] == [192, 0, 2] && (50..=60).contains(&octets[3]),
        "{lease:?}"
    );
    assert_eq!(lease.prefix, 24);
    assert_eq!(lease.routers, vec![Ipv4Addr::new(192, 0, 2, 1)]);
    assert_eq!(lease.dns, vec![Ipv4Addr::new(192, 0, 2, 53)]);
    assert_eq!(lease.ntp, vec![Ipv4Addr::new(192, 0, 2, 123)]);
    assert_eq!(lease.domain.as_deref(), Some("example.net"));
    assert_eq!(lease.server, Ipv4Addr::new(192, 0, 2, 1));
    let addrs: Value = serde_json::from_slice(&addrs.expect("ip addr").stdout).expect("JSON");
    assert!(
        addrs[0]["addr_info"]
            .as_array()
            .is_some_and(|a| a.iter().any(|i| i["local"] == addr.as_str())),
        "{addrs}"
    );
    let routes: Value = serde_json::from_slice(&routes.expect("ip route").stdout).expect("JSON");
    assert_eq!(routes[0]["gateway"], "192.0.2.1", "{routes}");
    assert_eq!(routes[0]["protocol"], "dhcp");
    assert!(server.wait_lease(&addr, true), "dnsmasq recorded the lease");
    assert!(renewed, "renewal ACKed by dnsmasq");
    peer.exec("ping", &["-c", "1", "-W", "5", &addr]);

    // Release on shutdown: dnsmasq forgets the lease.
    let events = app.enter(move || {
        let events = client.release(Instant::now());
        let failed: Vec<String> = events
            .iter()
            .filter_map(|e| match e {
                dhcp::Event::Failed(err) => Some(err.to_string()),
                _ => None,
            })
            .collect();
        assert!(failed.is_empty(), "{failed:?}");
        events
            .iter()
            .any(|e| matches!(e, dhcp::Event::Deconfigure(_)))
    });
    assert!(events, "release deconfigures");
    assert!(
        server.wait_lease(&addr, false),
        "dnsmasq dropped the released lease"
    );
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
            ("net.ipv4.ip_forward", "abc"),
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
        matches!(&report.failed[0], sysctl::SysctlError::BadValue { name, .. } if name == "net.ipv4.ip_forward"),
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
        read("net/ipv4/ip_forward"),
        "1",
        "the bad override left the default"
    );
    assert_eq!(read("net/ipv4/ip_nonlocal_bind"), "1");
    assert_eq!(read("net/ipv6/ip_nonlocal_bind"), "1");
    assert_eq!(read("net/ipv4/conf/all/rp_filter"), "1");
    assert_eq!(read("net/ipv4/conf/all/send_redirects"), "0");
    assert_eq!(read("net/ipv4/tcp_syncookies"), "1");
    assert_eq!(read("net/core/somaxconn"), "1024");
}
