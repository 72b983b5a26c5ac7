//! Identifiers derived from the build's inputs, so the same inputs give the
//! same disk GUID, partition GUIDs, FAT serial and ext4 UUID, and different
//! inputs give different ones.

use sha2::{Digest, Sha256};

/// A seed for all ids of one build: a hash over the image's contents.
#[derive(Debug, Clone, Copy)]
pub struct IdSeed([u8; 32]);

impl IdSeed {
    pub fn from_parts(parts: &[&[u8]]) -> Self {
        let mut h = Sha256::new();
        for p in parts {
            h.update((p.len() as u64).to_le_bytes());
            h.update(p);
        }
        Self(h.finalize().into())
    }

    fn derive(&self, purpose: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.0);
        h.update(purpose.as_bytes());
        h.finalize().into()
    }

    /// A version-4-shaped UUID (random bits replaced by hash bits).
    pub fn uuid(&self, purpose: &str) -> uuid::Uuid {
        let d = self.derive(purpose);
        let mut b = [0u8; 16];
        b.copy_from_slice(&d[..16]);
        uuid::Builder::from_random_bytes(b).into_uuid()
    }

    pub fn u32(&self, purpose: &str) -> u32 {
        let d = self.derive(purpose);
        u32::from_le_bytes([d[0], d[1], d[2], d[3]])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_distinct() {
        let a = IdSeed::from_parts(&[b"kernel", b"initrd"]);
        let b = IdSeed::from_parts(&[b"kernel", b"initrd"]);
        let c = IdSeed::from_parts(&[b"kernelinitrd"]);
        assert_eq!(a.uuid("disk"), b.uuid("disk"));
        assert_ne!(a.uuid("disk"), a.uuid("esp"));
        assert_ne!(a.uuid("disk"), c.uuid("disk"));
        assert_eq!(a.uuid("disk").get_version_num(), 4);
    }
}
