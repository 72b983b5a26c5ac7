//! init's DHCP client against a real dnsmasq over a veth pair between two
//! network namespaces the test creates and removes: lease, renewal at T1
//! on a passed clock, release on shutdown.
//!
//! Needs root, `ip` (iproute2), `ping` (iputils-ping) and `dnsmasq`
//! (`apt-get install -y dnsmasq`). Addresses are documentation prefixes
//! that exist only inside the test's namespaces.

mod net_support;

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use init::net;
use init::net::dhcp::{self, State};
use net_support::{assert_root, options, pair, static_network, Netns};
use serde_json::Value;
use settings::value::NetworkMode;

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
        let mut server = Self { child, leases };
        server.wait_listening(ns);
        server
    }

    /// Waits (bounded) until dnsmasq has its DHCP socket (UDP port 67,
    /// `:0043` in /proc/net/udp of its namespace), so the client's first
    /// DISCOVER is not lost to a server still starting.
    fn wait_listening(&mut self, ns: &Netns) {
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("dnsmasq exited: {status}");
            }
            let udp = ns.exec("cat", &["/proc/net/udp"]);
            if String::from_utf8_lossy(&udp.stdout).contains(":0043 ") {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("dnsmasq did not open UDP port 67 within 10 s");
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
                .expect("client starts");
        let lease = lease.expect("a lease within 15 s");
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
    // dnsmasq's lease line: expiry MAC address hostname client-id.
    let leases = std::fs::read_to_string(&server.leases).unwrap_or_default();
    let line = leases
        .lines()
        .find(|l| l.contains(&addr))
        .unwrap_or_default();
    assert!(
        line.contains(" lbtest "),
        "option 12 reached the server: {line:?}"
    );
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
fn no_server_no_lease_and_the_client_keeps_selecting() {
    // No DHCP server on the segment: boot's wait ends at its timeout with
    // no lease and no error, and the client is left in SELECTING with a
    // retransmission timer for init's poll loop.
    assert_root();
    let (app, _peer) = pair();
    let (state, lease, deadline) = app.enter(|| {
        let mut network = static_network();
        network.mode = NetworkMode::Dhcp;
        let report = net::configure(&network, &options());
        let link = report.primary.expect("primary link");
        let (client, lease) =
            dhcp::acquire_lease(&link.name, None, Duration::from_secs(1)).expect("client starts");
        (client.state(), lease, client.next_deadline())
    });
    assert_eq!(state, State::Selecting);
    assert!(lease.is_none(), "{lease:?}");
    assert!(deadline.is_some(), "a retransmission is scheduled");
    let missing = app.enter(|| {
        dhcp::acquire_lease("nosuch0", None, Duration::from_secs(1)).map(|(_, lease)| lease)
    });
    assert!(
        matches!(&missing, Err(dhcp::DhcpError::Lookup { ifname, .. }) if ifname == "nosuch0"),
        "{missing:?}"
    );
}
