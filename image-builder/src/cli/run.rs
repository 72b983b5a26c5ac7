use std::path::PathBuf;
use std::process::Command;

use image_builder::run::{plan, AccelChoice, Console, RunOptions, QEMU};

use super::CliResult;

#[derive(clap::Args)]
pub struct RunArgs {
    /// The disk image to boot.
    #[arg(default_value = "out/lb-appliance.img")]
    image: PathBuf,
    /// A setting for this boot, as the deploy wizard would give it
    /// (delivered as an OVF environment); repeatable:
    /// --set network.mode=static --set network.ipv4=10.0.2.15/24
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// A TOML file of settings (`hostname = "lb1"`, `[network]` ...; an
    /// appliance.toml's [settings] works too); --set values win over it.
    #[arg(long = "settings", value_name = "FILE")]
    settings_file: Option<PathBuf>,
    /// Show the VM console (tty1, the status screen): on a VNC server on
    /// 127.0.0.1 (default) or in a window.
    #[arg(long, value_enum, num_args = 0..=1, default_missing_value = "vnc")]
    console: Option<Console>,
    /// Keep changes to the disk (otherwise they go to a temporary overlay).
    #[arg(long)]
    persist: bool,
    /// Memory in MiB.
    #[arg(long, default_value_t = 1024)]
    memory: u32,
    /// Virtual CPUs.
    #[arg(long, default_value_t = 2)]
    cpus: u32,
    /// Let the guest reach real addresses through QEMU's user network
    /// (off: it reaches only what is forwarded to it).
    #[arg(long)]
    allow_outbound: bool,
    /// CPU accelerator.
    #[arg(long, value_enum, default_value = "auto")]
    accel: AccelChoice,
}

pub fn run(a: RunArgs) -> CliResult {
    let plan = plan(&RunOptions {
        image: a.image.clone(),
        settings_file: a.settings_file,
        sets: a.sets,
        console: a.console,
        persist: a.persist,
        memory_mib: a.memory,
        cpus: a.cpus,
        outbound: a.allow_outbound,
        accel: a.accel,
    })?;
    eprintln!(
        "image-builder: booting {} with {}",
        a.image.display(),
        plan.accel_note
    );
    if !plan.delivered.is_empty() {
        eprintln!("  settings delivered as the OVF environment:");
        for line in &plan.delivered {
            eprintln!("    {line}");
        }
    }
    eprintln!(
        "  guest address {} (QEMU user network, forwarded from 127.0.0.1):",
        plan.guest_address
    );
    for (guest, host) in &plan.forwards {
        let url = if guest.http {
            format!("http://127.0.0.1:{host}/")
        } else {
            format!("tcp 127.0.0.1:{host}")
        };
        eprintln!(
            "    {:<22} {url:<28} (guest port {})",
            guest.what, guest.port
        );
    }
    if let image_builder::qemu::Display::Vnc { display } = plan.vm.display {
        eprintln!(
            "  VM console (tty1)      vnc://127.0.0.1:{} (e.g. vncviewer 127.0.0.1:{display})",
            5900 + display
        );
    }
    for warning in &plan.warnings {
        eprintln!("image-builder: warning: {warning}");
    }
    eprintln!("  serial console below; quit with Ctrl-C");
    let status = Command::new(QEMU)
        .args(plan.vm.args())
        .status()
        .map_err(|e| format!("running {QEMU}: {e}"))?;
    drop(plan.workdir);
    if !status.success() {
        return Err(format!("{QEMU} exited with {status}").into());
    }
    Ok(())
}
