//! Time: an SNTPv4 client (RFC 4330). At boot, ask every configured server
//! (from settings or DHCP) for several samples, keep what a majority of
//! them agrees on, then step the clock when it is more than
//! [`STEP_THRESHOLD_NS`] off (but never by more than `ntp.max_step` unless
//! the admin allows it) and slew it otherwise. Answers are unauthenticated
//! and lbd's VRRP HMAC replay protection trusts the clock: no single
//! answer, and no single server out of several, moves it.
//!
//! Inputs: server strings (`IP` or `IP:port`; host names are skipped until
//! the guest resolves names) and a [`SyncPolicy`]. Output: a [`TimeReport`]
//! whose `Display` is one console/status line (plus warnings for servers
//! not believed), or an [`SntpError`] naming each server and why.
//!
//! - `packet.rs`: the wire format and the offset/delay arithmetic (pure).
//! - `select.rs`: outliers, agreement and the majority (pure).
//! - `client.rs`: the UDP queries, the boot sync and the step/slew decision.
//! - `clock.rs`: the syscalls that change the clock, behind a trait.

mod client;
mod clock;
mod packet;
mod select;

pub use client::{
    parse_server, query, sync_at_boot, sync_with, Adjustment, SntpError, SyncPolicy, TimeReport,
    NTP_PORT, SAMPLES_PER_SERVER, STEP_THRESHOLD_NS,
};
pub use clock::{ClockAdjust, SystemClock};
pub use packet::{
    decode_reply, encode_request, DecodeError, NtpTimestamp, Reply, Sample, PACKET_LEN,
};
pub use select::{Estimate, AGREEMENT_NS, MIN_AGREEING_SAMPLES};
