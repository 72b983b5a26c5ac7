//! `write_ova`: raw image + spec -> `<name>-<version>.ova` in `out_dir`.
//!
//! Steps, each streaming so the image is never held in memory:
//! 1. convert the image to a streamOptimized VMDK in a temp file (its size
//!    goes into the descriptor's `File ovf:size`, so it must exist first);
//! 2. set the VMDK's CID from the writer's content hash (same image, same
//!    bytes; hashing only non-zero grains keeps big sparse images fast), then
//!    hash the VMDK for the manifest;
//! 3. write descriptor and manifest in memory (a few KiB);
//! 4. write the ustar OVA (ovf, mf, vmdk) to a temp file, then rename it.

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::archive::{ArchiveError, ArchiveWriter};
use crate::manifest::{self, HashingWriter, ManifestEntry};
use crate::ovf::{self, DiskRef, OvfError};
use crate::spec::OvfSpec;
use crate::vmdk::{self, StreamParams, VmdkError, VmdkStats};

/// zlib level for grains: 6 is zlib's default balance of size and speed.
pub const COMPRESSION_LEVEL: u32 = 6;
/// Read and write buffer size.
const IO_BUFFER_BYTES: usize = 1 << 20;

/// One OVA member as written.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MemberSummary {
    pub name: String,
    pub size: u64,
    /// Lowercase hex SHA-256.
    pub sha256: String,
}

/// What `write_ova` produced.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OvaSummary {
    pub ova_path: PathBuf,
    pub ova_size: u64,
    pub ova_sha256: String,
    /// ovf, mf, vmdk, in archive order.
    pub members: Vec<MemberSummary>,
    pub image_size: u64,
    pub vmdk: VmdkStats,
}

/// What went wrong packaging the OVA.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    #[error("reading raw image {}: {source}", path.display())]
    ReadImage { path: PathBuf, source: io::Error },
    #[error("converting {} to a streamOptimized VMDK: {source}", path.display())]
    Vmdk { path: PathBuf, source: VmdkError },
    #[error("OVF descriptor: {0}")]
    Ovf(#[from] OvfError),
    #[error("OVA archive: {0}")]
    Archive(#[from] ArchiveError),
    #[error("writing in output directory {}: {source}", path.display())]
    Output { path: PathBuf, source: io::Error },
}

/// Member names for a spec: `<name>-<version>.ovf`, `.mf`, `-disk1.vmdk`, `.ova`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OvaNames {
    pub ovf: String,
    pub mf: String,
    pub vmdk: String,
    pub ova: String,
}

impl OvaNames {
    pub fn for_spec(spec: &OvfSpec) -> Self {
        let stem = format!("{}-{}", spec.name, spec.product.version);
        Self {
            ovf: format!("{stem}.ovf"),
            mf: format!("{stem}.mf"),
            vmdk: format!("{stem}-disk1.vmdk"),
            ova: format!("{stem}.ova"),
        }
    }
}

