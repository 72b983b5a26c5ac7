use std::path::PathBuf;

use image_builder::inspect::inspect_image;

use super::CliResult;

#[derive(clap::Args)]
pub struct InspectArgs {
    /// A disk image (.img) or an OVA (.ova): members, manifest check,
    /// hardware and properties.
    file: PathBuf,
}

pub fn run(a: InspectArgs) -> CliResult {
    if a.file
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("ova"))
    {
        let report = ova::inspect(&a.file)?;
        print!("{report}");
    } else {
        let report = inspect_image(&a.file)?;
        print!("{report}");
    }
    Ok(())
}
