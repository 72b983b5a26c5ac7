//! A command line on the second serial port for the QEMU tests: `kill lbd`
//! (a crash without a shell in the guest), `log N` (log traffic while the
//! test pulls the plug), `screen` (the status screen's text), `ctl ARGS`
//! (`lbd ctl` in the guest), `commits N` (store commits while the test
//! pulls the plug).
//!
//! Only enabled when QEMU passes fw_cfg `opt/appliance/debug`, which no
//! vSphere VM can have: the appliance in production has no such door.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use nix::fcntl::OFlag;
use nix::sys::termios::{self, LocalFlags, SetArg};

pub const ENABLE_FW_CFG: &str = "/sys/firmware/qemu_fw_cfg/by_name/opt/appliance/debug/raw";
pub const PORT: &str = "/dev/ttyS1";
/// Most commits one `commits N` makes.
pub const MAX_COMMITS: u32 = 1000;

/// A command read from the port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    KillLbd,
    Status,
    Log(u32),
    /// The status screen's text (tty1), read back from /dev/vcsa1.
    Screen,
    /// `lbd ctl ARGS` run in the guest (its output on the console).
    Ctl(Vec<String>),
    /// N commits through the appliance socket, one after the other (a
    /// test pulls the plug while they run).
    Commits(u32),
    Unknown(String),
}

pub fn parse(line: &str) -> Command {
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        ["kill", "lbd"] => Command::KillLbd,
        ["status"] => Command::Status,
        ["screen"] => Command::Screen,
        ["ctl", rest @ ..] if !rest.is_empty() => {
            Command::Ctl(rest.iter().map(|w| (*w).to_owned()).collect())
        }
        ["commits", n] => n
            .parse()
            .ok()
            .filter(|n| (1..=MAX_COMMITS).contains(n))
            .map_or_else(|| Command::Unknown(line.into()), Command::Commits),
        ["log", n] => n
            .parse()
            .map_or_else(|_| Command::Unknown(line.into()), Command::Log),
        _ => Command::Unknown(line.trim().into()),
    }
}

pub struct DebugPort {
    tty: File,
    partial: Vec<u8>,
}

impl DebugPort {
    /// The port, if this VM asked for it.
    pub fn open_if_enabled() -> Option<Self> {
        if !Path::new(ENABLE_FW_CFG).exists() {
            return None;
        }
        let tty = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags((OFlag::O_NOCTTY | OFlag::O_NONBLOCK).bits())
            .open(PORT)
            .ok()?;
        // No echo: the test reads only init's answers.
        if let Ok(mut t) = termios::tcgetattr(&tty) {
            t.local_flags.remove(
                LocalFlags::ECHO | LocalFlags::ECHOE | LocalFlags::ECHOK | LocalFlags::ECHONL,
            );
            let _ = termios::tcsetattr(&tty, SetArg::TCSANOW, &t);
        }
        Some(Self {
            tty,
            partial: Vec::new(),
        })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.tty.as_fd()
    }

    /// Complete commands received so far.
    pub fn read_commands(&mut self) -> Vec<Command> {
        let mut buf = [0u8; 256];
        while let Ok(n) = self.tty.read(&mut buf) {
            if n == 0 {
                break;
            }
            self.partial.extend_from_slice(&buf[..n]);
            if self.partial.len() > 4096 {
                self.partial.clear();
            }
        }
        let mut commands = Vec::new();
        while let Some(pos) = self.partial.iter().position(|b| *b == b'\n' || *b == b'\r') {
            let line: Vec<u8> = self.partial.drain(..=pos).collect();
            let line = String::from_utf8_lossy(&line).trim().to_string();
            if !line.is_empty() {
                commands.push(parse(&line));
            }
        }
        commands
    }

    pub fn reply(&mut self, text: &str) {
        let _ = self.tty.write_all(format!("{text}\r\n").as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse() {
        assert_eq!(parse("kill lbd"), Command::KillLbd);
        assert_eq!(parse(" log 500 "), Command::Log(500));
        assert_eq!(parse("log many"), Command::Unknown("log many".into()));
        assert_eq!(parse("rm -rf /"), Command::Unknown("rm -rf /".into()));
    }
}
