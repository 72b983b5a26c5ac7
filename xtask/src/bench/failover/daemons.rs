//! The two VRRP daemons with the same settings: lbd (`lbd run -c FILE`) and
//! Keepalived (`keepalived -n -l -D -P ...`, its own pid files per node),
//! unicast peers, VRID 42, A priority 150, B 100, preempt on, one VIP; and
//! the tracked backend on A (a TCP listener this binary runs).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::super::error::BenchError;
use super::super::procs::{send_signal, sleep, Daemon};
use super::net::{FailoverNet, Node, ADDR_A, ADDR_B, IFACE, VIP};
use super::probe::now_epoch;

pub const VRID: u8 = 42;
pub const PRIO_A: u8 = 150;
pub const PRIO_B: u8 = 100;
/// A's loss on a backend failure: 150 - 100 = 50, below B.
pub const TRACK_WEIGHT: u8 = 100;
/// The tracked backend's one server, in A's namespace.
pub const BACKEND_ADDR: &str = "127.0.0.1:8081";
/// Backend checks, the same for both: every second, down after 2 fails.
pub const CHECK_INTERVAL_S: u32 = 1;
pub const CHECK_FALL: u32 = 2;
pub const CHECK_RISE: u32 = 2;
/// The helper subcommand that serves the backend.
pub const LISTEN_SUBCOMMAND: &str = "failover-backend";

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Impl {
    Lbd,
    Keepalived,
}

impl Impl {
    pub const ALL: [Impl; 2] = [Impl::Lbd, Impl::Keepalived];

    pub fn label(self) -> &'static str {
        match self {
            Impl::Lbd => "lbd",
            Impl::Keepalived => "Keepalived",
        }
    }
}

/// One advert setting: the VRRP version and advert_int in centiseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Settings {
    pub version: u8,
    pub advert_cs: u32,
}

impl Settings {
    pub const ALL: [Settings; 3] = [
        Settings {
            version: 2,
            advert_cs: 100,
        },
        Settings {
            version: 3,
            advert_cs: 100,
        },
        Settings {
            version: 3,
            advert_cs: 10,
        },
    ];

    pub fn advert_s(self) -> f64 {
        f64::from(self.advert_cs) / 100.0
    }

    pub fn label(self) -> String {
        format!(
            "advert_int {} s, VRRP v{}",
            self.keepalived_advert(),
            self.version
        )
    }

    /// lbd's `advert_int`: "1s" or "100ms".
    fn lbd_advert(self) -> String {
        if self.advert_cs.is_multiple_of(100) {
            format!("{}s", self.advert_cs / 100)
        } else {
            format!("{}ms", self.advert_cs * 10)
        }
    }

    /// Keepalived's `advert_int`: "1" or "0.1" (seconds).
    fn keepalived_advert(self) -> String {
        let (s, cs) = (self.advert_cs / 100, self.advert_cs % 100);
        if cs == 0 {
            s.to_string()
        } else {
            format!("{s}.{cs:02}").trim_end_matches('0').to_string()
        }
    }
}

/// One node of the pair.
pub struct Spec {
    pub node: Node,
    pub prio: u8,
    pub me: &'static str,
    pub peer: &'static str,
    /// Track the backend (A in the backend scenario).
    pub track: bool,
}

pub fn spec(node: Node, track: bool) -> Spec {
    match node {
        Node::A => Spec {
            node,
            prio: PRIO_A,
            me: ADDR_A,
            peer: ADDR_B,
            track,
        },
        _ => Spec {
            node,
            prio: PRIO_B,
            me: ADDR_B,
            peer: ADDR_A,
            track,
        },
    }
}

pub fn lbd_config(dir: &Path, s: Settings, spec: &Spec) -> String {
    let d = dir.display();
    let mut text = format!(
        "[global]\ncontrol_socket = \"{d}/lbd.sock\"\nstate_file = \"{d}/lbd.json\"\n\n\
         [vrrp.vi]\ninterface = \"{IFACE}\"\nvrid = {VRID}\npriority = {}\n\
         advert_int = \"{}\"\nversion = {}\nunicast_src_ip = \"{}\"\n\
         unicast_peers = [\"{}\"]\nvirtual_ips = [\"{VIP}/24\"]\npreempt = true\n",
        spec.prio,
        s.lbd_advert(),
        s.version,
        spec.me,
        spec.peer
    );
    if spec.track {
        text.push_str(&format!(
            "\n[vrrp.vi.track_backend.web]\nweight = {TRACK_WEIGHT}\n\n\
             [backends.web.check]\ntype = \"tcp\"\ninter = \"{CHECK_INTERVAL_S}s\"\n\
             rise = {CHECK_RISE}\nfall = {CHECK_FALL}\n\n\
             [backends.web.servers.s1]\naddress = \"{BACKEND_ADDR}\"\n"
        ));
    }
    text
}

