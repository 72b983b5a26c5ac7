//! Reads a streamOptimized VMDK back to raw bytes, the way qemu and ESXi do:
//! footer -> grain directory -> grain tables -> grain markers.

use std::io::{self, Read, Seek, SeekFrom, Write};

use flate2::read::ZlibDecoder;

use super::header::{le_u32, le_u64, MarkerType};
use super::{parse_descriptor, Descriptor, Header, VmdkError, GD_AT_END, SECTOR_BYTES};

/// Descriptors larger than this are not ours (ours is 20 sectors).
const MAX_DESCRIPTOR_BYTES: u64 = 1 << 20;

/// An opened streamOptimized VMDK: its header, descriptor and grain map.
#[derive(Debug, Clone)]
pub struct StreamOptimizedDisk {
    /// The footer's header when the leading header defers the GD to the end.
    pub header: Header,
    pub descriptor: Descriptor,
    /// (grain index, sector of its marker) for every allocated grain, ascending.
    pub grains: Vec<(u64, u64)>,
    file_len: u64,
}

impl StreamOptimizedDisk {
    /// Reads the header, footer, descriptor, GD and GTs; not the grains.
    pub fn open<R: Read + Seek>(file: &mut R) -> Result<Self, VmdkError> {
        let file_len = file.seek(SeekFrom::End(0)).map_err(read_err)?;
        if file_len < 4 * SECTOR_BYTES {
            return Err(VmdkError::Truncated { len: file_len });
        }
        let mut header = Header::decode(&read_sector(file, 0)?, "header")?;
        if header.gd_offset == GD_AT_END {
            let footer_at = file_len - 3 * SECTOR_BYTES;
            let marker = read_sector(file, footer_at)?;
            expect_marker(&marker, MarkerType::Footer, footer_at)?;
            header = Header::decode(&read_sector(file, footer_at + SECTOR_BYTES)?, "footer")?;
            let eos_at = file_len - SECTOR_BYTES;
            expect_marker(&read_sector(file, eos_at)?, MarkerType::EndOfStream, eos_at)?;
        }
        header.check_stream_optimized()?;

        let desc_len = header.descriptor_sectors.saturating_mul(SECTOR_BYTES);
        if desc_len > MAX_DESCRIPTOR_BYTES {
            return Err(VmdkError::Unsupported {
                field: "descriptorSize",
                value: header.descriptor_sectors,
            });
        }
        let desc_at = header.descriptor_offset.saturating_mul(SECTOR_BYTES);
        let text = read_at(file, desc_at, desc_len, file_len, "descriptor")?;
        let text = String::from_utf8_lossy(&text);
        let descriptor = parse_descriptor(text.trim_end_matches('\0'))?;

        let grains_total = header.capacity_sectors.div_ceil(header.grain_sectors);
        let per_gt = u64::from(header.gtes_per_gt);
        let tables = grains_total.div_ceil(per_gt);
        let gd_at = header.gd_offset.saturating_mul(SECTOR_BYTES);
        let gd = read_at(
            file,
            gd_at,
            tables.saturating_mul(4),
            file_len,
            "grain directory",
        )?;
        let mut grains = Vec::new();
        for (table, entry) in gd.chunks_exact(4).enumerate() {
            let gt_sector = u64::from(le_u32(entry, 0));
            if gt_sector == 0 {
                continue;
            }
            let gt = read_at(
                file,
                gt_sector * SECTOR_BYTES,
                per_gt * 4,
                file_len,
                "grain table",
            )?;
            for (slot, gte) in gt.chunks_exact(4).enumerate() {
                let index = table as u64 * per_gt + slot as u64;
                let sector = u64::from(le_u32(gte, 0));
                if sector != 0 && index < grains_total {
                    grains.push((index, sector));
                }
            }
        }
        Ok(Self {
            header,
            descriptor,
            grains,
            file_len,
        })
    }

    /// Disk capacity in bytes.
    pub fn capacity_bytes(&self) -> u64 {
        self.header.capacity_sectors * SECTOR_BYTES
    }

    /// Writes the whole raw disk to `out`, inflating each grain and writing
    /// zeros for unallocated ones. Returns the bytes written.
    pub fn read_raw<R: Read + Seek, W: Write>(
        &self,
        file: &mut R,
        mut out: W,
    ) -> Result<u64, VmdkError> {
        let grain_bytes = self.header.grain_bytes();
        let capacity = self.capacity_bytes();
        let mut next = 0u64;
        let mut buf = Vec::with_capacity(usize::try_from(grain_bytes).unwrap_or(0));
        let write_err = |source| VmdkError::Write { source };
        for &(index, sector) in &self.grains {
            let zeros = index.saturating_sub(next) * grain_bytes;
            io::copy(&mut io::repeat(0).take(zeros), &mut out).map_err(write_err)?;
            let want = (capacity - index * grain_bytes).min(grain_bytes);
            self.read_grain(file, index, sector, &mut buf)?;
            let len = buf.len() as u64;
            if len != grain_bytes && len != want {
                return Err(VmdkError::BadGrainLength {
                    sector,
                    len,
                    expected: grain_bytes,
                });
            }
            out.write_all(&buf[..usize::try_from(want).unwrap_or(0)])
                .map_err(write_err)?;
            next = index + 1;
        }
        let tail = capacity.saturating_sub(next * grain_bytes);
        io::copy(&mut io::repeat(0).take(tail), &mut out).map_err(write_err)?;
        out.flush().map_err(write_err)?;
        Ok(capacity)
    }

