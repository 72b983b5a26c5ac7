//! rustls client config for health checks. Certificates are not verified:
//! the check asks "does this server speak TLS / answer HTTP", and backend
//! servers commonly use internal or self-signed certificates.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};

/// Accepts any certificate but still checks handshake signatures.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The ring provider (pure Rust + asm; no cmake, static-friendly).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Client config for checks: TLS 1.2 and 1.3, no certificate verification.
pub fn check_client_config() -> Result<Arc<ClientConfig>, rustls::Error> {
    let provider = provider();
    let config = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// SNI name for a check: the configured Host if it is a DNS name, else the
/// server's own name, else its IP (rustls sends no SNI for an IP).
pub fn server_name(host: Option<&str>, address: &crate::config::ServerAddr) -> ServerName<'static> {
    let named = host
        .map(|h| h.split(':').next().unwrap_or(h).to_string())
        .or_else(|| address.host().map(str::to_string))
        .and_then(|h| ServerName::try_from(h).ok());
    match (named, address.ip()) {
        (Some(n), _) => n,
        (None, Some(a)) => ServerName::IpAddress(a.ip().into()),
        (None, None) => ServerName::IpAddress(std::net::IpAddr::from([127, 0, 0, 1]).into()),
    }
}
