//! Writing to every console the kernel has (`console=tty0 console=ttyS0`
//! gives both the VM's screen and its serial port), not only /dev/console,
//! which is just the last one listed.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

use nix::fcntl::OFlag;

const ACTIVE_CONSOLES: &str = "/sys/class/tty/console/active";
const FALLBACK: &str = "/dev/console";

/// The open console devices; lines written here reach all of them.
pub struct Consoles {
    devices: Vec<File>,
}

impl Consoles {
    /// Before /sys and /dev are mounted only /dev/console exists.
    pub fn early() -> Self {
        Self {
            devices: open(FALLBACK).into_iter().collect(),
        }
    }

    /// Reopens the consoles the kernel lists as active; keeps the current
    /// ones if that list cannot be read.
    pub fn discover(&mut self) {
        let Ok(active) = std::fs::read_to_string(ACTIVE_CONSOLES) else {
            return;
        };
        let devices: Vec<File> = active
            .split_whitespace()
            .filter_map(|name| open(&format!("/dev/{name}")))
            .collect();
        if !devices.is_empty() {
            self.devices = devices;
        }
    }

    /// Writes one line to every console. A console that fails is skipped:
    /// PID 1 must not stop because a serial port is gone.
    pub fn line(&mut self, text: &str) {
        let mut buf = String::with_capacity(text.len() + 2);
        buf.push_str(text);
        // Raw terminals need CR LF; ttys in cooked mode turn LF into CR LF anyway.
        buf.push_str("\r\n");
        for dev in &mut self.devices {
            let _ = dev.write_all(buf.as_bytes());
        }
    }
}

fn open(path: &str) -> Option<File> {
    OpenOptions::new()
        .write(true)
        // O_NOCTTY: PID 1 must not acquire a controlling terminal, or a
        // hangup on it would signal init.
        .custom_flags(OFlag::O_NOCTTY.bits())
        .open(path)
        .ok()
}
