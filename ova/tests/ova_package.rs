//! The whole OVA: member order, manifest, sizes, qemu-img on the extracted
//! VMDK, reproducibility, and inspect catching corruption.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use ova::manifest;
use ova::{inspect, write_ova, InspectError, OvfSpec};
use sha2::{Digest, Sha256};

const MTIME: u64 = 1_700_000_000;

/// 6 MiB + 3 sectors: data at the start, a run in the middle, a partial last grain.
fn raw_image(dir: &Path) -> PathBuf {
    let len = 6 * 1024 * 1024 + 3 * 512;
    let mut img = vec![0u8; len];
    for (i, b) in img[..200_000].iter_mut().enumerate() {
        *b = u8::try_from(i % 251).unwrap();
    }
    img[3_000_000..3_100_000].fill(0x5a);
    img[len - 100..].fill(0xee);
    let path = dir.join("disk.img");
    fs::write(&path, img).unwrap();
    path
}

/// (name, bytes) of every member, in archive order.
fn members(ova: &Path) -> Vec<(String, Vec<u8>)> {
    let mut archive = tar::Archive::new(fs::File::open(ova).unwrap());
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let h = e.header();
            assert_eq!(h.mode().unwrap(), 0o644);
            assert_eq!((h.uid().unwrap(), h.gid().unwrap()), (0, 0));
            assert_eq!(h.mtime().unwrap(), MTIME);
            assert!(h.as_ustar().is_some(), "ustar header");
            assert_eq!(
                h.entry_type(),
                tar::EntryType::Regular,
                "no PAX or GNU extension entries"
            );
            let name = e.path().unwrap().to_string_lossy().into_owned();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            (name, data)
        })
        .collect()
}

#[test]
fn ova_members_manifest_and_disk_check_out() {
    let dir = tempfile::tempdir().unwrap();
    let raw = raw_image(dir.path());
    let out = dir.path().join("out");
    let summary = write_ova(&raw, &OvfSpec::example(), &out, MTIME).unwrap();
    assert_eq!(summary.ova_path, out.join("lb-0.1.0.ova"));
    assert_eq!(
        summary.ova_size,
        fs::metadata(&summary.ova_path).unwrap().len()
    );
    // Only the OVA is left behind: the temp VMDK is gone.
    assert_eq!(fs::read_dir(&out).unwrap().count(), 1);

    // `tar tvf` shows ovf, mf, vmdk in that order.
    let listing = Command::new("tar")
        .arg("tvf")
        .arg(&summary.ova_path)
        .output()
        .unwrap();
    assert!(listing.status.success());
    let names: Vec<String> = String::from_utf8(listing.stdout)
        .unwrap()
        .lines()
        .map(|l| l.split_whitespace().last().unwrap().to_owned())
        .collect();
    assert_eq!(
        names,
        ["lb-0.1.0.ovf", "lb-0.1.0.mf", "lb-0.1.0-disk1.vmdk"]
    );

    let members = members(&summary.ova_path);
    let (ovf_name, ovf) = &members[0];
    let (_, mf) = &members[1];
    let (vmdk_name, vmdk) = &members[2];

    // Every manifest line matches its member, and every other member is listed.
    let entries = manifest::parse(std::str::from_utf8(mf).unwrap()).unwrap();
    assert_eq!(entries.len(), 2);
    for e in &entries {
        let data = &members.iter().find(|(n, _)| *n == e.file).unwrap().1;
        let digest: [u8; 32] = Sha256::digest(data).into();
        assert_eq!(digest, e.sha256, "{}", e.file);
    }
    assert_eq!(
        std::str::from_utf8(mf).unwrap(),
        format!(
            "SHA256({ovf_name})= {}\nSHA256({vmdk_name})= {}\n",
            summary.members[0].sha256, summary.members[2].sha256
        )
    );

    // `sha256sum -c` agrees with every manifest line (rewritten to its format).
    let extracted = dir.path().join("extracted");
    fs::create_dir(&extracted).unwrap();
    for (name, data) in &members {
        fs::write(extracted.join(name), data).unwrap();
    }
    let sums: String = entries
        .iter()
        .map(|e| format!("{}  {}\n", manifest::to_hex(&e.sha256), e.file))
        .collect();
    fs::write(extracted.join("SHA256SUMS"), sums).unwrap();
    let check = Command::new("sha256sum")
        .args(["-c", "SHA256SUMS"])
        .current_dir(&extracted)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );

    // The descriptor's File size is the member's size; capacity the image's.
    let parsed = ova::ovf::parse_descriptor(ovf).unwrap();
    assert_eq!(parsed.disk.file_name, *vmdk_name);
    assert_eq!(parsed.disk.file_size, vmdk.len() as u64);
    assert_eq!(
        parsed.disk.capacity_bytes,
        fs::metadata(&raw).unwrap().len()
    );
    assert_eq!(parsed.spec, OvfSpec::example());

    // qemu-img agrees on format and content.
    let vmdk_path = dir.path().join(vmdk_name);
    fs::write(&vmdk_path, vmdk).unwrap();
    let info = Command::new("qemu-img")
        .args(["info", "--output=json"])
        .arg(&vmdk_path)
        .output()
        .unwrap();
    let info: String = String::from_utf8(info.stdout)
        .unwrap()
        .split_whitespace()
        .collect();
    assert!(
        info.contains("\"create-type\":\"streamOptimized\""),
        "{info}"
    );
    assert!(info.contains("\"compressed\":true"), "{info}");
    let back = dir.path().join("back.img");
    let status = Command::new("qemu-img")
        .args(["convert", "-f", "vmdk", "-O", "raw"])
        .arg(&vmdk_path)
        .arg(&back)
        .status()
        .unwrap();
    assert!(status.success());
    assert!(
        fs::read(&back).unwrap() == fs::read(&raw).unwrap(),
        "qemu-img convert differs from the image"
    );
}

