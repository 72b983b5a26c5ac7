//! The appliance's own certificate for the web console: made on first
//! boot, kept on the data partition, reused while it still fits.
//!
//! ```text
//! <dir>/console.crt        the certificate (PEM)
//! <dir>/console.key        its key (PEM, PKCS#8), 0600
//! <dir>/console.made.toml  the names it was made for and its notAfter
//! ```
//! Reused as long as the pair loads and matches, was made for the same
//! hostname and static addresses, and has not expired: the fingerprint an
//! admin checked once stays the same across reboots. Anything else makes
//! a new pair, and the console says why.

use std::net::IpAddr;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, KeyPair,
    KeyUsagePurpose, SanType, PKCS_ECDSA_P256_SHA256,
};
use serde::{Deserialize, Serialize};

use super::check::{check_pair, Fingerprint};
use super::Pair;
use crate::lbd_files::write_private;

pub const CERT_FILE: &str = "console.crt";
pub const KEY_FILE: &str = "console.key";
pub const MADE_FILE: &str = "console.made.toml";

/// Valid for ten years (3652 days, leap days included): a self-signed
/// certificate is trusted by its fingerprint, not by its dates.
const VALIDITY_S: i64 = 3652 * 86_400;
/// notBefore is a day before now: a browser whose clock is a little
/// behind the appliance's must not see a certificate from the future.
const BACKDATE_S: i64 = 86_400;
/// A clock before this (2025-01-01) has not been set (a VM without a host
/// clock, before NTP): a certificate dated from it would be expired or
/// not yet valid for years, so it is dated from here instead.
const CLOCK_FLOOR_S: i64 = 1_735_689_600;

/// What a certificate is made for: its CN and DNS SAN, and IP SANs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Names {
    pub hostname: String,
    /// The node's static addresses (a DHCP address can change).
    pub addresses: Vec<IpAddr>,
}

/// The sidecar: what the kept pair was made for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Made {
    names: Names,
    not_after_unix: i64,
}

/// The pair from `dir`, or a new one; lines for the console say which.
pub struct Loaded {
    pub pair: Pair,
    pub fingerprint: Fingerprint,
    pub lines: Vec<String>,
}

/// The kept pair if it still fits `names` at `now_unix`, else a new one
/// written to `dir`. `Err` only when no pair can be made at all; a new
/// pair that cannot be kept is still used (and made again next boot).
pub fn load_or_make(dir: &Path, names: &Names, now_unix: i64) -> Result<Loaded, String> {
    let mut lines = Vec::new();
    match load(dir, names, now_unix) {
        Ok(Some((pair, fingerprint))) => {
            return Ok(Loaded {
                pair,
                fingerprint,
                lines,
            })
        }
        Ok(None) => {}
        Err(why) => lines.push(format!(
            "init: warning: the web console's certificate in {}: {why}; making a new one \
             (its fingerprint changes)",
            dir.display()
        )),
    }
    let (pair, not_after_unix) =
        make(names, now_unix).map_err(|e| format!("making a certificate: {e}"))?;
    let fingerprint = check_pair(&pair.cert_pem, pair.key_pem())
        .map_err(|e| format!("the certificate just made: {e}"))?;
    lines.push(format!(
        "init: made the web console's certificate (ECDSA P-256, self-signed, for {}, \
         valid 10 years)",
        describe(names)
    ));
    let made = Made {
        names: names.clone(),
        not_after_unix,
    };
    if let Err(e) = keep(dir, &pair, &made) {
        lines.push(format!(
            "init: warning: the web console's certificate is not kept in {} ({e}): a new \
             one (another fingerprint) is made at the next boot",
            dir.display()
        ));
    }
    Ok(Loaded {
        pair,
        fingerprint,
        lines,
    })
}

fn describe(names: &Names) -> String {
    let mut all = vec![names.hostname.clone()];
    all.extend(names.addresses.iter().map(ToString::to_string));
    all.join(", ")
}

/// `Ok(None)`: nothing kept yet (first boot). `Err`: kept but unusable.
fn load(dir: &Path, names: &Names, now_unix: i64) -> Result<Option<(Pair, Fingerprint)>, String> {
    let path = |f: &str| dir.join(f);
    let read = |f: &str| {
        std::fs::read_to_string(path(f)).map_err(|e| format!("{}: {e}", path(f).display()))
    };
    if !path(CERT_FILE).exists() && !path(KEY_FILE).exists() {
        return Ok(None);
    }
    let pair = Pair::new(read(CERT_FILE)?, read(KEY_FILE)?);
    let fingerprint = check_pair(&pair.cert_pem, pair.key_pem()).map_err(|e| e.to_string())?;
    let made: Made = toml::from_str(&read(MADE_FILE)?)
        .map_err(|e| format!("{}: {}", path(MADE_FILE).display(), e.message()))?;
    if made.names != *names {
        return Err(format!(
            "it was made for {}, this node is now {}",
            describe(&made.names),
            describe(names)
        ));
    }
    if made.not_after_unix <= now_unix {
        return Err("it has expired".into());
    }
    Ok(Some((pair, fingerprint)))
}

