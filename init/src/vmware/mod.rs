//! VMware guest integration: hypervisor detection, the backdoor RPCI
//! channel (guestinfo, read-only) and the tools channel (TCLO).
//!
//! ```text
//! VmwareBackdoor::detect()  CPUID "VMwareVMware" or DMI "VMware, Inc."
//!   -> guestinfo_get(&mut bd, "ovfEnv")          info-get guestinfo.ovfEnv
//!        -> rpci_call                            open RPCI, send, receive, close
//!             -> Channel                         MESSAGE (0x1E) subtypes
//!                  -> Backdoor::call             in eax, dx (or the test double)
//!
//! Tools::on_timer(&mut bd, now, &guest_info)      TCLO loop, polled by init
//!   -> Channel (TCLO) send reply / receive command
//!   -> rpci_call                                 capabilities, power status,
//!                                                SetGuestInfo, guestinfo.ip
//! ```
//!
//! Nothing here writes the admin's guestinfo settings; the only `info-set`
//! is `guestinfo.ip`, the tools' own key behind vCenter's IP column.

mod backdoor;
mod channel;
mod detect;
mod guestinfo;
mod nicinfo;
mod report;
mod rpci;
mod tclo;

#[cfg(test)]
mod double;

pub use backdoor::{
    Backdoor, Registers, VmwareBackdoor, BDOOR_CMD_MESSAGE, BDOOR_MAGIC, BDOOR_PORT,
};
pub use channel::{Channel, ChannelError, Step, MAX_MESSAGE_BYTES, PROTO_RPCI, PROTO_TCLO};
pub use detect::{decide, detect, hypervisor_signature, Evidence, DMI_SYS_VENDOR};
pub use guestinfo::{guestinfo_get, GuestinfoError};
pub use nicinfo::{encode_nic_info_v3, primary_ip};
pub use rpci::{rpci_call, RpciError, RpciReply};
pub use tclo::{GuestInfo, GuestNic, Tools, ToolsAction, ToolsError};