#[test]
fn two_writes_give_identical_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let raw = raw_image(dir.path());
    let a = write_ova(&raw, &OvfSpec::example(), &dir.path().join("a"), MTIME).unwrap();
    let b = write_ova(&raw, &OvfSpec::example(), &dir.path().join("b"), MTIME).unwrap();
    assert_eq!(a.ova_sha256, b.ova_sha256);
    assert!(fs::read(&a.ova_path).unwrap() == fs::read(&b.ova_path).unwrap());
}

#[test]
fn inspect_reports_hardware_and_properties() {
    let dir = tempfile::tempdir().unwrap();
    let raw = raw_image(dir.path());
    let summary = write_ova(&raw, &OvfSpec::example(), dir.path(), MTIME).unwrap();
    let report = inspect(&summary.ova_path).unwrap();
    assert_eq!(report.descriptor.spec, OvfSpec::example());
    let names: Vec<_> = report.members.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names,
        ["lb-0.1.0.ovf", "lb-0.1.0.mf", "lb-0.1.0-disk1.vmdk"]
    );
    assert_eq!(report.vmdk[0].create_type, "streamOptimized");
    let text = report.to_string();
    for needle in [
        "manifest OK (3 members)",
        "lb-0.1.0-disk1.vmdk streamOptimized compressed",
        "vmx-13",
        "cpus 2, memory 1024 MiB, disk on NVMe",
        "nic vmxnet3 on \"VM Network\"",
        "firmware efi, secure boot off, power off soft, transport com.vmware.guestInfo",
        "[Network]",
        "network.address (string) = \"\" [vmw:Ip]",
        "admin.password (string) = \"\" [password]",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
}

/// Flips one byte inside `member`'s data in the OVA file.
fn corrupt(ova: &Path, member: &str, offset_in_member: u64) {
    let mut archive = tar::Archive::new(fs::File::open(ova).unwrap());
    let start = archive
        .entries()
        .unwrap()
        .map(Result::unwrap)
        .find(|e| e.path().unwrap().to_string_lossy() == member)
        .unwrap()
        .raw_file_position();
    let mut bytes = fs::read(ova).unwrap();
    let at = usize::try_from(start + offset_in_member).unwrap();
    bytes[at] ^= 0x01;
    fs::write(ova, bytes).unwrap();
}

#[test]
fn inspect_names_a_corrupted_member() {
    let dir = tempfile::tempdir().unwrap();
    let raw = raw_image(dir.path());
    for (member, offset) in [("lb-0.1.0-disk1.vmdk", 70_000), ("lb-0.1.0.ovf", 10)] {
        let out = dir.path().join(member);
        let summary = write_ova(&raw, &OvfSpec::example(), &out, MTIME).unwrap();
        corrupt(&summary.ova_path, member, offset);
        let err = inspect(&summary.ova_path).unwrap_err();
        assert!(
            matches!(&err, InspectError::HashMismatch { member: m, .. } if m == member),
            "{err}"
        );
        assert!(err.to_string().contains(member), "{err}");
    }
}

#[test]
fn write_ova_names_a_bad_image() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("odd.img");
    fs::write(&raw, vec![1u8; 1000]).unwrap();
    let err = write_ova(&raw, &OvfSpec::example(), dir.path(), MTIME).unwrap_err();
    assert!(err.to_string().contains("1000"), "{err}");
    let err = write_ova(
        &dir.path().join("missing.img"),
        &OvfSpec::example(),
        dir.path(),
        MTIME,
    )
    .unwrap_err();
    assert!(err.to_string().contains("missing.img"), "{err}");
}

#[test]
fn inspect_rejects_what_is_not_an_ova() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.ova");
    fs::write(&junk, vec![0x41u8; 4096]).unwrap();
    assert!(inspect(&junk).is_err());
    fs::write(&junk, vec![0u8; 4096]).unwrap();
    assert!(matches!(inspect(&junk), Err(InspectError::Empty)));
    let raw = raw_image(dir.path());
    let summary = write_ova(&raw, &OvfSpec::example(), dir.path(), MTIME).unwrap();
    let bytes = fs::read(&summary.ova_path).unwrap();
    fs::write(&junk, &bytes[..bytes.len() / 2]).unwrap();
    let err = inspect(&junk).unwrap_err();
    assert!(matches!(err, InspectError::Read { .. }), "{err}");
}

fn small_ova() -> &'static [u8] {
    static OVA: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    OVA.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("small.img");
        let mut img = vec![0u8; 200 * 512];
        img[1000..3000].fill(0x33);
        fs::write(&raw, img).unwrap();
        let summary = write_ova(&raw, &OvfSpec::example(), dir.path(), MTIME).unwrap();
        fs::read(summary.ova_path).unwrap()
    })
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
    /// A byte changed anywhere gives a report or an error, never a panic; a
    /// change inside a member's data is always caught.
    #[test]
    fn inspect_never_panics_on_damage(at in proptest::prelude::any::<proptest::sample::Index>(), xor in 1u8..) {
        let mut bytes = small_ova().to_vec();
        let i = at.index(bytes.len());
        bytes[i] ^= xor;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.ova");
        fs::write(&path, &bytes).unwrap();
        let result = inspect(&path);
        let mut archive = tar::Archive::new(small_ova());
        let in_data = archive.entries().unwrap().map(Result::unwrap).any(|e| {
            let start = e.raw_file_position();
            (start..start + e.size()).contains(&(i as u64))
        });
        if in_data {
            proptest::prop_assert!(result.is_err(), "change at {} went unnoticed", i);
        }
    }
}
