//! The 512-byte sparse extent header and the 512-byte metadata markers.
//!
//! ```text
//! off size field                 off size field
//!   0   4  magic "KDMV"           56   8  gdOffset (sectors)
//!   4   4  version (3)            64   8  overHead (sectors)
//!   8   4  flags                  72   1  uncleanShutdown
//!  12   8  capacity (sectors)     73   4  '\n' ' ' '\r' '\n'
//!  20   8  grainSize (sectors)    77   2  compressAlgorithm
//!  28   8  descriptorOffset       79 433  zero padding
//!  36   8  descriptorSize
//!  44   4  numGTEsPerGT
//!  48   8  rgdOffset
//! ```

use super::{
    VmdkError, COMPRESS_DEFLATE, DESCRIPTOR_OFFSET, DESCRIPTOR_SECTORS, FLAG_COMPRESSED,
    FLAG_MARKERS, FLAG_VALID_NEWLINE_TEST, GRAIN_SECTORS, GTES_PER_GT, MAGIC, OVERHEAD_SECTORS,
    SECTOR_BYTES, VERSION,
};

/// The largest capacity the reader accepts (512 TiB).
const MAX_CAPACITY_SECTORS: u64 = 1 << 40;

/// Newline check bytes: a text-mode transfer would mangle them.
const NEWLINE_CHECK: [u8; 4] = *b"\n \r\n";

/// A decoded sparse extent header (leading header or footer copy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub version: u32,
    pub flags: u32,
    pub capacity_sectors: u64,
    pub grain_sectors: u64,
    pub descriptor_offset: u64,
    pub descriptor_sectors: u64,
    pub gtes_per_gt: u32,
    pub rgd_offset: u64,
    pub gd_offset: u64,
    pub overhead_sectors: u64,
    pub unclean_shutdown: u8,
    pub compress_algorithm: u16,
}

impl Header {
    /// The header a streamOptimized writer emits, with the given GD offset.
    pub fn stream_optimized(capacity_sectors: u64, gd_offset: u64) -> Self {
        Self {
            version: VERSION,
            flags: FLAG_VALID_NEWLINE_TEST | FLAG_COMPRESSED | FLAG_MARKERS,
            capacity_sectors,
            grain_sectors: GRAIN_SECTORS,
            descriptor_offset: DESCRIPTOR_OFFSET,
            descriptor_sectors: DESCRIPTOR_SECTORS,
            // 512 fits in u32; kept as u64 elsewhere for arithmetic.
            gtes_per_gt: 512,
            rgd_offset: 0,
            gd_offset,
            overhead_sectors: OVERHEAD_SECTORS,
            unclean_shutdown: 0,
            compress_algorithm: COMPRESS_DEFLATE,
        }
    }

    /// Encodes to one sector, little-endian.
    pub fn encode(&self) -> [u8; 512] {
        let mut b = [0u8; 512];
        b[0..4].copy_from_slice(&MAGIC.to_le_bytes());
        b[4..8].copy_from_slice(&self.version.to_le_bytes());
        b[8..12].copy_from_slice(&self.flags.to_le_bytes());
        b[12..20].copy_from_slice(&self.capacity_sectors.to_le_bytes());
        b[20..28].copy_from_slice(&self.grain_sectors.to_le_bytes());
        b[28..36].copy_from_slice(&self.descriptor_offset.to_le_bytes());
        b[36..44].copy_from_slice(&self.descriptor_sectors.to_le_bytes());
        b[44..48].copy_from_slice(&self.gtes_per_gt.to_le_bytes());
        b[48..56].copy_from_slice(&self.rgd_offset.to_le_bytes());
        b[56..64].copy_from_slice(&self.gd_offset.to_le_bytes());
        b[64..72].copy_from_slice(&self.overhead_sectors.to_le_bytes());
        b[72] = self.unclean_shutdown;
        b[73..77].copy_from_slice(&NEWLINE_CHECK);
        b[77..79].copy_from_slice(&self.compress_algorithm.to_le_bytes());
        b
    }

    /// Decodes one sector; `what` names it in errors ("header", "footer").
    pub fn decode(b: &[u8; 512], what: &'static str) -> Result<Self, VmdkError> {
        let magic = le_u32(b, 0);
        if magic != MAGIC {
            return Err(VmdkError::BadMagic { what, found: magic });
        }
        let header = Self {
            version: le_u32(b, 4),
            flags: le_u32(b, 8),
            capacity_sectors: le_u64(b, 12),
            grain_sectors: le_u64(b, 20),
            descriptor_offset: le_u64(b, 28),
            descriptor_sectors: le_u64(b, 36),
            gtes_per_gt: le_u32(b, 44),
            rgd_offset: le_u64(b, 48),
            gd_offset: le_u64(b, 56),
            overhead_sectors: le_u64(b, 64),
            unclean_shutdown: b[72],
            compress_algorithm: u16::from_le_bytes([b[77], b[78]]),
        };
        if header.flags & FLAG_VALID_NEWLINE_TEST != 0 && b[73..77] != NEWLINE_CHECK {
            return Err(VmdkError::NewlineCheck);
        }
        Ok(header)
    }

