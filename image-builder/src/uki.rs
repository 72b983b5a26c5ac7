//! Unified kernel image assembly: systemd-stub plus `.osrel`, `.cmdline`,
//! `.initrd` and `.linux` sections, appended in Rust (what ukify and
//! `objcopy --add-section` do).
//!
//! ```text
//!  0x00  DOS header ("MZ"), e_lfanew at 0x3c ----+
//!        "PE\0\0"                        <------+
//!        COFF header (20 bytes): NumberOfSections at +2, SizeOfOptionalHeader at +16
//!        optional header PE32+ (0x20b): SizeOfInitializedData +8,
//!            SectionAlignment +32, FileAlignment +36, SizeOfImage +56,
//!            SizeOfHeaders +60, CheckSum +64, data directories from +112
//!        section table: 40 bytes per section  <- new headers go at its end
//!  SizeOfHeaders: first section's raw data
//!        ... stub sections ...
//!        .osrel .cmdline .initrd .linux     <- appended, FileAlignment-padded,
//!                                              each at the next SectionAlignment RVA
//! ```
//! systemd-stub finds the sections by name and loads `.linux` with
//! `.initrd` and `.cmdline`. Any Authenticode signature of the stub is
//! dropped (it would no longer match); Secure Boot is stated off in the OVA.

#[derive(Debug, thiserror::Error)]
pub enum UkiError {
    #[error("UEFI stub: {0} (is it systemd-boot-efi's linuxx64.efi.stub?)")]
    BadStub(String),
    #[error("UEFI stub has room for {room} more section headers, {needed} are needed")]
    NoRoom { room: usize, needed: usize },
    #[error("unified kernel image would exceed 4 GiB")]
    TooLarge,
}

/// One section to append.
pub struct Section<'a> {
    /// At most 8 bytes, e.g. ".linux".
    pub name: &'a str,
    pub data: &'a [u8],
}

const SECTION_HEADER_LEN: usize = 40;
const PE32_PLUS: u16 = 0x20b;
/// IMAGE_SCN_CNT_INITIALIZED_DATA | IMAGE_SCN_MEM_READ, as ukify uses.
const DATA_READ_ONLY: u32 = 0x4000_0040;
/// Data directory 4 (certificate table), whose entry is 8 bytes at +144.
const SECURITY_DIRECTORY: usize = 144;

/// The sections a UKI carries, in the order ukify writes them.
pub fn assemble(
    stub: &[u8],
    osrel: &[u8],
    cmdline: &[u8],
    initrd: &[u8],
    linux: &[u8],
) -> Result<Vec<u8>, UkiError> {
    append_sections(
        stub,
        &[
            Section {
                name: ".osrel",
                data: osrel,
            },
            Section {
                name: ".cmdline",
                data: cmdline,
            },
            Section {
                name: ".initrd",
                data: initrd,
            },
            Section {
                name: ".linux",
                data: linux,
            },
        ],
    )
}

