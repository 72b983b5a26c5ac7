//! TLS termination for mode http frontends: rustls (ring provider) with the
//! certificate chain and key read from PEM files.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;

use crate::config::TlsFiles;

/// Errors loading certificate and key.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading certificates from {}: {message} (expected PEM `BEGIN CERTIFICATE` blocks, leaf first)", path.display())]
    Cert { path: PathBuf, message: String },
    #[error("reading private key from {}: {message} (expected a PEM PKCS#8, PKCS#1 or SEC1 key)", path.display())]
    Key { path: PathBuf, message: String },
    #[error("certificate {} and key {} do not form a valid TLS config: {message}", cert.display(), key.display())]
    Config {
        cert: PathBuf,
        key: PathBuf,
        message: String,
    },
}

/// Builds a server config from PEM files; ALPN offers http/1.1.
pub fn server_config(files: &TlsFiles) -> Result<Arc<ServerConfig>, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError::Cert {
            path: files.cert.clone(),
            message: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Cert {
            path: files.cert.clone(),
            message: "no certificate found".into(),
        });
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| TlsError::Key {
        path: files.key.clone(),
        message: e.to_string(),
    })?;
    let config_err = |message: String| TlsError::Config {
        cert: files.cert.clone(),
        key: files.key.clone(),
        message,
    };
    let mut config = ServerConfig::builder_with_provider(crate::check::tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| config_err(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| config_err(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
