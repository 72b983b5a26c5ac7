//! The guest's file tree as data, and the writers that turn it into bytes.
//!
//! Inputs: files and directories added by the image builder (binaries,
//! configuration, kernel modules), each with a fixed mode and owner; one
//! modification time for the whole tree (`SOURCE_DATE_EPOCH`).
//! Outputs: a gzip-compressed cpio "newc" archive the kernel unpacks as the
//! initramfs. The same tree always gives the same bytes: entries are written
//! in path order with sequential inode numbers and no host metadata.
//!
//! [`modules`] selects kernel modules by name and adds their dependency
//! closure in load order, read from each module's own `.modinfo`.

pub mod civil;
#[cfg(feature = "write")]
pub mod initramfs;
#[cfg(feature = "write")]
pub mod modules;
pub mod paths;
#[cfg(feature = "write")]
pub mod tree;

#[cfg(feature = "write")]
pub use initramfs::{list_initramfs, read_initramfs, write_initramfs, InitramfsError, Member};
#[cfg(feature = "write")]
pub use modules::{ModuleError, ModuleSet};
#[cfg(feature = "write")]
pub use tree::{Entry, EntryKind, Tree, TreeError};
