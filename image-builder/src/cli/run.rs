use std::path::PathBuf;
use std::process::Command;

use image_builder::qemu::{NetBackend, VmSpec};

use super::CliResult;

#[derive(clap::Args)]
pub struct RunArgs {
    /// The disk image to boot.
    #[arg(default_value = "out/lb-appliance.img")]
    image: PathBuf,
    /// Keep changes to the disk (otherwise they go to a temporary overlay).
    #[arg(long)]
    persist: bool,
    /// Memory in MiB.
    #[arg(long, default_value_t = 1024)]
    memory: u32,
}

pub fn run(a: RunArgs) -> CliResult {
    let vars = std::env::temp_dir().join(format!("appliance-vars-{}.fd", std::process::id()));
    let mut vm = VmSpec::new(&a.image, &vars);
    vm.snapshot = !a.persist;
    vm.memory_mib = a.memory;
    vm.nics = vec![(
        NetBackend::User {
            forwards: vec![(8404, 8404)],
        },
        None,
    )];
    vm.prepare_vars()?;
    eprintln!(
        "booting {} (stats page forwarded to http://127.0.0.1:8404); quit with Ctrl-C",
        a.image.display()
    );
    let status = Command::new("qemu-system-x86_64")
        .args(vm.args())
        .status()
        .map_err(|e| format!("running qemu-system-x86_64: {e}. Install it with `apt-get install qemu-system-x86`"))?;
    let _ = std::fs::remove_file(&vars);
    if !status.success() {
        return Err(format!("qemu exited with {status}").into());
    }
    Ok(())
}
