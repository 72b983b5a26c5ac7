//! Shared by the `net_*` tests: named network namespaces removed on drop
//! (even when a test fails), a veth pair between two of them, command
//! helpers that fail the test with the command's stderr.

#![allow(dead_code)] // each test crate uses a different part

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use init::net::NetOptions;
use serde_json::Value;
use settings::value::{IpCidr, NetworkMode};

static NEXT_ID: AtomicU32 = AtomicU32::new(0);

pub fn assert_root() {
    // /proc/self belongs to the process's effective user.
    let root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    assert!(
        root,
        "these tests create network namespaces: run them as root"
    );
}

/// Runs a command, failing the test with its output when it fails.
pub fn run(program: &str, args: &[&str]) -> Output {
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
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(role: &str) -> Self {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let name = format!("nettest-{}-{id}-{role}", std::process::id());
        run("ip", &["netns", "add", &name]);
        Self { name }
    }

    pub fn ip(&self, args: &[&str]) -> Output {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        run("ip", &all)
    }

    pub fn ip_json(&self, args: &[&str]) -> Value {
        let mut all = vec!["-j"];
        all.extend_from_slice(args);
        let out = self.ip(&all);
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("ip {args:?}: not JSON: {e}"))
    }

    pub fn exec(&self, program: &str, args: &[&str]) -> Output {
        let mut all = vec!["netns", "exec", self.name.as_str(), program];
        all.extend_from_slice(args);
        run("ip", &all)
    }

    /// Runs `f` on a thread that has entered this namespace; the thread
    /// ends with `f`, so the test's own thread never changes namespace.
    pub fn enter<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
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
pub fn pair() -> (Netns, Netns) {
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

pub fn cidr(s: &str) -> IpCidr {
    let (a, p) = s.split_once('/').expect("test cidr");
    IpCidr {
        addr: a.parse().expect("test address"),
        prefix: p.parse().expect("test prefix"),
    }
}

pub fn static_network() -> settings::Network {
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

pub fn options() -> NetOptions {
    NetOptions {
        carrier_timeout: Duration::from_secs(5),
        ..NetOptions::default()
    }
}

/// `ip -j addr show dev <dev>` as `addr/prefix` strings.
pub fn addresses(ns: &Netns, dev: &str) -> Vec<String> {
    let v = ns.ip_json(&["addr", "show", "dev", dev]);
    v[0]["addr_info"]
        .as_array()
        .expect("addr_info list")
        .iter()
        .map(|a| format!("{}/{}", a["local"].as_str().unwrap_or("?"), a["prefixlen"]))
        .collect()
}
