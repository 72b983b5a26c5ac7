//! The appliance's desired state on the data partition: one document, in
//! numbered revisions, owned by init (MANAGEMENT.md, "One desired state,
//! one owner").
//!
//! Inputs: a directory (init passes `rootfs::paths::APPLIANCE_CONFIG`,
//! on the data partition), documents to commit
//! with the revision they were based on, the caller's clock, and at boot
//! what vSphere delivered.
//! Outputs: the revision in force ([`Store::current`]), its history,
//! diffs, and for the settings merge the `appliance` layer
//! ([`Document::settings_layer`]).
//! Precedence: baked < vSphere (ovf-env, guestinfo) < this store < kernel
//! command line; a vSphere value changed since the last boot replaces the
//! stored one ([`vsphere::apply`]).
//!
//! The document has two parts: `settings`, raw values by the settings
//! table's keys, and `services`, an lbd config layer. A change is checked
//! first ([`validate`]) and only a [`ValidDocument`] is committed; a stale
//! base is refused ([`StoreError::Stale`]). Writes are atomic
//! ([`fs::write_atomic`]): a power cut leaves the old or the new revision.
//! No tokio, no clock reads, no global state: init links this, and so will
//! the appliance socket's clients (the document, revision and diff types
//! are serde types for its JSON lines).

pub mod diff;
pub mod document;
pub mod fs;
mod store;
pub mod validate;
pub mod vsphere;

#[cfg(test)]
mod crash_fs;
#[cfg(test)]
mod store_tests;

pub use diff::{diff, Change, Diff};
pub use document::{Document, DocumentError, Meta, Revision};
pub use store::{
    Author, Committed, Opened, Store, StoreError, CURRENT_FILE, DAMAGED_FILE, HISTORY_DIR,
    HISTORY_KEPT, RESTORE_BY, SEEN_FILE,
};
pub use validate::{validate, Problem, Problems, Rules, ValidDocument};
