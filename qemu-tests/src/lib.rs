//! Boots the real appliance image under QEMU + OVMF and checks it from
//! outside: the serial console, QMP power events, the network.
//!
//! The image is the test image, built once (by `cargo xtask test`, or by
//! hand with `cargo run --release -p image-builder -- build --debug-port`,
//! into `out/test/`) and shared: every VM runs on a snapshot overlay, so
//! tests can run in parallel. Its init has the debug port the tests drive
//! (`kill lbd`, `log N`, ...), which production images lack.

pub mod backends;
pub mod image;
pub mod netns;
pub mod ovf_env;
pub mod qmp;
pub mod vm;

pub use vm::{Vm, VmError};
