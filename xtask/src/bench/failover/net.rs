//! The failover bench's network: nodes A and B and a client C on a bridge
//! in a switch namespace, made per run and deleted when the guard drops
//! (also on error and on Ctrl-C). Names `lbfo-PID-ROLE` cannot clash with
//! the tests' (`lv...`) or the lb bench's (`lbbench-...`).
//!
//! ```text
//!   ns A                  ns B                  ns C (client)
//!        veth0                 veth0                veth0
//!          \____________ bridge br0 in ns S ____________/
//!   10.78.0.1 (TTL 61)    10.78.0.2 (TTL 62)    10.78.0.3     VIP 10.78.0.100
//! ```

use std::process::Command;

use super::super::error::BenchError;
use super::super::netns::{delete_namespaces, remove_stale, run};
use super::super::procs::checked;

const PREFIX: &str = "lbfo-";
pub const VIP: &str = "10.78.0.100";
pub const ADDR_A: &str = "10.78.0.1";
pub const ADDR_B: &str = "10.78.0.2";
const ADDR_C: &str = "10.78.0.3";
pub const TTL_A: u8 = 61;
pub const TTL_B: u8 = 62;
/// The interface of every node, named in the daemons' configs.
pub const IFACE: &str = "veth0";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Node {
    A,
    B,
    Client,
}

impl Node {
    fn role(self) -> &'static str {
        match self {
            Node::A => "a",
            Node::B => "b",
            Node::Client => "c",
        }
    }
}

/// The four namespaces; deleted (with their veths) on drop.
pub struct FailoverNet {
    id: u32,
    created: Vec<String>,
}

impl FailoverNet {
    pub fn create() -> Result<Self, BenchError> {
        remove_stale(PREFIX);
        let mut net = FailoverNet {
            id: std::process::id(),
            created: Vec::new(),
        };
        let sw = net.ns_name("s");
        net.add_ns(&sw)?;
        run(&["-n", &sw, "link", "add", "br0", "type", "bridge"])?;
        run(&["-n", &sw, "link", "set", "br0", "up"])?;
        for (node, addr, ttl) in [
            (Node::A, ADDR_A, Some(TTL_A)),
            (Node::B, ADDR_B, Some(TTL_B)),
            (Node::Client, ADDR_C, None),
        ] {
            let ns = net.name(node);
            net.add_ns(&ns)?;
            let port = format!("p{}", node.role());
            run(&[
                "-n", &sw, "link", "add", &port, "type", "veth", "peer", "name", IFACE, "netns",
                &ns,
            ])?;
            run(&["-n", &sw, "link", "set", &port, "master", "br0", "up"])?;
            run(&["-n", &ns, "link", "set", "lo", "up"])?;
            run(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{addr}/24"),
                "dev",
                IFACE,
            ])?;
            run(&["-n", &ns, "link", "set", IFACE, "up"])?;
            if let Some(ttl) = ttl {
                let mut cmd = net.exec(node);
                cmd.args([
                    "sysctl",
                    "-q",
                    "-w",
                    &format!("net.ipv4.ip_default_ttl={ttl}"),
                ]);
                checked(cmd)?;
            }
        }
        Ok(net)
    }

    fn add_ns(&mut self, name: &str) -> Result<(), BenchError> {
        run(&["netns", "add", name])?;
        self.created.push(name.to_string());
        Ok(())
    }

    fn ns_name(&self, role: &str) -> String {
        format!("{PREFIX}{}-{role}", self.id)
    }

    pub fn name(&self, node: Node) -> String {
        self.ns_name(node.role())
    }

    /// A command run inside `node`'s namespace (`ip netns exec` execs, so
    /// the child's pid is the program's own).
    pub fn exec(&self, node: Node) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name(node)]);
        cmd
    }

    /// Whether `node` holds the VIP on its interface.
    pub fn holds_vip(&self, node: Node) -> bool {
        Command::new("ip")
            .args([
                "-n",
                &self.name(node),
                "-4",
                "-o",
                "addr",
                "show",
                "dev",
                IFACE,
            ])
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(&format!(" {VIP}/")))
    }

    /// One ping from the client to the VIP, answered within 1 s.
    pub fn ping_vip(&self) -> bool {
        let mut cmd = self.exec(Node::Client);
        cmd.args(["ping", "-n", "-q", "-c", "1", "-W", "1", VIP]);
        cmd.output().is_ok_and(|o| o.status.success())
    }

    /// `ip link set veth0 down` in `node`'s namespace.
    pub fn link_down(&self, node: Node) -> Result<(), BenchError> {
        run(&["-n", &self.name(node), "link", "set", IFACE, "down"])
    }
}

impl Drop for FailoverNet {
    fn drop(&mut self) {
        delete_namespaces(&mut self.created);
    }
}
