//! The built disk image, checked from outside with the standard tools
//! (sgdisk, fsck.fat, e2fsck, file) and by reading it back.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use image_builder::disk::ESP_NAME;
use image_builder::inspect::{read_partition, read_uki, uki_section};
use qemu_tests::image::built_image;
use rootfs::paths::{DATA_PARTLABEL, MODULE_LOAD_ORDER};

fn run(cmd: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {cmd}: {e} (cargo xtask test installs it)"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn partition_file(dir: &Path, image: &Path, name: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, read_partition(image, name).unwrap()).unwrap();
    path.display().to_string()
}

#[test]
fn gpt_and_filesystems_are_clean() {
    let image = built_image();
    let (ok, out) = run("sgdisk", &["-v", &image.display().to_string()]);
    assert!(ok && out.contains("No problems found"), "sgdisk -v:\n{out}");

    let dir = tempfile::tempdir().unwrap();
    let esp = partition_file(dir.path(), &image, ESP_NAME);
    let (ok, out) = run("fsck.fat", &["-n", &esp]);
    assert!(ok, "fsck.fat -n on the ESP:\n{out}");
    assert!(
        out.contains("BOOTX64.EFI") || out.contains("files"),
        "{out}"
    );

    let data = partition_file(dir.path(), &image, DATA_PARTLABEL);
    let (ok, out) = run("e2fsck", &["-fn", &data]);
    assert!(ok, "e2fsck -fn on the data partition:\n{out}");
    let (_, label) = run("e2label", &[&data]);
    assert_eq!(label.trim(), DATA_PARTLABEL);
}

#[test]
fn initramfs_holds_exactly_the_guest_tree_with_static_binaries() {
    let image = built_image();
    let uki = read_uki(&image).unwrap();
    for section in [".osrel", ".cmdline", ".initrd", ".linux"] {
        uki_section(&image, &uki, section).unwrap();
    }
    let initrd = uki_section(&image, &uki, ".initrd").unwrap();
    let members = rootfs::read_initramfs(initrd).unwrap();
    let data = |path: &str| {
        members
            .iter()
            .find(|(m, _)| m.path == path)
            .map(|(_, d)| d.clone())
            .unwrap_or_else(|| panic!("{path} missing from the initramfs"))
    };

    // Modules: exactly the ones init is told to load, nothing else.
    let load_order = String::from_utf8(data(MODULE_LOAD_ORDER.trim_start_matches('/'))).unwrap();
    let listed: BTreeSet<String> = load_order
        .lines()
        .map(|l| l.trim_start_matches('/').to_string())
        .collect();
    let shipped: BTreeSet<String> = members
        .iter()
        .map(|(m, _)| m.path.clone())
        .filter(|p| p.ends_with(".ko"))
        .collect();
    assert_eq!(listed, shipped, "modules shipped vs modules.load");
    for needed in [
        "vmxnet3.ko",
        "nf_tables.ko",
        "button.ko",
        "evdev.ko",
        "isofs.ko",
    ] {
        assert!(
            shipped.iter().any(|p| p.ends_with(needed)),
            "{needed} missing"
        );
    }

    // Everything else: this fixed list, and directories leading to modules.
    let expected: BTreeSet<&str> = [
        "dev",
        "dev/console",
        "etc",
        "etc/appliance",
        "etc/appliance/appliance.toml",
        "etc/appliance/modules.load",
        "etc/lbd",
        "etc/lbd/lbd.toml",
        "etc/os-release",
        "init",
        "lib",
        "lib/modules",
        "proc",
        "run",
        "sys",
        "tmp",
        "usr",
        "usr/bin",
        "usr/bin/lbd",
        "var",
        "var/lib",
        "var/lib/appliance",
    ]
    .into_iter()
    .collect();
    for (m, _) in &members {
        let is_module_path = m.path.starts_with("lib/modules/")
            && (m.path.ends_with(".ko") || m.mode & 0o170_000 == 0o040_000);
        assert!(
            expected.contains(m.path.as_str()) || is_module_path,
            "unexpected initramfs entry /{}",
            m.path
        );
    }
    for path in &expected {
        assert!(
            members.iter().any(|(m, _)| m.path == *path),
            "/{path} missing"
        );
    }

    // The programs are static-pie, as `file` sees them.
    let dir = tempfile::tempdir().unwrap();
    for bin in ["init", "usr/bin/lbd"] {
        let path = dir.path().join(bin.replace('/', "_"));
        std::fs::write(&path, data(bin)).unwrap();
        let (_, out) = run("file", &[&path.display().to_string()]);
        assert!(out.contains("static-pie linked"), "/{bin}: {out}");
    }
}
