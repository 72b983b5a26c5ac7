//! Developer tasks: `cargo xtask test` runs every test of the project (unit,
//! integration and QEMU), installing the system packages they need when run
//! as root and naming the apt-get command otherwise.

use std::process::ExitCode;

use xshell::{cmd, Shell};

mod bench;
mod licences;
mod packages;

const USAGE: &str = "usage: cargo xtask test          fmt, clippy, licences, unit and integration tests, build the images, QEMU tests
       cargo xtask packages      install the Debian packages the tests need (as root, one apt transaction)
       cargo xtask licences      check that every linked crate's licence is compatible with Apache-2.0 OR MIT
       cargo xtask bench NAME    run a benchmark (see BENCHMARKS.md): lb, abuse, failover
       cargo xtask bench lb [--rounds N] [--duration 10s] [--idle N] [--lbd-before PATH] [--output FILE]
       cargo xtask bench abuse [--rounds N] [--duration 15s] [--lbd-before PATH] [--output FILE]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(),
        Some("bench") => bench::run(&args[1..]),
        Some("packages") => Shell::new()
            .map_err(Into::into)
            .and_then(|sh| packages::ensure(&sh, packages::TEST_PACKAGES)),
        Some("licences") => licences::run(&workspace_root()).map_err(Into::into),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e}");
            ExitCode::FAILURE
        }
    }
}

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

fn section(title: &str) {
    eprintln!("\n==> {title}");
}

fn test() -> Result {
    let sh = Shell::new()?;
    sh.change_dir(workspace_root());

    section("system packages");
    packages::ensure(&sh, packages::TEST_PACKAGES)?;

    section("cargo fmt --check");
    cmd!(sh, "cargo fmt --all -- --check").run()?;

    section("cargo clippy");
    cmd!(sh, "cargo clippy --workspace --all-targets -- -D warnings").run()?;
    // The test image's init: its debug port is compiled only with the feature.
    cmd!(
        sh,
        "cargo clippy -p init --features debug-port --all-targets -- -D warnings"
    )
    .run()?;

    section("licences of the linked crates");
    licences::run(&workspace_root())?;

    section("unit and integration tests");
    cmd!(sh, "cargo test --workspace --exclude qemu-tests").run()?;
    section("init's debug port (test images only)");
    cmd!(
        sh,
        "cargo test -p init --features debug-port --lib debug_port"
    )
    .run()?;

    section("build the appliance image (production)");
    cmd!(sh, "cargo run --release -p image-builder -- build").run()?;
    let production = workspace_root().join(PRODUCTION_IMAGE);
    check_no_debug_port(&sh, &production)?;

    section("build the test image (with the debug port)");
    cmd!(
        sh,
        "cargo run --release -p image-builder -- build --debug-port"
    )
    .run()?;

    section("QEMU tests on the test image");
    let image = workspace_root().join(TEST_IMAGE);
    cmd!(sh, "cargo test -p qemu-tests")
        .env("APPLIANCE_IMAGE", image)
        .run()?;
    eprintln!("\nxtask: all tests passed");
    Ok(())
}

/// What ships, and what the QEMU tests boot (`build --debug-port`).
const PRODUCTION_IMAGE: &str = "out/lb-appliance.img";
const TEST_IMAGE: &str = "out/test/lb-appliance.img";
/// `image-builder inspect`'s line for an image without the debug port.
const NO_DEBUG_PORT: &str = "debug port: absent";

/// The builder already refuses a production init with the debug port;
/// this reads the written image back, as an admin would.
fn check_no_debug_port(sh: &Shell, image: &std::path::Path) -> Result {
    let report = cmd!(
        sh,
        "cargo run -q --release -p image-builder -- inspect {image}"
    )
    .read()?;
    if !report.lines().any(|l| l == NO_DEBUG_PORT) {
        return Err(format!(
            "{}: `image-builder inspect` does not say {NO_DEBUG_PORT:?}: the production image \
             has the QEMU tests' debug port; build it without --debug-port",
            image.display()
        )
        .into());
    }
    eprintln!("xtask: {}: {NO_DEBUG_PORT}", image.display());
    Ok(())
}

fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default()
}
