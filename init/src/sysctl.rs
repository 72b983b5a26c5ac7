//! Kernel settings (sysctls): the appliance defaults, hardening and overrides.
//!
//! [`plan`] is the pure list, in order: what the load balancer needs
//! (binding to virtual IPs the node does not hold yet), then
//! the hardening set, then the admin's `sysctl.*` settings, which win
//! because they come last. [`apply`] writes each one under a `/proc/sys`
//! root it is given (tests pass a temp dir) and reports every failure by
//! name while still applying the rest.
//!
//! Per-interface keys (`net.ipv4.conf.all.*`) are also written for every
//! interface that exists already: the kernel copies `default` only into
//! interfaces created later, and for some keys (`send_redirects`) it ORs
//! `all` with the interface's own value.
//!
//! rp_filter: strict (1). The appliance configures one NIC with symmetric
//! routes, VRRP adverts come from the peer's own address on the same
//! segment, and traffic to a virtual IP arrives on the NIC whose route
//! leads back to the client, so strict reverse-path checks drop only
//! spoofed packets. A multi-NIC deployment with asymmetric routes sets
//! `sysctl.net.ipv4.conf.all.rp_filter=2` (loose); the kernel uses the
//! larger of `all` and the interface's value, so that one key loosens every
//! interface.

use std::io;
use std::path::{Path, PathBuf};

/// Where sysctls live.
pub const PROC_SYS: &str = "/proc/sys";

/// Why a sysctl is in the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Needed by the load balancer.
    Appliance,
    /// Hardening default.
    Hardening,
    /// From the `sysctl` setting.
    Setting,
}

/// One sysctl to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sysctl {
    /// Dotted name, `net.ipv4.ip_nonlocal_bind`.
    pub name: String,
    /// Value as written to the file.
    pub value: String,
    /// Why.
    pub origin: Origin,
    /// A key some kernels lack (Yama): missing is not an error.
    pub optional: bool,
}

/// A sysctl that could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum SysctlError {
    #[error("sysctl {name}: no such key in this kernel (check the name, or the module that provides it)")]
    Missing { name: String },
    #[error("sysctl {name}={value}: not permitted (the kernel refuses this value or this key is read-only)")]
    Permission { name: String, value: String },
    #[error("sysctl {name}={value}: the kernel rejected the value: {source}")]
    BadValue {
        name: String,
        value: String,
        source: io::Error,
    },
    #[error("sysctl {name:?}: not a valid name (use dotted names like net.core.somaxconn)")]
    BadName { name: String },
    #[error("sysctl {name}: writing {}: {source}", path.display())]
    Write {
        name: String,
        path: PathBuf,
        source: io::Error,
    },
}

/// What [`apply`] did.
#[derive(Debug, Default)]
pub struct SysctlReport {
    /// `name=value` applied, in order.
    pub applied: Vec<String>,
    /// Optional keys this kernel lacks.
    pub absent: Vec<String>,
    /// Failures, by name.
    pub failed: Vec<SysctlError>,
}

impl SysctlReport {
    /// Console lines: a count of what applied, then each failure by name.
    pub fn lines(&self) -> Vec<String> {
        let mut out = vec![format!("sysctl: applied {} settings", self.applied.len())];
        if !self.absent.is_empty() {
            out.push(format!(
                "sysctl: not in this kernel (optional): {}",
                self.absent.join(", ")
            ));
        }
        out.extend(self.failed.iter().map(|e| format!("sysctl: error: {e}")));
        out
    }
}

/// Settings the load balancer needs: bind listeners to virtual IPs before
/// VRRP moves them here. No `ip_forward`: a proxy terminates every
/// connection itself and never routes packets between its networks; a
/// forwarding node would route whatever is sent to it.
const APPLIANCE: &[(&str, &str)] = &[
    ("net.ipv4.ip_nonlocal_bind", "1"),
    ("net.ipv6.ip_nonlocal_bind", "1"),
];

/// Per-interface hardening, written for `all`, `default` and every
/// existing interface: family, key, value.
const PER_INTERFACE: &[(&str, &str, &str)] = &[
    ("ipv4", "rp_filter", "1"),
    ("ipv4", "accept_redirects", "0"),
    ("ipv4", "secure_redirects", "0"),
    ("ipv4", "send_redirects", "0"),
    ("ipv4", "accept_source_route", "0"),
    ("ipv6", "accept_redirects", "0"),
    ("ipv6", "accept_source_route", "0"),
];

