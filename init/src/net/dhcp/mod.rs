//! The DHCPv4 client: the protocol as a pure state machine ([`fsm`]), the
//! lease it yields ([`lease`]), a pre-decoder that keeps untrusted options
//! away from the full decoder (`options`), IPv4/UDP framing for a packet
//! socket ([`raw`]), and the driver init puts in its poll loop
//! ([`client`]).

pub mod client;
pub mod fsm;
pub mod lease;
mod options;
pub mod raw;
mod socket;

pub use client::{acquire_lease, DhcpClient, DhcpError, Event};
pub use fsm::{Action, Config, Destination, Fsm, Input, State};
pub use lease::Lease;