/// Appends `sections` to the PE image `stub`.
pub fn append_sections(stub: &[u8], sections: &[Section<'_>]) -> Result<Vec<u8>, UkiError> {
    let bad = |m: &str| UkiError::BadStub(m.to_string());
    if stub.get(..2) != Some(b"MZ") {
        return Err(bad("no MZ signature"));
    }
    let pe = usize::try_from(read_u32(stub, 0x3c).ok_or_else(|| bad("truncated DOS header"))?)
        .map_err(|_| bad("bad e_lfanew"))?;
    if stub.get(pe..pe + 4) != Some(b"PE\0\0") {
        return Err(bad("no PE signature"));
    }
    let coff = pe + 4;
    let opt = coff + 20;
    let num_sections = usize::from(read_u16(stub, coff + 2).ok_or_else(|| bad("truncated"))?);
    let opt_size = usize::from(read_u16(stub, coff + 16).ok_or_else(|| bad("truncated"))?);
    if read_u16(stub, opt) != Some(PE32_PLUS) {
        return Err(bad("not a PE32+ image"));
    }
    let field =
        |off: usize| read_u32(stub, opt + off).ok_or_else(|| bad("truncated optional header"));
    let section_align = field(32)?;
    let file_align = field(36)?;
    let size_of_headers = field(60)?;
    if !section_align.is_power_of_two() || !file_align.is_power_of_two() {
        return Err(bad("alignment is not a power of two"));
    }
    let table = opt + opt_size;

    // Where the stub's sections end, in the file and in memory.
    let mut first_raw = size_of_headers;
    let mut file_end = 0u32;
    let mut image_end = 0u32;
    for i in 0..num_sections {
        let h = table + i * SECTION_HEADER_LEN;
        let vsize = read_u32(stub, h + 8).ok_or_else(|| bad("truncated section table"))?;
        let vaddr = read_u32(stub, h + 12).ok_or_else(|| bad("truncated section table"))?;
        let raw_size = read_u32(stub, h + 16).ok_or_else(|| bad("truncated section table"))?;
        let raw_ptr = read_u32(stub, h + 20).ok_or_else(|| bad("truncated section table"))?;
        let name = stub.get(h..h + 8).unwrap_or_default();
        if sections.iter().any(|s| padded_name(s.name) == name) {
            return Err(bad(&format!(
                "stub already has a {} section",
                String::from_utf8_lossy(name).trim_end_matches('\0')
            )));
        }
        if raw_size > 0 {
            first_raw = first_raw.min(raw_ptr);
            file_end = file_end.max(raw_ptr.saturating_add(raw_size));
        }
        image_end = image_end.max(vaddr.saturating_add(vsize.max(raw_size)));
    }
    let first_raw = usize::try_from(first_raw).map_err(|_| UkiError::TooLarge)?;
    let room =
        first_raw.saturating_sub(table + num_sections * SECTION_HEADER_LEN) / SECTION_HEADER_LEN;
    if room < sections.len() {
        return Err(UkiError::NoRoom {
            room,
            needed: sections.len(),
        });
    }
    let file_end = usize::try_from(file_end).map_err(|_| UkiError::TooLarge)?;
    if file_end > stub.len() {
        return Err(bad("section data past the end of the file"));
    }

    // Keep the stub up to its last section; trailing data (a signature) goes.
    let mut out = stub[..file_end].to_vec();
    let mut next_rva = align_up(u64::from(image_end), u64::from(section_align));
    let mut added_init_data = 0u64;
    for (i, s) in sections.iter().enumerate() {
        if s.name.len() > 8 {
            return Err(bad(&format!(
                "section name {} is longer than 8 bytes",
                s.name
            )));
        }
        let raw_ptr = align_up(out.len() as u64, u64::from(file_align));
        let raw_size = align_up(s.data.len() as u64, u64::from(file_align));
        out.resize(usize::try_from(raw_ptr).map_err(|_| UkiError::TooLarge)?, 0);
        out.extend_from_slice(s.data);
        out.resize(
            usize::try_from(raw_ptr + raw_size).map_err(|_| UkiError::TooLarge)?,
            0,
        );
        let h = table + (num_sections + i) * SECTION_HEADER_LEN;
        let mut header = [0u8; SECTION_HEADER_LEN];
        header[..8].copy_from_slice(&padded_name(s.name));
        header[8..12].copy_from_slice(&to_u32(s.data.len() as u64)?.to_le_bytes());
        header[12..16].copy_from_slice(&to_u32(next_rva)?.to_le_bytes());
        header[16..20].copy_from_slice(&to_u32(raw_size)?.to_le_bytes());
        header[20..24].copy_from_slice(&to_u32(raw_ptr)?.to_le_bytes());
        header[36..40].copy_from_slice(&DATA_READ_ONLY.to_le_bytes());
        out[h..h + SECTION_HEADER_LEN].copy_from_slice(&header);
        added_init_data += raw_size;
        next_rva = align_up(next_rva + s.data.len() as u64, u64::from(section_align));
    }

    let total_sections =
        u16::try_from(num_sections + sections.len()).map_err(|_| bad("too many sections"))?;
    out[coff + 2..coff + 4].copy_from_slice(&total_sections.to_le_bytes());
    let init_data = u64::from(field(8)?) + added_init_data;
    write_u32(&mut out, opt + 8, to_u32(init_data)?);
    write_u32(&mut out, opt + 56, to_u32(next_rva)?);
    if opt_size >= SECURITY_DIRECTORY + 8 {
        write_u32(&mut out, opt + SECURITY_DIRECTORY, 0);
        write_u32(&mut out, opt + SECURITY_DIRECTORY + 4, 0);
    }
    write_u32(&mut out, opt + 64, 0);
    let sum = pe_checksum(&out, opt + 64);
    write_u32(&mut out, opt + 64, sum);
    Ok(out)
}

/// The PE image checksum: 16-bit one's-complement-style sum of the file with
/// the checksum field taken as zero, plus the file length.
fn pe_checksum(data: &[u8], checksum_offset: usize) -> u32 {
    let mut sum: u64 = 0;
    for (i, chunk) in data.chunks(2).enumerate() {
        if i * 2 == checksum_offset || i * 2 == checksum_offset + 2 {
            continue;
        }
        let word = u16::from_le_bytes([chunk[0], *chunk.get(1).unwrap_or(&0)]);
        sum += u64::from(word);
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum = (sum & 0xffff) + (sum >> 16);
    // After folding, `sum` fits in 16 bits. The length is added modulo 2^32
    // as in the reference algorithm (images here are far below 4 GiB).
    let folded = u32::try_from(sum & 0xffff).unwrap_or(0);
    let len = u32::try_from(data.len() & 0xffff_ffff).unwrap_or(0);
    folded.wrapping_add(len)
}

fn padded_name(name: &str) -> [u8; 8] {
    let mut n = [0u8; 8];
    let len = name.len().min(8);
    n[..len].copy_from_slice(&name.as_bytes()[..len]);
    n
}

fn align_up(v: u64, a: u64) -> u64 {
    v.div_ceil(a) * a
}

fn to_u32(v: u64) -> Result<u32, UkiError> {
    u32::try_from(v).map_err(|_| UkiError::TooLarge)
}

fn read_u16(d: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_le_bytes(d.get(off..off + 2)?.try_into().ok()?))
}

fn read_u32(d: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(d.get(off..off + 4)?.try_into().ok()?))
}

