//! Random sparse images through our VMDK writer, then back through our reader
//! (many cases) and through `qemu-img convert` (a few cases).

use std::io::Cursor;
use std::process::Command;

use ova::vmdk::{
    walk_markers, write_stream_optimized, Marker, StreamOptimizedDisk, StreamParams, VmdkError,
    GRAIN_BYTES, SECTOR_BYTES,
};
use proptest::prelude::*;

const PARAMS: StreamParams<'static> = StreamParams {
    extent_file: "disk.vmdk",
    cid: 0x1234_5678,
    compression_level: 6,
};

/// A sparse image: runs of zeros, runs of a repeated byte and runs of noise,
/// a whole number of sectors long but rarely a whole number of grains.
fn sparse_image() -> impl Strategy<Value = Vec<u8>> {
    let run = prop_oneof![
        (1u64..300_000).prop_map(|n| (0u8, n, false)),
        (any::<u8>(), 1u64..100_000).prop_map(|(b, n)| (b, n, false)),
        (any::<u8>(), 1u64..3_000).prop_map(|(b, n)| (b, n, true)),
    ];
    prop::collection::vec(run, 1..12).prop_map(|runs| {
        let mut img = Vec::new();
        let mut state = 0x9e37_79b9_u32;
        for (byte, n, noise) in runs {
            for _ in 0..n {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                img.push(if noise { state.to_le_bytes()[3] } else { byte });
            }
        }
        let sectors = (img.len() as u64).div_ceil(SECTOR_BYTES).max(1);
        img.resize(usize::try_from(sectors * SECTOR_BYTES).unwrap(), 0);
        img
    })
}

fn to_vmdk(img: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let stats = write_stream_optimized(img, img.len() as u64, &mut out, &PARAMS).unwrap();
    assert_eq!(stats.vmdk_bytes, out.len() as u64);
    out
}

fn our_read(vmdk: &[u8]) -> Vec<u8> {
    let mut file = Cursor::new(vmdk);
    let disk = StreamOptimizedDisk::open(&mut file).unwrap();
    let mut raw = Vec::new();
    disk.read_raw(&mut file, &mut raw).unwrap();
    raw
}

/// The stream order a streaming importer relies on: grains in LBA order, a GT
/// after each group of 512 grains, then GD, footer, EOS at the very end.
fn check_stream_order(vmdk: &[u8]) {
    let markers = walk_markers(&mut Cursor::new(vmdk)).unwrap();
    let n = markers.len();
    assert!(
        matches!(markers[n - 1], Marker::EndOfStream { sector } if (sector + 1) * SECTOR_BYTES == vmdk.len() as u64)
    );
    assert!(matches!(markers[n - 2], Marker::Footer { .. }));
    assert!(matches!(markers[n - 3], Marker::GrainDirectory { .. }));
    let mut last_lba = None;
    let mut group_open = false;
    for m in &markers[..n - 3] {
        match *m {
            Marker::Grain { lba, .. } => {
                assert!(last_lba.is_none_or(|l| lba > l), "grains out of order");
                if let Some(l) = last_lba {
                    // A new 512-grain group starts only after the previous GT.
                    assert!(lba / (128 * 512) == l / (128 * 512) || !group_open);
                }
                last_lba = Some(lba);
                group_open = true;
            }
            Marker::GrainTable { .. } => group_open = false,
            ref other => panic!("unexpected {other:?} before the GD"),
        }
    }
    assert!(!group_open, "last group has no GT");
}

fn qemu_read(vmdk: &[u8]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("disk.vmdk");
    let dst = dir.path().join("disk.raw");
    std::fs::write(&src, vmdk).unwrap();
    let status = Command::new("qemu-img")
        .args(["convert", "-f", "vmdk", "-O", "raw"])
        .arg(&src)
        .arg(&dst)
        .status()
        .expect("qemu-img is installed (Debian qemu-utils)");
    assert!(status.success());
    std::fs::read(dst).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn our_reader_round_trips(img in sparse_image()) {
        let vmdk = to_vmdk(&img);
        check_stream_order(&vmdk);
        prop_assert!(our_read(&vmdk) == img);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(6))]
    #[test]
    fn qemu_reads_what_we_write(img in sparse_image()) {
        let vmdk = to_vmdk(&img);
        prop_assert!(qemu_read(&vmdk) == img);
    }
}

