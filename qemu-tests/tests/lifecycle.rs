//! init's side of the appliance's life: lbd supervised (restarted after a
//! crash, backing off in a crash loop), a clean ACPI shutdown that stops
//! lbd and unmounts the data partition, logs that survive the next boot,
//! and a power cut in the middle of logging that damages no log file.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use qemu_tests::image::built_image;
use qemu_tests::vm::{Vm, VmOptions};
use rootfs::paths::{POWEROFF_LINE, READY_LINE};

const BOOT_TIMEOUT: Duration = Duration::from_secs(240);
const STEP_TIMEOUT: Duration = Duration::from_secs(60);

fn expect(vm: &Vm, needle: &str, from: usize) -> usize {
    vm.wait_for_after(needle, from, STEP_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// A private, writable copy of the image (sparse, so cheap).
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

fn boot(name: &str, disk: Option<&Path>) -> Vm {
    let opts = VmOptions {
        debug_port: true,
        disk_copy: disk.map(Path::to_path_buf),
        ..VmOptions::default()
    };
    let vm = Vm::start(name, &built_image(), opts).unwrap_or_else(|e| panic!("{e}"));
    vm.wait_for(READY_LINE, BOOT_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"));
    vm
}

/// Input: lbd killed with SIGKILL five times, each time right after it
/// started again.
/// Output: each exit is logged with its signal, restarts follow after
/// 100, 200, 400, 800 ms, and the fifth quick exit is called a crash loop.
#[test]
fn lbd_is_restarted_and_a_crash_loop_backs_off() {
    let vm = boot("supervise", None);
    let mut pos = expect(&vm, "init: lbd started (pid", 0);
    for (attempt, delay) in [(1, 100), (2, 200), (3, 400), (4, 800), (5, 1600)] {
        vm.debug("kill lbd").unwrap_or_else(|e| panic!("{e}"));
        pos = expect(
            &vm,
            &format!(
                "lbd exited (killed by SIGKILL); restarting in {delay} ms (attempt {attempt})"
            ),
            pos,
        );
        pos = expect(&vm, &format!("start {}, uid 101", attempt + 1), pos);
    }
    let console = vm.console();
    assert!(
        console.contains("error: lbd is crash-looping"),
        "no crash-loop report:\n{console}"
    );
}

#[test]
fn clean_shutdown_then_the_logs_are_there_at_next_boot() {
    let dir = tempfile::tempdir().unwrap();
    let disk = disk_copy(dir.path());
    let mut vm = boot("shutdown-1", Some(&disk));
    // lbd's own "ready": from there on it handles SIGTERM gracefully.
    let ready = expect(&vm, "lbd::daemon: ready", 0);
    vm.acpi_powerdown().unwrap_or_else(|e| panic!("{e}"));
    let mut pos = expect(&vm, "init: lbd stopped (exit status 0)", ready);
    pos = expect(&vm, "init: /var/lib/appliance unmounted", pos);
    expect(&vm, POWEROFF_LINE, pos);
    let status = vm.wait_exit(STEP_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    assert!(status.success(), "QEMU: {status}");
    drop(vm);

    let vm = boot("shutdown-2", Some(&disk));
    let console = vm.console();
    assert!(
        console.contains("init: previous logs intact:"),
        "logs of the first boot missing or damaged:\n{console}"
    );
    // The log ends with the shutdown sequence, after lbd stopped.
    assert!(
        console.contains("] init: DHCP lease released"),
        "the last logged line of the first boot should be from its shutdown:\n{console}"
    );
}

#[test]
fn power_cut_while_logging_damages_no_log_file() {
    let dir = tempfile::tempdir().unwrap();
    let disk = disk_copy(dir.path());
    let mut vm = boot("power-cut-1", Some(&disk));
    vm.debug("log 20000").unwrap_or_else(|e| panic!("{e}"));
    vm.wait_for("init: debug log line 3000 of 20000", STEP_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"));
    vm.pull_the_plug();
    drop(vm);

    let vm = boot("power-cut-2", Some(&disk));
    let console = vm.console();
    assert!(
        console.contains("init: previous logs intact:"),
        "log files damaged by the power cut:\n{console}"
    );
    assert!(
        !console.contains("error: log "),
        "log check reported a problem:\n{console}"
    );
}
