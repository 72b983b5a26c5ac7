//! IPv6 stateless address autoconfiguration (SLAAC) per interface, through
//! `/proc/sys/net/ipv6/conf/<if>/{accept_ra,autoconf}`.
//!
//! On: `accept_ra=2`, which accepts router advertisements even when IPv6
//! forwarding is on (with `1` the kernel ignores RAs on a router), and
//! `autoconf=1`. Off: both `0`, so an RA on the segment neither adds an
//! address nor a default route.

use std::io;
use std::path::{Path, PathBuf};

/// A failed SLAAC switch, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum SlaacError {
    #[error("setting {} (is IPv6 enabled in this kernel?): {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
    #[error("interface name {name:?} cannot name a /proc/sys/net/ipv6/conf directory")]
    BadName { name: String },
}

impl SlaacError {
    /// The per-interface directory is missing: IPv6 is off in this kernel
    /// (`ipv6.disable=1`) or the interface went away.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Write { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }
}

/// The files and values that turn SLAAC on or off for `ifname`.
pub fn plan(
    proc_sys: &Path,
    ifname: &str,
    enabled: bool,
) -> Result<Vec<(PathBuf, &'static str)>, SlaacError> {
    if ifname.is_empty() || ifname.contains('/') || ifname == "." || ifname == ".." {
        return Err(SlaacError::BadName {
            name: ifname.to_owned(),
        });
    }
    let dir = proc_sys.join("net/ipv6/conf").join(ifname);
    let (accept_ra, autoconf) = if enabled { ("2", "1") } else { ("0", "0") };
    Ok(vec![
        (dir.join("accept_ra"), accept_ra),
        (dir.join("autoconf"), autoconf),
    ])
}

/// Writes the switches; the first failure stops (the second file is in the
/// same directory and fails the same way).
pub fn set(proc_sys: &Path, ifname: &str, enabled: bool) -> Result<(), SlaacError> {
    for (path, value) in plan(proc_sys, ifname, enabled)? {
        std::fs::write(&path, value).map_err(|source| SlaacError::Write { path, source })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_and_off_write_both_switches() {
        let dir = std::env::temp_dir().join(format!("slaac-test-{}", std::process::id()));
        let conf = dir.join("net/ipv6/conf/eth0");
        std::fs::create_dir_all(&conf).expect("temp dir");
        set(&dir, "eth0", true).expect("write");
        assert_eq!(
            std::fs::read_to_string(conf.join("accept_ra"))
                .ok()
                .as_deref(),
            Some("2")
        );
        assert_eq!(
            std::fs::read_to_string(conf.join("autoconf"))
                .ok()
                .as_deref(),
            Some("1")
        );
        set(&dir, "eth0", false).expect("write");
        assert_eq!(
            std::fs::read_to_string(conf.join("accept_ra"))
                .ok()
                .as_deref(),
            Some("0")
        );
        assert!(matches!(
            set(&dir, "eth1", true),
            Err(SlaacError::Write { .. })
        ));
        assert!(matches!(
            set(&dir, "../x", true),
            Err(SlaacError::BadName { .. })
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
