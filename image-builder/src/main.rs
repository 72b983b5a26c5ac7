//! `image-builder`: build, inspect and boot the appliance image.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cli;

#[derive(Parser)]
#[command(
    name = "image-builder",
    version,
    about = "Builds the load-balancer appliance: a UEFI disk image and an OVA"
)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build the disk image (and OVA) from appliance.toml.
    Build(cli::build::BuildArgs),
    /// Show appliance.lock's pinned packages, or move them (--update).
    Lock(cli::lock::LockArgs),
    /// Show what an image contains.
    Inspect(cli::inspect::InspectArgs),
    /// Boot an image in QEMU with OVMF, serial console on this terminal.
    Run(cli::run::RunArgs),
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match args.command {
        Command::Build(a) => cli::build::run(a),
        Command::Lock(a) => cli::lock::run(a),
        Command::Inspect(a) => cli::inspect::run(a),
        Command::Run(a) => cli::run::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("image-builder: error: {e}");
            ExitCode::FAILURE
        }
    }
}
