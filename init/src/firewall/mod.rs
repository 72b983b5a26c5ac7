//! The nftables firewall over netlink, applied in one atomic batch.
//!
//! No `nft` binary runs in the guest: init builds a [`Ruleset`] from a
//! [`FirewallInput`] (the boot sequence maps the settings and lbd's
//! effective config into it), prints it with [`render_nft`] in `nft list ruleset` syntax, and
//! [`apply`] encodes it as nf_tables netlink messages in one batch that
//! replaces the `inet appliance` table. If the kernel rejects any message
//! the whole batch is rolled back, the previous ruleset stays, and the
//! error names the rule.
//!
//! Files: `model.rs` (data and the policy), `render.rs` (text),
//! `expr.rs` (expressions), `batch.rs` (the batch), `wire.rs` (netlink
//! framing and acks), `apply.rs` (the socket), `gate.rs` (boot holds lbd
//! back until the ruleset is in the kernel, retrying with backoff).

mod apply;
mod batch;
mod expr;
mod gate;
mod model;
mod render;
mod wire;

use std::io;

pub use apply::apply;
pub use gate::{Gate, GateAction, RETRY_INITIAL, RETRY_MAX};
pub use model::{
    build_ruleset, Chain, CtState, FirewallInput, Hook, Match, Rule, Ruleset, Verdict,
    DHCP_CLIENT_PORT, DHCP_SERVER_PORT, ICMPV6_ACCEPTED, ICMP_ECHO_REQUEST, IPPROTO_AH,
    IPPROTO_VRRP, TABLE_NAME, VRRP_GROUP_V4, VRRP_GROUP_V6,
};
pub use render::{render_nft, render_rule};
pub use wire::DecodeError;

/// Why the firewall could not be applied. In every case the kernel keeps
/// the ruleset it had before.
#[derive(Debug, thiserror::Error)]
pub enum FirewallError {
    /// A name too long for a netlink attribute.
    #[error("encoding {what}: a name is longer than netlink allows; shorten it")]
    TooLarge { what: String },
    /// No nf_tables netlink socket (kernel without nf_tables, or not root).
    #[error(
        "opening the nf_tables netlink socket (is nf_tables loaded and are we root?): {source}"
    )]
    Socket { source: io::Error },
    /// The batch did not reach the kernel.
    #[error("sending the firewall batch to the kernel: {source}")]
    Send { source: io::Error },
    /// The kernel's answers could not be read.
    #[error("reading the kernel's answer to the firewall batch: {source}")]
    Receive { source: io::Error },
    /// The kernel's answer is not well-formed netlink.
    #[error("reading the kernel's answer to the firewall batch: {source}")]
    Reply { source: DecodeError },
    /// The kernel refused one message; it rolled back the whole batch.
    #[error("kernel rejected {what}{detail}; the previous ruleset stays: {source}")]
    Rejected {
        what: String,
        detail: String,
        source: io::Error,
    },
    /// The kernel did not answer a message it should have acknowledged.
    #[error("kernel did not acknowledge {what}; check the ruleset with nft list ruleset")]
    NoAck { what: String },
}
