//! Deterministic ustar OVA members: mode 0644, uid/gid 0, no user or group
//! names, one fixed mtime, bare names, no PAX or GNU extension headers.

use std::io::{self, Read, Write};

use tar::{Builder, EntryType, Header};

/// Member permission bits.
pub const MEMBER_MODE: u32 = 0o644;
/// ustar's name field holds 100 bytes; longer names need extensions.
const MAX_NAME_BYTES: usize = 100;
/// ustar's 11 octal digits for size and mtime; larger needs extensions.
const MAX_OCTAL_11: u64 = (1 << 33) - 1;

/// What went wrong writing the archive.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error(
        "OVA member name {name:?} must be a bare ASCII file name of at most {MAX_NAME_BYTES} bytes"
    )]
    BadName { name: String },
    #[error("OVA member {name} is {size} bytes; ustar without extensions holds at most 8 GiB")]
    TooLarge { name: String, size: u64 },
    #[error("mtime {mtime} does not fit ustar's 11 octal digits: check SOURCE_DATE_EPOCH")]
    BadMtime { mtime: u64 },
    #[error("writing OVA member {name}: {source}")]
    Write { name: String, source: io::Error },
    #[error("finishing OVA archive: {source}")]
    Finish { source: io::Error },
}

/// Appends members in call order; the OVA order (ovf, mf, disks) is the caller's.
pub struct ArchiveWriter<W: Write> {
    builder: Builder<W>,
    mtime: u64,
}

impl<W: Write> ArchiveWriter<W> {
    pub fn new(out: W, mtime: u64) -> Result<Self, ArchiveError> {
        if mtime > MAX_OCTAL_11 {
            return Err(ArchiveError::BadMtime { mtime });
        }
        Ok(Self {
            builder: Builder::new(out),
            mtime,
        })
    }

    /// Appends `size` bytes from `data` as member `name`.
    pub fn append<R: Read>(&mut self, name: &str, size: u64, data: R) -> Result<(), ArchiveError> {
        let bare = !name.is_empty()
            && name.len() <= MAX_NAME_BYTES
            && name.is_ascii()
            && !name.contains(['/', '\\', '\0'])
            && name != "."
            && name != "..";
        if !bare {
            return Err(ArchiveError::BadName {
                name: name.to_owned(),
            });
        }
        if size > MAX_OCTAL_11 {
            return Err(ArchiveError::TooLarge {
                name: name.to_owned(),
                size,
            });
        }
        let write_err = |source| ArchiveError::Write {
            name: name.to_owned(),
            source,
        };
        let mut header = Header::new_ustar();
        header.set_path(name).map_err(write_err)?;
        header.set_size(size);
        header.set_mode(MEMBER_MODE);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(self.mtime);
        header.set_entry_type(EntryType::Regular);
        header.set_cksum();
        // `take` plus the size check below: a short or long reader is an error,
        // not a silently corrupt archive.
        let mut counted = CountingReader {
            inner: data.take(size),
            read: 0,
        };
        self.builder
            .append(&header, &mut counted)
            .map_err(write_err)?;
        if counted.read != size {
            let msg = format!("member data ended after {} of {size} bytes", counted.read);
            return Err(write_err(io::Error::new(io::ErrorKind::UnexpectedEof, msg)));
        }
        Ok(())
    }

    /// Writes the two zero end blocks and returns the output.
    pub fn finish(self) -> Result<W, ArchiveError> {
        self.builder
            .into_inner()
            .map_err(|source| ArchiveError::Finish { source })
    }
}

struct CountingReader<R> {
    inner: R,
    read: u64,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive(mtime: u64) -> Vec<u8> {
        let mut w = ArchiveWriter::new(Vec::new(), mtime).unwrap();
        w.append("a.ovf", 3, &b"abc"[..]).unwrap();
        w.append("a.mf", 0, &b""[..]).unwrap();
        w.finish().unwrap()
    }

    #[test]
    fn header_is_plain_ustar() {
        let bytes = archive(1_700_000_000);
        let h = &bytes[..512];
        assert_eq!(&h[..6], b"a.ovf\0");
        assert_eq!(&h[100..108], b"0000644\0");
        assert_eq!(&h[108..116], b"0000000\0");
        assert_eq!(&h[116..124], b"0000000\0");
        assert_eq!(&h[124..136], b"00000000003\0");
        assert_eq!(&h[136..148], format!("{:011o}\0", 1_700_000_000).as_bytes());
        assert_eq!(h[156], b'0');
        assert_eq!(&h[257..265], b"ustar\x0000");
        assert!(
            h[265..329].iter().all(|&b| b == 0),
            "no user or group names"
        );
        // ovf header + data block, mf header, two end blocks.
        assert_eq!(bytes.len(), 5 * 512);
    }

    #[test]
    fn same_input_same_bytes() {
        assert_eq!(archive(5), archive(5));
        assert_ne!(archive(5), archive(6));
    }

    #[test]
    fn rejects_paths_and_short_data() {
        let mut w = ArchiveWriter::new(Vec::new(), 0).unwrap();
        assert!(matches!(
            w.append("dir/a.ovf", 1, &b"x"[..]),
            Err(ArchiveError::BadName { .. })
        ));
        assert!(matches!(
            w.append("a.ovf", 10, &b"x"[..]),
            Err(ArchiveError::Write { .. })
        ));
        assert!(matches!(
            ArchiveWriter::new(Vec::new(), 1 << 40),
            Err(ArchiveError::BadMtime { .. })
        ));
    }
}
