//! The VMware tools channel (TCLO): what makes vCenter show tools as
//! "running (guest managed)", the guest's IP addresses and host name, and
//! lets "Shut Down Guest OS" / "Restart Guest OS" work.
//!
//! TCLO runs backwards: the host sends commands, the guest replies. The
//! guest drives it by polling, as open-vm-tools' `rpcin.c` does:
//!
//! ```text
//!   open TCLO (0x4f4c4354)
//!   loop:  send(previous reply, "" at first) -> receive(command)
//!          command:    reply = handle(command), poll again at once
//!          no command: wait 10, 20, 40, 80, 100, 100 ... ms
//!          error:      close, reopen after 100 ms doubling to 1 s
//!
//!   reset                  -> "OK ATR toolbox"   (then RPCI vmx.capability.unified_loop)
//!   ping                   -> "OK "
//!   Capabilities_Register  -> RPCI tools.capability.statechange, tools.set.version
//!   Set_Option broadcastIP 1 -> RPCI info-set guestinfo.ip <primary IP>
//!   OS_Halt / OS_Reboot    -> RPCI tools.os.statechange.status 1 1|2, power action
//!   OS_PowerOn/Resume/Suspend -> status 1 3|4|5, nothing else to do
//!   anything else          -> "ERROR Unknown Command"
//! ```
//!
//! Once registered, the host name (`SetGuestInfo  1`) and the NICs
//! (`SetGuestInfo  10` + XDR, see `nicinfo`) are sent whenever they change
//! (see `report`).
//! [`Tools`] is a state machine: init's poll loop calls
//! [`Tools::on_timer`] at [`Tools::next_deadline`] with the backdoor, the
//! time and what it knows of the guest, and acts on the returned actions.
//! Nothing here sleeps or reads a clock.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use super::backdoor::Backdoor;
use super::channel::{Channel, ChannelError, PROTO_TCLO};
use super::report::{rpci_logged, Reporter};
use super::rpci::{quote, RpciError};

pub use super::report::{GuestInfo, GuestNic};

/// Our name on the TCLO channel; vmtoolsd's main service uses the same.
pub const APP_NAME: &str = "toolbox";
/// `TOOLS_VERSION_UNMANAGED` (0x7fffffff) from open-vm-tools'
/// `vm_tools_version.h`: "guest managed" tools, which vCenter shows as
/// running without offering to upgrade them (open-vm-tools itself reports
/// this). Without a version vCenter says "running" but "not installed".
pub const TOOLS_VERSION_UNMANAGED: u32 = 0x7fff_ffff;
/// The first wait when the host has no command (rpcin.c: 1 unit of 10 ms).
pub const POLL_DELAY_FIRST: Duration = Duration::from_millis(10);
/// The longest wait between polls (rpcin.c `RPCIN_MAX_DELAY`, 10 x 10 ms).
pub const POLL_DELAY_MAX: Duration = Duration::from_millis(100);
/// The wait before reopening after the first channel error.
pub const RETRY_DELAY_FIRST: Duration = Duration::from_millis(100);
/// The longest wait before reopening after repeated channel errors.
pub const RETRY_DELAY_MAX: Duration = Duration::from_secs(1);
/// Commands handled in one `on_timer` call before giving the loop back.
pub const MAX_COMMANDS_PER_TIMER: usize = 16;
/// Unknown command names remembered so each is logged once.
const MAX_UNKNOWN_LOGGED: usize = 32;

/// `GuestOsState` from open-vm-tools' `vmware/guestrpc/powerops.h`, the
/// second number of `tools.os.statechange.status`.
mod os_state {
    pub const HALT: u32 = 1;
    pub const REBOOT: u32 = 2;
    pub const POWERON: u32 = 3;
    pub const RESUME: u32 = 4;
    pub const SUSPEND: u32 = 5;
}

/// What init must do after a call.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum ToolsAction {
    /// vCenter asked "Shut Down Guest OS": shut down cleanly, power off.
    PowerOff,
    /// vCenter asked "Restart Guest OS": shut down cleanly, reboot.
    Reboot,
    /// A line for init's log.
    Log(String),
}

/// Something went wrong talking to the host; shown as a log line, never
/// fatal.
#[derive(Debug, thiserror::Error)]
pub enum ToolsError {
    /// The TCLO channel failed; it is reopened.
    #[error("VMware tools channel (TCLO) failed, reopening it: {source}")]
    Channel {
        /// What failed.
        #[source]
        source: ChannelError,
    },
    /// An RPCI call to the host failed.
    #[error("VMware tools: {source}")]
    Rpci {
        /// What failed.
        #[source]
        source: RpciError,
    },
    /// The host answered an RPCI call with `0 <error>`.
    #[error("VMware tools: the host refused {command:?}: {reply:?}")]
    Refused {
        /// The command (its start).
        command: String,
        /// The host's words.
        reply: String,
    },
}