    /// Rejects headers this reader cannot follow (not streamOptimized, or
    /// sizes that would make it allocate or loop without bound).
    pub fn check_stream_optimized(&self) -> Result<(), VmdkError> {
        let unsupported = |field, value| Err(VmdkError::Unsupported { field, value });
        if self.version != VERSION {
            return unsupported("version", self.version.into());
        }
        if self.flags & (FLAG_COMPRESSED | FLAG_MARKERS) != FLAG_COMPRESSED | FLAG_MARKERS {
            return unsupported("flags", self.flags.into());
        }
        if self.compress_algorithm != COMPRESS_DEFLATE {
            return unsupported("compressAlgorithm", self.compress_algorithm.into());
        }
        // 512 TiB is far past vSphere's 62 TB disks and keeps byte offsets in u64.
        if self.capacity_sectors == 0 || self.capacity_sectors > MAX_CAPACITY_SECTORS {
            return unsupported("capacity", self.capacity_sectors);
        }
        // 1 MiB grains at most keeps one inflated grain small.
        if !(1..=2048).contains(&self.grain_sectors) {
            return unsupported("grainSize", self.grain_sectors);
        }
        if !(1..=4096).contains(&self.gtes_per_gt) {
            return unsupported("numGTEsPerGT", self.gtes_per_gt.into());
        }
        Ok(())
    }

    /// Grain size in bytes.
    pub fn grain_bytes(&self) -> u64 {
        self.grain_sectors * SECTOR_BYTES
    }
}

/// Metadata marker types (the `type` field when `size` is 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkerType {
    EndOfStream = 0,
    GrainTable = 1,
    GrainDirectory = 2,
    Footer = 3,
}

impl MarkerType {
    pub(crate) fn from_u32(v: u32) -> Option<Self> {
        match v {
            0 => Some(Self::EndOfStream),
            1 => Some(Self::GrainTable),
            2 => Some(Self::GrainDirectory),
            3 => Some(Self::Footer),
            _ => None,
        }
    }
}

/// A metadata marker sector: `| num_sectors u64 | size 0 u32 | type u32 | pad |`.
pub(crate) fn metadata_marker(num_sectors: u64, kind: MarkerType) -> [u8; 512] {
    let mut b = [0u8; 512];
    b[0..8].copy_from_slice(&num_sectors.to_le_bytes());
    b[12..16].copy_from_slice(&(kind as u32).to_le_bytes());
    b
}

/// Sectors of GTEs per grain table (512 entries x 4 bytes = 4 sectors).
pub(crate) const GT_SECTORS: u64 = GTES_PER_GT * 4 / SECTOR_BYTES;

pub(crate) fn le_u32(b: &[u8], at: usize) -> u32 {
    let mut v = [0u8; 4];
    v.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(v)
}

pub(crate) fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_the_documented_bytes() {
        let b = Header::stream_optimized(2048, u64::MAX).encode();
        assert_eq!(&b[0..4], b"KDMV");
        assert_eq!(&b[4..8], &[3, 0, 0, 0]);
        assert_eq!(&b[8..12], &[0x01, 0x00, 0x03, 0x00]);
        assert_eq!(&b[12..20], &2048u64.to_le_bytes());
        assert_eq!(&b[20..28], &128u64.to_le_bytes());
        assert_eq!(&b[28..36], &1u64.to_le_bytes());
        assert_eq!(&b[36..44], &20u64.to_le_bytes());
        assert_eq!(&b[44..48], &512u32.to_le_bytes());
        assert_eq!(&b[48..56], &[0; 8]);
        assert_eq!(&b[56..64], &[0xff; 8]);
        assert_eq!(&b[64..72], &128u64.to_le_bytes());
        assert_eq!(&b[72..79], b"\0\n \r\n\x01\0");
        assert!(b[79..].iter().all(|&x| x == 0));
    }

    #[test]
    fn decode_inverts_encode() {
        let h = Header::stream_optimized(12345, 678);
        assert_eq!(Header::decode(&h.encode(), "header").unwrap(), h);
    }

    #[test]
    fn rejects_bad_magic() {
        let mut b = Header::stream_optimized(8, 9).encode();
        b[0] = b'X';
        assert!(matches!(
            Header::decode(&b, "header"),
            Err(VmdkError::BadMagic { .. })
        ));
    }

    #[test]
    fn rejects_text_mode_damage() {
        let mut b = Header::stream_optimized(8, 9).encode();
        b[75] = b'\n';
        assert!(matches!(
            Header::decode(&b, "header"),
            Err(VmdkError::NewlineCheck)
        ));
    }

    #[test]
    fn rejects_absurd_capacity() {
        let h = Header::stream_optimized(u64::MAX / 2, 9);
        assert!(matches!(
            h.check_stream_optimized(),
            Err(VmdkError::Unsupported {
                field: "capacity",
                ..
            })
        ));
    }

    #[test]
    fn rejects_uncompressed_sparse() {
        let mut h = Header::stream_optimized(8, 9);
        h.flags = FLAG_VALID_NEWLINE_TEST;
        assert!(matches!(
            h.check_stream_optimized(),
            Err(VmdkError::Unsupported { field: "flags", .. })
        ));
    }
}
