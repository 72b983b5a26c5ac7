//! VMware guest integration: hypervisor detection and the backdoor RPCI
//! channel, read-only.
//!
//! ```text
//! VmwareBackdoor::detect()  CPUID "VMwareVMware" or DMI "VMware, Inc."
//!   -> guestinfo_get(&mut bd, "ovfEnv")          info-get guestinfo.ovfEnv
//!        -> rpci_call                            open RPCI, send, receive, close
//!             -> Channel                         MESSAGE (0x1E) subtypes
//!                  -> Backdoor::call             in eax, dx (or the test double)
//! ```
//!
//! Nothing here writes guestinfo.

mod backdoor;
mod channel;
mod detect;
mod guestinfo;
mod rpci;

#[cfg(test)]
mod double;

pub use backdoor::{
    Backdoor, Registers, VmwareBackdoor, BDOOR_CMD_MESSAGE, BDOOR_MAGIC, BDOOR_PORT,
};
pub use channel::{Channel, ChannelError, Step, MAX_MESSAGE_BYTES, PROTO_RPCI, PROTO_TCLO};
pub use detect::{decide, detect, hypervisor_signature, Evidence, DMI_SYS_VENDOR};
pub use guestinfo::{guestinfo_get, GuestinfoError};
pub use rpci::{rpci_call, RpciError, RpciReply};