/// The TCLO loop. See the module doc.
#[derive(Debug)]
pub struct Tools {
    channel: Option<Channel>,
    /// The reply to the last command, sent with the next poll.
    reply: Vec<u8>,
    next_poll: Instant,
    poll_delay: Duration,
    /// Channel errors in a row.
    failures: u32,
    /// `Capabilities_Register` came since the last reset.
    registered: bool,
    /// Send `vmx.capability.unified_loop` once the reset reply is out.
    announce_unified_loop: bool,
    /// A power action was returned already; later ones are not repeated.
    power_requested: bool,
    reporter: Reporter,
    unknown_logged: BTreeSet<String>,
}

impl Tools {
    /// A loop that polls first at `now`.
    pub fn new(now: Instant) -> Self {
        Self {
            channel: None,
            reply: Vec::new(),
            next_poll: now,
            poll_delay: Duration::ZERO,
            failures: 0,
            registered: false,
            announce_unified_loop: false,
            power_requested: false,
            reporter: Reporter::default(),
            unknown_logged: BTreeSet::new(),
        }
    }

    /// When [`Tools::on_timer`] wants to run next.
    pub fn next_deadline(&self) -> Instant {
        self.next_poll
    }

    /// Whether the TCLO channel is open and the host has registered us.
    pub fn connected(&self) -> bool {
        self.channel.is_some() && self.registered
    }

    /// Polls the host (a no-op before [`Tools::next_deadline`]): sends the
    /// last reply, handles the commands that come, reports `info` if it
    /// changed. Never fails: errors become `Log` actions and a reopen.
    pub fn on_timer(
        &mut self,
        bd: &mut impl Backdoor,
        now: Instant,
        info: &GuestInfo,
    ) -> Vec<ToolsAction> {
        let mut actions = Vec::new();
        if now < self.next_poll {
            return actions;
        }
        let mut idle = false;
        for _ in 0..MAX_COMMANDS_PER_TIMER {
            match self.exchange(bd, info, &mut actions) {
                // A command: the host is busy, start the backoff over.
                Ok(true) => self.poll_delay = Duration::ZERO,
                Ok(false) => {
                    idle = true;
                    break;
                }
                Err(source) => {
                    self.channel_failed(source, now, &mut actions);
                    return actions;
                }
            }
        }
        if self.failures > 0 {
            actions.push(ToolsAction::Log(format!(
                "VMware tools channel (TCLO) open again after {} failed attempts",
                self.failures
            )));
            self.failures = 0;
        }
        self.poll_delay = if idle {
            backoff(self.poll_delay)
        } else {
            // Commands keep coming: the last reply goes out at once.
            Duration::ZERO
        };
        if self.channel.is_some() && self.registered {
            self.reporter.report(bd, now, info, &mut actions);
        }
        self.next_poll = now + self.poll_delay;
        actions
    }

    /// One send/receive; `Ok(true)` if a command came.
    fn exchange(
        &mut self,
        bd: &mut impl Backdoor,
        info: &GuestInfo,
        actions: &mut Vec<ToolsAction>,
    ) -> Result<bool, ChannelError> {
        let ch = match self.channel.take() {
            Some(ch) => ch,
            None => {
                // A new channel: the host starts over with `reset`.
                self.reply.clear();
                Channel::open(bd, PROTO_TCLO)?
            }
        };
        match self.exchange_on(bd, &ch, info, actions) {
            Ok(got) => {
                self.channel = Some(ch);
                Ok(got)
            }
            Err(e) => {
                // Best effort: after a host reset the channel is gone and
                // CLOSE fails too; the error that matters is `e`.
                let _ = ch.close(bd);
                Err(e)
            }
        }
    }

    fn exchange_on(
        &mut self,
        bd: &mut impl Backdoor,
        ch: &Channel,
        info: &GuestInfo,
        actions: &mut Vec<ToolsAction>,
    ) -> Result<bool, ChannelError> {
        ch.send(bd, &self.reply)?;
        self.reply.clear();
        if std::mem::take(&mut self.announce_unified_loop) {
            // vmtoolsd says this after each reset: the VMX then sends
            // Set_Option and the like on this one channel.
            let msg = format!("vmx.capability.unified_loop {APP_NAME}\0");
            rpci_logged(bd, msg.as_bytes(), actions);
        }
        let command = ch.receive(bd)?.unwrap_or_default();
        if command.is_empty() {
            return Ok(false);
        }
        self.reply = self.handle(bd, &command, info, actions);
        Ok(true)
    }

    fn channel_failed(
        &mut self,
        source: ChannelError,
        now: Instant,
        actions: &mut Vec<ToolsAction>,
    ) {
        self.failures = self.failures.saturating_add(1);
        if self.failures == 1 {
            actions.push(ToolsAction::Log(ToolsError::Channel { source }.to_string()));
        }
        self.registered = false;
        self.reply.clear();
        self.poll_delay = retry_delay(self.failures);
        self.next_poll = now + self.poll_delay;
    }

