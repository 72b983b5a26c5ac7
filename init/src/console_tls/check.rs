//! Whether a PEM certificate and key form what lbd's TLS stack will load,
//! and the certificate's SHA-256 fingerprint.
//!
//! The check is rustls's own (`CertifiedKey::keys_match`, with the ring
//! provider lbd uses): a pair accepted here is a pair lbd serves.

use std::fmt;
use std::sync::Arc;

use rustls::crypto::ring::sign::any_supported_type;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

/// Why a pair cannot serve the console. The messages say what is wrong
/// with the text; the caller names the setting or file and the fix.
#[derive(Debug, thiserror::Error)]
pub enum PairError {
    #[error("no certificate in the PEM: {source}")]
    NoCertificate {
        source: rustls::pki_types::pem::Error,
    },
    #[error("the certificate does not parse as X.509: {source}")]
    Certificate { source: rustls::Error },
    #[error("the private key is not PEM: {source}")]
    KeyPem {
        source: rustls::pki_types::pem::Error,
    },
    #[error(
        "the private key is not one lbd can use (RSA, ECDSA P-256/P-384 or Ed25519): {source}"
    )]
    Key { source: rustls::Error },
    #[error("the private key is not the certificate's (they come from different pairs)")]
    Mismatch,
}

/// SHA-256 of the certificate's DER, as browsers show it:
/// `AB:CD:...`, 32 bytes of uppercase hex.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    pub fn of(der: &[u8]) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, der);
        let mut out = [0; 32];
        out.copy_from_slice(digest.as_ref());
        Self(out)
    }

    /// The two halves, for a screen narrower than the 95 characters.
    pub fn halves(&self) -> (String, String) {
        (hex(&self.0[..16]), hex(&self.0[16..]))
    }
}

fn hex(bytes: &[u8]) -> String {
    let parts: Vec<String> = bytes.iter().map(|b| format!("{b:02X}")).collect();
    parts.join(":")
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex(&self.0))
    }
}

/// Checks `cert_pem` (the server's certificate first, then its chain) and
/// `key_pem`; returns the server certificate's fingerprint.
pub fn check_pair(cert_pem: &str, key_pem: &str) -> Result<Fingerprint, PairError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|source| PairError::NoCertificate { source })?;
    let Some(leaf) = certs.first() else {
        return Err(PairError::NoCertificate {
            source: rustls::pki_types::pem::Error::NoItemsFound,
        });
    };
    let fingerprint = Fingerprint::of(leaf.as_ref());
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|source| PairError::KeyPem { source })?;
    let signing = any_supported_type(&key).map_err(|source| PairError::Key { source })?;
    match CertifiedKey::new(certs, Arc::clone(&signing)).keys_match() {
        Ok(()) => Ok(fingerprint),
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            Err(PairError::Mismatch)
        }
        Err(source) => Err(PairError::Certificate { source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (String, String) {
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec!["lb".to_string()])
            .expect("params")
            .self_signed(&key)
            .expect("cert");
        (cert.pem(), key.serialize_pem())
    }

    /// Input: a pair, then its certificate with another pair's key.
    /// Output: the first passes with the DER's SHA-256, the second is a
    /// mismatch.
    #[test]
    fn a_key_from_another_pair_is_a_mismatch() {
        let (cert, key) = pair();
        let (_, other_key) = pair();
        let fp = check_pair(&cert, &key).expect("a pair");
        let der = CertificateDer::from_pem_slice(cert.as_bytes()).expect("pem");
        assert_eq!(fp, Fingerprint::of(der.as_ref()));
        assert!(matches!(
            check_pair(&cert, &other_key),
            Err(PairError::Mismatch)
        ));
    }

    #[test]
    fn garbage_is_refused_at_its_step() {
        let (cert, key) = pair();
        assert!(matches!(
            check_pair("nothing", &key),
            Err(PairError::NoCertificate { .. })
        ));
        let not_x509 = "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n";
        assert!(matches!(
            check_pair(not_x509, &key),
            Err(PairError::Certificate { .. })
        ));
        let not_a_key = "-----BEGIN PRIVATE KEY-----\nMAA=\n-----END PRIVATE KEY-----\n";
        assert!(matches!(
            check_pair(&cert, not_a_key),
            Err(PairError::Key { .. })
        ));
    }

    #[test]
    fn fingerprint_is_colon_separated_uppercase_hex() {
        let fp = Fingerprint([0xab; 32]);
        let text = fp.to_string();
        assert_eq!(text.len(), 95);
        assert!(text.starts_with("AB:AB:"), "{text}");
        let (a, b) = fp.halves();
        assert_eq!(format!("{a}:{b}"), text);
    }
}
