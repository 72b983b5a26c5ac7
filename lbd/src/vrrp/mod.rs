//! VRRP (issue 4): v3 (RFC 5798) and Keepalived-compatible v2 (RFC 3768).
//!
//! - [`packet`]: advert codec, pure, never panics on input.
//! - [`config`]: `[vrrp.NAME]` schema and `lbd check` validation (the
//!   `lbd-config` crate's `vrrp` module, shared with init).
//! - [`fsm`]: the RFC 5798 state machine, pure: `now` and an input in,
//!   actions out.
//! - [`ah`], [`hmac_auth`]: advert authentication, pure (Keepalived's v2
//!   AH; lbd-to-lbd HMAC with anti-replay); [`auth`] wires them per
//!   instance.

pub mod ah;
pub mod attach;
pub mod auth;
/// `[vrrp.NAME]` schema and validation live in the shared config crate.
pub use lbd_config::vrrp as config;
pub mod driver;
pub mod fsm;
pub mod garp;
pub mod hmac_auth;
pub mod ndisc;
pub mod netlink;
pub mod notify;
pub mod own_runtime;
pub mod packet;
pub mod receive;
pub mod receive6;
pub mod service;
pub mod socket;
pub mod socket6;
pub mod status;
pub mod track;