/// Writes `out_dir/<name>-<version>.ova` from the raw image; `mtime` (the
/// caller's SOURCE_DATE_EPOCH) stamps every member. Same inputs, same bytes.
pub fn write_ova(
    raw_image: &Path,
    spec: &OvfSpec,
    out_dir: &Path,
    mtime: u64,
) -> Result<OvaSummary, PackageError> {
    let names = OvaNames::for_spec(spec);
    let image_err = |source| PackageError::ReadImage {
        path: raw_image.to_owned(),
        source,
    };
    let out_err = |source| PackageError::Output {
        path: out_dir.to_owned(),
        source,
    };
    let image_size = fs::metadata(raw_image).map_err(image_err)?.len();
    // Validate before the slow part, with the disk size known.
    let probe = DiskRef {
        file_name: names.vmdk.clone(),
        file_size: 0,
        capacity_bytes: image_size,
    };
    ovf::validate(spec, &probe)?;
    let image = File::open(raw_image).map_err(image_err)?;

    fs::create_dir_all(out_dir).map_err(out_err)?;
    let vmdk_file = tempfile::NamedTempFile::new_in(out_dir).map_err(out_err)?;
    let (stats, vmdk_digest) =
        write_vmdk(image, image_size, &vmdk_file, &names.vmdk).map_err(|source| {
            PackageError::Vmdk {
                path: raw_image.to_owned(),
                source,
            }
        })?;
    let vmdk_size = stats.vmdk_bytes;

    let disk = DiskRef {
        file_name: names.vmdk.clone(),
        file_size: vmdk_size,
        capacity_bytes: image_size,
    };
    let descriptor = ovf::write_descriptor(spec, &disk)?;
    let ovf_digest: [u8; 32] = Sha256::digest(&descriptor).into();
    let mf = manifest::render(&[
        ManifestEntry {
            file: names.ovf.clone(),
            sha256: ovf_digest,
        },
        ManifestEntry {
            file: names.vmdk.clone(),
            sha256: vmdk_digest,
        },
    ]);
    let mf_digest: [u8; 32] = Sha256::digest(mf.as_bytes()).into();

    let ova_file = tempfile::NamedTempFile::new_in(out_dir).map_err(out_err)?;
    let hashed = HashingWriter::new(BufWriter::with_capacity(
        IO_BUFFER_BYTES,
        ova_file.as_file(),
    ));
    let mut archive = ArchiveWriter::new(hashed, mtime)?;
    archive.append(&names.ovf, descriptor.len() as u64, &descriptor[..])?;
    archive.append(&names.mf, mf.len() as u64, mf.as_bytes())?;
    let vmdk_read = vmdk_file.reopen().map_err(out_err)?;
    archive.append(
        &names.vmdk,
        vmdk_size,
        BufReader::with_capacity(IO_BUFFER_BYTES, vmdk_read),
    )?;
    let (buffered, ova_digest, ova_size) = archive.finish()?.finish();
    // No fsync: a build output; a crash mid-build leaves only a temp file behind.
    buffered.into_inner().map_err(|e| out_err(e.into_error()))?;
    let ova_path = out_dir.join(&names.ova);
    ova_file.persist(&ova_path).map_err(|e| out_err(e.error))?;
    set_mode_0644(&ova_path).map_err(out_err)?;

    let member = |name: &str, size: u64, digest: &[u8; 32]| MemberSummary {
        name: name.to_owned(),
        size,
        sha256: manifest::to_hex(digest),
    };
    Ok(OvaSummary {
        ova_path,
        ova_size,
        ova_sha256: manifest::to_hex(&ova_digest),
        members: vec![
            member(&names.ovf, descriptor.len() as u64, &ovf_digest),
            member(&names.mf, mf.len() as u64, &mf_digest),
            member(&names.vmdk, vmdk_size, &vmdk_digest),
        ],
        image_size,
        vmdk: stats,
    })
}

/// Converts the image into `file`, sets the CID from the content hash, and
/// returns the stats and the finished VMDK's SHA-256.
fn write_vmdk(
    image: File,
    image_size: u64,
    file: &tempfile::NamedTempFile,
    extent_file: &str,
) -> Result<(VmdkStats, [u8; 32]), VmdkError> {
    let params = StreamParams {
        extent_file,
        cid: 0,
        compression_level: COMPRESSION_LEVEL,
    };
    let input = BufReader::with_capacity(IO_BUFFER_BYTES, image);
    let mut out = BufWriter::with_capacity(IO_BUFFER_BYTES, file.as_file());
    let stats = vmdk::write_stream_optimized(input, image_size, &mut out, &params)?;
    drop(out);
    let cid = vmdk::cid_from_digest(&stats.content_sha256);
    vmdk::rewrite_cid(&mut file.as_file(), cid, image_size, extent_file)?;
    let mut hashed = HashingWriter::new(io::sink());
    let mut reader = BufReader::with_capacity(IO_BUFFER_BYTES, file.reopen().map_err(read_err)?);
    io::copy(&mut reader, &mut hashed).map_err(read_err)?;
    let (_, digest, len) = hashed.finish();
    if len != stats.vmdk_bytes {
        let msg = format!(
            "temp VMDK is {len} bytes, {} were written",
            stats.vmdk_bytes
        );
        return Err(read_err(io::Error::other(msg)));
    }
    Ok((stats, digest))
}

fn read_err(source: io::Error) -> VmdkError {
    VmdkError::Read { source }
}

/// Temp files are created 0600; the OVA is an ordinary readable output.
fn set_mode_0644(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(0o644))
}
