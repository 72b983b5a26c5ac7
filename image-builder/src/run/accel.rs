//! Which accelerator `image-builder run` can use: KVM when it really runs
//! this firmware, else TCG.
//!
//! `/dev/kvm` existing is not enough: on nested hosts it opens and creates
//! VMs, yet OVMF stops within a second with "KVM internal error" (emulation
//! failure). So the probe boots OVMF itself under KVM for a moment, with
//! no disk, and calls KVM working when QEMU is still running then without
//! that error.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::qemu::{Accel, OVMF_CODE};

const KVM_DEVICE: &str = "/dev/kvm";
/// OVMF reaches its boot manager well within this under KVM.
const PROBE_TIME: Duration = Duration::from_millis(2500);

/// The accelerator, and why when it is TCG.
pub fn choose(qemu: &str) -> (Accel, Option<String>) {
    match probe_kvm(qemu) {
        Ok(()) => (Accel::Kvm, None),
        Err(why) => (Accel::Tcg, Some(why)),
    }
}

fn probe_kvm(qemu: &str) -> Result<(), String> {
    if !Path::new(KVM_DEVICE).exists() {
        return Err(format!("{KVM_DEVICE} is missing"));
    }
    if let Err(e) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(KVM_DEVICE)
    {
        return Err(format!("{KVM_DEVICE}: {e}"));
    }
    let dir = tempfile::tempdir().map_err(|e| format!("probe directory: {e}"))?;
    let stderr_path = dir.path().join("stderr");
    let stderr = std::fs::File::create(&stderr_path).map_err(|e| format!("probe log: {e}"))?;
    let mut child = Command::new(qemu)
        .args([
            "-accel",
            "kvm",
            "-machine",
            "pc",
            "-nodefaults",
            "-display",
            "none",
        ])
        .args(["-m", "256", "-drive"])
        .arg(format!(
            "if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}"
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .map_err(|e| format!("running {qemu}: {e}"))?;
    let started = Instant::now();
    let exited = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if started.elapsed() < PROBE_TIME => {
                std::thread::sleep(Duration::from_millis(100));
            }
            _ => break None,
        }
    };
    if exited.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let log = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    if let Some(line) = log.lines().find(|l| l.contains("KVM internal error")) {
        return Err(format!("KVM stops OVMF ({})", line.trim()));
    }
    if let Some(status) = exited {
        let first = log.lines().next().unwrap_or("").trim().to_string();
        return Err(format!("QEMU with KVM exited ({status}): {first}"));
    }
    Ok(())
}
