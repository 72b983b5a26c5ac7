//! The appliance's PID 1, as a library so tests can reuse its pieces.
//!
//! `main.rs` runs the boot steps in order; each step is its own module.

pub mod vmware;
