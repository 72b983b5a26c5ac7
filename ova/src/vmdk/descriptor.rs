//! The text descriptor embedded at sector 1 of a monolithic sparse VMDK.

use std::fmt::Write as _;

use super::VmdkError;

/// BIOS geometry vSphere expects for virtual disks: 255 heads, 63 sectors.
const HEADS: u64 = 255;
const SECTORS_PER_TRACK: u64 = 63;
/// The geometry's cylinder count saturates here.
const MAX_CYLINDERS: u64 = 65535;

/// The descriptor fields our reader and `inspect` care about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    pub cid: u32,
    pub parent_cid: u32,
    pub create_type: String,
    pub extent_sectors: u64,
    pub extent_file: String,
}

/// The descriptor text for a streamOptimized extent of `sectors` sectors in
/// file `extent_file`. The caller checks `extent_file` holds no quote or newline.
pub fn descriptor_text(cid: u32, sectors: u64, extent_file: &str) -> String {
    let cylinders = sectors
        .div_ceil(HEADS * SECTORS_PER_TRACK)
        .min(MAX_CYLINDERS);
    let mut s = String::new();
    // Writing to a String cannot fail.
    let _ = write!(
        s,
        "# Disk DescriptorFile\n\
         version=1\n\
         CID={cid:08x}\n\
         parentCID=ffffffff\n\
         createType=\"streamOptimized\"\n\
         \n\
         # Extent description\n\
         RW {sectors} SPARSE \"{extent_file}\"\n\
         \n\
         # The Disk Data Base\n\
         #DDB\n\
         \n\
         ddb.adapterType = \"lsilogic\"\n\
         ddb.geometry.cylinders = \"{cylinders}\"\n\
         ddb.geometry.heads = \"{HEADS}\"\n\
         ddb.geometry.sectors = \"{SECTORS_PER_TRACK}\"\n\
         ddb.virtualHWVersion = \"4\"\n"
    );
    s
}

/// Parses the fields of [`Descriptor`] out of descriptor text.
pub fn parse_descriptor(text: &str) -> Result<Descriptor, VmdkError> {
    let bad = |reason: String| VmdkError::Descriptor { reason };
    let mut cid = None;
    let mut parent_cid = None;
    let mut create_type = None;
    let mut extent = None;
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        if let Some((key, value)) = line.split_once('=') {
            let value = value.trim().trim_matches('"');
            match key.trim() {
                "CID" => cid = Some(parse_cid(value, "CID")?),
                "parentCID" => parent_cid = Some(parse_cid(value, "parentCID")?),
                "createType" => create_type = Some(value.to_owned()),
                _ => {}
            }
        } else if extent.is_none() {
            extent = Some(parse_extent(line)?);
        } else {
            return Err(bad(format!(
                "second extent line {line:?}: only monolithic files are supported"
            )));
        }
    }
    let (extent_sectors, extent_file) =
        extent.ok_or_else(|| bad("no extent line (RW <sectors> SPARSE \"file\")".into()))?;
    Ok(Descriptor {
        cid: cid.ok_or_else(|| bad("no CID line".into()))?,
        parent_cid: parent_cid.unwrap_or(u32::MAX),
        create_type: create_type.ok_or_else(|| bad("no createType line".into()))?,
        extent_sectors,
        extent_file,
    })
}

fn parse_cid(value: &str, key: &str) -> Result<u32, VmdkError> {
    u32::from_str_radix(value, 16).map_err(|e| VmdkError::Descriptor {
        reason: format!("{key}={value:?} is not 8 hex digits: {e}"),
    })
}

/// `RW 2048 SPARSE "disk.vmdk"` -> (2048, "disk.vmdk").
fn parse_extent(line: &str) -> Result<(u64, String), VmdkError> {
    let bad = || VmdkError::Descriptor {
        reason: format!("extent line {line:?} is not `RW <sectors> SPARSE \"<file>\"`"),
    };
    let mut parts = line.splitn(4, ' ');
    let (Some(_access), Some(sectors), Some("SPARSE"), Some(file)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let sectors = sectors.parse().map_err(|_| bad())?;
    let file = file
        .strip_prefix('"')
        .and_then(|f| f.strip_suffix('"'))
        .ok_or_else(bad)?;
    Ok((sectors, file.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_what_vmware_writes() {
        let text = descriptor_text(0x0123_abcd, 4_194_304, "lb-disk1.vmdk");
        assert!(text
            .starts_with("# Disk DescriptorFile\nversion=1\nCID=0123abcd\nparentCID=ffffffff\n"));
        assert!(text.contains("createType=\"streamOptimized\"\n"));
        assert!(text.contains("\nRW 4194304 SPARSE \"lb-disk1.vmdk\"\n"));
        // 4194304 / 16065 = 261.08 -> 262 cylinders.
        assert!(text.contains("ddb.geometry.cylinders = \"262\"\n"));
        assert!(text.contains("ddb.geometry.heads = \"255\"\nddb.geometry.sectors = \"63\"\n"));
        assert!(text.contains("ddb.adapterType = \"lsilogic\"\n"));
        assert!(text.contains("ddb.virtualHWVersion = \"4\"\n"));
    }

    #[test]
    fn cylinders_saturate() {
        let text = descriptor_text(1, 1 << 40, "x.vmdk");
        assert!(text.contains("ddb.geometry.cylinders = \"65535\"\n"));
    }

    #[test]
    fn parse_inverts_text() {
        let d = parse_descriptor(&descriptor_text(0xdead_beef, 2048, "a b.vmdk")).unwrap();
        assert_eq!(
            d,
            Descriptor {
                cid: 0xdead_beef,
                parent_cid: u32::MAX,
                create_type: "streamOptimized".into(),
                extent_sectors: 2048,
                extent_file: "a b.vmdk".into(),
            }
        );
    }

    #[test]
    fn parse_rejects_missing_cid() {
        let text = descriptor_text(1, 8, "x.vmdk").replace("CID=00000001\n", "");
        assert!(matches!(
            parse_descriptor(&text),
            Err(VmdkError::Descriptor { .. })
        ));
    }

    #[test]
    fn parse_rejects_bad_extent() {
        let text = descriptor_text(1, 8, "x.vmdk").replace("SPARSE", "FLAT");
        assert!(matches!(
            parse_descriptor(&text),
            Err(VmdkError::Descriptor { .. })
        ));
    }
}
