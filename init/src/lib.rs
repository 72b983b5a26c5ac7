//! The appliance's PID 1, as a library so tests can reuse its pieces.
//!
//! `main.rs` calls [`boot::run`], which runs the boot steps in order (each
//! its own module) and then waits for power requests. init never returns
//! and never panics on bad input: PID 1 exiting panics the kernel.

pub mod appliance_socket;
pub mod applog;
pub mod boot;
pub mod console;
pub mod console_tls;
pub mod data_partition;
/// Test images only (`--features debug-port`, `image-builder build --debug-port`).
#[cfg(feature = "debug-port")]
pub mod debug_port;
pub mod evdev;
pub mod firewall;
pub mod kmod;
pub mod last_good;
pub mod lbd_boot_files;
pub mod lbd_config;
pub mod lbd_files;
pub mod lbd_owner;
pub mod lbd_services;
pub mod line_relay;
pub mod live_apply;
pub mod mount;
pub mod net;
pub mod network;
pub mod power;
pub mod reap;
pub mod sources;
pub mod status;
pub mod store;
pub mod store_services;
pub mod supervise;
pub mod sysctl;
pub mod syslog;
pub mod time;
pub mod vmware;
pub mod vrrp_warning;
