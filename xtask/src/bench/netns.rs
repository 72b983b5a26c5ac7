//! The bench's network: three namespaces joined by veth pairs at MTU 1500,
//! made at start and deleted when the guard drops (also on error and on
//! Ctrl-C). Addresses exist only inside these namespaces.
//!
//! ```text
//!  client ns                 proxy ns                  backend ns
//!  c0 10.77.1.1/24 ---- p0 10.77.1.2/24
//!                           p1 10.77.2.1/24 ---- b0 10.77.2.2/24
//!  wrk, iperf3 -c            lbd | haproxy             nginx, iperf3 -s
//! ```

use std::process::Command;

use super::error::BenchError;
use super::procs::checked;

/// Prefix of our namespace names; the pid follows, so runs never collide and
/// leftovers of a killed run can be recognised.
const PREFIX: &str = "lbbench-";
pub const CLIENT_ADDR: &str = "10.77.1.1";
pub const PROXY_FRONT_ADDR: &str = "10.77.1.2";
pub const PROXY_BACK_ADDR: &str = "10.77.2.1";
pub const BACKEND_ADDR: &str = "10.77.2.2";
const MTU: &str = "1500";
/// Per-namespace sysctls: a wide ephemeral range and TIME_WAIT reuse, for
/// the Connection: close run that opens a connection per request.
const SYSCTLS: &[&str] = &[
    "net.ipv4.ip_local_port_range=1024 65000",
    "net.ipv4.tcp_tw_reuse=1",
    "net.core.somaxconn=4096",
];

#[derive(Clone, Copy, Debug)]
pub enum Ns {
    Client,
    Proxy,
    Backend,
}

impl Ns {
    const ALL: [Ns; 3] = [Ns::Client, Ns::Proxy, Ns::Backend];

    fn role(self) -> &'static str {
        match self {
            Ns::Client => "client",
            Ns::Proxy => "proxy",
            Ns::Backend => "backend",
        }
    }
}

/// The three namespaces; deleted (with their veths) on drop.
pub struct Topology {
    id: u32,
    created: Vec<String>,
}

/// `ip ARGS`, failing with its stderr.
pub fn run(args: &[&str]) -> Result<(), BenchError> {
    let mut cmd = Command::new("ip");
    cmd.args(args);
    checked(cmd)
}

impl Topology {
    pub fn create() -> Result<Self, BenchError> {
        remove_stale(PREFIX);
        let mut topo = Topology {
            id: std::process::id(),
            created: Vec::new(),
        };
        for ns in Ns::ALL {
            let name = topo.name(ns);
            run(&["netns", "add", &name])?;
            topo.created.push(name.clone());
            run(&["-n", &name, "link", "set", "lo", "up"])?;
        }
        let (c, p, b) = (
            topo.name(Ns::Client),
            topo.name(Ns::Proxy),
            topo.name(Ns::Backend),
        );
        topo.veth(&c, "c0", CLIENT_ADDR, &p, "p0", PROXY_FRONT_ADDR)?;
        topo.veth(&p, "p1", PROXY_BACK_ADDR, &b, "b0", BACKEND_ADDR)?;
        for ns in Ns::ALL {
            for s in SYSCTLS {
                let mut cmd = topo.exec(ns);
                cmd.args(["sysctl", "-q", "-w", s]);
                checked(cmd)?;
            }
        }
        Ok(topo)
    }

    fn veth(
        &self,
        ns_a: &str,
        a: &str,
        addr_a: &str,
        ns_b: &str,
        b: &str,
        addr_b: &str,
    ) -> Result<(), BenchError> {
        run(&[
            "link", "add", a, "netns", ns_a, "mtu", MTU, "type", "veth", "peer", "name", b,
            "netns", ns_b, "mtu", MTU,
        ])?;
        for (ns, dev, addr) in [(ns_a, a, addr_a), (ns_b, b, addr_b)] {
            run(&["-n", ns, "addr", "add", &format!("{addr}/24"), "dev", dev])?;
            run(&["-n", ns, "link", "set", dev, "up"])?;
        }
        Ok(())
    }

    pub fn name(&self, ns: Ns) -> String {
        format!("{PREFIX}{}-{}", self.id, ns.role())
    }

    /// A command that runs inside `ns` (`ip netns exec` execs, so the
    /// child's pid is the program's own).
    pub fn exec(&self, ns: Ns) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name(ns)]);
        cmd
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        // Deleting a namespace deletes its veth end, and so the pair.
        delete_namespaces(&mut self.created);
    }
}

/// Deletes `created` namespaces, newest first.
pub fn delete_namespaces(created: &mut Vec<String>) {
    for name in created.drain(..).rev() {
        if let Err(e) = run(&["netns", "del", &name]) {
            eprintln!("xtask bench: could not delete namespace {name}: {e}");
        }
    }
}

/// Deletes namespaces named `<prefix><pid>-...` of earlier runs whose
/// process is gone (a SIGKILLed bench cannot clean up after itself).
pub fn remove_stale(prefix: &str) {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or_default();
        let Some(rest) = name.strip_prefix(prefix) else {
            continue;
        };
        let pid = rest.split('-').next().unwrap_or_default();
        if !pid.is_empty() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            eprintln!("  removing stale namespace {name}");
            let _ = run(&["netns", "del", name]);
        }
    }
}
