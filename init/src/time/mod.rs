//! Time: an SNTPv4 client (RFC 4330). At boot, ask the configured servers
//! (from settings or DHCP) in order until one answers, then step the clock
//! when it is more than [`STEP_THRESHOLD_NS`] off and slew it otherwise.
//!
//! Inputs: server strings (`IP` or `IP:port`; host names are skipped until
//! the guest resolves names). Output: a [`TimeReport`] whose `Display` is one
//! console/status line, or an [`SntpError`] naming each server and why.
//!
//! - `packet.rs`: the wire format and the offset/delay arithmetic (pure).
//! - `client.rs`: one UDP query, the boot sync and the step/slew decision.
//! - `clock.rs`: the syscalls that change the clock, behind a trait.

mod client;
mod clock;
mod packet;

pub use client::{
    parse_server, query, sync_at_boot, sync_with, Adjustment, SntpError, TimeReport, NTP_PORT,
    STEP_THRESHOLD_NS,
};
pub use clock::{ClockAdjust, SystemClock};
pub use packet::{
    decode_reply, encode_request, DecodeError, NtpTimestamp, Reply, Sample, PACKET_LEN,
};
