//! Writing to every console the kernel has (`console=tty0 console=ttyS0`
//! gives both the VM's screen and its serial port), not only /dev/console,
//! which is just the last one listed.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

use nix::fcntl::OFlag;

use std::sync::Arc;

use crate::applog::LogFile;
use crate::status::Board;
use crate::syslog::SyslogSink;

const ACTIVE_CONSOLES: &str = "/sys/class/tty/console/active";
const FALLBACK: &str = "/dev/console";

/// Lines kept in memory until the log file on the data partition opens.
const EARLY_LINES: usize = 2000;

/// The open console devices; lines written here reach all of them, and
/// the log file once [`Consoles::attach_log`] has been called.
pub struct Consoles {
    /// Each console's name (`tty0`, `ttyS0`) and device.
    devices: Vec<(String, File)>,
    log: Option<LogFile>,
    early: Vec<String>,
    syslog: Option<SyslogSink>,
    /// The status screen's copy of the lines.
    board: Option<Arc<Board>>,
}

impl Consoles {
    /// Before /sys and /dev are mounted only /dev/console exists.
    pub fn early() -> Self {
        Self {
            devices: open(FALLBACK)
                .map(|f| ("console".to_string(), f))
                .into_iter()
                .collect(),
            log: None,
            early: Vec::new(),
            syslog: None,
            board: None,
        }
    }

    /// No devices: the lines are only kept, for a unit test to read.
    #[cfg(test)]
    pub fn for_tests() -> Self {
        Self {
            devices: Vec::new(),
            log: None,
            early: Vec::new(),
            syslog: None,
            board: None,
        }
    }

    /// The lines kept so far (before a log file is attached), stamped.
    #[cfg(test)]
    pub fn recorded(&self) -> &[String] {
        &self.early
    }

    /// Reopens the consoles the kernel lists as active; keeps the current
    /// ones if that list cannot be read.
    pub fn discover(&mut self) {
        let Ok(active) = std::fs::read_to_string(ACTIVE_CONSOLES) else {
            return;
        };
        let devices: Vec<(String, File)> = active
            .split_whitespace()
            .filter_map(|name| Some((name.to_string(), open(&format!("/dev/{name}"))?)))
            .collect();
        if !devices.is_empty() {
            self.devices = devices;
        }
    }

    /// Writes one line to the consoles only: not to the log, syslog or
    /// the status screen (the debug port's screen dumps, which would
    /// otherwise show up inside the next dump).
    pub fn line_unrecorded(&mut self, text: &str) {
        let buf = format!("{text}\r\n");
        for (_, dev) in &mut self.devices {
            let _ = dev.write_all(buf.as_bytes());
        }
    }

    /// Writes one line to every console. A console that fails is skipped:
    /// PID 1 must not stop because a serial port is gone.
    pub fn line(&mut self, text: &str) {
        let mut buf = String::with_capacity(text.len() + 2);
        buf.push_str(text);
        // Raw terminals need CR LF; ttys in cooked mode turn LF into CR LF anyway.
        buf.push_str("\r\n");
        for (_, dev) in &mut self.devices {
            let _ = dev.write_all(buf.as_bytes());
        }
        if let Some(board) = &self.board {
            board.push_line(text);
        }
        if let Some(sink) = &mut self.syslog {
            sink.send(text);
        }
        let stamped = format!("[{}] {text}", uptime());
        match &mut self.log {
            Some(log) => {
                if let Err(e) = log.append(&stamped) {
                    // Say it once on the consoles and stop logging to disk.
                    self.log = None;
                    self.line(&format!(
                        "init: error: log file: {e}; logging to the console only"
                    ));
                }
            }
            None if self.early.len() < EARLY_LINES => self.early.push(stamped),
            None => {}
        }
    }

    /// Starts writing lines to `log`, beginning with those seen so far.
    pub fn attach_log(&mut self, mut log: LogFile) {
        for line in self.early.drain(..) {
            if log.append(&line).is_err() {
                return;
            }
        }
        self.log = Some(log);
    }

    /// Sends every later line to a remote syslog server too.
    pub fn attach_syslog(&mut self, sink: SyslogSink) {
        self.syslog = Some(sink);
    }

    /// The status screen's board, once attached.
    /// Stops sending lines to the syslog server (its setting changed).
    pub fn detach_syslog(&mut self) {
        self.syslog = None;
    }

    pub fn board(&self) -> Option<&Arc<Board>> {
        self.board.as_ref()
    }

    /// Every later line is copied to the status screen's board too.
    pub fn attach_board(&mut self, board: Arc<Board>) {
        self.board = Some(board);
    }

    /// From now on the screen VT shows the status screen: lines meant for
    /// the VT console (`tty0`, the foreground VT) go to `log_vt` instead.
    pub fn move_vt_output(&mut self, log_vt: &str) {
        for (name, dev) in &mut self.devices {
            let is_vt = name
                .strip_prefix("tty")
                .is_some_and(|n| n.starts_with(|c: char| c.is_ascii_digit()));
            if is_vt {
                if let Some(moved) = open(log_vt) {
                    *dev = moved;
                    *name = log_vt.trim_start_matches("/dev/").to_string();
                }
            }
        }
    }

    /// Flushes the log file to disk (at shutdown).
    pub fn sync_log(&mut self) {
        if let Some(log) = &mut self.log {
            log.sync();
        }
    }

    /// Closes the log file, so the data partition can be unmounted.
    pub fn detach_log(&mut self) {
        self.sync_log();
        self.log = None;
    }
}

/// Seconds since boot, for log lines (there is no wall clock before NTP).
fn uptime() -> String {
    std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|u| u.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
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
