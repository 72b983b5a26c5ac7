//! The OVA manifest: one `SHA256(<file>)= <lowercase hex>` line per member
//! (except the manifest itself), the form ovftool and vCenter check.

use std::io::{self, Write};

use sha2::{Digest, Sha256};

/// One manifest line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestEntry {
    pub file: String,
    pub sha256: [u8; 32],
}

/// What is wrong with a manifest.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("manifest line {line} {text:?} is not `SHA256(<file>)= <64 hex digits>`")]
    BadLine { line: usize, text: String },
    #[error("manifest line {line} uses {algorithm}: only SHA256 manifests are supported")]
    Algorithm { line: usize, algorithm: String },
    #[error("manifest lists {file} twice")]
    Duplicate { file: String },
}

/// The manifest text for `entries`, in their order.
pub fn render(entries: &[ManifestEntry]) -> String {
    entries
        .iter()
        .map(|e| format!("SHA256({})= {}\n", e.file, to_hex(&e.sha256)))
        .collect()
}

/// Parses manifest text; blank lines are ignored.
pub fn parse(text: &str) -> Result<Vec<ManifestEntry>, ManifestError> {
    let mut entries: Vec<ManifestEntry> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let text = raw.trim();
        if text.is_empty() {
            continue;
        }
        let bad = || ManifestError::BadLine {
            line,
            text: text.to_owned(),
        };
        let (algorithm, rest) = text.split_once('(').ok_or_else(bad)?;
        if algorithm != "SHA256" {
            return Err(ManifestError::Algorithm {
                line,
                algorithm: algorithm.to_owned(),
            });
        }
        let (file, hex) = rest.rsplit_once(")=").ok_or_else(bad)?;
        let sha256 = from_hex(hex.trim()).ok_or_else(bad)?;
        if file.is_empty() {
            return Err(bad());
        }
        if entries.iter().any(|e| e.file == file) {
            return Err(ManifestError::Duplicate {
                file: file.to_owned(),
            });
        }
        entries.push(ManifestEntry {
            file: file.to_owned(),
            sha256,
        });
    }
    Ok(entries)
}

/// Lowercase hex of `bytes`.
pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// 64 hex digits (either case) to 32 bytes.
pub fn from_hex(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 || !hex.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(hex.as_bytes().chunks_exact(2)) {
        let pair = std::str::from_utf8(pair).ok()?;
        *byte = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(out)
}

/// A writer that hashes and counts what passes through it.
#[derive(Debug)]
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    len: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            len: 0,
        }
    }

    /// (inner writer, SHA-256, bytes written).
    pub fn finish(self) -> (W, [u8; 32], u64) {
        (self.inner, self.hasher.finalize().into(), self.len)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SHA-256 of the empty string.
    const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn renders_the_ovf_form() {
        let entries = [ManifestEntry {
            file: "lb.ovf".into(),
            sha256: from_hex(EMPTY).unwrap(),
        }];
        assert_eq!(render(&entries), format!("SHA256(lb.ovf)= {EMPTY}\n"));
    }

    #[test]
    fn parse_inverts_render() {
        let entries = vec![
            ManifestEntry {
                file: "a.ovf".into(),
                sha256: [1; 32],
            },
            ManifestEntry {
                file: "a-disk1.vmdk".into(),
                sha256: [0xab; 32],
            },
        ];
        assert_eq!(parse(&render(&entries)).unwrap(), entries);
    }

    #[test]
    fn hashing_writer_hashes() {
        let mut w = HashingWriter::new(Vec::new());
        w.write_all(b"").unwrap();
        let (_, digest, len) = w.finish();
        assert_eq!((to_hex(&digest), len), (EMPTY.to_owned(), 0));
    }

    #[test]
    fn rejects_sha1() {
        let err = parse("SHA1(a.ovf)= 0000").unwrap_err();
        assert!(matches!(err, ManifestError::Algorithm { line: 1, .. }));
    }

    #[test]
    fn rejects_short_hash_and_missing_paren() {
        assert!(matches!(
            parse("SHA256(a.ovf)= abcd"),
            Err(ManifestError::BadLine { .. })
        ));
        assert!(matches!(
            parse(&format!("SHA256 a.ovf {EMPTY}")),
            Err(ManifestError::BadLine { .. })
        ));
    }

    #[test]
    fn rejects_duplicates() {
        let text = format!("SHA256(a)= {EMPTY}\nSHA256(a)= {EMPTY}\n");
        assert!(matches!(parse(&text), Err(ManifestError::Duplicate { .. })));
    }
}