    /// Handles one command; returns the reply.
    fn handle(
        &mut self,
        bd: &mut impl Backdoor,
        command: &[u8],
        info: &GuestInfo,
        actions: &mut Vec<ToolsAction>,
    ) -> Vec<u8> {
        let text = String::from_utf8_lossy(command);
        let text = text.trim_end_matches('\0');
        let (name, args) = text.split_once(' ').unwrap_or((text, ""));
        let reply: String = match name {
            "reset" => {
                // The host forgot everything: register and report again.
                self.registered = false;
                self.reporter.forget();
                self.announce_unified_loop = true;
                format!("OK ATR {APP_NAME}")
            }
            "ping" => "OK ".to_owned(),
            "Capabilities_Register" => {
                self.register(bd, actions);
                "OK ".to_owned()
            }
            "Set_Option" => self.set_option(bd, args, info, actions).to_owned(),
            "OS_Halt" => {
                self.state_change(bd, os_state::HALT, Some(ToolsAction::PowerOff), actions)
            }
            "OS_Reboot" => {
                self.state_change(bd, os_state::REBOOT, Some(ToolsAction::Reboot), actions)
            }
            "OS_PowerOn" => self.state_change(bd, os_state::POWERON, None, actions),
            "OS_Resume" => {
                // As vmtoolsd: after a resume, send everything again.
                self.reporter.forget();
                self.state_change(bd, os_state::RESUME, None, actions)
            }
            "OS_Suspend" => self.state_change(bd, os_state::SUSPEND, None, actions),
            _ => {
                if self.unknown_logged.len() < MAX_UNKNOWN_LOGGED
                    && self.unknown_logged.insert(name.to_owned())
                {
                    actions.push(ToolsAction::Log(format!(
                        "VMware tools: host sent command {:?}, which this appliance does not implement",
                        quote(name.as_bytes())
                    )));
                }
                "ERROR Unknown Command".to_owned()
            }
        };
        reply.into_bytes()
    }

    fn register(&mut self, bd: &mut impl Backdoor, actions: &mut Vec<ToolsAction>) {
        // As vmtoolsd: a capability without a value goes with its trailing
        // space and without the NUL the other commands carry.
        rpci_logged(bd, b"tools.capability.statechange ", actions);
        let version = format!("tools.set.version {TOOLS_VERSION_UNMANAGED}\0");
        rpci_logged(bd, version.as_bytes(), actions);
        self.registered = true;
    }

    /// `Set_Option <name> <value>`: only broadcastIP means something here;
    /// other options are accepted and ignored.
    fn set_option(
        &mut self,
        bd: &mut impl Backdoor,
        args: &str,
        info: &GuestInfo,
        actions: &mut Vec<ToolsAction>,
    ) -> &'static str {
        const INVALID: &str = "ERROR Unknown or invalid option";
        let Some((option, value)) = args
            .split_once(' ')
            .filter(|(o, v)| !o.is_empty() && !v.is_empty())
        else {
            return INVALID;
        };
        if option == "broadcastIP" {
            match value {
                "1" => self.reporter.set_broadcast_ip(bd, true, info, actions),
                "0" => self.reporter.set_broadcast_ip(bd, false, info, actions),
                _ => return INVALID,
            }
        }
        "OK "
    }

    fn state_change(
        &mut self,
        bd: &mut impl Backdoor,
        state: u32,
        action: Option<ToolsAction>,
        actions: &mut Vec<ToolsAction>,
    ) -> String {
        // "1": we always succeed (no scripts to run). The VMX waits for
        // this before it suspends, or counts the halt as done.
        let msg = format!("tools.os.statechange.status 1 {state}\0");
        rpci_logged(bd, msg.as_bytes(), actions);
        if let Some(action) = action {
            let what = match action {
                ToolsAction::Reboot => "Restart Guest OS (OS_Reboot)",
                _ => "Shut Down Guest OS (OS_Halt)",
            };
            if self.power_requested {
                // One request starts the shutdown; a second one would make
                // init force it, which vCenter's retries must not do.
                actions.push(ToolsAction::Log(format!(
                    "VMware tools: vCenter asked {what} again; shutdown is already under way"
                )));
            } else {
                self.power_requested = true;
                actions.push(ToolsAction::Log(format!(
                    "VMware tools: vCenter asked {what}"
                )));
                actions.push(action);
            }
        }
        "OK ".to_owned()
    }
}

/// The next wait when the host had no command: 10, 20, 40, 80, 100 ms.
fn backoff(delay: Duration) -> Duration {
    if delay.is_zero() {
        POLL_DELAY_FIRST
    } else {
        (delay * 2).min(POLL_DELAY_MAX)
    }
}

/// The wait before reopening after `failures` errors in a row: 100, 200,
/// 400, 800 ms, then 1 s.
fn retry_delay(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(4);
    (RETRY_DELAY_FIRST * (1 << doublings)).min(RETRY_DELAY_MAX)
}

#[cfg(test)]
#[path = "tclo_tests.rs"]
mod tests;
