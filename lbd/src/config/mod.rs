//! lbd's configuration: the [`lbd_config`] crate (schema, layering with
//! file:line errors, validation, effective config), shared with init and
//! the other programs that read or write lbd's files, plus the one check
//! only lbd can make: that a frontend's TLS files form a certificate and
//! key its TLS stack (rustls) accepts.

// The crate's modules and items, so `crate::config::Backend`,
// `crate::config::validate::warnings` and the like read as before; the
// loaders below take the place of the crate's own.
pub use lbd_config::*;

use std::path::PathBuf;

/// lbd's checks on top of the crate's.
const CHECKS: Checks = Checks {
    tls: Some(tls_accepted),
};

fn tls_accepted(tls: &TlsFiles) -> Result<(), String> {
    crate::proxy::tls_server::server_config(tls)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Reads, layers, deserializes and validates `paths` in order, TLS files
/// included (see [`lbd_config::load_files`]).
pub fn load_files(paths: &[PathBuf]) -> Result<Config, ConfigErrors> {
    lbd_config::load_files_checked(paths, &CHECKS)
}

/// Like [`load_files`] with the texts already read.
pub fn load_texts(files: Vec<(PathBuf, String)>) -> Result<Config, ConfigErrors> {
    lbd_config::load_texts_checked(files, &CHECKS)
}
