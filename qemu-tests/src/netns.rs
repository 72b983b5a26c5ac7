//! A network namespace with a tap device for one VM: the test's own
//! little network, removed when the guard drops (also when a test fails).

use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// What a TCP connection attempt met.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    Answered,
    /// A reset: nothing listens, but the packet got through.
    Refused,
    /// No answer before the deadline: a firewall dropped it.
    Silent,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

/// The tap device QEMU attaches the guest's vmxnet3 NIC to.
pub const TAP: &str = "tap0";

pub struct NetNs {
    pub name: String,
    helpers: Vec<Child>,
}

impl NetNs {
    /// Creates `lbtest-<pid>-<n>` with `lo` up and a tap device carrying
    /// `host_cidr` (the test's side of the guest's network).
    pub fn with_tap(host_cidr: &str) -> Self {
        let ns = Self::create();
        ns.exec_ok("ip", &["tuntap", "add", "dev", TAP, "mode", "tap"]);
        ns.exec_ok("ip", &["addr", "add", host_cidr, "dev", TAP]);
        ns.exec_ok("ip", &["link", "set", TAP, "up"]);
        ns
    }

    /// Creates a namespace with a bridge `br0` carrying `host_cidr` and
    /// one tap device per name in `taps` on it: a switch for several VMs.
    pub fn with_bridge(host_cidr: &str, taps: &[&str]) -> Self {
        let ns = Self::create();
        ns.exec_ok("ip", &["link", "add", "br0", "type", "bridge"]);
        ns.exec_ok("ip", &["addr", "add", host_cidr, "dev", "br0"]);
        ns.exec_ok("ip", &["link", "set", "br0", "up"]);
        for tap in taps {
            ns.exec_ok("ip", &["tuntap", "add", "dev", tap, "mode", "tap"]);
            ns.exec_ok("ip", &["link", "set", tap, "master", "br0", "up"]);
        }
        ns
    }

    /// The MAC address this namespace's neighbour table has for `addr`.
    pub fn neighbour_mac(&self, addr: &str) -> Option<String> {
        let out = self.exec("ip", &["neigh", "show", addr]);
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        text.split_whitespace()
            .skip_while(|w| *w != "lladdr")
            .nth(1)
            .map(str::to_string)
    }

    /// A fresh `lbtest-<pid>-<n>` with `lo` up.
    fn create() -> Self {
        let name = format!(
            "lbtest-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        run("ip", &["netns", "add", &name]);
        let ns = Self {
            name,
            helpers: Vec::new(),
        };
        ns.exec_ok("ip", &["link", "set", "lo", "up"]);
        ns
    }

    /// Runs a command inside the namespace and returns its output.
    pub fn exec(&self, cmd: &str, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.name, cmd])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("ip netns exec {} {cmd}: {e}", self.name))
    }

    pub fn exec_ok(&self, cmd: &str, args: &[&str]) -> Output {
        let out = self.exec(cmd, args);
        assert!(
            out.status.success(),
            "{cmd} {args:?} in {} failed: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Starts a long-running helper (a DHCP server) in the namespace; it is
    /// killed with the namespace.
    pub fn spawn(&mut self, cmd: &str, args: &[&str]) {
        let child = Command::new("ip")
            .args(["netns", "exec", &self.name, cmd])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {cmd} in {}: {e}", self.name));
        self.helpers.push(child);
    }

    /// Pings `addr` until it answers or `attempts` one-second tries pass.
    pub fn ping_until(&self, addr: &str, attempts: u32) -> bool {
        (0..attempts).any(|_| {
            self.exec("ping", &["-c", "1", "-W", "1", addr])
                .status
                .success()
        })
    }

    /// One HTTP GET of `/` on addr:port from the namespace (Python's
    /// http.client, no redirect followed): `"<status> <Location> <body>"`
    /// trimmed, or empty when no answer came within 5 s.
    pub fn http_get(&self, addr: &str, port: u16) -> String {
        const GET: &str = "import http.client,sys\n\
            c=http.client.HTTPConnection(sys.argv[1],int(sys.argv[2]),timeout=5)\n\
            c.request('GET','/')\nr=c.getresponse()\n\
            print(r.status,r.getheader('Location') or '',r.read().decode(errors='replace').strip())\n";
        let out = self.exec("python3", &["-c", GET, addr, &port.to_string()]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Serves `body` as `/` over HTTP on addr:port from the namespace (a
    /// backend for the appliance's services, answering its http checks
    /// too), until the namespace is dropped. The returned directory holds
    /// the page: keep it alive as long as the server.
    pub fn spawn_web_server(&mut self, addr: &str, port: u16, body: &str) -> tempfile::TempDir {
        let site = tempfile::tempdir().expect("a temporary directory");
        std::fs::write(site.path().join("index.html"), body).expect("writing index.html");
        let dir = site.path().display().to_string();
        let port = port.to_string();
        self.spawn(
            "python3",
            &[
                "-m",
                "http.server",
                &port,
                "--bind",
                addr,
                "--directory",
                &dir,
            ],
        );
        site
    }

    /// Connects to addr:port with a 3 s deadline.
    pub fn tcp_probe(&self, addr: &str, port: u16) -> Probe {
        let script = format!("exec 3<>/dev/tcp/{addr}/{port}");
        let out = self.exec("timeout", &["3", "bash", "-c", &script]);
        match out.status.code() {
            Some(0) => Probe::Answered,
            Some(124) => Probe::Silent,
            _ => Probe::Refused,
        }
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        for h in &mut self.helpers {
            let _ = h.kill();
            let _ = h.wait();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

fn run(cmd: &str, args: &[&str]) {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e} (apt-get install iproute2)"));
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {} (the QEMU network tests run as root)",
        String::from_utf8_lossy(&out.stderr)
    );
}
