//! Supervising lbd: start it, keep its last lines of output, restart it
//! with backoff when it exits, stop it first at shutdown.
//!
//! ```text
//!        start ──> Running ──exit──> Waiting(backoff) ──timer──> start
//!                     │                                         
//!                  stop(): SIGTERM, deadline, SIGKILL ──> Stopped
//! ```
//! The restart policy is plain data ([`backoff`]), and so is what share of
//! its output reaches the consoles ([`output_budget`]); the process
//! handling is in [`service`], which runs lbd under its own uid with the few
//! capabilities of [`privileges`]. init's loop owns the clock and `waitpid`, and hands each
//! exit status here, so reaping orphans never steals lbd's status.

pub mod backoff;
pub mod log_ring;
pub mod output_budget;
pub mod privileges;
pub mod service;

pub use backoff::{Backoff, RestartPolicy};
pub use log_ring::LogRing;
pub use privileges::{Credentials, LBD_GID, LBD_UID};
pub use service::{Service, ServiceEvent};
