//! The appliance socket: how the appliance's editors (`lbd ctl config`,
//! later the web console and the console setup) talk to the store that
//! init owns.
//!
//! One Unix socket, [`SOCKET`], JSON lines: a client writes one
//! [`Request`] per line and reads one [`Reply`] line for it. The types
//! live here, in one crate that the server (init) and every client link,
//! so a renamed field breaks the build instead of a conversation.
//!
//! Every change names the revision it was based on: a stale base is
//! refused, so two editors cannot overwrite each other silently.

pub mod client;
mod wire;

pub use wire::{
    Change, ConfigView, DiffLine, Payload, Problem, Reply, Request, RevisionMeta, ValueView,
};

/// Where init serves the socket (tmpfs: it exists while init runs).
pub const SOCKET: &str = "/run/appliance/appliance.sock";

/// The longest request line the server reads: a whole exported document
/// with services fits many times over; anything longer is refused.
pub const MAX_REQUEST_BYTES: usize = 1 << 20;
