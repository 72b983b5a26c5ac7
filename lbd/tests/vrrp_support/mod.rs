//! Network namespaces for the VRRP tests: nodes A and B and a client C on
//! a bridge in a switch namespace S; removed on drop, even on failure.
//!
//! ```text
//!   ns A                  ns B                  ns C (client)
//!        veth0                 veth0                veth0
//!          \____________ bridge br0 in ns S ____________/
//!   10.77.0.1             10.77.0.2             10.77.0.3     VIP 10.77.0.100
//!   fd77::1               fd77::2               fd77::3       VIP6 fd77::100
//! ```
//! The IPv6 addresses skip duplicate address detection (`nodad`); the
//! link-local ones do not, so an lbd started at once waits for them.
//! Waits poll the state with a generous limit; nothing asserts on timing.
#![allow(dead_code)]

pub mod keepalived;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const VIP: &str = "10.77.0.100";
pub const VIP6: &str = "fd77::100";
pub const PATIENCE: Duration = Duration::from_secs(20);

pub fn sh(args: &[&str]) -> bool {
    Command::new(args[0])
        .args(&args[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

pub fn must(args: &[&str]) {
    assert!(sh(args), "command failed: {}", args.join(" "));
}

/// The namespaces of one test; removed on drop.
pub struct Net {
    prefix: String,
}

impl Net {
    pub fn ns(&self, node: &str) -> String {
        format!("{}{node}", self.prefix)
    }

    pub fn new(tag: &str) -> Self {
        let net = Self {
            prefix: format!("lv{tag}{}", std::process::id() % 100_000),
        };
        let sw = net.ns("s");
        must(&["ip", "netns", "add", &sw]);
        must(&["ip", "-n", &sw, "link", "add", "br0", "type", "bridge"]);
        must(&["ip", "-n", &sw, "link", "set", "br0", "up"]);
        for (node, addr, addr6) in [
            ("a", "10.77.0.1/24", "fd77::1/64"),
            ("b", "10.77.0.2/24", "fd77::2/64"),
            ("c", "10.77.0.3/24", "fd77::3/64"),
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
            must(&[
                "ip", "-n", &ns, "addr", "add", addr6, "dev", "veth0", "nodad",
            ]);
            must(&["ip", "-n", &ns, "link", "set", "veth0", "up"]);
        }
        net
    }

    pub fn holds_vip(&self, node: &str) -> bool {
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

    /// Whether `node`'s veth0 holds `addr` (IPv4 or IPv6).
    pub fn holds(&self, node: &str, addr: &str) -> bool {
        let out = Command::new("ip")
            .args(["-n", &self.ns(node), "-o", "addr", "show", "dev", "veth0"])
            .output()
            .expect("ip addr");
        String::from_utf8_lossy(&out.stdout).contains(&format!(" {addr}/"))
    }

    /// One ping from the client to `addr` (IPv4 or IPv6).
    pub fn ping(&self, addr: &str) -> bool {
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
            addr,
        ])
    }

    /// The MAC address of `node`'s veth0.
    pub fn mac(&self, node: &str) -> String {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.ns(node),
                "cat",
                "/sys/class/net/veth0/address",
            ])
            .output()
            .expect("read MAC");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// The link-layer address the client's neighbour cache holds for
    /// `addr` (IPv6), if any.
    pub fn client_neighbour(&self, addr: &str) -> Option<String> {
        let out = Command::new("ip")
            .args([
                "-n",
                &self.ns("c"),
                "-6",
                "neigh",
                "show",
                addr,
                "dev",
                "veth0",
            ])
            .output()
            .expect("ip neigh");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let mut words = text.split_whitespace();
        words.find(|w| *w == "lladdr")?;
        words.next().map(str::to_string)
    }

    pub fn ping_vip(&self) -> bool {
        self.ping(VIP)
    }

    /// Polls until `cond` holds; panics with `what` after PATIENCE.
    pub fn wait(&self, what: &str, cond: impl Fn(&Self) -> bool) {
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
pub struct Node {
    child: Child,
}

pub fn config(dir: &Path, node: &str, prio: u8, me: &str, peer: &str, extra: &str) -> PathBuf {
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
    pub fn start(net: &Net, node: &str, file: &Path) -> Self {
        Self::spawn(net, node, file, Stdio::inherit())
    }

    /// Starts lbd with its log (stderr) written to `log`.
    pub fn start_logged(net: &Net, node: &str, file: &Path, log: &Path) -> Self {
        let log = std::fs::File::create(log).expect("create log file");
        Self::spawn(net, node, file, Stdio::from(log))
    }

    fn spawn(net: &Net, node: &str, file: &Path, stderr: Stdio) -> Self {
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
            .stderr(stderr)
            .spawn()
            .expect("spawn lbd");
        Self { child }
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn terminate(&mut self) {
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

pub fn root() -> bool {
    // SAFETY: geteuid has no arguments and cannot fail.
    let euid = unsafe { libc::geteuid() };
    if euid != 0 {
        eprintln!("skipped: network namespaces need root");
    }
    euid == 0
}
