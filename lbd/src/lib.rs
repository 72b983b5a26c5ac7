//! lbd: the appliance's load balancer, usable on any Linux host.
//!
//! Inputs: one or more TOML config files layered in order (later wins), the
//! admin-state file, commands on the control socket. Outputs: proxied
//! connections, health-check results, logs on stderr, stats.
//!
//! Layout: [`config`] (schema, layering, validation), [`password`] (stats
//! user hashes). VRRP (issue 4) will live in its own `vrrp` module.

pub mod admin;
pub mod balance;
pub mod check;
pub mod config;
pub mod control;
pub mod daemon;
pub mod password;
pub mod proxy;
pub mod report;
pub mod resolve;
pub mod rlimit;
pub mod runtime;
pub mod state;
pub mod stats;
pub mod syslog;
