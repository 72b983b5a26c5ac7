//! lbd's privileges through init's real spawn code ([`Service::run_as`]):
//! the child is this test binary again, re-run as a probe (see
//! [`probe`]), in a network namespace the test creates. It reports its
//! `/proc/self/status` and whether it could do what lbd does: listen on
//! port 80, open VRRP's raw socket, add an address over netlink, and
//! (must fail) what lbd must not: read a root-only file, become root.
//!
//! Needs root (it creates the namespace and changes uid).

mod net_support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use init::supervise::privileges::{CapSet, Credentials, LBD_GID, LBD_UID};
use init::supervise::{RestartPolicy, Service, ServiceEvent};
use net_support::{assert_root, Netns};

/// An extra test-name filter (matching nothing) in the probe's arguments:
/// the test binary then acts as the probe. An argument, not an environment
/// variable: tests run in parallel and share one environment.
const PROBE_MARKER: &str = "as-privileges-probe";
/// lbd's three capabilities as /proc/PID/status prints them.
const LBD_CAPS_HEX: &str = "0000000000003400";
const PROBE_TIMEOUT: Duration = Duration::from_secs(30);

/// Not a test of its own: the child's half. Without the marker it
/// returns at once; with it, it prints `key: value` lines and exits.
#[test]
fn probe() {
    if !std::env::args().any(|a| a == PROBE_MARKER) {
        return;
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    for line in status.lines() {
        println!("status {line}");
    }
    let bind80 = std::net::TcpListener::bind("127.0.0.1:80").map(|_| ());
    println!("bind80: {}", outcome(bind80));
    // SAFETY: plain socket(2) with integer arguments; the fd, if any, is
    // closed right away below.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, 112) };
    let raw_result = if raw >= 0 {
        // SAFETY: `raw` is an fd this process just opened and owns.
        unsafe { libc::close(raw) };
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    };
    println!("raw_vrrp: {}", outcome(raw_result));
    let addr = std::process::Command::new("ip")
        .args(["addr", "add", "192.0.2.100/32", "dev", "lo"])
        .status();
    println!(
        "netlink_addr: {}",
        match addr {
            Ok(s) if s.success() => "ok".to_owned(),
            Ok(s) => format!("failed ({s})"),
            Err(e) => format!("failed ({e})"),
        }
    );
    let shadow = std::fs::read("/etc/shadow").map(|_| ());
    println!("read_shadow: {}", outcome(shadow));
    // SAFETY: setuid(2) with an integer argument.
    let to_root = unsafe { libc::setuid(0) };
    println!("setuid0: {}", if to_root == 0 { "ok" } else { "failed" });
    std::process::exit(0);
}

fn outcome(r: std::io::Result<()>) -> String {
    match r {
        Ok(()) => "ok".to_owned(),
        Err(e) => format!("failed ({e})"),
    }
}

/// Runs the probe as `credentials` in `ns` through init's Service; returns
/// its `key: value` lines.
fn run_probe(ns: &Netns, credentials: Credentials) -> BTreeMap<String, String> {
    let exe = std::env::current_exe().expect("the test binary's path");
    let lines = ns.enter(move || {
        let mut service = Service::new(
            "probe",
            exe,
            ["--exact", "probe", PROBE_MARKER, "--nocapture"]
                .map(String::from)
                .to_vec(),
            RestartPolicy::default(),
        )
        .run_as(credentials);
        let started = service.start(Instant::now());
        assert!(
            matches!(started, ServiceEvent::Started { .. }),
            "{started:?}"
        );
        let until = Instant::now() + PROBE_TIMEOUT;
        let mut lines = Vec::new();
        while !service.fds().is_empty() {
            assert!(
                Instant::now() < until,
                "the probe did not finish: {lines:?}"
            );
            lines.extend(service.read_output());
            std::thread::sleep(Duration::from_millis(10));
        }
        if let Some(pid) = service.pid() {
            let _ = nix::sys::wait::waitpid(pid, None);
        }
        lines
    });
    lines
        .iter()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

/// Input: lbd's credentials. Output: the probe runs as 101:101 with no
/// supplementary groups, effective = permitted = ambient = bounding =
/// exactly CAP_NET_BIND_SERVICE, CAP_NET_ADMIN, CAP_NET_RAW, NO_NEW_PRIVS;
/// it listens on :80, opens a raw VRRP socket and adds an address, and
/// cannot read /etc/shadow or become root again.
#[test]
fn lbd_runs_as_its_uid_with_three_network_capabilities() {
    assert_root();
    let ns = Netns::new("privileges");
    ns.ip(&["link", "set", "lo", "up"]);
    let probe = run_probe(&ns, Credentials::lbd());
    let get = |k: &str| probe.get(k).map_or("(missing)", String::as_str);
    let ids = format!("{LBD_UID}\t{LBD_UID}\t{LBD_UID}\t{LBD_UID}");
    assert_eq!(get("status Uid"), ids, "{probe:?}");
    let gids = format!("{LBD_GID}\t{LBD_GID}\t{LBD_GID}\t{LBD_GID}");
    assert_eq!(get("status Gid"), gids);
    assert_eq!(get("status Groups"), "");
    for key in ["CapEff", "CapPrm", "CapAmb", "CapBnd", "CapInh"] {
        assert_eq!(get(&format!("status {key}")), LBD_CAPS_HEX, "{key}");
    }
    assert_eq!(get("status NoNewPrivs"), "1");
    assert_eq!(get("bind80"), "ok");
    assert_eq!(get("raw_vrrp"), "ok");
    assert_eq!(get("netlink_addr"), "ok");
    assert!(get("read_shadow").starts_with("failed"), "{probe:?}");
    assert_eq!(get("setuid0"), "failed");
    let addrs = ns.ip(&["-br", "addr", "show", "dev", "lo"]);
    assert!(String::from_utf8_lossy(&addrs.stdout).contains("192.0.2.100/32"));
}

/// Input: lbd's uid with no capabilities. Output: what the three
/// capabilities allow fails: the probe would have caught a missing one.
#[test]
fn without_the_capabilities_the_network_calls_fail() {
    assert_root();
    let ns = Netns::new("nocaps");
    ns.ip(&["link", "set", "lo", "up"]);
    let creds = Credentials {
        caps: CapSet::default(),
        ..Credentials::lbd()
    };
    let probe = run_probe(&ns, creds);
    let get = |k: &str| probe.get(k).map_or("(missing)", String::as_str);
    assert_eq!(get("status CapEff"), "0000000000000000", "{probe:?}");
    assert!(get("bind80").starts_with("failed"), "{probe:?}");
    assert!(get("raw_vrrp").starts_with("failed"), "{probe:?}");
    assert!(get("netlink_addr").starts_with("failed"), "{probe:?}");
}
