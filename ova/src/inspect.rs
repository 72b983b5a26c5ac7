//! Reads an OVA back: members, manifest hashes, descriptor and VMDK header.
//! `image-builder inspect` prints the [`OvaReport`] (its `Display`).

use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use crate::manifest::{self, HashingWriter, ManifestError};
use crate::ovf::{self, OvfError, ParsedDescriptor};
use crate::spec::{DiskController, Firmware};
use crate::vmdk::{self, Header, VmdkError, DESCRIPTOR_SECTORS, SECTOR_BYTES};

/// Descriptors and manifests are a few KiB; anything this big is not ours.
const MAX_TEXT_MEMBER_BYTES: u64 = 16 << 20;
/// The VMDK's header and descriptor sectors, read for the report.
const VMDK_HEAD_BYTES: u64 = (1 + DESCRIPTOR_SECTORS) * SECTOR_BYTES;

/// One archive member.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MemberReport {
    pub name: String,
    pub size: u64,
    pub mode: u32,
    pub mtime: u64,
    /// Lowercase hex SHA-256 of the member's data.
    pub sha256: String,
}

/// The VMDK as its header and descriptor describe it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VmdkReport {
    pub member: String,
    pub create_type: String,
    pub capacity_bytes: u64,
    pub compressed: bool,
    pub cid: u32,
}

/// Everything `inspect` found; every manifest hash has been checked.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OvaReport {
    pub path: PathBuf,
    pub members: Vec<MemberReport>,
    pub descriptor: ParsedDescriptor,
    pub vmdk: Vec<VmdkReport>,
}

/// What is wrong with an OVA.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error("reading OVA {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("OVA member {member}: {reason}")]
    Member { member: String, reason: String },
    #[error("OVA has no members: not an OVA (ustar) file")]
    Empty,
    #[error("OVA's first member is {found}, but the .ovf descriptor must come first")]
    OvfNotFirst { found: String },
    #[error("OVA has no .mf manifest: its members cannot be checked")]
    NoManifest,
    #[error("manifest {member}: {source}")]
    Manifest {
        member: String,
        source: ManifestError,
    },
    #[error(
        "OVA member {member} is corrupted: its SHA256 is {actual}, the manifest says {expected}"
    )]
    HashMismatch {
        member: String,
        expected: String,
        actual: String,
    },
    #[error("OVA member {member} is not listed in the manifest")]
    NotInManifest { member: String },
    #[error("manifest lists {member}, which the OVA does not contain")]
    MissingMember { member: String },
    #[error("descriptor {member}: {source}")]
    Descriptor { member: String, source: OvfError },
    #[error("descriptor says {member} is {expected} bytes, the OVA member is {actual}")]
    SizeMismatch {
        member: String,
        expected: u64,
        actual: u64,
    },
    #[error("descriptor references {member}, which the OVA does not contain")]
    MissingFile { member: String },
    #[error("VMDK {member}: {source}")]
    Vmdk { member: String, source: VmdkError },
    #[error(
        "VMDK {member} holds {actual} bytes of disk, the descriptor's Disk capacity is {expected}"
    )]
    CapacityMismatch {
        member: String,
        expected: u64,
        actual: u64,
    },
}