/// A new pair for `names`, dated from `now_unix`; also its notAfter.
pub fn make(names: &Names, now_unix: i64) -> Result<(Pair, i64), rcgen::Error> {
    let not_before_unix = now_unix.max(CLOCK_FLOOR_S) - BACKDATE_S;
    let not_after_unix = not_before_unix + VALIDITY_S;
    let date =
        |unix| time::OffsetDateTime::from_unix_timestamp(unix).map_err(|_| rcgen::Error::Time);
    let mut params = CertificateParams::new(vec![names.hostname.clone()])?;
    params
        .subject_alt_names
        .extend(names.addresses.iter().copied().map(SanType::IpAddress));
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, names.hostname.clone());
    params.distinguished_name = dn;
    params.not_before = date(not_before_unix)?;
    params.not_after = date(not_after_unix)?;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let cert = params.self_signed(&key)?;
    Ok((Pair::new(cert.pem(), key.serialize_pem()), not_after_unix))
}

/// Writes the pair and its sidecar; the key (and the rest) 0600 through a
/// rename, so a power cut leaves the old pair or the new, never half.
/// The sidecar goes last: without it the pair is made again.
fn keep(dir: &Path, pair: &Pair, made: &Made) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(crate::data_partition::PRIVATE_DIR_MODE)
        .create(dir)?;
    let _ = std::fs::remove_file(dir.join(MADE_FILE));
    write_private(&dir.join(KEY_FILE), pair.key_pem())?;
    write_private(&dir.join(CERT_FILE), &pair.cert_pem)?;
    let text = toml::to_string(made).map_err(std::io::Error::other)?;
    write_private(&dir.join(MADE_FILE), &text)
}

/// Where the kept pair lives under the data partition's mount.
pub fn dir(data_mount: &Path) -> PathBuf {
    data_mount.join(super::DATA_SUBDIR)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// 2026-12-03, a fixed clock.
    const NOW: i64 = 1_796_256_000;

    fn names() -> Names {
        Names {
            hostname: "lb1.example.com".into(),
            addresses: vec!["192.0.2.10".parse().unwrap()],
        }
    }

    /// Input: an empty data directory, then a second boot on it.
    /// Output: the first makes a pair (key 0600) and says so; the second
    /// keeps it: same fingerprint, nothing said.
    #[test]
    fn made_once_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_make(dir.path(), &names(), NOW).unwrap();
        assert_eq!(first.lines.len(), 1, "{:?}", first.lines);
        assert!(first.lines[0].contains("made the web console's certificate"));
        assert!(first.lines[0].contains("lb1.example.com, 192.0.2.10"));
        let mode = std::fs::metadata(dir.path().join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let second = load_or_make(dir.path(), &names(), NOW + 86_400).unwrap();
        assert_eq!(second.fingerprint, first.fingerprint);
        assert!(second.lines.is_empty(), "{:?}", second.lines);
    }

    /// Input: a kept pair whose key file was damaged. Output: a new pair
    /// (a new fingerprint), a warning naming the directory, and the new
    /// pair kept for the next boot.
    #[test]
    fn a_corrupt_pair_is_replaced_and_said_so() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_make(dir.path(), &names(), NOW).unwrap();
        std::fs::write(
            dir.path().join(KEY_FILE),
            "-----BEGIN PRIVATE KEY-----\nAAAA",
        )
        .unwrap();
        let second = load_or_make(dir.path(), &names(), NOW).unwrap();
        assert_ne!(second.fingerprint, first.fingerprint);
        assert!(
            second.lines[0].contains("warning") && second.lines[0].contains("making a new one"),
            "{:?}",
            second.lines
        );
        let third = load_or_make(dir.path(), &names(), NOW).unwrap();
        assert_eq!(third.fingerprint, second.fingerprint);
    }

    /// Input: a new hostname, then a clock past notAfter.
    /// Output: each makes a new pair, saying why.
    #[test]
    fn new_names_or_expiry_make_a_new_pair() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_make(dir.path(), &names(), NOW).unwrap();
        let renamed = Names {
            hostname: "lb2".into(),
            ..names()
        };
        let second = load_or_make(dir.path(), &renamed, NOW).unwrap();
        assert_ne!(second.fingerprint, first.fingerprint);
        assert!(
            second.lines[0].contains("this node is now lb2"),
            "{:?}",
            second.lines
        );
        let later = NOW + VALIDITY_S + 1;
        let third = load_or_make(dir.path(), &renamed, later).unwrap();
        assert!(third.lines[0].contains("expired"), "{:?}", third.lines);
    }

    /// Input: a clock at 1970 (never set). Output: the certificate is
    /// dated from the floor, so it is valid once the clock is right.
    #[test]
    fn an_unset_clock_dates_from_the_floor() {
        let (_, not_after) = make(&names(), 0).unwrap();
        assert_eq!(not_after, CLOCK_FLOOR_S - BACKDATE_S + VALIDITY_S);
    }
}
