//! Telling vCenter about the guest: host name (`SetGuestInfo  1`), NICs
//! (`SetGuestInfo  10` + XDR, see `nicinfo`) and, when the host asked with
//! `Set_Option broadcastIP 1`, the primary IP (`info-set guestinfo.ip`).
//! Each goes out when it changed since it was last accepted; after a
//! refusal, not again for [`REPORT_RETRY`]. The uptime (`SetGuestInfo  7`,
//! hundredths of a second) goes out at registration and every
//! [`UPTIME_INTERVAL`]: the VMX uses it to notice a guest that rebooted by
//! itself.
//!
//! Messages are byte for byte what vmtoolsd sends (`guestInfoServer.c`):
//! key/value ones end in a NUL, the XDR one does not.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::backdoor::Backdoor;
use super::nicinfo::{encode_nic_info_v3, primary_ip, MAX_IPS_V2, MAX_IPS_V3};
use super::rpci::{quote, rpci_call};
use super::tclo::{ToolsAction, ToolsError};

/// After a failed guest-info update, the wait before trying again
/// (open-vm-tools gathers guest info every 30 s).
pub const REPORT_RETRY: Duration = Duration::from_secs(30);
/// How often the uptime is sent (open-vm-tools' guest-info gather interval).
pub const UPTIME_INTERVAL: Duration = Duration::from_secs(30);

/// `GuestInfoType` from open-vm-tools' `guestInfo.h`: the number after
/// `SetGuestInfo  `.
mod info_type {
    /// The host name (vCenter's "DNS name").
    pub const DNS_NAME: u32 = 1;
    /// Time since boot in hundredths of a second.
    pub const UPTIME: u32 = 7;
    /// NIC info, for hosts that lack `IPADDRESS_V3` (at most 64 IPs a NIC).
    pub const IPADDRESS_V2: u32 = 9;
    /// NIC info, XDR `GuestNicProto`.
    pub const IPADDRESS_V3: u32 = 10;
}

/// One network interface as init knows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GuestNic {
    /// Kernel name (`eth0`), for logs only: the host matches NICs by MAC.
    pub name: String,
    /// Its MAC address; all zero (loopback) is not reported.
    pub mac: [u8; 6],
    /// Its addresses with prefix lengths; loopback ones are not reported.
    pub addrs: Vec<(IpAddr, u8)>,
}

/// What init tells vCenter about the guest (not guestinfo variables).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GuestInfo {
    /// The host name; empty: not reported.
    pub hostname: String,
    /// The NICs, primary first.
    pub nics: Vec<GuestNic>,
    /// Time since boot (`CLOCK_BOOTTIME`); zero: not reported.
    pub uptime: Duration,
}

/// What the host was last told, so updates go out only on change.
#[derive(Debug, Default)]
pub(super) struct Reporter {
    broadcast_ip: bool,
    hostname: Option<String>,
    nics: Option<Vec<GuestNic>>,
    ip: Option<IpAddr>,
    /// When the uptime last went out.
    uptime_sent: Option<Instant>,
    /// After a failure: no new attempt before this.
    retry_at: Option<Instant>,
    /// The host refused `IPADDRESS_V3`: use `IPADDRESS_V2`.
    nic_info_v2: bool,
}

impl Reporter {
    /// The host forgot what it was told (reset, resume): tell it again.
    /// Whether to broadcast the IP stays as the host set it.
    pub(super) fn forget(&mut self) {
        *self = Self {
            broadcast_ip: self.broadcast_ip,
            ..Self::default()
        };
    }

    /// `Set_Option broadcastIP 0|1`; on 1 the IP goes out at once.
    pub(super) fn set_broadcast_ip(
        &mut self,
        bd: &mut impl Backdoor,
        on: bool,
        info: &GuestInfo,
        actions: &mut Vec<ToolsAction>,
    ) {
        self.broadcast_ip = on;
        if on {
            self.ip = None;
            self.broadcast(bd, info, actions);
        }
    }

