//! `/etc/resolv.conf` and `/etc/hosts`: pure renderers and one atomic
//! write helper.
//!
//! Resolvers: the settings' `network.dns` first (the admin's explicit
//! choice), then those from the DHCP lease, without duplicates. glibc reads
//! at most three `nameserver` lines (MAXNS); the rest are written as
//! comments so the console and the file agree on what was dropped.

use std::io::{self, Write as _};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// The resolver configuration file.
pub const RESOLV_CONF: &str = "/etc/resolv.conf";
/// The static host table.
pub const HOSTS: &str = "/etc/hosts";
/// Nameservers glibc's resolver reads (`MAXNS`).
pub const MAX_NAMESERVERS: usize = 3;

/// A failed write, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum ResolvError {
    #[error("writing {} (is /etc writable?): {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
}

/// Settings resolvers first, then the lease's, each once.
pub fn merge_resolvers(settings: &[IpAddr], lease: &[IpAddr]) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = Vec::new();
    for ip in settings.iter().chain(lease) {
        if !out.contains(ip) {
            out.push(*ip);
        }
    }
    out
}

/// The text of `/etc/resolv.conf`.
pub fn render_resolv_conf(nameservers: &[IpAddr], search: &[String]) -> String {
    let mut out = String::from("# Written by init from the appliance settings and DHCP.\n");
    let search: Vec<&str> = search
        .iter()
        .map(|s| s.trim().trim_end_matches('.'))
        .filter(|s| !s.is_empty() && !s.contains(char::is_whitespace))
        .collect();
    if !search.is_empty() {
        out.push_str(&format!("search {}\n", search.join(" ")));
    }
    for (i, ip) in nameservers.iter().enumerate() {
        if i < MAX_NAMESERVERS {
            out.push_str(&format!("nameserver {ip}\n"));
        } else {
            out.push_str(&format!(
                "# nameserver {ip} (glibc reads only {MAX_NAMESERVERS})\n"
            ));
        }
    }
    out
}

/// The text of `/etc/hosts`: loopback names, and the hostname on the
/// primary address when there is one (else on 127.0.1.1, as Debian does,
/// so the name always resolves without DNS).
pub fn render_hosts(hostname: &str, address: Option<IpAddr>) -> String {
    let short = hostname.split('.').next().unwrap_or(hostname);
    let names = if short == hostname {
        hostname.to_owned()
    } else {
        format!("{hostname} {short}")
    };
    let own = address.map_or_else(|| "127.0.1.1".to_owned(), |a| a.to_string());
    format!(
        "# Written by init from the appliance settings.\n\
         127.0.0.1\tlocalhost\n\
         ::1\tlocalhost ip6-localhost ip6-loopback\n\
         {own}\t{names}\n"
    )
}

/// Writes `text` to `path` atomically: a temp file beside it, fsync, then
/// rename, so a reader never sees half a file.
pub fn write_atomic(path: &Path, text: &str) -> Result<(), ResolvError> {
    let err = |source| ResolvError::Write {
        path: path.to_owned(),
        source,
    };
    let name = path
        .file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    let mut file = std::fs::File::create(&tmp).map_err(err)?;
    file.write_all(text.as_bytes()).map_err(err)?;
    file.sync_all().map_err(err)?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    #[test]
    fn resolv_conf_caps_at_three_and_keeps_order() {
        let all = merge_resolvers(
            &[ip("192.0.2.53"), ip("2001:db8::53")],
            &[ip("192.0.2.53"), ip("198.51.100.1"), ip("198.51.100.2")],
        );
        assert_eq!(
            render_resolv_conf(&all, &["example.com.".to_owned(), "bad name".to_owned()]),
            "# Written by init from the appliance settings and DHCP.\n\
             search example.com\n\
             nameserver 192.0.2.53\n\
             nameserver 2001:db8::53\n\
             nameserver 198.51.100.1\n\
             # nameserver 198.51.100.2 (glibc reads only 3)\n"
        );
    }

    #[test]
    fn hosts_names_the_primary_address() {
        assert_eq!(
            render_hosts("lb1.example.com", Some(ip("192.0.2.10"))),
            "# Written by init from the appliance settings.\n\
             127.0.0.1\tlocalhost\n\
             ::1\tlocalhost ip6-localhost ip6-loopback\n\
             192.0.2.10\tlb1.example.com lb1\n"
        );
        assert!(render_hosts("lb1", None).ends_with("127.0.1.1\tlb1\n"));
    }

    #[test]
    fn write_replaces_the_file() {
        let dir = std::env::temp_dir().join(format!("resolv-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("resolv.conf");
        write_atomic(&path, "one\n").expect("first write");
        write_atomic(&path, "two\n").expect("second write");
        assert_eq!(
            std::fs::read_to_string(&path).ok().as_deref(),
            Some("two\n")
        );
        assert!(write_atomic(&dir.join("missing/resolv.conf"), "x").is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
