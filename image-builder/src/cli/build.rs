use std::path::PathBuf;

use image_builder::build::{build, BuildOptions};
use image_builder::config::DEFAULT_CONFIG;
use image_builder::progress::human_size;

use super::CliResult;

#[derive(clap::Args)]
pub struct BuildArgs {
    /// The appliance description (its lock, appliance.lock, sits beside it).
    #[arg(long, short, default_value = DEFAULT_CONFIG)]
    config: PathBuf,
    /// Where the image, the OVA and the static lbd go.
    #[arg(long, short, default_value = "out")]
    out: PathBuf,
    /// Where downloaded packages, apt lists and extracted kernels are kept.
    #[arg(long, default_value = super::DEFAULT_CACHE)]
    cache: PathBuf,
}

pub fn run(a: BuildArgs) -> CliResult {
    let cache = std::path::absolute(&a.cache)?;
    let report = build(&BuildOptions {
        config: a.config,
        out_dir: a.out,
        cache_dir: cache,
    })?;
    println!(
        "built with linux {} ({} modules), SOURCE_DATE_EPOCH={} ({:?})",
        report.kernel_version, report.modules, report.epoch, report.epoch_source
    );
    for pin in &report.pins {
        println!("pinned     {pin}");
    }
    for art in &report.artifacts {
        println!(
            "{:<10} {}  {:>9}  sha256 {}",
            art.kind,
            art.path.display(),
            human_size(art.size),
            art.sha256
        );
    }
    Ok(())
}
