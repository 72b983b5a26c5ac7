//! lbd: the appliance's load balancer, usable on any Linux host.
//!
//! Inputs: one or more TOML config files layered in order (later wins), the
//! admin-state file, commands on the control socket and the stats page.
//! Outputs: proxied connections, health-check results, logs (stderr or
//! syslog), stats (control socket, HTML/JSON/CSV, Prometheus), events.
//!
//! Layout:
//! - [`config`]: schema, layering with file:line errors, validation (the
//!   tokio-free `lbd-config` crate, shared with init), plus lbd's TLS check.
//! - [`daemon`]: `lbd run` wiring, reload, stop; [`runtime`]: live state
//!   per config generation; [`admin`] + [`state`]: ready/drain/maint and
//!   weights, persisted.
//! - [`proxy`]: listeners (IP_FREEBIND), mode tcp (copy/splice), mode
//!   http (hyper), PROXY protocol, routing, TLS termination.
//! - [`balance`]: algorithms, pure; [`check`]: health FSM (pure), probes,
//!   agent, tasks; [`resolve`]: servers given by name.
//! - [`control`]: Unix socket server and `lbd ctl` client; [`stats`]: the
//!   stats/admin page; [`report`]: the snapshot both show; [`web`]: what
//!   the stats page and the console share (password gate, slots, headers);
//!   [`console`]: the web console and API on HTTPS :5480.
//! - [`password`], [`syslog`], [`rlimit`]: small helpers; [`log_queue`]:
//!   log lines written off the serving threads, dropped and counted when
//!   the log's reader falls behind.
//!
//! - [`vrrp`]: VRRP v2/v3 (issue 4): advert codec and state machine (pure),
//!   `[vrrp.NAME]` config; it follows backend health through
//!   `Runtime::events` / the control socket's `events` stream.

pub mod admin;
pub mod appliance_bridge;
pub mod balance;
pub mod check;
pub mod config;
pub mod console;
pub mod control;
pub mod daemon;
pub mod history;
pub mod log_queue;
pub mod password;
pub mod proxy;
pub mod report;
pub mod resolve;
pub mod rlimit;
pub mod runtime;
pub mod state;
pub mod stats;
pub mod syslog;
pub mod vrrp;
pub mod web;
