//! The console's certificate: loaded at start (a bad one stops `lbd run`
//! with the keys to fix), again at each reload (a bad one rejects the
//! reload), and swapped in for new connections; open ones keep theirs.

use std::sync::Arc;

use rustls::ServerConfig;
use tokio::sync::watch;

use crate::config::{Console, TlsFiles};
use crate::proxy::tls_server::{server_config, TlsError};

/// The certificate and key of `[console]` do not make a TLS server.
#[derive(Debug, thiserror::Error)]
#[error(
    "console.cert / console.key: {source}; fix: point console.cert at a PEM \
     certificate chain (leaf first) and console.key at its PEM private key, \
     or remove [console]"
)]
pub struct ConsoleTlsError {
    #[source]
    pub source: TlsError,
}

/// Reads `console.cert` and `console.key` (TLS 1.2 and 1.3, ring, ALPN
/// http/1.1: the same stack as the frontends).
pub fn load(console: &Console) -> Result<Arc<ServerConfig>, ConsoleTlsError> {
    server_config(&TlsFiles {
        cert: console.cert.clone(),
        key: console.key.clone(),
    })
    .map_err(|source| ConsoleTlsError { source })
}

/// Where the accept loop takes the current certificate from.
#[derive(Debug, Clone)]
pub struct TlsHandle {
    tx: Arc<watch::Sender<Arc<ServerConfig>>>,
}

impl TlsHandle {
    pub fn new(config: Arc<ServerConfig>) -> Self {
        Self {
            tx: Arc::new(watch::channel(config).0),
        }
    }

    /// New connections from now on use `config`.
    pub fn replace(&self, config: Arc<ServerConfig>) {
        self.tx.send_replace(config);
        tracing::info!("console certificate reloaded");
    }

    pub fn current(&self) -> Arc<ServerConfig> {
        self.tx.borrow().clone()
    }
}
