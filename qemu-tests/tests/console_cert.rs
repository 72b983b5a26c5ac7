//! The web console's certificate across reboots: made on the first boot,
//! its URL and SHA-256 fingerprint on the VM console, and the same
//! fingerprint after a reboot (kept on the data partition), so an admin
//! who checked it once is not asked again.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use qemu_tests::image::built_image;
use qemu_tests::vm::{Vm, VmOptions};
use rootfs::paths::{POWEROFF_LINE, READY_LINE};

const BOOT_TIMEOUT: Duration = Duration::from_secs(240);
const STEP_TIMEOUT: Duration = Duration::from_secs(60);
/// The start of init's line with the URL and the fingerprint.
const ANNOUNCE: &str = "init: web console https://";
const MADE: &str = "init: made the web console's certificate";

/// A private, writable copy of the image (sparse, so cheap): the data
/// partition must survive from one boot to the next.
fn disk_copy(dir: &Path) -> PathBuf {
    let copy = dir.join("disk.img");
    let status = Command::new("cp")
        .arg("--sparse=always")
        .arg(built_image())
        .arg(&copy)
        .status()
        .expect("cp");
    assert!(status.success());
    copy
}

fn boot(name: &str, disk: &Path) -> Vm {
    let opts = VmOptions {
        debug_port: true,
        disk_copy: Some(disk.to_path_buf()),
        ..VmOptions::default()
    };
    let vm = Vm::start(name, &built_image(), opts).unwrap_or_else(|e| panic!("{e}"));
    vm.wait_for(READY_LINE, BOOT_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"));
    vm
}

/// The announcement line and the fingerprint in it (95 characters,
/// `AB:CD:...`, as browsers show it).
fn announced(console: &str) -> (String, String) {
    let line = console
        .lines()
        .find(|l| l.contains(ANNOUNCE))
        .unwrap_or_else(|| panic!("no {ANNOUNCE:?} line:\n{console}"))
        .to_owned();
    let fingerprint = line
        .split("SHA-256 ")
        .nth(1)
        .unwrap_or_else(|| panic!("no fingerprint in {line:?}"))
        .trim()
        .to_owned();
    assert_eq!(fingerprint.len(), 95, "{line}");
    assert!(
        fingerprint.split(':').all(|b| b.len() == 2
            && b.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase())),
        "{line}"
    );
    (line, fingerprint)
}

/// Input: a fresh disk booted, shut down cleanly, booted again.
/// Output: the first boot makes a self-signed certificate and prints the
/// console's URL on :5480 with its fingerprint; the second boot makes
/// none and prints the same fingerprint.
#[test]
fn the_fingerprint_is_on_the_console_and_survives_a_reboot() {
    let dir = tempfile::tempdir().unwrap();
    let disk = disk_copy(dir.path());
    let mut vm = boot("console-cert-1", &disk);
    let first = vm.console();
    assert!(first.contains(MADE), "no certificate made:\n{first}");
    let (line, fingerprint) = announced(&first);
    // In the test's output, for the record of what an admin sees.
    for l in first
        .lines()
        .filter(|l| l.contains(MADE) || l.contains("error:"))
    {
        eprintln!("boot 1: {l}");
    }
    eprintln!("boot 1: {line}");
    assert!(line.contains(":5480/ certificate (self-signed)"), "{line}");
    let ready = vm
        .wait_for_after("lbd::daemon: ready", 0, STEP_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"));
    vm.acpi_powerdown().unwrap_or_else(|e| panic!("{e}"));
    vm.wait_for_after(POWEROFF_LINE, ready, STEP_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"));
    let status = vm.wait_exit(STEP_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    assert!(status.success(), "QEMU: {status}");
    drop(vm);

    let vm = boot("console-cert-2", &disk);
    let second = vm.console();
    assert!(!second.contains(MADE), "made again:\n{second}");
    let (line, again) = announced(&second);
    eprintln!("boot 2: {line}");
    assert_eq!(
        again, fingerprint,
        "the fingerprint changed across a reboot"
    );
}
