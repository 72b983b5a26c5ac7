//! The Debian packages the tests and benches need, each found by a file it
//! installs.
//!
//! Installing is one apt transaction of the whole list, never of the missing
//! part alone: apt resolves the set together, so it cannot remove a package
//! that another step needs to make room for one that is missing (the
//! machines ship `qemu-utils` from backports, and installing
//! `qemu-system-x86` alone removed it). A wanted package whose installed
//! version no configured archive serves and that apt would keep (a newer
//! one installed by hand from elsewhere, like that backport) is requested
//! at the archive's version, so the set comes from one release.
//! After installing, every file is checked again and any still missing is
//! named with its package.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use xshell::{cmd, Shell};

/// A file a step runs or reads, and the Debian package that installs it.
pub type Need = (&'static str, &'static str);

/// What `cargo xtask test` needs.
pub const TEST_PACKAGES: &[Need] = &[
    ("/usr/bin/qemu-system-x86_64", "qemu-system-x86"),
    ("/usr/share/OVMF/OVMF_CODE_4M.fd", "ovmf"),
    ("/usr/bin/qemu-img", "qemu-utils"),
    ("/usr/sbin/mke2fs", "e2fsprogs"),
    ("/usr/sbin/e2fsck", "e2fsprogs"),
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
    ("/usr/bin/python3", "python3"),
    // The web console's pages are tested in a real browser over WebDriver.
    ("/usr/bin/chromium", "chromium"),
    ("/usr/bin/chromedriver", "chromium-driver"),
];

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Makes sure every file of `wanted` exists: as root by one `apt-get
/// install` of the whole list, otherwise by failing with that command.
pub fn ensure(sh: &Shell, wanted: &[Need]) -> Result {
    let missing = missing_files(wanted);
    if missing.is_empty() {
        eprintln!(
            "system packages: all {} files present ({} packages)",
            wanted.len(),
            packages(wanted).len()
        );
        return Ok(());
    }
    for (file, package) in &missing {
        eprintln!("system packages: {file} is missing (package {package})");
    }
    let all = packages(wanted);
    if !is_root() {
        return Err(format!(
            "missing system packages; install them (all together, so apt keeps a consistent set) with:\n  sudo apt-get update && sudo apt-get install -y --no-install-recommends {}",
            all.join(" ")
        )
        .into());
    }
    cmd!(sh, "apt-get update -q")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .run()?;
    let requests: Vec<String> = all.iter().map(|p| request(sh, p)).collect();
    eprintln!(
        "system packages: one transaction for all {} packages",
        requests.len()
    );
    cmd!(
        sh,
        "apt-get install -y -q --no-install-recommends --allow-downgrades {requests...}"
    )
    .env("DEBIAN_FRONTEND", "noninteractive")
    .run()?;
    let still = missing_files(wanted);
    if !still.is_empty() {
        let list: Vec<String> = still
            .iter()
            .map(|(file, package)| format!("{file} (package {package})"))
            .collect();
        return Err(format!(
            "apt-get finished but these are still missing: {}; check that the package lists are current and the packages exist for this release (apt-cache policy NAME)",
            list.join(", ")
        )
        .into());
    }
    eprintln!(
        "system packages: checked {} files after installing: all present",
        wanted.len()
    );
    Ok(())
}

fn missing_files(wanted: &[Need]) -> Vec<Need> {
    wanted
        .iter()
        .filter(|(file, _)| !Path::new(file).exists())
        .copied()
        .collect()
}

/// The distinct packages of `wanted`, in first-seen order.
fn packages(wanted: &[Need]) -> Vec<&'static str> {
    let mut all: Vec<&'static str> = Vec::new();
    for (_, package) in wanted {
        if !all.contains(package) {
            all.push(package);
        }
    }
    all
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// `package`, or `package=version` when the installed version is one that
/// no configured archive serves: then the archive's newest version, so
/// the whole set comes from one release.
fn request(sh: &Shell, package: &str) -> String {
    let policy = cmd!(sh, "apt-cache policy {package}")
        .quiet()
        .read()
        .unwrap_or_default();
    match hand_installed(&policy) {
        Some((installed, archive)) => {
            eprintln!(
                "system packages: {package} {installed} is not from the configured archives (installed by hand?); taking the archive's {archive} so it fits the rest"
            );
            format!("{package}={archive}")
        }
        None => package.to_string(),
    }
}