/// The check Keepalived's `vrrp_script` runs: a TCP connect to the
/// backend, as admins write it without extra tools.
pub fn check_script() -> String {
    let (host, port) = BACKEND_ADDR.split_once(':').unwrap_or((BACKEND_ADDR, ""));
    format!("#!/bin/sh\nexec /usr/bin/timeout 1 /bin/bash -c ': < /dev/tcp/{host}/{port}'\n")
}

pub fn keepalived_config(s: Settings, spec: &Spec, script: &Path) -> String {
    let state = if spec.node == Node::A {
        "MASTER"
    } else {
        "BACKUP"
    };
    let mut text = format!(
        "global_defs {{\n  router_id fo_{}\n  script_user root\n}}\n\n",
        spec.me
    );
    if spec.track {
        text.push_str(&format!(
            "vrrp_script chk_backend {{\n  script \"{}\"\n  interval {CHECK_INTERVAL_S}\n  \
             timeout 1\n  fall {CHECK_FALL}\n  rise {CHECK_RISE}\n  weight -{TRACK_WEIGHT}\n}}\n\n",
            script.display()
        ));
    }
    text.push_str(&format!(
        "vrrp_instance VI {{\n  state {state}\n  interface {IFACE}\n  virtual_router_id {VRID}\n  \
         priority {}\n  advert_int {}\n  version {}\n  unicast_src_ip {}\n  unicast_peer {{\n    {}\n  }}\n  \
         virtual_ipaddress {{\n    {VIP}/24\n  }}\n",
        spec.prio,
        s.keepalived_advert(),
        s.version,
        spec.me,
        spec.peer
    ));
    if spec.track {
        text.push_str("  track_script {\n    chk_backend\n  }\n");
    }
    text.push_str("}\n");
    text
}

