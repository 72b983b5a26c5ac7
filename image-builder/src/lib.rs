//! The appliance image builder: one `appliance.toml` in, a UEFI GPT disk
//! image and an OVA out, reproducibly.
//!
//! Inputs: `appliance.toml`, Debian's kernel and systemd-stub packages
//! (fetched with apt into a cache, or local files), and this workspace's
//! `init` and `lbd`, built static. Outputs in `out/`: `<name>.img` and
//! `<name>-<version>.ova`. Timestamps come from `SOURCE_DATE_EPOCH` (or the
//! commit time) and ids from a hash of the contents, so the same inputs give
//! the same bytes.

pub mod apt;
pub mod build;
pub mod config;
pub mod deb;
pub mod debug_port;
pub mod disk;
pub mod epoch;
pub mod esp;
pub mod ext4;
pub mod guest_tree;
pub mod ids;
pub mod inspect;
pub mod kernel;
pub mod kernel_cache;
pub mod lock;
pub mod ovf_spec;
pub mod progress;
pub mod qemu;
pub mod run;
pub mod static_bins;
pub mod uki;
