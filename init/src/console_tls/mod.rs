//! The web console's TLS certificate (lbd serves HTTPS on :5480): the
//! admin's own from `console.certificate` and `console.key`, else the
//! appliance's self-signed one ([`generate`]), copied where lbd reads it.
//!
//! ```text
//! console.certificate + console.key set?
//!   yes: check the pair (rustls)     bad: a problem with the fix, and ...
//!   no / bad: the kept pair on the data partition, or a new one
//! -> /run/lbd/console.crt, console.key (lbd's, 0600) -> [console] overlay
//! ```
//! There is always a console when a certificate can be made at all: a bad
//! admin pair falls back to the appliance's own, never to no console.
//! lbd runs as its own uid and cannot read the data partition's private
//! directories, hence the copy in its runtime directory.

pub mod check;
pub mod generate;

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use lbd_config::layer::ConsoleLayer;
use settings::value::NetworkMode;
use settings::Settings;

pub use check::Fingerprint;
use generate::Names;

/// Under the data partition's mount (a private directory, see
/// [`crate::data_partition::PRIVATE_DIRS`]).
pub const DATA_SUBDIR: &str = "tls";
/// Where lbd reads the pair in use.
pub const RUN_CERT: &str = "/run/lbd/console.crt";
pub const RUN_KEY: &str = "/run/lbd/console.key";

/// A certificate chain and its key, as PEM. `Debug` hides the key.
#[derive(Clone, PartialEq, Eq)]
pub struct Pair {
    pub cert_pem: String,
    key_pem: String,
}

impl Pair {
    pub fn new(cert_pem: String, key_pem: String) -> Self {
        Self { cert_pem, key_pem }
    }

    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }
}

impl fmt::Debug for Pair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pair")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"********")
            .finish()
    }
}

/// Whose certificate the console serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// `console.certificate` and `console.key`.
    Admin,
    /// Made by the appliance and kept on its data partition.
    SelfSigned,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Admin => "console.certificate",
            Self::SelfSigned => "self-signed",
        })
    }
}

/// The pair the console serves this boot.
#[derive(Debug, Clone)]
pub struct InUse {
    pub pair: Pair,
    pub fingerprint: Fingerprint,
    pub origin: Origin,
}

/// Where the files go: the data partition's directory for the kept pair,
/// and lbd's copies.
pub struct Paths {
    pub kept: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Paths {
    /// The appliance's: under `data_mount`, and in /run/lbd.
    pub fn appliance(data_mount: &Path) -> Self {
        Self {
            kept: generate::dir(data_mount),
            cert: PathBuf::from(RUN_CERT),
            key: PathBuf::from(RUN_KEY),
        }
    }

    /// The `[console]` overlay pointing lbd at the copies.
    pub fn layer(&self) -> ConsoleLayer {
        ConsoleLayer {
            cert: Some(self.cert.clone()),
            key: Some(self.key.clone()),
            ..ConsoleLayer::default()
        }
    }
}

/// The names a self-signed certificate is made for: the hostname and the
/// addresses the settings fix (a DHCP lease can change).
pub fn names(settings: &Settings) -> Names {
    let mut addresses: Vec<IpAddr> = Vec::new();
    if settings.network.mode == NetworkMode::Static {
        addresses.extend(settings.network.ipv4.map(|c| c.addr));
    }
    addresses.extend(settings.network.ipv6.map(|c| c.addr));
    Names {
        hostname: settings.hostname.clone(),
        addresses,
    }
}

/// The boot step: which pair, copied for lbd. Returns it (`None`: no
/// console this boot, said in the lines) and the lines for the console.
pub fn prepare(settings: &Settings, paths: &Paths, now_unix: i64) -> (Option<InUse>, Vec<String>) {
    let mut lines = Vec::new();
    let in_use = match admin_pair(settings) {
        Some(Ok(in_use)) => Some(in_use),
        found => {
            if let Some(Err(problem)) = found {
                lines.push(format!(
                    "init: error: {problem}; the web console uses the appliance's own \
                     self-signed certificate instead"
                ));
            }
            match generate::load_or_make(&paths.kept, &names(settings), now_unix) {
                Ok(loaded) => {
                    lines.extend(loaded.lines);
                    Some(InUse {
                        pair: loaded.pair,
                        fingerprint: loaded.fingerprint,
                        origin: Origin::SelfSigned,
                    })
                }
                Err(e) => {
                    lines.push(format!(
                        "init: error: web console: {e}; it is off this boot"
                    ));
                    None
                }
            }
        }
    };
    let in_use = in_use.and_then(|in_use| match copy_for_lbd(&in_use.pair, paths) {
        Ok(()) => Some(in_use),
        Err(e) => {
            lines.push(format!(
                "init: error: web console: {e}; it is off this boot"
            ));
            None
        }
    });
    (in_use, lines)
}

/// Whether the settings' `console.*` would be served (both or neither
/// set, and a matching pair): the store refuses a change that would not,
/// instead of a boot falling back to the self-signed certificate.
pub fn check_settings(settings: &Settings) -> Result<(), String> {
    admin_pair(settings).transpose().map(|_| ())
}

/// The admin's pair when one is set: `Err` says what is wrong and how to
/// fix it, naming the settings.
fn admin_pair(settings: &Settings) -> Option<Result<InUse, String>> {
    let console = &settings.console;
    let (cert, key) = match (&console.certificate, &console.key) {
        (None, None) => return None,
        (Some(cert), Some(key)) => (cert, key),
        (Some(_), None) => {
            return Some(Err(
                "console.certificate is set without console.key: set both \
                 (the key as unencrypted PEM), or neither"
                    .into(),
            ))
        }
        (None, Some(_)) => {
            return Some(Err(
                "console.key is set without console.certificate: set both, \
                 or neither"
                    .into(),
            ))
        }
    };
    Some(
        check::check_pair(cert, key.expose())
            .map(|fingerprint| InUse {
                pair: Pair::new(cert.clone(), key.expose().to_owned()),
                fingerprint,
                origin: Origin::Admin,
            })
            .map_err(|e| {
                format!(
                    "console.certificate and console.key not used: {e}; paste the server's \
                     certificate (then its chain) and the private key it was issued for, \
                     both PEM"
                )
            }),
    )
}

/// lbd's copies, 0600 and lbd's (it runs as its own uid).
fn copy_for_lbd(pair: &Pair, paths: &Paths) -> Result<(), String> {
    for (path, text) in [(&paths.key, pair.key_pem()), (&paths.cert, &pair.cert_pem)] {
        crate::lbd_files::write_private(path, text)
            .and_then(|()| crate::lbd_owner::hand_over(path))
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    Ok(())
}

/// The boot's line with what to check at the first connection: the URL
/// and the fingerprint, on one line so it is found whole in a log.
pub fn announce(in_use: &InUse, host: &str, port: u16) -> String {
    format!(
        "init: web console {} certificate ({}) SHA-256 {}",
        url(host, port),
        in_use.origin,
        in_use.fingerprint
    )
}

/// `https://host:port/`, an IPv6 address in brackets.
pub fn url(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("https://[{host}]:{port}/")
    } else {
        format!("https://{host}:{port}/")
    }
}

#[cfg(test)]
mod tests;