    /// `info-set guestinfo.ip <primary IP>`: the tools' own key behind
    /// vCenter's IP column, not one of the admin's settings.
    fn broadcast(
        &mut self,
        bd: &mut impl Backdoor,
        info: &GuestInfo,
        actions: &mut Vec<ToolsAction>,
    ) -> bool {
        let Some(ip) = primary_ip(&info.nics) else {
            return true;
        };
        let msg = format!("info-set guestinfo.ip {ip}\0");
        let ok = rpci_logged(bd, msg.as_bytes(), actions);
        if ok {
            self.ip = Some(ip);
        }
        ok
    }

    /// Sends what changed in `info` since it was last reported.
    pub(super) fn report(
        &mut self,
        bd: &mut impl Backdoor,
        now: Instant,
        info: &GuestInfo,
        actions: &mut Vec<ToolsAction>,
    ) {
        if self.retry_at.is_some_and(|t| now < t) {
            return;
        }
        let mut ok = true;
        let hostname_ok = !info.hostname.is_empty()
            && info.hostname.len() <= 255
            && !info.hostname.contains('\0');
        if hostname_ok && self.hostname.as_deref() != Some(info.hostname.as_str()) {
            let msg = format!("SetGuestInfo  {} {}\0", info_type::DNS_NAME, info.hostname);
            if rpci_logged(bd, msg.as_bytes(), actions) {
                self.hostname = Some(info.hostname.clone());
            } else {
                ok = false;
            }
        }
        if self.nics.as_ref() != Some(&info.nics) {
            if self.send_nic_info(bd, &info.nics, actions) {
                self.nics = Some(info.nics.clone());
            } else {
                ok = false;
            }
        }
        if self.broadcast_ip && self.ip != primary_ip(&info.nics) {
            ok &= self.broadcast(bd, info, actions);
        }
        let uptime_due = self
            .uptime_sent
            .is_none_or(|t| now.saturating_duration_since(t) >= UPTIME_INTERVAL);
        if !info.uptime.is_zero() && uptime_due {
            let cs = info.uptime.as_millis() / 10;
            let msg = format!("SetGuestInfo  {} {cs}\0", info_type::UPTIME);
            if rpci_logged(bd, msg.as_bytes(), actions) {
                self.uptime_sent = Some(now);
            } else {
                ok = false;
            }
        }
        self.retry_at = (!ok).then(|| now + REPORT_RETRY);
    }

    /// `SetGuestInfo  10 ` + XDR; on a host that refuses type 10, type 9
    /// with at most 64 addresses a NIC, as vmtoolsd falls back.
    fn send_nic_info(
        &mut self,
        bd: &mut impl Backdoor,
        nics: &[GuestNic],
        actions: &mut Vec<ToolsAction>,
    ) -> bool {
        if !self.nic_info_v2 {
            let mut msg = format!("SetGuestInfo  {} ", info_type::IPADDRESS_V3).into_bytes();
            msg.extend(encode_nic_info_v3(nics, MAX_IPS_V3));
            if rpci(bd, &msg).is_ok() {
                return true;
            }
            self.nic_info_v2 = true;
        }
        let mut msg = format!("SetGuestInfo  {} ", info_type::IPADDRESS_V2).into_bytes();
        msg.extend(encode_nic_info_v3(nics, MAX_IPS_V2));
        rpci_logged(bd, &msg, actions)
    }
}

/// One RPCI call; `Ok` if the host answered `1 ...`.
pub(super) fn rpci(bd: &mut impl Backdoor, command: &[u8]) -> Result<(), ToolsError> {
    match rpci_call(bd, command) {
        Ok(reply) if reply.ok => Ok(()),
        Ok(reply) => Err(ToolsError::Refused {
            command: quote(command.split(|b| *b == 0).next().unwrap_or_default()),
            reply: quote(&reply.body),
        }),
        Err(source) => Err(ToolsError::Rpci { source }),
    }
}

/// [`rpci`], logging a failure; true on success.
pub(super) fn rpci_logged(
    bd: &mut impl Backdoor,
    command: &[u8],
    actions: &mut Vec<ToolsAction>,
) -> bool {
    match rpci(bd, command) {
        Ok(()) => true,
        Err(e) => {
            actions.push(ToolsAction::Log(e.to_string()));
            false
        }
    }
}