/// 40 MiB with data in the first and third 32 MiB group: one GT is skipped,
/// the last grain is partial, and qemu still reads it back.
#[test]
fn multi_table_image_with_empty_table() {
    let len = 2 * 32 * 1024 * 1024 + 3 * SECTOR_BYTES;
    let mut img = vec![0u8; usize::try_from(len).unwrap()];
    img[..5000].fill(0xaa);
    img[usize::try_from(len - 700).unwrap()..].fill(0x55);
    let vmdk = to_vmdk(&img);
    check_stream_order(&vmdk);
    let markers = walk_markers(&mut Cursor::new(&vmdk[..])).unwrap();
    let tables = markers
        .iter()
        .filter(|m| matches!(m, Marker::GrainTable { .. }))
        .count();
    assert_eq!(tables, 2, "three groups, the middle one empty");
    assert_eq!(our_read(&vmdk), img);
    assert_eq!(qemu_read(&vmdk), img);
}

#[test]
fn qemu_info_says_stream_optimized_and_compressed() {
    let mut img = vec![0u8; usize::try_from(3 * GRAIN_BYTES + SECTOR_BYTES).unwrap()];
    img[70_000..80_000].fill(7);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("disk.vmdk");
    std::fs::write(&path, to_vmdk(&img)).unwrap();
    let out = Command::new("qemu-img")
        .args(["info", "--output=json"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success());
    let json = String::from_utf8(out.stdout).unwrap();
    let squeezed: String = json.split_whitespace().collect();
    assert!(
        squeezed.contains("\"create-type\":\"streamOptimized\""),
        "{json}"
    );
    assert!(squeezed.contains("\"compressed\":true"), "{json}");
    assert!(
        squeezed.contains(&format!("\"virtual-size\":{}", img.len())),
        "{json}"
    );
}

#[test]
fn all_zero_image_stores_no_grains() {
    let img = vec![0u8; usize::try_from(5 * GRAIN_BYTES).unwrap()];
    let mut out = Vec::new();
    let stats = write_stream_optimized(&img[..], img.len() as u64, &mut out, &PARAMS).unwrap();
    assert_eq!(stats.grains_stored, 0);
    assert_eq!(stats.grains_total, 5);
    assert_eq!(our_read(&out), img);
}

#[test]
fn same_input_same_bytes() {
    let mut img = vec![0u8; 300_000 / 512 * 512];
    img[1000..9000].fill(3);
    assert_eq!(to_vmdk(&img), to_vmdk(&img));
}

#[test]
fn writer_rejects_unaligned_and_short_images() {
    let img = vec![1u8; 1000];
    let err = write_stream_optimized(&img[..], 1000, Vec::new(), &PARAMS).unwrap_err();
    assert!(matches!(err, VmdkError::UnalignedImage { len: 1000 }));
    let err = write_stream_optimized(&img[..], 1024, Vec::new(), &PARAMS).unwrap_err();
    assert!(matches!(
        err,
        VmdkError::ShortImage {
            read: 1000,
            expected: 1024
        }
    ));
    let err = write_stream_optimized(&img[..], 0, Vec::new(), &PARAMS).unwrap_err();
    assert!(matches!(err, VmdkError::EmptyImage));
}

#[test]
fn reader_rejects_truncated_and_damaged_files() {
    let mut img = vec![0u8; usize::try_from(2 * GRAIN_BYTES).unwrap()];
    img[10..20].fill(9);
    let vmdk = to_vmdk(&img);

    let cut = &vmdk[..vmdk.len() - 512];
    assert!(matches!(
        StreamOptimizedDisk::open(&mut Cursor::new(cut)),
        Err(VmdkError::BadMarker { .. })
    ));
    assert!(matches!(
        StreamOptimizedDisk::open(&mut Cursor::new(&vmdk[..100])),
        Err(VmdkError::Truncated { .. })
    ));

    // Damage the first grain's zlib data: open succeeds, reading fails cleanly.
    let mut bad = vmdk.clone();
    let grain_at = 128 * 512 + 12;
    bad[grain_at..grain_at + 8].fill(0xff);
    let mut file = Cursor::new(&bad[..]);
    let disk = StreamOptimizedDisk::open(&mut file).unwrap();
    assert!(matches!(
        disk.read_raw(&mut file, Vec::new()),
        Err(VmdkError::Inflate { .. })
    ));

    // Point the GD far past the end of the file.
    let mut bad = vmdk.clone();
    let footer = bad.len() - 1024;
    bad[footer + 56..footer + 64].copy_from_slice(&u64::MAX.wrapping_sub(5).to_le_bytes());
    assert!(matches!(
        StreamOptimizedDisk::open(&mut Cursor::new(&bad[..])),
        Err(VmdkError::OutOfBounds { .. })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    /// Any byte flipped anywhere gives a result or an error, never a panic.
    #[test]
    fn reader_never_panics_on_damage(at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut img = vec![0u8; usize::try_from(3 * GRAIN_BYTES).unwrap()];
        img[100..70_000].fill(4);
        let mut vmdk = to_vmdk(&img);
        let i = at.index(vmdk.len());
        vmdk[i] = byte;
        let mut file = Cursor::new(&vmdk[..]);
        if let Ok(disk) = StreamOptimizedDisk::open(&mut file) {
            let _ = disk.read_raw(&mut file, std::io::sink());
        }
        let _ = walk_markers(&mut Cursor::new(&vmdk[..]));
    }
}

#[test]
fn rewrite_cid_changes_only_the_cid() {
    let mut img = vec![0u8; usize::try_from(2 * GRAIN_BYTES).unwrap()];
    img[5..500].fill(1);
    let mut file = Cursor::new(Vec::new());
    let stats = write_stream_optimized(&img[..], img.len() as u64, &mut file, &PARAMS).unwrap();
    let before = file.get_ref().clone();
    let cid = ova::vmdk::cid_from_digest(&stats.content_sha256);
    ova::vmdk::rewrite_cid(&mut file, cid, img.len() as u64, PARAMS.extent_file).unwrap();
    let after = file.into_inner();
    assert_eq!(before.len(), after.len());
    let changed: Vec<_> = (0..after.len())
        .filter(|&i| before[i] != after[i])
        .collect();
    assert!(
        !changed.is_empty() && changed.iter().all(|&i| (512 + 4..512 + 64).contains(&i)),
        "{changed:?}"
    );
    let disk = StreamOptimizedDisk::open(&mut Cursor::new(&after[..])).unwrap();
    assert_eq!(disk.descriptor.cid, cid);
    assert_eq!(our_read(&after), img);
}

#[test]
fn content_hash_follows_content() {
    let stats = |img: &[u8]| {
        write_stream_optimized(img, img.len() as u64, std::io::sink(), &PARAMS).unwrap()
    };
    let mut a = vec![0u8; usize::try_from(4 * GRAIN_BYTES).unwrap()];
    a[70_000] = 1;
    let mut b = a.clone();
    assert_eq!(stats(&a).content_sha256, stats(&b).content_sha256);
    // Same bytes in another grain, and one more zero sector: both differ.
    b[70_000] = 0;
    b[140_000] = 1;
    assert_ne!(stats(&a).content_sha256, stats(&b).content_sha256);
    let mut c = a.clone();
    c.extend_from_slice(&[0; 512]);
    assert_ne!(stats(&a).content_sha256, stats(&c).content_sha256);
}
