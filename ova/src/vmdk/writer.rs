//! Streams a raw image into a streamOptimized VMDK, one grain at a time.

use std::io::{self, Read, Seek, SeekFrom, Write};

use flate2::{write::ZlibEncoder, Compression};
use sha2::{Digest, Sha256};

use super::header::{metadata_marker, MarkerType, GT_SECTORS};
use super::{
    descriptor_text, Header, VmdkError, DESCRIPTOR_OFFSET, DESCRIPTOR_SECTORS, GD_AT_END,
    GRAIN_BYTES, GRAIN_SECTORS, GTES_PER_GT, OVERHEAD_SECTORS, SECTOR_BYTES,
};

/// What the caller decides about the VMDK.
#[derive(Debug, Clone)]
pub struct StreamParams<'a> {
    /// The file name in the descriptor's extent line (the OVA member name).
    pub extent_file: &'a str,
    /// Content ID; derive it from the image hash with [`cid_from_digest`].
    pub cid: u32,
    /// zlib level 0-9.
    pub compression_level: u32,
}

/// What the writer produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct VmdkStats {
    /// Disk capacity in bytes (the raw image length).
    pub capacity_bytes: u64,
    /// Non-zero grains stored.
    pub grains_stored: u64,
    /// Total grains in the disk.
    pub grains_total: u64,
    /// Bytes written to the output.
    pub vmdk_bytes: u64,
    /// SHA-256 over the image length and every non-zero grain with its index:
    /// identifies the content without hashing gigabytes of zeros.
    pub content_sha256: [u8; 32],
}

/// A CID from the first bytes of a content digest, so equal images give equal
/// VMDKs. `ffffffff` means "no parent" in `parentCID`, so it is avoided.
pub fn cid_from_digest(digest: &[u8; 32]) -> u32 {
    let cid = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
    if cid == u32::MAX {
        cid - 1
    } else {
        cid
    }
}

/// Converts `len` bytes of raw image from `input` into a streamOptimized VMDK
/// on `out`. Memory use is one grain plus one GD entry per 32 MiB.
pub fn write_stream_optimized<R: Read, W: Write>(
    mut input: R,
    len: u64,
    out: W,
    params: &StreamParams<'_>,
) -> Result<VmdkStats, VmdkError> {
    if len == 0 {
        return Err(VmdkError::EmptyImage);
    }
    if !len.is_multiple_of(SECTOR_BYTES) {
        return Err(VmdkError::UnalignedImage { len });
    }
    if params.extent_file.is_empty() || params.extent_file.contains(['"', '\n', '\r', '/']) {
        return Err(VmdkError::BadExtentName {
            name: params.extent_file.to_owned(),
        });
    }
    let capacity_sectors = len / SECTOR_BYTES;
    let grains_total = len.div_ceil(GRAIN_BYTES);
    let tables = grains_total.div_ceil(GTES_PER_GT);

    let mut out = SectorWriter { inner: out, pos: 0 };
    out.write_padded(&Header::stream_optimized(capacity_sectors, GD_AT_END).encode())?;
    let descriptor = descriptor_text(params.cid, capacity_sectors, params.extent_file);
    if descriptor.len() as u64 > DESCRIPTOR_SECTORS * SECTOR_BYTES {
        return Err(VmdkError::BadExtentName {
            name: params.extent_file.to_owned(),
        });
    }
    out.write_padded(descriptor.as_bytes())?;
    out.pad_to_sector(OVERHEAD_SECTORS)?;

    let level = Compression::new(params.compression_level.min(9));
    let mut grain = vec![0u8; usize_of(GRAIN_BYTES)];
    let mut compressed = Vec::with_capacity(grain.len() + 1024);
    let mut gd = Vec::new();
    let mut grains_stored = 0;
    let mut read = 0u64;
    let mut content = Sha256::new();
    content.update(len.to_le_bytes());
    for table in 0..tables {
        let mut gt = vec![0u32; usize_of(GTES_PER_GT)];
        let first = table * GTES_PER_GT;
        for index in first..(first + GTES_PER_GT).min(grains_total) {
            let want = (len - read).min(GRAIN_BYTES);
            let chunk = &mut grain[..usize_of(want)];
            fill(&mut input, chunk, read, len)?;
            read += want;
            if is_zero(chunk) {
                continue;
            }
            content.update(index.to_le_bytes());
            content.update(&*chunk);
            // qemu insists every grain inflates to a full grain: pad the last one.
            grain[usize_of(want)..].fill(0);
            compressed.clear();
            let mut z = ZlibEncoder::new(&mut compressed, level);
            z.write_all(&grain)
                .and_then(|()| z.finish().map(|_| ()))
                .map_err(write_err)?;
            let sector = out.sector()?;
            gt[usize_of(index - first)] = sector;
            let mut marker = Vec::with_capacity(12 + compressed.len());
            marker.extend_from_slice(&(index * GRAIN_SECTORS).to_le_bytes());
            marker.extend_from_slice(
                &u32::try_from(compressed.len())
                    .map_err(|_| too_large(sector))?
                    .to_le_bytes(),
            );
            marker.extend_from_slice(&compressed);
            out.write_padded(&marker)?;
            grains_stored += 1;
        }
        if gt.iter().all(|&e| e == 0) {
            // A table of only zero grains is left out; GD entry 0 reads as zeros.
            gd.push(0);
            continue;
        }
        out.write_padded(&metadata_marker(GT_SECTORS, MarkerType::GrainTable))?;
        gd.push(out.sector()?);
        out.write_padded(&entries_bytes(&gt))?;
    }

    let gd_sectors = (gd.len() as u64 * 4).div_ceil(SECTOR_BYTES);
    out.write_padded(&metadata_marker(gd_sectors, MarkerType::GrainDirectory))?;
    let gd_offset = out.pos / SECTOR_BYTES;
    out.write_padded(&entries_bytes(&gd))?;
    out.write_padded(&metadata_marker(1, MarkerType::Footer))?;
    out.write_padded(&Header::stream_optimized(capacity_sectors, gd_offset).encode())?;
    out.write_padded(&metadata_marker(0, MarkerType::EndOfStream))?;
    out.inner.flush().map_err(write_err)?;
    Ok(VmdkStats {
        capacity_bytes: len,
        grains_stored,
        grains_total,
        vmdk_bytes: out.pos,
        content_sha256: content.finalize().into(),
    })
}