fn write(path: &Path, text: &str) -> Result<(), BenchError> {
    std::fs::write(path, text).map_err(|source| BenchError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// A running daemon of the pair; killed on drop.
pub struct VrrpNode {
    pub kind: Impl,
    daemon: Daemon,
    dir: PathBuf,
}

impl VrrpNode {
    /// Starts `kind` for `spec` with its files in `dir` (made here).
    pub fn start(
        net: &FailoverNet,
        dir: &Path,
        kind: Impl,
        s: Settings,
        spec: &Spec,
        lbd_bin: &Path,
    ) -> Result<Self, BenchError> {
        std::fs::create_dir_all(dir).map_err(|source| BenchError::Write {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut cmd = net.exec(spec.node);
        match kind {
            Impl::Lbd => {
                let conf = dir.join("lbd.toml");
                write(&conf, &lbd_config(dir, s, spec))?;
                cmd.arg(lbd_bin).arg("run").arg("-c").arg(&conf);
                cmd.env("LBD_LOG", "info");
            }
            Impl::Keepalived => {
                let conf = dir.join("keepalived.conf");
                let script = dir.join("check_backend.sh");
                write(&conf, &keepalived_config(s, spec, &script))?;
                cmd.args(["keepalived", "-n", "-l", "-D", "-P", "-f"])
                    .arg(&conf)
                    .arg("-p")
                    .arg(dir.join("keepalived.pid"))
                    .arg("-r")
                    .arg(dir.join("vrrp.pid"))
                    .arg("-c")
                    .arg(dir.join("checkers.pid"));
            }
        }
        let name = format!("{} {:?}", kind.label(), spec.node);
        let daemon = Daemon::spawn(&name, cmd, &dir.join("daemon.log"))?;
        Ok(Self {
            kind,
            daemon,
            dir: dir.to_path_buf(),
        })
    }

    /// Started far enough to take part: lbd's control socket, Keepalived's
    /// VRRP child's pid file.
    pub fn ready(&mut self) -> bool {
        self.daemon.running()
            && match self.kind {
                Impl::Lbd => self.dir.join("lbd.sock").exists(),
                Impl::Keepalived => self.vrrp_pid().is_some(),
            }
    }

    /// Keepalived's VRRP child, read from its pid file and checked to be
    /// our daemon's child (a stale file may name a reused pid).
    fn vrrp_pid(&self) -> Option<u32> {
        let pid: u32 = std::fs::read_to_string(self.dir.join("vrrp.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        (parent_pid(&stat) == Some(self.daemon.pid())).then_some(pid)
    }

    pub fn log_tail(&self) -> String {
        self.daemon.log_tail()
    }

    /// SIGKILL; returns when (seconds since the epoch) the process that
    /// sends adverts was killed. Keepalived: its parent is stopped first
    /// (else it would respawn the VRRP child or, dying, stop it
    /// gracefully), then the VRRP child killed, then the parent.
    pub fn kill9(mut self) -> Result<f64, BenchError> {
        let mut at = now_epoch();
        if self.kind == Impl::Keepalived {
            self.daemon.signal("STOP")?;
            if let Some(pid) = self.vrrp_pid() {
                at = now_epoch();
                send_signal(pid, "KILL")?;
            }
        }
        self.daemon.signal("KILL")?;
        self.daemon.wait_exit(Duration::from_secs(5))?;
        Ok(at)
    }

    /// SIGTERM and wait for the exit: both send priority 0 and remove the
    /// VIP. Returns whether it exited cleanly within 10 s.
    pub fn terminate(mut self) -> Result<bool, BenchError> {
        self.daemon.signal("TERM")?;
        self.daemon.wait_exit(Duration::from_secs(10))
    }
}

impl Drop for VrrpNode {
    fn drop(&mut self) {
        // Keepalived's VRRP child first, so that it does not outlive its
        // parent (the Daemon guard then kills the parent).
        if self.kind == Impl::Keepalived && self.daemon.running() {
            if let Some(pid) = self.vrrp_pid() {
                let _ = send_signal(pid, "KILL");
            }
        }
    }
}

/// Field 4 (ppid) of /proc/PID/stat, counted after the command name in
/// parentheses.
fn parent_pid(stat: &str) -> Option<u32> {
    stat[stat.rfind(')')? + 1..]
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Starts the backend server in A's namespace and waits until it accepts.
pub fn start_backend(net: &FailoverNet, dir: &Path, script: &Path) -> Result<Daemon, BenchError> {
    let exe = std::env::current_exe().map_err(|source| BenchError::Io {
        what: "finding this xtask binary".into(),
        source,
    })?;
    let mut cmd = net.exec(Node::A);
    cmd.arg(exe)
        .args(["bench", LISTEN_SUBCOMMAND, BACKEND_ADDR]);
    let mut d = Daemon::spawn("backend", cmd, &dir.join("backend.log"))?;
    d.wait_until("accept connections", Duration::from_secs(10), |_| {
        let mut check = net.exec(Node::A);
        check.arg(script);
        check.output().is_ok_and(|o| o.status.success())
    })?;
    // Let a first check pass on both before anything starts.
    sleep(Duration::from_millis(100))?;
    Ok(d)
}

/// The helper: `failover-backend ADDR`, accepting and closing connections
/// until killed.
pub fn serve_backend(args: &[String]) -> Result<(), BenchError> {
    let addr = args
        .first()
        .ok_or_else(|| BenchError::FailoverUsage(format!("{LISTEN_SUBCOMMAND} ADDR:PORT")))?;
    let listener = TcpListener::bind(addr.as_str()).map_err(|source| BenchError::Io {
        what: format!("binding the backend to {addr}"),
        source,
    })?;
    for conn in listener.incoming() {
        drop(conn);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_get_the_same_settings() {
        let s = Settings {
            version: 3,
            advert_cs: 10,
        };
        let a = spec(Node::A, true);
        let lbd = lbd_config(Path::new("/d"), s, &a);
        for want in [
            "advert_int = \"100ms\"",
            "version = 3",
            "priority = 150",
            "unicast_src_ip = \"10.78.0.1\"",
            "unicast_peers = [\"10.78.0.2\"]",
            "virtual_ips = [\"10.78.0.100/24\"]",
            "weight = 100",
            "inter = \"1s\"",
            "fall = 2",
        ] {
            assert!(lbd.contains(want), "lbd: {want}\n{lbd}");
        }
        let ka = keepalived_config(s, &a, Path::new("/d/check.sh"));
        for want in [
            "advert_int 0.1\n",
            "version 3\n",
            "priority 150\n",
            "state MASTER\n",
            "unicast_src_ip 10.78.0.1\n",
            "    10.78.0.2\n",
            "10.78.0.100/24",
            "weight -100\n",
            "interval 1\n",
            "fall 2\n",
            "script \"/d/check.sh\"",
            "track_script",
        ] {
            assert!(ka.contains(want), "keepalived: {want}\n{ka}");
        }
        let b = keepalived_config(Settings::ALL[0], &spec(Node::B, false), Path::new("/x"));
        assert!(b.contains("advert_int 1\n") && b.contains("version 2\n"));
        assert!(b.contains("state BACKUP") && !b.contains("track_script"));
        let b = lbd_config(Path::new("/d"), Settings::ALL[0], &spec(Node::B, false));
        assert!(b.contains("advert_int = \"1s\"") && !b.contains("track_backend"));
    }

    #[test]
    fn parent_pid_is_read_after_the_command_name() {
        assert_eq!(parent_pid("77 (keep alived) S 42 77 77 0"), Some(42));
        assert_eq!(parent_pid("77 (x)"), None);
    }

    #[test]
    fn the_check_script_connects_to_the_backend() {
        assert!(check_script().contains("/dev/tcp/127.0.0.1/8081"));
    }
}