/// From `apt-cache policy` output: (installed version, the archive's
/// newest version) when the installed version is served only by
/// `/var/lib/dpkg/status`, apt would keep it (it is the candidate: newer
/// than anything the archives have) and some archive serves another one.
/// An old version the archive has moved past is upgraded by apt anyway.
fn hand_installed(policy: &str) -> Option<(String, String)> {
    let field = |name: &str| {
        policy
            .lines()
            .find_map(|l| l.trim().strip_prefix(name))
            .map(str::trim)
    };
    let installed = field("Installed:").filter(|v| *v != "(none)")?.to_string();
    if field("Candidate:") != Some(installed.as_str()) {
        return None;
    }
    // The version table: a version line ("*** 1:10.0 100" or "1:7.2 500")
    // followed by its sources ("500 http://... Packages").
    let mut sources: Vec<(String, Vec<String>)> = Vec::new();
    let mut in_table = false;
    for line in policy.lines() {
        let t = line.trim();
        if t.starts_with("Version table:") {
            in_table = true;
            continue;
        }
        if !in_table || t.is_empty() {
            continue;
        }
        let words: Vec<&str> = t.trim_start_matches("***").split_whitespace().collect();
        match words.as_slice() {
            [version, _priority] if !version.chars().all(|c| c.is_ascii_digit()) => {
                sources.push(((*version).to_string(), Vec::new()));
            }
            [_priority, origin, ..] => {
                if let Some((_, origins)) = sources.last_mut() {
                    origins.push((*origin).to_string());
                }
            }
            _ => {}
        }
    }
    let from_archive = |origins: &[String]| origins.iter().any(|o| o != "/var/lib/dpkg/status");
    let installed_served = sources
        .iter()
        .any(|(v, o)| *v == installed && from_archive(o));
    if installed_served {
        return None;
    }
    let newest = sources.iter().find(|(_, o)| from_archive(o))?;
    Some((installed, newest.0.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BACKPORTED_QEMU_IMG: &str = "qemu-utils:
  Installed: 1:10.0.2+ds-2+deb13u1~bpo12+1
  Candidate: 1:10.0.2+ds-2+deb13u1~bpo12+1
  Version table:
 *** 1:10.0.2+ds-2+deb13u1~bpo12+1 100
        100 /var/lib/dpkg/status
     1:7.2+dfsg-7+deb12u18+b3 500
        500 http://deb.debian.org/debian bookworm/main amd64 Packages
     1:7.2+dfsg-7+deb12u15 500
        500 http://deb.debian.org/debian-security bookworm-security/main amd64 Packages
";

    #[test]
    fn a_hand_installed_version_is_replaced_by_the_archive_newest() {
        assert_eq!(
            hand_installed(BACKPORTED_QEMU_IMG),
            Some((
                "1:10.0.2+ds-2+deb13u1~bpo12+1".into(),
                "1:7.2+dfsg-7+deb12u18+b3".into()
            ))
        );
    }

    #[test]
    fn an_archive_version_or_a_missing_package_is_asked_by_name() {
        let from_archive = "curl:
  Installed: 7.88.1-10+deb12u15
  Candidate: 7.88.1-10+deb12u15
  Version table:
 *** 7.88.1-10+deb12u15 500
        500 http://deb.debian.org/debian-security bookworm-security/main amd64 Packages
        100 /var/lib/dpkg/status
     7.88.1-10+deb12u14 500
        500 http://deb.debian.org/debian bookworm/main amd64 Packages
";
        assert_eq!(hand_installed(from_archive), None);
        let absent = "qemu-system-x86:
  Installed: (none)
  Candidate: 1:7.2+dfsg-7+deb12u18+b3
  Version table:
     1:7.2+dfsg-7+deb12u18+b3 500
        500 http://deb.debian.org/debian bookworm/main amd64 Packages
";
        assert_eq!(hand_installed(absent), None);
        // Installed by hand and no archive has any version: keep it.
        let only_local = "x:
  Installed: 1.0
  Candidate: 1.0
  Version table:
 *** 1.0 100
        100 /var/lib/dpkg/status
";
        assert_eq!(hand_installed(only_local), None);
        // An old version the archive no longer has: apt upgrades it.
        let outdated = "e2fsprogs:
  Installed: 1.47.0-2
  Candidate: 1.47.0-2+b2
  Version table:
     1.47.0-2+b2 500
        500 http://deb.debian.org/debian bookworm/main amd64 Packages
 *** 1.47.0-2 100
        100 /var/lib/dpkg/status
";
        assert_eq!(hand_installed(outdated), None);
    }

    #[test]
    fn the_whole_list_is_asked_once_per_package() {
        let all = packages(TEST_PACKAGES);
        assert_eq!(all.iter().filter(|p| **p == "e2fsprogs").count(), 1);
        assert!(all.contains(&"qemu-utils") && all.contains(&"qemu-system-x86"));
    }
}
