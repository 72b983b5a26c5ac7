//! The appliance boots under OVMF on vSphere-like hardware, says it is
//! ready, and powers off cleanly when the ACPI power button is pressed.

use std::time::Duration;

use qemu_tests::image::built_image;
use qemu_tests::vm::{Vm, VmOptions};
use rootfs::paths::{POWEROFF_LINE, READY_LINE};

/// TCG is slow and the other core may be busy with another VM: generous.
const BOOT_TIMEOUT: Duration = Duration::from_secs(240);
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(60);

#[test]
fn boots_to_ready_and_powers_off_on_acpi_button() {
    let mut vm =
        Vm::start("boot", &built_image(), VmOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let ready = vm
        .wait_for(READY_LINE, BOOT_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"));
    let console = vm.console();
    assert!(
        console.contains("=== LB Appliance"),
        "boot banner missing:\n{console}"
    );
    assert!(
        !console.contains("init: error"),
        "init reported errors:\n{console}"
    );
    assert!(!console.contains("Kernel panic"), "{console}");

    vm.acpi_powerdown().unwrap_or_else(|e| panic!("{e}"));
    vm.wait_for_after("power button pressed", ready, SHUTDOWN_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"));
    vm.wait_for_after(POWEROFF_LINE, ready, SHUTDOWN_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"));
    let status = vm
        .wait_exit(SHUTDOWN_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        status.success(),
        "QEMU exited with {status}:\n{}",
        vm.console()
    );
    let console = vm.console();
    assert!(
        console.contains("reboot: Power down"),
        "kernel did not power down:\n{console}"
    );
}
