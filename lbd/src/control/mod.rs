//! Runtime control over a Unix socket: command parsing ([`command`]), the
//! server in the daemon ([`server`]) and `lbd ctl` ([`client`]).

pub mod client;
pub mod command;
pub mod server;
