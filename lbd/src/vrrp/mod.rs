//! VRRP (issue 4): v3 (RFC 5798) and Keepalived-compatible v2 (RFC 3768).
//!
//! - [`packet`]: advert codec, pure, never panics on input.

pub mod packet;
