use std::path::PathBuf;

use super::CliResult;

#[derive(clap::Args)]
pub struct InspectArgs {
    /// A disk image (.img) or an OVA.
    file: PathBuf,
}

pub fn run(a: InspectArgs) -> CliResult {
    Err(format!("inspect {}: not supported yet", a.file.display()).into())
}