/// Lists the members, checks every manifest hash and size, and parses the
/// descriptor and VMDK headers. Any mismatch is an error naming the member.
pub fn inspect(path: &Path) -> Result<OvaReport, InspectError> {
    let read_err = |source| InspectError::Read {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(read_err)?;
    let mut archive = tar::Archive::new(BufReader::with_capacity(1 << 20, file));
    let mut members = Vec::new();
    let mut texts = Vec::new();
    let mut heads = Vec::new();
    for entry in archive.entries().map_err(read_err)? {
        let mut entry = entry.map_err(read_err)?;
        let header = entry.header();
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let member_err = |reason: String| InspectError::Member {
            member: name.clone(),
            reason,
        };
        if header.entry_type() != tar::EntryType::Regular || name.contains('/') {
            return Err(member_err("is not a regular file with a bare name".into()));
        }
        let mode = header.mode().map_err(|e| member_err(e.to_string()))?;
        let mtime = header.mtime().map_err(|e| member_err(e.to_string()))?;
        let size = entry.size();
        let keep = if name.ends_with(".ovf") || name.ends_with(".mf") {
            if size > MAX_TEXT_MEMBER_BYTES {
                return Err(member_err(format!(
                    "is {size} bytes, too large for a descriptor or manifest"
                )));
            }
            size
        } else {
            VMDK_HEAD_BYTES.min(size)
        };
        let mut kept = Vec::new();
        (&mut entry)
            .take(keep)
            .read_to_end(&mut kept)
            .map_err(read_err)?;
        let mut hashed = HashingWriter::new(io::sink());
        hashed.write_all(&kept).map_err(read_err)?;
        io::copy(&mut entry, &mut hashed).map_err(read_err)?;
        let (_, digest, _) = hashed.finish();
        members.push(MemberReport {
            name: name.clone(),
            size,
            mode,
            mtime,
            sha256: manifest::to_hex(&digest),
        });
        if name.ends_with(".ovf") || name.ends_with(".mf") {
            texts.push((name, kept));
        } else if name.ends_with(".vmdk") {
            heads.push((name, kept));
        }
    }
    check(path, members, texts, heads)
}

type Kept = Vec<(String, Vec<u8>)>;

fn check(
    path: &Path,
    members: Vec<MemberReport>,
    texts: Kept,
    heads: Kept,
) -> Result<OvaReport, InspectError> {
    let first = members.first().ok_or(InspectError::Empty)?;
    if !first.name.ends_with(".ovf") {
        return Err(InspectError::OvfNotFirst {
            found: first.name.clone(),
        });
    }
    let (mf_name, mf) = texts
        .iter()
        .find(|(n, _)| n.ends_with(".mf"))
        .ok_or(InspectError::NoManifest)?;
    let mf_text = String::from_utf8_lossy(mf);
    let entries = manifest::parse(&mf_text).map_err(|source| InspectError::Manifest {
        member: mf_name.clone(),
        source,
    })?;
    for entry in &entries {
        let member = members
            .iter()
            .find(|m| m.name == entry.file)
            .ok_or_else(|| InspectError::MissingMember {
                member: entry.file.clone(),
            })?;
        let expected = manifest::to_hex(&entry.sha256);
        if member.sha256 != expected {
            return Err(InspectError::HashMismatch {
                member: member.name.clone(),
                expected,
                actual: member.sha256.clone(),
            });
        }
    }
    if let Some(m) = members
        .iter()
        .find(|m| &m.name != mf_name && !entries.iter().any(|e| e.file == m.name))
    {
        return Err(InspectError::NotInManifest {
            member: m.name.clone(),
        });
    }

    let (ovf_name, ovf_bytes) = &texts[0];
    let descriptor =
        ovf::parse_descriptor(ovf_bytes).map_err(|source| InspectError::Descriptor {
            member: ovf_name.clone(),
            source,
        })?;
    for file in &descriptor.files {
        let member = members
            .iter()
            .find(|m| m.name == file.href)
            .ok_or_else(|| InspectError::MissingFile {
                member: file.href.clone(),
            })?;
        if let Some(expected) = file.size.filter(|&s| s != member.size) {
            return Err(InspectError::SizeMismatch {
                member: member.name.clone(),
                expected,
                actual: member.size,
            });
        }
    }
    let mut vmdk = Vec::new();
    for (name, head) in heads {
        let report = vmdk_report(&name, &head).map_err(|source| InspectError::Vmdk {
            member: name.clone(),
            source,
        })?;
        if name == descriptor.disk.file_name
            && report.capacity_bytes != descriptor.disk.capacity_bytes
        {
            return Err(InspectError::CapacityMismatch {
                member: name,
                expected: descriptor.disk.capacity_bytes,
                actual: report.capacity_bytes,
            });
        }
        vmdk.push(report);
    }
    Ok(OvaReport {
        path: path.to_owned(),
        members,
        descriptor,
        vmdk,
    })
}

/// Reads the leading header and descriptor (the grains are covered by the hash).
fn vmdk_report(name: &str, head: &[u8]) -> Result<VmdkReport, VmdkError> {
    let sector: &[u8; 512] =
        head.get(..512)
            .and_then(|s| s.try_into().ok())
            .ok_or(VmdkError::Truncated {
                len: head.len() as u64,
            })?;
    let header = Header::decode(sector, "header")?;
    let desc = String::from_utf8_lossy(&head[512..]);
    let descriptor = vmdk::parse_descriptor(desc.trim_end_matches('\0'))?;
    Ok(VmdkReport {
        member: name.to_owned(),
        create_type: descriptor.create_type,
        capacity_bytes: header.capacity_sectors.saturating_mul(SECTOR_BYTES),
        compressed: header.flags & vmdk::FLAG_COMPRESSED != 0,
        cid: descriptor.cid,
    })
}

impl fmt::Display for OvaReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = &self.descriptor;
        let spec = &d.spec;
        let hw = &spec.hardware;
        writeln!(
            f,
            "{}: manifest OK ({} members)",
            self.path.display(),
            self.members.len()
        )?;
        for m in &self.members {
            writeln!(f, "  {:o} {:>12}  {}  {}", m.mode, m.size, m.sha256, m.name)?;
        }
        for v in &self.vmdk {
            writeln!(
                f,
                "disk: {} {}{}, capacity {} ({} bytes), CID {:08x}",
                v.member,
                v.create_type,
                if v.compressed { " compressed" } else { "" },
                human(v.capacity_bytes),
                v.capacity_bytes,
                v.cid
            )?;
        }
        let p = &spec.product;
        writeln!(
            f,
            "product: {} {} ({}) by {}",
            p.product, p.version, p.full_version, p.vendor
        )?;
        writeln!(
            f,
            "virtual system: {} ({}, {})",
            spec.name, hw.hw_version, spec.guest_os
        )?;
        let controller = match hw.disk_controller {
            DiskController::Nvme => "NVMe",
            DiskController::Pvscsi => "pvscsi",
        };
        writeln!(
            f,
            "  cpus {}, memory {} MiB, disk on {controller}",
            hw.cpus, hw.memory_mib
        )?;
        writeln!(
            f,
            "  nic vmxnet3 on {:?}, cdrom {}, video {}",
            hw.network_name,
            yes_no(hw.cdrom),
            yes_no(hw.video)
        )?;
        let firmware = match hw.firmware {
            Firmware::Efi => "efi",
            Firmware::Bios => "bios",
        };
        writeln!(
            f,
            "  firmware {firmware}, secure boot {}, power off {}, transport {}",
            if hw.secure_boot { "on" } else { "off" },
            if hw.soft_power_off { "soft" } else { "hard" },
            spec.transport.as_ovf()
        )?;
        let count: usize = spec.properties.iter().map(|g| g.properties.len()).sum();
        writeln!(f, "properties ({count}):")?;
        for group in &spec.properties {
            if !group.category.is_empty() {
                writeln!(f, "  [{}]", group.category)?;
            }
            for prop in &group.properties {
                let mut flags = Vec::new();
                if !prop.user_configurable {
                    flags.push("hidden".to_owned());
                }
                if prop.password {
                    flags.push("password".to_owned());
                }
                if let Some(q) = &prop.qualifiers {
                    flags.push(q.clone());
                }
                if let Some(q) = &prop.vmw_qualifiers {
                    flags.push(format!("vmw:{q}"));
                }
                let flags = if flags.is_empty() {
                    String::new()
                } else {
                    format!(" [{}]", flags.join(", "))
                };
                writeln!(
                    f,
                    "    {} ({}) = {:?}{flags}: {}",
                    prop.env_key(),
                    prop.kind,
                    prop.default,
                    prop.label
                )?;
            }
        }
        Ok(())
    }
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// Bytes as MiB or GiB with one decimal, for people.
fn human(bytes: u64) -> String {
    const MIB: u64 = 1 << 20;
    const GIB: u64 = 1 << 30;
    if bytes >= GIB {
        format!("{}.{} GiB", bytes / GIB, bytes % GIB * 10 / GIB)
    } else {
        format!("{}.{} MiB", bytes / MIB, bytes % MIB * 10 / MIB)
    }
}
