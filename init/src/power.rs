//! Power requests and the clean shutdown that follows them.
//!
//! Signals follow busybox init, which admins and tools know: SIGUSR1 halt
//! (a VM has nothing to halt to, so it powers off), SIGUSR2 power off,
//! SIGTERM reboot, and SIGINT, which the kernel sends on ctrl-alt-del once
//! `reboot(RB_DISABLE_CAD)` is set, reboot. The ACPI power button powers off.

use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::reboot::{reboot, RebootMode};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{sync, Pid};

use rootfs::paths::{DATA_MOUNT, POWEROFF_LINE, REBOOT_LINE};

use crate::console::Consoles;
use crate::data_partition;
use crate::supervise::Service;

/// How long lbd gets to finish after SIGTERM (it sends its priority-0
/// VRRP advert at once; the rest is letting connections end).
pub const SERVICE_STOP_DEADLINE: Duration = Duration::from_secs(10);
/// How long any other process gets between SIGTERM and SIGKILL.
pub const STOP_DEADLINE: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerAction {
    PowerOff,
    Reboot,
}

/// What a signal to PID 1 asks for, if anything.
pub fn action_for_signal(sig: Signal) -> Option<PowerAction> {
    match sig {
        Signal::SIGUSR1 | Signal::SIGUSR2 => Some(PowerAction::PowerOff),
        Signal::SIGTERM | Signal::SIGINT => Some(PowerAction::Reboot),
        _ => None,
    }
}

/// Stops the services (lbd first: it gives up its virtual IPs), releases
/// the DHCP lease, stops every other process, syncs, unmounts the data
/// partition and powers off or reboots. Never returns.
pub fn shutdown(
    consoles: &mut Consoles,
    services: &mut [Service],
    release_network: &mut dyn FnMut(&mut Consoles),
    hurry: &mut dyn FnMut() -> bool,
    action: PowerAction,
    reason: &str,
) -> ! {
    let what = match action {
        PowerAction::PowerOff => "power off",
        PowerAction::Reboot => "reboot",
    };
    consoles.line(&format!("init: {reason}: shutting down to {what}"));
    // Once a second request came, every remaining wait is cut short.
    let mut forced = false;
    let mut hurried = || {
        forced = forced || hurry();
        forced
    };
    for service in services.iter_mut() {
        let name = service.name.clone();
        let how = service.stop(
            SERVICE_STOP_DEADLINE,
            &mut |line| consoles.line(&format!("{name}: {line}")),
            &mut hurried,
        );
        consoles.line(&format!("init: {} stopped ({how})", service.name));
    }
    release_network(consoles);
    stop_all_processes(consoles, &mut hurried);
    consoles.detach_log();
    sync();
    match data_partition::unmount_data() {
        Ok(()) => consoles.line(&format!("init: {DATA_MOUNT} unmounted")),
        Err(e) => consoles.line(&format!("init: warning: {DATA_MOUNT}: {e}")),
    }
    sync();
    consoles.line(match action {
        PowerAction::PowerOff => POWEROFF_LINE,
        PowerAction::Reboot => REBOOT_LINE,
    });
    let mode = match action {
        PowerAction::PowerOff => RebootMode::RB_POWER_OFF,
        PowerAction::Reboot => RebootMode::RB_AUTOBOOT,
    };
    let err = reboot(mode).err();
    // reboot(2) only returns on failure; PID 1 must not exit, so wait here.
    consoles.line(&format!(
        "init: {what} failed: {err:?}; the VM can be powered off safely now"
    ));
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// SIGTERM to everyone, reap until none are left or the deadline passes,
/// then SIGKILL to whoever remains.
fn stop_all_processes(consoles: &mut Consoles, hurry: &mut dyn FnMut() -> bool) {
    // kill(-1) signals every process except PID 1 itself.
    if kill(Pid::from_raw(-1), Signal::SIGTERM) == Err(Errno::ESRCH) {
        return;
    }
    let deadline = Instant::now() + STOP_DEADLINE;
    while Instant::now() < deadline && !hurry() {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Err(Errno::ECHILD) => return,
            Ok(WaitStatus::StillAlive) => std::thread::sleep(Duration::from_millis(20)),
            _ => {}
        }
    }
    consoles.line("init: processes still running after the deadline: killing them");
    let _ = kill(Pid::from_raw(-1), Signal::SIGKILL);
    while !matches!(waitpid(None, None), Err(Errno::ECHILD) | Err(Errno::EINTR)) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_map_like_busybox_init() {
        assert_eq!(
            action_for_signal(Signal::SIGUSR2),
            Some(PowerAction::PowerOff)
        );
        assert_eq!(
            action_for_signal(Signal::SIGUSR1),
            Some(PowerAction::PowerOff)
        );
        assert_eq!(
            action_for_signal(Signal::SIGTERM),
            Some(PowerAction::Reboot)
        );
        assert_eq!(action_for_signal(Signal::SIGINT), Some(PowerAction::Reboot));
        assert_eq!(action_for_signal(Signal::SIGCHLD), None);
        assert_eq!(action_for_signal(Signal::SIGHUP), None);
    }
}
