//! Building the guest's programs (`init`, `lbd`) as static binaries.
//!
//! The guest has no dynamic loader or libc, so the binaries are glibc
//! static-pie (`+crt-static` on the gnu target; the musl target is not
//! installable here). Host paths are remapped so they do not end up in the
//! binaries.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use object::read::elf::{Dyn, ElfFile64, FileHeader, ProgramHeader};
use object::{elf, Endianness};

pub const TARGET: &str = "x86_64-unknown-linux-gnu";

#[derive(Debug, thiserror::Error)]
pub enum StaticError {
    #[error("running cargo: {source}")]
    Spawn { source: std::io::Error },
    #[error("`cargo build` of {packages} for the guest failed (its errors are above); static glibc needs libc6-dev: apt-get install libc6-dev")]
    Build { packages: String },
    #[error("reading {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {reason}; the guest has no dynamic loader, build with RUSTFLAGS='-C target-feature=+crt-static'", path.display())]
    NotStatic { path: PathBuf, reason: String },
}

/// A built binary, checked to be static.
pub struct StaticBinary {
    pub name: String,
    pub data: Vec<u8>,
}

/// Builds `binaries` (package = binary name) in `workspace` with the cargo
/// `features` given (`package/feature`), and checks each is static.
pub fn build(
    workspace: &Path,
    binaries: &[&str],
    features: &[&str],
) -> Result<Vec<StaticBinary>, StaticError> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_else(|| PathBuf::from("/root/.cargo"));
    let rustflags = [
        "-C".to_string(),
        "target-feature=+crt-static".to_string(),
        format!("--remap-path-prefix={}=/src", workspace.display()),
        format!("--remap-path-prefix={}=/cargo", cargo_home.display()),
    ];
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace)
        .args(["build", "--release", "--target", TARGET])
        .env_remove("RUSTFLAGS")
        .env("CARGO_ENCODED_RUSTFLAGS", rustflags.join("\x1f"))
        .stdin(Stdio::null());
    for b in binaries {
        cmd.args(["-p", b]);
    }
    if !features.is_empty() {
        cmd.args(["--features", &features.join(",")]);
    }
    let status = cmd
        .status()
        .map_err(|source| StaticError::Spawn { source })?;
    if !status.success() {
        return Err(StaticError::Build {
            packages: binaries.join(", "),
        });
    }
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(|d| workspace.join(d))
        .unwrap_or_else(|| workspace.join("target"));
    binaries
        .iter()
        .map(|name| {
            let path = target_dir.join(TARGET).join("release").join(name);
            let data = std::fs::read(&path).map_err(|source| StaticError::Read {
                path: path.clone(),
                source,
            })?;
            check_static(&data).map_err(|reason| StaticError::NotStatic { path, reason })?;
            Ok(StaticBinary {
                name: (*name).to_string(),
                data,
            })
        })
        .collect()
}

/// What kind of ELF executable this is, for the summary.
pub fn describe(data: &[u8]) -> &'static str {
    match ElfFile64::<Endianness>::parse(data) {
        Ok(f) if f.elf_header().e_type(f.endian()) == elf::ET_DYN => "static-pie",
        Ok(_) => "static",
        Err(_) => "not ELF",
    }
}

/// A static executable has no interpreter and needs no shared library.
pub fn check_static(data: &[u8]) -> Result<(), String> {
    let file =
        ElfFile64::<Endianness>::parse(data).map_err(|e| format!("not a 64-bit ELF: {e}"))?;
    let endian = file.endian();
    for ph in file.elf_program_headers() {
        if ph.p_type(endian) == elf::PT_INTERP {
            return Err("it asks for a dynamic loader (PT_INTERP)".into());
        }
        if let Ok(Some(dynamic)) = ph.dynamic(endian, data) {
            if dynamic
                .iter()
                .any(|d| d.d_tag(endian) == u64::from(elf::DT_NEEDED))
            {
                return Err("it needs shared libraries (DT_NEEDED)".into());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dynamic_host_binary_is_refused() {
        // The test binary itself is dynamically linked.
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        assert!(check_static(&me).is_err());
        assert!(check_static(b"#!/bin/sh").is_err());
    }
}