/// Global hardening: name, value, optional.
const HARDENING: &[(&str, &str, bool)] = &[
    ("net.ipv4.tcp_syncookies", "1", false),
    ("net.ipv4.icmp_echo_ignore_broadcasts", "1", false),
    ("kernel.kptr_restrict", "2", false),
    ("kernel.dmesg_restrict", "1", false),
    ("kernel.unprivileged_bpf_disabled", "1", false),
    ("net.core.bpf_jit_harden", "2", true),
    ("kernel.yama.ptrace_scope", "1", true),
    ("fs.protected_hardlinks", "1", false),
    ("fs.protected_symlinks", "1", false),
    ("fs.protected_fifos", "2", false),
    ("fs.protected_regular", "2", false),
];

/// The full list: appliance, hardening for `all`, `default` and each of
/// `interfaces` (per family), then `overrides` from the settings.
pub fn plan(
    ipv4_interfaces: &[String],
    ipv6_interfaces: &[String],
    overrides: &[(String, String)],
) -> Vec<Sysctl> {
    let entry = |name: String, value: &str, origin, optional| Sysctl {
        name,
        value: value.to_owned(),
        origin,
        optional,
    };
    let mut out: Vec<Sysctl> = APPLIANCE
        .iter()
        .map(|(n, v)| entry((*n).to_owned(), v, Origin::Appliance, false))
        .collect();
    for (family, key, value) in PER_INTERFACE {
        let existing = if *family == "ipv4" {
            ipv4_interfaces
        } else {
            ipv6_interfaces
        };
        let mut names = vec!["all", "default"];
        names.extend(
            existing
                .iter()
                .map(String::as_str)
                .filter(|n| !matches!(*n, "all" | "default")),
        );
        for ifname in names {
            // Interfaces appear and go; a missing one is not an error.
            let optional = !matches!(ifname, "all" | "default");
            out.push(entry(
                format!("net.{family}.conf.{ifname}.{key}"),
                value,
                Origin::Hardening,
                optional,
            ));
        }
    }
    out.extend(
        HARDENING
            .iter()
            .map(|(n, v, opt)| entry((*n).to_owned(), v, Origin::Hardening, *opt)),
    );
    out.extend(
        overrides
            .iter()
            .map(|(n, v)| entry(n.clone(), v, Origin::Setting, false)),
    );
    out
}

/// The file of a dotted name under `root`, or `None` for a name that could
/// leave the tree.
pub fn path_of(root: &Path, name: &str) -> Option<PathBuf> {
    let parts: Vec<&str> = name.split('.').collect();
    let ok = !name.is_empty()
        && parts
            .iter()
            .all(|p| !p.is_empty() && !p.contains('/') && !p.contains('\0'));
    ok.then(|| {
        parts
            .iter()
            .fold(root.to_path_buf(), |p, part| p.join(part))
    })
}

