//! The Debian packages the tests need, found by a file each provides.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use xshell::{cmd, Shell};

/// (a file the package installs, the package).
pub const TEST_PACKAGES: &[(&str, &str)] = &[
    ("/usr/bin/qemu-system-x86_64", "qemu-system-x86"),
    ("/usr/share/OVMF/OVMF_CODE_4M.fd", "ovmf"),
    ("/usr/bin/qemu-img", "qemu-utils"),
    ("/usr/sbin/mke2fs", "e2fsprogs"),
    ("/usr/sbin/fsck.fat", "dosfstools"),
    ("/usr/sbin/sgdisk", "gdisk"),
    ("/usr/bin/file", "file"),
    ("/usr/bin/xmllint", "libxml2-utils"),
    ("/usr/sbin/ip", "iproute2"),
    ("/usr/bin/curl", "curl"),
    ("/usr/bin/openssl", "openssl"),
    ("/usr/bin/xorriso", "xorriso"),
    ("/usr/sbin/dnsmasq", "dnsmasq-base"),
    ("/usr/sbin/nft", "nftables"),
    ("/usr/bin/ping", "iputils-ping"),
    ("/usr/sbin/keepalived", "keepalived"),
    ("/usr/sbin/chronyd", "chrony"),
];

/// Installs missing packages as root; otherwise fails with the command.
pub fn ensure(sh: &Shell, wanted: &[(&str, &str)]) -> Result<(), Box<dyn std::error::Error>> {
    let missing: Vec<&str> = wanted
        .iter()
        .filter(|(file, _)| !Path::new(file).exists())
        .map(|(_, pkg)| *pkg)
        .collect();
    if missing.is_empty() {
        eprintln!("all present");
        return Ok(());
    }
    let is_root = std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false);
    if !is_root {
        return Err(format!(
            "missing system packages; install them with:\n  sudo apt-get update && sudo apt-get install -y {}",
            missing.join(" ")
        )
        .into());
    }
    cmd!(sh, "apt-get update -q")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .run()?;
    cmd!(
        sh,
        "apt-get install -y -q --no-install-recommends {missing...}"
    )
    .env("DEBIAN_FRONTEND", "noninteractive")
    .run()?;
    Ok(())
}
