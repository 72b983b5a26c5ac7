//! streamOptimized VMDK: the disk format vSphere imports from an OVA.
//!
//! The writer ([`write_stream_optimized`]) streams a raw image from any
//! `Read` into any `Write` one grain at a time, so a multi-GiB image never
//! sits in memory. The reader ([`StreamOptimizedDisk`]) follows the grain
//! directory the way qemu and ESXi do and is what our tests use to check the
//! writer; [`walk_markers`] checks the stream order itself.
//!
//! File layout (every block padded to a 512-byte sector):
//!
//! ```text
//! sector 0        header (gdOffset = GD_AT_END: the GD comes last)
//! sector 1..21    text descriptor (CID, extent line, geometry)
//! ..128           zero padding up to overHead
//! grain marker    | lba u64 | size u32 | zlib data (RFC 1950) ... | pad
//!   ... one per non-zero grain, in LBA order ...
//! GT marker       | 4 u64 | 0 u32 | type 1 u32 | pad 496 | 512 GTEs (4 sectors)
//!   ... after each group of 512 grains that holds data ...
//! GD marker       | n u64 | 0 u32 | type 2 u32 | pad 496 | GD entries (n sectors)
//! footer marker   | 1 u64 | 0 u32 | type 3 u32 | pad 496 | header copy, real gdOffset
//! EOS marker      512 zero bytes
//! ```

mod descriptor;
mod header;
mod reader;
mod writer;

pub use descriptor::{descriptor_text, parse_descriptor, Descriptor};
pub use header::{Header, MarkerType};
pub use reader::{walk_markers, Marker, StreamOptimizedDisk};
pub use writer::{cid_from_digest, rewrite_cid, write_stream_optimized, StreamParams, VmdkStats};

use std::io;

/// Bytes in a VMDK sector; every offset in the format counts these.
pub const SECTOR_BYTES: u64 = 512;
/// Sectors per grain (64 KiB), what VMware and qemu write.
pub const GRAIN_SECTORS: u64 = 128;
/// Bytes per grain.
pub const GRAIN_BYTES: u64 = GRAIN_SECTORS * SECTOR_BYTES;
/// Grain table entries per grain table: one GT covers 32 MiB.
pub const GTES_PER_GT: u64 = 512;
/// Sector of the embedded text descriptor.
pub const DESCRIPTOR_OFFSET: u64 = 1;
/// Sectors reserved for the text descriptor.
pub const DESCRIPTOR_SECTORS: u64 = 20;
/// Sectors before the first grain (header + descriptor + padding).
pub const OVERHEAD_SECTORS: u64 = 128;
/// "KDMV" read as a little-endian u32.
pub const MAGIC: u32 = 0x564d_444b;
/// Sparse extent version 3 is what streamOptimized uses.
pub const VERSION: u32 = 3;
/// Bit 0: newline check bytes are valid.
pub const FLAG_VALID_NEWLINE_TEST: u32 = 1;
/// Bit 16: grains are compressed.
pub const FLAG_COMPRESSED: u32 = 1 << 16;
/// Bit 17: the file holds markers.
pub const FLAG_MARKERS: u32 = 1 << 17;
/// gdOffset in the leading header: "the grain directory is at the end, read the footer".
pub const GD_AT_END: u64 = u64::MAX;
/// compressAlgorithm 1 = deflate (zlib framing).
pub const COMPRESS_DEFLATE: u16 = 1;

/// What went wrong writing or reading a VMDK.
#[derive(Debug, thiserror::Error)]
pub enum VmdkError {
    #[error("raw image size {len} is not a multiple of {SECTOR_BYTES} bytes: pad the image to whole sectors")]
    UnalignedImage { len: u64 },
    #[error("raw image is empty: a disk needs at least one sector")]
    EmptyImage,
    #[error("raw image ended after {read} of {expected} bytes: was it changed while converting?")]
    ShortImage { read: u64, expected: u64 },
    #[error(
        "VMDK would exceed the 2 TiB a streamOptimized grain table can address (sector {sector})"
    )]
    TooLarge { sector: u64 },
    #[error("extent file name {name:?} must be a bare file name without quotes or newlines")]
    BadExtentName { name: String },
    #[error("reading raw image: {source}")]
    ReadImage { source: io::Error },
    #[error("writing VMDK: {source}")]
    Write { source: io::Error },
    #[error("reading VMDK: {source}")]
    Read { source: io::Error },
    #[error("VMDK is {len} bytes, too short for a header, footer and end-of-stream marker")]
    Truncated { len: u64 },
    #[error(
        "VMDK {what} has magic {found:#010x}, expected {MAGIC:#010x} (\"KDMV\"): not a sparse VMDK"
    )]
    BadMagic { what: &'static str, found: u32 },
    #[error("VMDK header field {field} = {value} is not supported for streamOptimized")]
    Unsupported { field: &'static str, value: u64 },
    #[error("VMDK newline check bytes are damaged: the file went through a text-mode transfer")]
    NewlineCheck,
    #[error("VMDK {what} at byte {offset} (length {len}) lies outside the {file_len}-byte file")]
    OutOfBounds {
        what: &'static str,
        offset: u64,
        len: u64,
        file_len: u64,
    },
    #[error("VMDK marker at sector {sector}: expected {expected}, found {found}")]
    BadMarker {
        sector: u64,
        expected: &'static str,
        found: String,
    },
    #[error("VMDK grain at sector {sector} inflates to {len} bytes, expected {expected}")]
    BadGrainLength {
        sector: u64,
        len: u64,
        expected: u64,
    },
    #[error("VMDK grain at sector {sector} does not inflate: {source}")]
    Inflate { sector: u64, source: io::Error },
    #[error("VMDK descriptor: {reason}")]
    Descriptor { reason: String },
}