/// Rewrites the CID in a VMDK that `write_stream_optimized` wrote to a
/// seekable file, for callers that derive the CID from
/// [`VmdkStats::content_sha256`] and so know it only at the end. The
/// descriptor keeps its length (the CID is always 8 hex digits).
pub fn rewrite_cid<F: Write + Seek>(
    file: &mut F,
    cid: u32,
    capacity_bytes: u64,
    extent_file: &str,
) -> Result<(), VmdkError> {
    let text = descriptor_text(cid, capacity_bytes / SECTOR_BYTES, extent_file);
    file.seek(SeekFrom::Start(DESCRIPTOR_OFFSET * SECTOR_BYTES))
        .map_err(write_err)?;
    file.write_all(text.as_bytes()).map_err(write_err)?;
    file.flush().map_err(write_err)
}

/// Whether a grain is all zeros. Folding 512-byte blocks with OR lets the
/// compiler vectorize while still stopping at the first non-zero block.
fn is_zero(buf: &[u8]) -> bool {
    buf.chunks(512)
        .all(|block| block.iter().fold(0, |acc, &b| acc | b) == 0)
}

/// Reads exactly `buf.len()` bytes or reports how far the image got.
fn fill<R: Read>(input: &mut R, buf: &mut [u8], read: u64, len: u64) -> Result<(), VmdkError> {
    let mut done = 0;
    while done < buf.len() {
        match input.read(&mut buf[done..]) {
            Ok(0) => {
                return Err(VmdkError::ShortImage {
                    read: read + done as u64,
                    expected: len,
                })
            }
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(source) => return Err(VmdkError::ReadImage { source }),
        }
    }
    Ok(())
}

fn entries_bytes(entries: &[u32]) -> Vec<u8> {
    entries.iter().flat_map(|e| e.to_le_bytes()).collect()
}

fn write_err(source: io::Error) -> VmdkError {
    VmdkError::Write { source }
}

fn too_large(sector: u32) -> VmdkError {
    VmdkError::TooLarge {
        sector: sector.into(),
    }
}

/// Grain buffers are at most 64 KiB; GT indexes at most 512.
fn usize_of(v: u64) -> usize {
    usize::try_from(v).expect("grain-sized values fit in usize")
}

/// Counts bytes and pads every block to a sector boundary.
struct SectorWriter<W> {
    inner: W,
    pos: u64,
}

impl<W: Write> SectorWriter<W> {
    fn write_padded(&mut self, data: &[u8]) -> Result<(), VmdkError> {
        self.inner.write_all(data).map_err(write_err)?;
        self.pos += data.len() as u64;
        let pad = self.pos.next_multiple_of(SECTOR_BYTES) - self.pos;
        self.zeros(pad)
    }

    fn pad_to_sector(&mut self, sector: u64) -> Result<(), VmdkError> {
        let pad = (sector * SECTOR_BYTES).saturating_sub(self.pos);
        self.zeros(pad)
    }

    fn zeros(&mut self, n: u64) -> Result<(), VmdkError> {
        io::copy(&mut io::repeat(0).take(n), &mut self.inner).map_err(write_err)?;
        self.pos += n;
        Ok(())
    }

    /// The current sector as a grain/GD entry: entries are 32-bit.
    fn sector(&self) -> Result<u32, VmdkError> {
        let sector = self.pos / SECTOR_BYTES;
        u32::try_from(sector).map_err(|_| VmdkError::TooLarge { sector })
    }
}
