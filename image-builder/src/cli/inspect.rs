use std::path::PathBuf;

use image_builder::inspect::inspect_image;

use super::CliResult;

#[derive(clap::Args)]
pub struct InspectArgs {
    /// A disk image (.img).
    file: PathBuf,
}

pub fn run(a: InspectArgs) -> CliResult {
    let report = inspect_image(&a.file)?;
    print!("{report}");
    Ok(())
}
