use std::path::PathBuf;

use image_builder::build::{build, BuildOptions};
use image_builder::config::DEFAULT_CONFIG;
use image_builder::debug_port::Flavour;
use image_builder::progress::human_size;

use super::CliResult;

/// Where production images go by default.
const PRODUCTION_OUT: &str = "out";
/// Where test images (`--debug-port`) go by default: apart, so a test
/// image is never taken for the one to ship.
const TEST_OUT: &str = "out/test";

#[derive(clap::Args)]
pub struct BuildArgs {
    /// The appliance description (its lock, appliance.lock, sits beside it).
    #[arg(long, short, default_value = DEFAULT_CONFIG)]
    config: PathBuf,
    /// Where the image, the OVA and the static lbd go [default: out, or
    /// out/test with --debug-port].
    #[arg(long, short)]
    out: Option<PathBuf>,
    /// A test image for the QEMU tests: init with its debug port (commands
    /// on ttyS1). Never ship one.
    #[arg(long)]
    debug_port: bool,
    /// Where downloaded packages, apt lists and extracted kernels are kept.
    #[arg(long, default_value = super::DEFAULT_CACHE)]
    cache: PathBuf,
}

pub fn run(a: BuildArgs) -> CliResult {
    let cache = std::path::absolute(&a.cache)?;
    let (flavour, default_out) = if a.debug_port {
        (Flavour::Test, TEST_OUT)
    } else {
        (Flavour::Production, PRODUCTION_OUT)
    };
    let report = build(&BuildOptions {
        config: a.config,
        out_dir: a.out.unwrap_or_else(|| PathBuf::from(default_out)),
        cache_dir: cache,
        flavour,
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