    /// Reads and inflates the grain whose marker is at `sector` into `buf`.
    fn read_grain<R: Read + Seek>(
        &self,
        file: &mut R,
        index: u64,
        sector: u64,
        buf: &mut Vec<u8>,
    ) -> Result<(), VmdkError> {
        let at = sector * SECTOR_BYTES;
        let head = read_at(file, at, 12, self.file_len, "grain marker")?;
        let lba = le_u64(&head, 0);
        let size = u64::from(le_u32(&head, 8));
        if lba != index * self.header.grain_sectors || size == 0 {
            return Err(VmdkError::BadMarker {
                sector,
                expected: "a grain marker for this grain",
                found: format!("lba {lba}, size {size}"),
            });
        }
        let data = read_at(file, at + 12, size, self.file_len, "grain data")?;
        buf.clear();
        // Read one byte past a grain so an oversized grain is caught, not truncated.
        ZlibDecoder::new(&data[..])
            .take(self.header.grain_bytes() + 1)
            .read_to_end(buf)
            .map_err(|source| VmdkError::Inflate { sector, source })?;
        Ok(())
    }
}

/// One block of the stream, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Marker {
    Grain { sector: u64, lba: u64, size: u32 },
    GrainTable { sector: u64 },
    GrainDirectory { sector: u64, sectors: u64 },
    Footer { sector: u64 },
    EndOfStream { sector: u64 },
}

/// Walks the stream from overHead to the end-of-stream marker, listing every
/// marker: this is the order a streaming importer (ESXi) sees.
pub fn walk_markers<R: Read + Seek>(file: &mut R) -> Result<Vec<Marker>, VmdkError> {
    let file_len = file.seek(SeekFrom::End(0)).map_err(read_err)?;
    let header = Header::decode(&read_sector(file, 0)?, "header")?;
    let mut sector = header.overhead_sectors;
    let mut markers = Vec::new();
    loop {
        let at = sector.saturating_mul(SECTOR_BYTES);
        let block = read_at(file, at, SECTOR_BYTES, file_len, "marker")?;
        let value = le_u64(&block, 0);
        let size = le_u32(&block, 8);
        if size != 0 {
            markers.push(Marker::Grain {
                sector,
                lba: value,
                size,
            });
            sector += (12 + u64::from(size)).div_ceil(SECTOR_BYTES);
            continue;
        }
        let kind = le_u32(&block, 12);
        let data_sector = sector + 1;
        let marker = match MarkerType::from_u32(kind) {
            Some(MarkerType::GrainTable) => Marker::GrainTable {
                sector: data_sector,
            },
            Some(MarkerType::GrainDirectory) => Marker::GrainDirectory {
                sector: data_sector,
                sectors: value,
            },
            Some(MarkerType::Footer) => Marker::Footer {
                sector: data_sector,
            },
            Some(MarkerType::EndOfStream) => {
                markers.push(Marker::EndOfStream { sector });
                return Ok(markers);
            }
            None => {
                return Err(VmdkError::BadMarker {
                    sector,
                    expected: "a marker type 0-3",
                    found: kind.to_string(),
                })
            }
        };
        markers.push(marker);
        sector = data_sector.saturating_add(value);
    }
}

fn expect_marker(block: &[u8; 512], want: MarkerType, at: u64) -> Result<(), VmdkError> {
    let size = le_u32(block, 8);
    let kind = le_u32(block, 12);
    if size != 0 || MarkerType::from_u32(kind) != Some(want) {
        return Err(VmdkError::BadMarker {
            sector: at / SECTOR_BYTES,
            expected: match want {
                MarkerType::Footer => "the footer marker 1536 bytes before the end",
                _ => "the end-of-stream marker in the last sector",
            },
            found: format!("size {size}, type {kind}"),
        });
    }
    Ok(())
}

fn read_sector<R: Read + Seek>(file: &mut R, at: u64) -> Result<[u8; 512], VmdkError> {
    let mut b = [0u8; 512];
    file.seek(SeekFrom::Start(at)).map_err(read_err)?;
    file.read_exact(&mut b).map_err(read_err)?;
    Ok(b)
}

/// Reads `len` bytes at `offset` after checking they lie inside the file, so
/// a corrupt length cannot make us allocate more than the file holds.
fn read_at<R: Read + Seek>(
    file: &mut R,
    offset: u64,
    len: u64,
    file_len: u64,
    what: &'static str,
) -> Result<Vec<u8>, VmdkError> {
    let outside = VmdkError::OutOfBounds {
        what,
        offset,
        len,
        file_len,
    };
    if offset.checked_add(len).is_none_or(|end| end > file_len) {
        return Err(outside);
    }
    let mut buf = vec![0u8; usize::try_from(len).map_err(|_| outside)?];
    file.seek(SeekFrom::Start(offset)).map_err(read_err)?;
    file.read_exact(&mut buf).map_err(read_err)?;
    Ok(buf)
}

fn read_err(source: io::Error) -> VmdkError {
    VmdkError::Read { source }
}
