//! A real Keepalived (Debian's package) in one of the test namespaces:
//! the peer of the interop tests. Killed on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::{sh, Net};

/// Whether `keepalived` is installed (tests skip with a message if not).
pub fn keepalived_present() -> bool {
    let found = sh(&["keepalived", "--version"]);
    if !found {
        eprintln!("skipped: keepalived is not installed");
    }
    found
}

/// A Keepalived VRRP process in a namespace; killed on drop.
pub struct Keepalived {
    child: Child,
    vrrp_pid: PathBuf,
}

impl Keepalived {
    /// Runs Keepalived in `node`'s namespace with `config` (written to
    /// `dir`, where its pid files go too), in the foreground.
    pub fn start_with(net: &Net, node: &str, dir: &Path, config: &str) -> Self {
        let conf = dir.join("keepalived.conf");
        std::fs::write(&conf, config).expect("write keepalived config");
        let vrrp_pid = dir.join("vrrp.pid");
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &net.ns(node),
                "keepalived",
                "-n",
                "-l",
                "-P",
                "-f",
            ])
            .arg(&conf)
            .arg("-p")
            .arg(dir.join("keepalived.pid"))
            .arg("-r")
            .arg(&vrrp_pid)
            .arg("-c")
            .arg(dir.join("checkers.pid"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn keepalived");
        Self { child, vrrp_pid }
    }

    /// SIGTERM: Keepalived sends priority 0 and removes its VIPs.
    pub fn terminate(&mut self) {
        sh(&["kill", "-TERM", &self.child.id().to_string()]);
        let _ = self.child.wait();
    }

    /// kill -9 of its VRRP process first (else the parent's death would
    /// stop it gracefully), then of the parent.
    pub fn kill9(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(&self.vrrp_pid) {
            assert!(
                sh(&["kill", "-KILL", pid.trim()]),
                "kill -9 of Keepalived's VRRP process"
            );
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Keepalived {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(&self.vrrp_pid) {
            sh(&["kill", "-KILL", pid.trim()]);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
