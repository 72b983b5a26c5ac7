//! Finding the built image.

use std::path::PathBuf;

/// Environment variable naming the image under test.
pub const IMAGE_ENV: &str = "APPLIANCE_IMAGE";
/// The test image (`image-builder build --debug-port`): the tests drive
/// init through its debug port, which production images lack.
const DEFAULT_IMAGE: &str = "out/test/lb-appliance.img";

/// The image to test: `$APPLIANCE_IMAGE`, else `out/test/lb-appliance.img`
/// at the workspace root. Panics with the command that builds it when missing: a
/// QEMU test without an image must fail, not pass silently.
pub fn built_image() -> PathBuf {
    let path = std::env::var_os(IMAGE_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(DEFAULT_IMAGE));
    assert!(
        path.exists(),
        "no appliance image at {}: build it with `cargo run --release -p image-builder -- build --debug-port` \
         (or run everything with `cargo xtask test`), or set {IMAGE_ENV}",
        path.display()
    );
    path
}

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}
