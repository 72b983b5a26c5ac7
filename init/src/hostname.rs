//! The hostname, from the kernel command line (`appliance.hostname=`) or the
//! baked settings, else a fixed default.

use rootfs::paths::BAKED_SETTINGS;

pub const DEFAULT_HOSTNAME: &str = "lb-appliance";

/// Picks the hostname: kernel command line over baked settings over default.
pub fn choose(cmdline: &str, baked_toml: &str) -> (String, &'static str) {
    if let Some(h) = cmdline
        .split_whitespace()
        .find_map(|w| w.strip_prefix("appliance.hostname="))
    {
        if valid(h) {
            return (h.to_string(), "kernel command line");
        }
    }
    let baked = toml::from_str::<toml::Table>(baked_toml)
        .ok()
        .and_then(|t| {
            t.get("settings")?
                .get("hostname")?
                .as_str()
                .map(str::to_string)
        });
    match baked {
        Some(h) if valid(&h) => (h, BAKED_SETTINGS),
        _ => (DEFAULT_HOSTNAME.to_string(), "default"),
    }
}

/// RFC 1123 host name: labels of letters, digits and '-', not starting or
/// ending with '-', at most 63 bytes each and 253 in all.
pub fn valid(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_and_validation() {
        let baked = "[settings]\nhostname = \"lb1\"\n";
        assert_eq!(choose("quiet", baked).0, "lb1");
        assert_eq!(choose("appliance.hostname=lb2 quiet", baked).0, "lb2");
        assert_eq!(choose("appliance.hostname=-bad", baked).0, "lb1");
        assert_eq!(choose("", "not toml [").0, DEFAULT_HOSTNAME);
        assert!(!valid("a_b"));
        assert!(valid("lb-1.example.com"));
    }
}
