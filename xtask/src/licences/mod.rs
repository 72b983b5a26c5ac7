//! `cargo xtask licences`: every crate linked into the appliance's
//! programs must carry a licence compatible with the project's
//! `Apache-2.0 OR MIT` (no GPL crate linked). Reads `cargo metadata` for
//! the guest's target, walks the normal dependencies of [`PROGRAMS`]
//! ([`graph`]), and judges each `license` expression ([`spdx`],
//! [`policy`]). Also a step of `cargo xtask test`.
//!
//! No advisory database: it cannot be fetched offline here, so only the
//! licence rule is checked.

mod graph;
mod policy;
mod spdx;

use std::path::Path;
use std::process::Command;

/// The programs that ship: in the image (init, lbd) or to admins
/// (image-builder, and the static lbd it writes next to the image).
pub const PROGRAMS: &[&str] = &["init", "lbd", "image-builder"];
/// The only target the programs are built for.
const TARGET: &str = "x86_64-unknown-linux-gnu";

#[derive(Debug, thiserror::Error)]
pub enum LicenceError {
    #[error("running cargo metadata: {source}")]
    Spawn { source: std::io::Error },
    #[error("cargo metadata failed (its errors are above): {status}")]
    Metadata { status: std::process::ExitStatus },
    #[error("cargo metadata's output is not JSON: {source}")]
    Json { source: serde_json::Error },
    #[error(transparent)]
    Graph(#[from] graph::GraphError),
    #[error("{count} linked crate(s) break the licence rule (listed above): replace them or, for a licence that is in fact compatible, add it to ALLOWED in xtask/src/licences/policy.rs with the reason")]
    Refused { count: usize },
}

/// Checks the workspace at `root`; prints each refused crate, then one
/// summary line.
pub fn run(root: &Path) -> Result<(), LicenceError> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(root)
        .args(["metadata", "--format-version", "1", "--locked"])
        .args(["--filter-platform", TARGET])
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|source| LicenceError::Spawn { source })?;
    if !output.status.success() {
        return Err(LicenceError::Metadata {
            status: output.status,
        });
    }
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).map_err(|source| LicenceError::Json { source })?;
    let linked = graph::linked(&metadata, PROGRAMS)?;
    let mut refused = 0;
    for krate in &linked {
        if let Err(why) = policy::check(krate.licence.as_deref()) {
            eprintln!("licences: {} {}: {why}", krate.name, krate.version);
            refused += 1;
        }
    }
    if refused > 0 {
        return Err(LicenceError::Refused { count: refused });
    }
    println!(
        "licences: {} crates linked into {} pass (Apache-2.0 OR MIT compatible)",
        linked.len(),
        PROGRAMS.join(", ")
    );
    Ok(())
}
