//! A command line on the second serial port for the QEMU tests: `kill lbd`
//! (a crash without a shell in the guest), `log N` (log traffic while the
//! test pulls the plug), `screen` (the status screen's text), `ctl ARGS`
//! (`lbd ctl` in the guest), `commits N` (store commits while the test
//! pulls the plug).
//!
//! Compiled only into test images (init's `debug-port` feature, set by
//! `image-builder build --debug-port`): a production image has no such
//! door, and the builder checks its init lacks [`ENABLE_FW_CFG`]. Even in
//! a test image the port opens only when QEMU passes fw_cfg
//! `opt/appliance/debug`, which no vSphere VM can have.
//!
//! ```text
//! ttyS1 -> LineBuffer (<= 4096 bytes a line) -> parse (bounded counts)
//!   -> answer(): quick commands in PID 1's loop; ctl, commits and log on
//!      a thread of ctl.rs, whose lines come back through the line relay
//! ```

mod command;
mod ctl;

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use nix::fcntl::OFlag;
use nix::sys::signal::Signal;
use nix::sys::termios::{self, LocalFlags, SetArg};

pub use command::{parse, Command, CommandError, LineBuffer};

use crate::console::Consoles;
use crate::line_relay::LineSender;
use crate::status;
use crate::supervise::Service;

/// Present only when QEMU was started with the debug port. Also the marker
/// the image builder looks for in init: a production init must not hold it.
pub const ENABLE_FW_CFG: &str = "/sys/firmware/qemu_fw_cfg/by_name/opt/appliance/debug/raw";
pub const PORT: &str = "/dev/ttyS1";

pub struct DebugPort {
    tty: File,
    lines: LineBuffer,
    /// A `log N` is still writing.
    log_running: Arc<AtomicBool>,
}

/// What the commands act on, lent by the event loop.
pub struct Context<'a> {
    pub services: &'a [Service],
    pub consoles: &'a mut Consoles,
    /// Where the threads' answers go; `None` if init has no relay.
    pub relay: Option<&'a LineSender>,
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
            lines: LineBuffer::default(),
            log_running: Arc::new(AtomicBool::new(false)),
        })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.tty.as_fd()
    }

    /// Runs every complete command received so far; each answer goes to
    /// the consoles and back on the port.
    pub fn serve(&mut self, ctx: &mut Context<'_>) {
        let mut buf = [0u8; 256];
        let mut commands = Vec::new();
        while let Ok(n @ 1..) = self.tty.read(&mut buf) {
            commands.extend(self.lines.push(&buf[..n]));
        }
        for command in commands {
            let answer = match command {
                Ok(command) => self.answer(command, ctx),
                Err(e) => format!("error: {e}"),
            };
            ctx.consoles.line(&format!("init: debug port: {answer}"));
            let _ = self.tty.write_all(format!("{answer}\r\n").as_bytes());
        }
    }

    fn answer(&self, command: Command, ctx: &mut Context<'_>) -> String {
        match command {
            Command::KillLbd => match ctx.services.first().map(|s| s.signal(Signal::SIGKILL)) {
                Some(Ok(())) => "ok: sent SIGKILL to lbd".to_string(),
                Some(Err(e)) => format!("error: lbd not killed: {e}"),
                None => "error: no lbd".to_string(),
            },
            Command::Log(n) => {
                let Some(relay) = ctx.relay else {
                    return "error: no relay for the lines".to_string();
                };
                if self.log_running.swap(true, Ordering::SeqCst) {
                    return "error: a log N is still running; wait for \"log done\"".to_string();
                }
                ctl::run_log(n, relay.clone(), Arc::clone(&self.log_running));
                format!("ok: logging {n} lines")
            }
            Command::Status => status_line(ctx.services),
            Command::Screen => match status::vt::read_screen(status::vt::SCREEN_VT) {
                Ok(lines) => {
                    for line in &lines {
                        ctx.consoles
                            .line_unrecorded(&format!("init: debug port: screen| {line}"));
                    }
                    format!("ok: screen shown ({} lines)", lines.len())
                }
                Err(e) => format!("error: reading the screen: {e}"),
            },
            Command::Ctl(words) => match ctx.relay {
                Some(relay) => {
                    ctl::run_ctl(words, relay.clone());
                    "ok: lbd ctl started".to_string()
                }
                None => "error: no relay for the answer".to_string(),
            },
            Command::Commits(n) => match ctx.relay {
                Some(relay) => {
                    ctl::run_commits(n, relay.clone());
                    format!("ok: {n} commits started")
                }
                None => "error: no relay for the answer".to_string(),
            },
        }
    }
}

/// `ok: lbd pid Some(123) restart in None`, for each service.
fn status_line(services: &[Service]) -> String {
    let now = Instant::now();
    let services: Vec<String> = services
        .iter()
        .map(|s| {
            let due = s.next_deadline().map(|d| d.saturating_duration_since(now));
            format!(
                "{} pid {:?} restart in {:?}",
                s.name,
                s.pid().map(|p| p.as_raw()),
                due
            )
        })
        .collect();
    format!("ok: {}", services.join("; "))
}