/// Interface directories under `root/net/<family>/conf`, sorted.
pub fn interfaces(root: &Path, family: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root.join("net").join(family).join("conf"))
        .map(|dir| {
            dir.filter_map(Result::ok)
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| !matches!(n.as_str(), "all" | "default"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Writes every entry; a failure is recorded and the rest still applies.
pub fn apply(root: &Path, list: &[Sysctl]) -> SysctlReport {
    let mut report = SysctlReport::default();
    for s in list {
        match write_one(root, s) {
            Ok(()) => report.applied.push(format!("{}={}", s.name, s.value)),
            Err(SysctlError::Missing { name }) if s.optional => report.absent.push(name),
            Err(e) => report.failed.push(e),
        }
    }
    report
}

/// Boot's one call: the plan for the interfaces present, applied to
/// `/proc/sys`.
pub fn apply_all(overrides: &[(String, String)]) -> SysctlReport {
    let root = Path::new(PROC_SYS);
    let list = plan(
        &interfaces(root, "ipv4"),
        &interfaces(root, "ipv6"),
        overrides,
    );
    apply(root, &list)
}

fn write_one(root: &Path, s: &Sysctl) -> Result<(), SysctlError> {
    let path = path_of(root, &s.name).ok_or_else(|| SysctlError::BadName {
        name: s.name.clone(),
    })?;
    if !path.is_file() {
        return Err(SysctlError::Missing {
            name: s.name.clone(),
        });
    }
    // O_WRONLY without O_CREAT or O_TRUNC: /proc/sys files are written
    // whole in one write(2); truncation is meaningless there.
    let result = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|mut f| io::Write::write_all(&mut f, s.value.as_bytes()));
    result.map_err(|source| match source.raw_os_error() {
        Some(libc::EPERM | libc::EACCES) => SysctlError::Permission {
            name: s.name.clone(),
            value: s.value.clone(),
        },
        Some(libc::EINVAL | libc::ERANGE) => SysctlError::BadValue {
            name: s.name.clone(),
            value: s.value.clone(),
            source,
        },
        _ => SysctlError::Write {
            name: s.name.clone(),
            path,
            source,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_root(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("sysctl-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    fn touch(root: &Path, name: &str) {
        let path = path_of(root, name).expect("valid name");
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("dirs");
        }
        std::fs::write(path, "0").expect("file");
    }

    #[test]
    fn plan_orders_appliance_hardening_then_settings() {
        let overrides = vec![("net.ipv4.conf.all.rp_filter".to_owned(), "2".to_owned())];
        let list = plan(&["eth0".to_owned()], &[], &overrides);
        assert_eq!(list[0].name, "net.ipv4.ip_nonlocal_bind");
        assert_eq!(list[0].value, "1");
        let names: Vec<&str> = list.iter().map(|s| s.name.as_str()).collect();
        assert!(names.contains(&"net.ipv4.conf.eth0.send_redirects"));
        assert!(names.contains(&"net.ipv4.conf.default.rp_filter"));
        assert!(!names.contains(&"net.ipv6.conf.eth0.accept_redirects"));
        let last = list.last().expect("non-empty");
        assert_eq!(
            (last.name.as_str(), last.value.as_str(), last.origin),
            ("net.ipv4.conf.all.rp_filter", "2", Origin::Setting)
        );
    }

    #[test]
    fn apply_writes_and_reports_each_failure_by_name() {
        let root = temp_root("apply");
        touch(&root, "net.ipv4.ip_forward");
        touch(&root, "net.core.somaxconn");
        let list = vec![
            Sysctl {
                name: "net.ipv4.ip_forward".into(),
                value: "1".into(),
                origin: Origin::Appliance,
                optional: false,
            },
            Sysctl {
                name: "kernel.yama.ptrace_scope".into(),
                value: "1".into(),
                origin: Origin::Hardening,
                optional: true,
            },
            Sysctl {
                name: "net.bogus.key".into(),
                value: "1".into(),
                origin: Origin::Setting,
                optional: false,
            },
            Sysctl {
                name: "net..x".into(),
                value: "1".into(),
                origin: Origin::Setting,
                optional: false,
            },
            Sysctl {
                name: "net.core.somaxconn".into(),
                value: "4096".into(),
                origin: Origin::Setting,
                optional: false,
            },
        ];
        let report = apply(&root, &list);
        assert_eq!(
            report.applied,
            vec!["net.ipv4.ip_forward=1", "net.core.somaxconn=4096"]
        );
        assert_eq!(report.absent, vec!["kernel.yama.ptrace_scope"]);
        let lines = report.lines();
        assert_eq!(lines[0], "sysctl: applied 2 settings");
        assert!(
            lines[2].starts_with("sysctl: error: sysctl net.bogus.key"),
            "{lines:?}"
        );
        let failed: Vec<String> = report.failed.iter().map(ToString::to_string).collect();
        assert_eq!(failed.len(), 2, "{failed:?}");
        assert!(
            failed[0].starts_with("sysctl net.bogus.key: no such key"),
            "{failed:?}"
        );
        assert!(failed[1].contains("not a valid name"), "{failed:?}");
        assert_eq!(
            std::fs::read_to_string(root.join("net/core/somaxconn"))
                .ok()
                .as_deref(),
            Some("4096")
        );
        let _ = std::fs::remove_dir_all(&root);
    }

    /// Input: the plan with no overrides. Output: no ip_forward (a proxy
    /// terminates connections and never routes between its networks; a
    /// forwarding node would route anything sent to it).
    #[test]
    fn default_plan_does_not_forward() {
        let list = plan(&["eth0".to_owned()], &["eth0".to_owned()], &[]);
        let forwarding: Vec<&str> = list
            .iter()
            .map(|s| s.name.as_str())
            .filter(|n| n.contains("forwarding") || n.ends_with("ip_forward"))
            .collect();
        assert!(forwarding.is_empty(), "{forwarding:?}");
        assert_eq!(list[0].name, "net.ipv4.ip_nonlocal_bind");
    }

    #[test]
    fn names_cannot_leave_the_tree() {
        let root = Path::new("/proc/sys");
        assert_eq!(
            path_of(root, "net.ipv4.ip_forward"),
            Some(PathBuf::from("/proc/sys/net/ipv4/ip_forward"))
        );
        assert_eq!(path_of(root, "net/../../etc"), None);
        assert_eq!(path_of(root, ".net"), None);
        assert_eq!(path_of(root, ""), None);
    }

    #[test]
    fn interfaces_lists_conf_dirs() {
        let root = temp_root("ifaces");
        for n in ["all", "default", "lo", "eth0"] {
            std::fs::create_dir_all(root.join("net/ipv4/conf").join(n)).expect("dir");
        }
        assert_eq!(interfaces(&root, "ipv4"), vec!["eth0", "lo"]);
        assert!(interfaces(&root, "ipv6").is_empty());
        let _ = std::fs::remove_dir_all(&root);
    }
}