fn write_u32(d: &mut [u8], off: usize, v: u32) {
    d[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

/// Section names and their (file offset, size), for `inspect` and tests.
pub fn list_sections(image: &[u8]) -> Result<Vec<(String, u32, u32)>, UkiError> {
    let bad = |m: &str| UkiError::BadStub(m.to_string());
    let pe = usize::try_from(read_u32(image, 0x3c).ok_or_else(|| bad("truncated"))?)
        .map_err(|_| bad("bad e_lfanew"))?;
    let coff = pe + 4;
    let n = usize::from(read_u16(image, coff + 2).ok_or_else(|| bad("truncated"))?);
    let opt_size = usize::from(read_u16(image, coff + 16).ok_or_else(|| bad("truncated"))?);
    let table = coff + 20 + opt_size;
    (0..n)
        .map(|i| {
            let h = table + i * SECTION_HEADER_LEN;
            let name = image
                .get(h..h + 8)
                .ok_or_else(|| bad("truncated section table"))?;
            let name = String::from_utf8_lossy(name)
                .trim_end_matches('\0')
                .to_string();
            let vsize = read_u32(image, h + 8).ok_or_else(|| bad("truncated"))?;
            let ptr = read_u32(image, h + 20).ok_or_else(|| bad("truncated"))?;
            Ok((name, ptr, vsize))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal PE32+ with one `.text` section and room for four more headers.
    fn tiny_stub() -> Vec<u8> {
        let mut d = vec![0u8; 0x400];
        d[..2].copy_from_slice(b"MZ");
        d[0x3c..0x40].copy_from_slice(&0x80u32.to_le_bytes());
        d[0x80..0x84].copy_from_slice(b"PE\0\0");
        let coff = 0x84;
        d[coff..coff + 2].copy_from_slice(&0x8664u16.to_le_bytes());
        d[coff + 2..coff + 4].copy_from_slice(&1u16.to_le_bytes());
        d[coff + 16..coff + 18].copy_from_slice(&240u16.to_le_bytes());
        let opt = coff + 20;
        d[opt..opt + 2].copy_from_slice(&PE32_PLUS.to_le_bytes());
        write_u32(&mut d, opt + 32, 0x1000);
        write_u32(&mut d, opt + 36, 0x200);
        write_u32(&mut d, opt + 56, 0x2000);
        write_u32(&mut d, opt + 60, 0x400);
        let table = opt + 240;
        d[table..table + 5].copy_from_slice(b".text");
        write_u32(&mut d, table + 8, 0x10);
        write_u32(&mut d, table + 12, 0x1000);
        write_u32(&mut d, table + 16, 0x200);
        write_u32(&mut d, table + 20, 0x400);
        d.resize(0x600, 0xcc);
        d
    }

    #[test]
    fn sections_are_appended_aligned_with_headers_updated() {
        let stub = tiny_stub();
        let uki = assemble(&stub, b"ID=lb\n", b"quiet", &[1; 700], &[2; 3]).unwrap();
        let s = list_sections(&uki).unwrap();
        let names: Vec<_> = s.iter().map(|(n, _, _)| n.as_str()).collect();
        assert_eq!(names, [".text", ".osrel", ".cmdline", ".initrd", ".linux"]);
        // Raw data at FileAlignment, contents where the header says.
        for (name, ptr, size) in &s[1..] {
            assert_eq!(ptr % 0x200, 0, "{name}");
            let data = &uki[*ptr as usize..(*ptr + *size) as usize];
            match name.as_str() {
                ".osrel" => assert_eq!(data, b"ID=lb\n"),
                ".initrd" => assert_eq!(data, &[1; 700][..]),
                ".linux" => assert_eq!(data, &[2; 3][..]),
                _ => {}
            }
        }
        // SizeOfImage covers the last section, rounded to SectionAlignment:
        // .text at 0x1000, then 0x2000, 0x3000, 0x4000 (700 bytes), 0x5000.
        let opt = 0x84 + 20;
        assert_eq!(read_u32(&uki, opt + 56), Some(0x6000));
        assert_eq!(uki.len() % 0x200, 0);
    }

    #[test]
    fn stub_without_room_or_not_pe_is_refused() {
        let mut stub = tiny_stub();
        write_u32(&mut stub, 0x84 + 20 + 240 + 20, 0x1b0); // .text raw data right after the table
        assert!(matches!(
            assemble(&stub, b"", b"", b"", b""),
            Err(UkiError::NoRoom { .. })
        ));
        assert!(matches!(
            assemble(b"ELF", b"", b"", b"", b""),
            Err(UkiError::BadStub(_))
        ));
    }
}
