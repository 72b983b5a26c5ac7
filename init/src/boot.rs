//! The boot sequence, one step per module, then the event loop that runs
//! until a power request.
//!
//! ```text
//! block signals -> mount /proc /sys /dev ... -> consoles -> banner
//!   -> kernel modules -> hostname -> power button -> "appliance: ready"
//!   -> loop { SIGCHLD: reap | power signal/button: shutdown }
//! ```

use std::fs::File;
use std::os::fd::AsFd;
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::reboot::set_cad_enabled;
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::SignalFd;

use rootfs::paths::{MODULE_LOAD_ORDER, OS_RELEASE, READY_LINE};

use crate::console::Consoles;
use crate::power::{self, PowerAction};
use crate::{evdev, kmod, mount, reap, sources};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// How often to look again for the power button while it has not appeared
/// (devtmpfs creates the node asynchronously after the driver loads).
const INPUT_RESCAN: Duration = Duration::from_millis(500);
const INPUT_RESCANS: u32 = 20;

/// Signals init handles through its signalfd; blocked so none is lost
/// before the loop starts.
fn handled_signals() -> SigSet {
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGCHLD,
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGHUP,
        Signal::SIGPWR,
    ] {
        set.add(s);
    }
    set
}

/// Runs the appliance; never returns.
pub fn run() -> ! {
    let mut consoles = Consoles::early();
    let signals = handled_signals();
    let signal_fd = match nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&signals), None)
        .and_then(|()| SignalFd::new(&signals))
    {
        Ok(fd) => Some(fd),
        Err(e) => {
            consoles.line(&format!(
                "init: error: cannot watch signals ({e}); power requests by signal will not work"
            ));
            None
        }
    };

    for (target, reason) in mount::mount_kernel_filesystems() {
        consoles.line(&format!("init: error: mounting {target}: {reason}"));
    }
    consoles.discover();
    banner(&mut consoles);

    // Ctrl-alt-del becomes SIGINT to init instead of an immediate reboot.
    if let Err(e) = set_cad_enabled(false) {
        consoles.line(&format!(
            "init: warning: cannot take over ctrl-alt-del: {e}"
        ));
    }

    let modules = kmod::load_modules(MODULE_LOAD_ORDER);
    consoles.line(&format!("init: loaded {} kernel modules", modules.loaded));
    if !modules.no_hardware.is_empty() {
        consoles.line(&format!(
            "init: no hardware for: {} (not needed on this hypervisor)",
            modules.no_hardware.join(", ")
        ));
    }
    for (path, reason) in &modules.failed {
        consoles.line(&format!("init: error: loading module {path}: {reason}"));
    }

    let gathered = sources::gather();
    report_settings(&mut consoles, &gathered);
    let settings = &gathered.merged.settings;
    if let Err(e) = nix::unistd::sethostname(&settings.hostname) {
        consoles.line(&format!(
            "init: error: setting hostname {}: {e}",
            settings.hostname
        ));
    }

    let mut inputs = evdev::open_event_devices();
    let uptime = std::fs::read_to_string("/proc/uptime").unwrap_or_default();
    let uptime = uptime.split_whitespace().next().unwrap_or("?");
    consoles.line(&format!("init: up {uptime} s after kernel start"));
    consoles.line(READY_LINE);

    event_loop(&mut consoles, signal_fd.as_ref(), &mut inputs)
}

/// Every setting with its source, then every problem: the admin sees on the
/// VM console exactly what the appliance took from vSphere.
fn report_settings(consoles: &mut Consoles, gathered: &sources::Gathered) {
    for note in &gathered.notes {
        let level = if note.error { "error: " } else { "" };
        consoles.line(&format!("init: {level}{}", note.text));
    }
    consoles.line("init: settings:");
    for line in gathered.merged.render() {
        consoles.line(&format!("init:   {line}"));
    }
    for e in &gathered.merged.errors {
        consoles.line(&format!("init: error: setting {e}"));
    }
}

fn banner(consoles: &mut Consoles) {
    let os = std::fs::read_to_string(OS_RELEASE).unwrap_or_default();
    let pretty = os
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_else(|| "appliance".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    consoles.line("");
    consoles.line(&format!(
        "=== {pretty} === init {VERSION}, linux {}",
        kernel.trim()
    ));
}

/// Waits for signals and power-button presses until a power request.
fn event_loop(
    consoles: &mut Consoles,
    signal_fd: Option<&SignalFd>,
    inputs: &mut Vec<(String, File)>,
) -> ! {
    let mut rescans = if inputs.is_empty() { INPUT_RESCANS } else { 0 };
    loop {
        let timeout = if rescans > 0 {
            PollTimeout::try_from(INPUT_RESCAN).unwrap_or(PollTimeout::NONE)
        } else {
            PollTimeout::NONE
        };
        let (signal_ready, ready_inputs) = {
            let mut fds: Vec<PollFd<'_>> = Vec::new();
            if let Some(sfd) = signal_fd {
                fds.push(PollFd::new(sfd.as_fd(), PollFlags::POLLIN));
            }
            let first_input = fds.len();
            for (_, f) in inputs.iter() {
                fds.push(PollFd::new(f.as_fd(), PollFlags::POLLIN));
            }
            if fds.is_empty() {
                std::thread::sleep(INPUT_RESCAN);
            } else if let Err(e) = poll(&mut fds, timeout) {
                if e != nix::errno::Errno::EINTR {
                    consoles.line(&format!("init: warning: poll: {e}"));
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
            let ready = |fd: &PollFd<'_>| fd.revents().is_some_and(|r| !r.is_empty());
            let signal_ready = signal_fd.is_some() && fds.first().is_some_and(ready);
            let ready_inputs: Vec<usize> = fds[first_input..]
                .iter()
                .enumerate()
                .filter(|(_, fd)| ready(fd))
                .map(|(i, _)| i)
                .collect();
            (signal_ready, ready_inputs)
        };

        if signal_ready {
            if let Some(sfd) = signal_fd {
                while let Ok(Some(info)) = sfd.read_signal() {
                    let Ok(sig) = Signal::try_from(i32::try_from(info.ssi_signo).unwrap_or(0))
                    else {
                        continue;
                    };
                    if sig == Signal::SIGCHLD {
                        reap::reap_zombies();
                    } else if let Some(action) = power::action_for_signal(sig) {
                        power::shutdown(consoles, action, &format!("received {sig}"));
                    } else if sig == Signal::SIGPWR {
                        power::shutdown(consoles, PowerAction::PowerOff, "received SIGPWR");
                    }
                }
            }
        }
        for i in ready_inputs {
            if let Some((path, dev)) = inputs.get_mut(i) {
                if evdev::read_power_press(dev) {
                    let reason = format!("power button pressed ({path})");
                    power::shutdown(consoles, PowerAction::PowerOff, &reason);
                }
            }
        }
        if rescans > 0 {
            rescans -= 1;
            let found = evdev::open_event_devices();
            if !found.is_empty() {
                *inputs = found;
                rescans = 0;
            }
        }
        // Orphans re-parented to init also arrive as SIGCHLD; reaping here too
        // covers a signal lost while the fd was not readable.
        reap::reap_zombies();
    }
}
