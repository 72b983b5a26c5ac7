//! Two `lbd run` nodes with VRRP in network namespaces joined by a bridge,
//! and a client namespace that pings the VIP. The namespaces are made by
//! the test and removed when it ends, even on failure (Drop). Needs root;
//! skipped (with a message) otherwise.
//!
//! ```text
//!   ns A (lbd, prio 150)  ns B (lbd, prio 100)  ns C (client)
//!        veth0                 veth0                veth0
//!          \____________ bridge br0 in ns S ____________/
//!   10.77.0.1             10.77.0.2             10.77.0.3     VIP 10.77.0.100
//! ```
//! Waits poll the state with a generous limit; nothing asserts on timing.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const VIP: &str = "10.77.0.100";
const PATIENCE: Duration = Duration::from_secs(20);

fn sh(args: &[&str]) -> bool {
    Command::new(args[0])
        .args(&args[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn must(args: &[&str]) {
    assert!(sh(args), "command failed: {}", args.join(" "));
}

/// The namespaces of one test; removed on drop.
struct Net {
    prefix: String,
}

impl Net {
    fn ns(&self, node: &str) -> String {
        format!("{}{node}", self.prefix)
    }

    fn new(tag: &str) -> Self {
        let net = Self {
            prefix: format!("lv{tag}{}", std::process::id() % 100_000),
        };
        let sw = net.ns("s");
        must(&["ip", "netns", "add", &sw]);
        must(&["ip", "-n", &sw, "link", "add", "br0", "type", "bridge"]);
        must(&["ip", "-n", &sw, "link", "set", "br0", "up"]);
        for (node, addr) in [
            ("a", "10.77.0.1/24"),
            ("b", "10.77.0.2/24"),
            ("c", "10.77.0.3/24"),
        ] {
            let ns = net.ns(node);
            must(&["ip", "netns", "add", &ns]);
            let port = format!("p{node}");
            must(&[
                "ip", "-n", &sw, "link", "add", &port, "type", "veth", "peer", "name", "veth0",
                "netns", &ns,
            ]);
            must(&["ip", "-n", &sw, "link", "set", &port, "master", "br0", "up"]);
            must(&["ip", "-n", &ns, "link", "set", "lo", "up"]);
            must(&["ip", "-n", &ns, "addr", "add", addr, "dev", "veth0"]);
            must(&["ip", "-n", &ns, "link", "set", "veth0", "up"]);
        }
        net
    }

    fn holds_vip(&self, node: &str) -> bool {
        let out = Command::new("ip")
            .args([
                "-n",
                &self.ns(node),
                "-4",
                "-o",
                "addr",
                "show",
                "dev",
                "veth0",
            ])
            .output()
            .expect("ip addr");
        String::from_utf8_lossy(&out.stdout).contains(&format!("{VIP}/"))
    }

    fn ping_vip(&self) -> bool {
        sh(&[
            "ip",
            "netns",
            "exec",
            &self.ns("c"),
            "ping",
            "-c",
            "1",
            "-W",
            "1",
            VIP,
        ])
    }

    /// Polls until `cond` holds; panics with `what` after PATIENCE.
    fn wait(&self, what: &str, cond: impl Fn(&Self) -> bool) {
        let start = Instant::now();
        while !cond(self) {
            assert!(start.elapsed() < PATIENCE, "never happened: {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for node in ["a", "b", "c", "s"] {
            sh(&["ip", "netns", "del", &self.ns(node)]);
        }
    }
}

/// One lbd node in a namespace; killed on drop.
struct Node {
    child: Child,
}

fn config(dir: &Path, node: &str, prio: u8, me: &str, peer: &str, extra: &str) -> PathBuf {
    let file = dir.join(format!("{node}.toml"));
    let text = format!(
        "[global]\ncontrol_socket = \"{d}/{node}.sock\"\nstate_file = \"{d}/{node}.json\"\n\
         [vrrp.vi]\ninterface = \"veth0\"\nvrid = 42\npriority = {prio}\nadvert_int = \"100ms\"\n\
         unicast_src_ip = \"{me}\"\nunicast_peers = [\"{peer}\"]\nvirtual_ips = [\"{VIP}/24\"]\n{extra}",
        d = dir.display()
    );
    std::fs::write(&file, text).expect("write config");
    file
}

impl Node {
    fn start(net: &Net, node: &str, file: &Path) -> Self {
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &net.ns(node),
                env!("CARGO_BIN_EXE_lbd"),
                "run",
                "-c",
            ])
            .arg(file)
            .env("LBD_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn lbd");
        Self { child }
    }

    fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn terminate(&mut self) {
        sh(&["kill", "-TERM", &self.child.id().to_string()]);
        let status = self.child.wait().expect("wait lbd");
        assert!(status.success(), "lbd exited with {status}");
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn root() -> bool {
    // SAFETY: geteuid has no arguments and cannot fail.
    let euid = unsafe { libc::geteuid() };
    if euid != 0 {
        eprintln!("skipped: network namespaces need root");
    }
    euid == 0
}

#[test]
fn two_nodes_elect_fail_over_and_preempt() {
    if !root() {
        return;
    }
    let net = Net::new("e");
    let dir = std::env::temp_dir().join(format!("lbd-vrrp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let a_cfg = config(&dir, "a", 150, "10.77.0.1", "10.77.0.2", "");
    let b_cfg = config(&dir, "b", 100, "10.77.0.2", "10.77.0.1", "");

    // Both start; the higher priority (A) ends up the only holder.
    let mut a = Node::start(&net, "a", &a_cfg);
    let mut b = Node::start(&net, "b", &b_cfg);
    net.wait("A master, B backup", |n| {
        n.holds_vip("a") && !n.holds_vip("b")
    });
    net.wait("client reaches the VIP", Net::ping_vip);

    // kill -9 A: B takes over (A's stale VIP stays on its interface).
    a.kill9();
    net.wait("B takes the VIP after A is killed", |n| n.holds_vip("b"));
    net.wait("client reaches the VIP on B", Net::ping_vip);

    // A comes back: removes its stale VIP, then preempts B.
    let mut a = Node::start(&net, "a", &a_cfg);
    net.wait("A preempts B", |n| n.holds_vip("a") && !n.holds_vip("b"));
    net.wait("client reaches the VIP on A again", Net::ping_vip);

    // Graceful stop of A: VIP gone from A when lbd exits, B holds it.
    a.terminate();
    assert!(!net.holds_vip("a"), "A kept the VIP after a graceful stop");
    net.wait("B takes the VIP after A stops", |n| n.holds_vip("b"));
    net.wait("client reaches the VIP on B", Net::ping_vip);
    b.terminate();
    assert!(!net.holds_vip("b"), "B kept the VIP after a graceful stop");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn nopreempt_keeps_the_current_master() {
    if !root() {
        return;
    }
    let net = Net::new("n");
    let dir = std::env::temp_dir().join(format!("lbd-vrrp-np-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let a_cfg = config(
        &dir,
        "a",
        150,
        "10.77.0.1",
        "10.77.0.2",
        "nopreempt = true\n",
    );
    let b_cfg = config(
        &dir,
        "b",
        100,
        "10.77.0.2",
        "10.77.0.1",
        "nopreempt = true\n",
    );
    // B alone becomes master; A, higher but nopreempt, stays backup.
    let _b = Node::start(&net, "b", &b_cfg);
    net.wait("B master alone", |n| n.holds_vip("b"));
    let mut a = Node::start(&net, "a", &a_cfg);
    // A has started when its control socket exists; then give it more than
    // one master-down interval (0.3 s + skew) of B's adverts.
    net.wait("A started", |_| dir.join("a.sock").exists());
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        assert!(!net.holds_vip("a"), "A preempted despite nopreempt");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(net.holds_vip("b"));
    a.terminate();
    let _ = std::fs::remove_dir_all(&dir);
}
