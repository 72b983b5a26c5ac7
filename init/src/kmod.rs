//! Loading the kernel modules the builder selected, in the order it wrote
//! (dependencies first), with `finit_module`.

use std::ffi::CStr;
use std::fs::File;

use nix::errno::Errno;
use nix::kmod::{finit_module, ModuleInitFlags};

/// The outcome of loading the module list.
#[derive(Debug, Default)]
pub struct LoadReport {
    pub loaded: usize,
    /// Drivers for hardware this VM does not have (vmw_balloon under QEMU,
    /// virtio under vSphere): the module refuses to load with ENODEV.
    pub no_hardware: Vec<String>,
    /// (module path, reason)
    pub failed: Vec<(String, String)>,
}

/// Loads every module listed in `order_file`, one path per line. A module
/// that fails is reported and the rest still load: a missing balloon
/// driver must not keep the NIC driver out.
pub fn load_modules(order_file: &str) -> LoadReport {
    let mut report = LoadReport::default();
    let list = match std::fs::read_to_string(order_file) {
        Ok(l) => l,
        Err(e) => {
            report.failed.push((order_file.to_string(), e.to_string()));
            return report;
        }
    };
    let no_params: &CStr = c"";
    for path in list
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let result = File::open(path).map_err(|e| e.to_string()).and_then(|f| {
            match finit_module(&f, no_params, ModuleInitFlags::empty()) {
                // Already loaded (or built in): fine.
                Ok(()) | Err(Errno::EEXIST) => Ok(true),
                Err(Errno::ENODEV) => Ok(false),
                Err(e) => Err(e.desc().to_string()),
            }
        });
        match result {
            Ok(true) => report.loaded += 1,
            Ok(false) => report.no_hardware.push(module_name(path)),
            Err(reason) => report.failed.push((path.to_string(), reason)),
        }
    }
    report
}

/// `/lib/modules/v/kernel/drivers/misc/vmw_balloon.ko` -> `vmw_balloon`.
fn module_name(path: &str) -> String {
    let file = path.rsplit('/').next().unwrap_or(path);
    file.strip_suffix(".ko").unwrap_or(file).to_string()
}
