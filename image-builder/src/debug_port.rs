//! The QEMU tests' debug port (init's `debug-port` feature: `kill lbd`,
//! `log N`, `ctl`, `commits` on ttyS1) belongs in test images only. Every
//! build looks for it in the init it packs, so a production image
//! provably lacks it, and `inspect` says which kind an image is.

/// The fw_cfg name that switches the port on: QEMU passes it (see
/// [`crate::qemu`]), and init's `debug_port::ENABLE_FW_CFG` holds it, so
/// an init built with the feature contains these bytes and one without
/// does not.
pub const FW_CFG_NAME: &str = "opt/appliance/debug";

/// Which init a build wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    /// What ships: no debug port.
    Production,
    /// For the QEMU tests: init built with `--features debug-port`.
    Test,
}

impl Flavour {
    /// The cargo features init is built with.
    pub fn init_features(self) -> &'static [&'static str] {
        match self {
            Self::Production => &[],
            Self::Test => &["init/debug-port"],
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DebugPortError {
    #[error("the production init contains the debug port ({FW_CFG_NAME:?} found in it): it must be built without init's debug-port feature; is it a default feature in init/Cargo.toml?")]
    InProduction,
    #[error("the test init lacks the debug port ({FW_CFG_NAME:?} not found in it): was init built with --features init/debug-port?")]
    MissingInTest,
}

/// Whether this init binary has the debug port compiled in.
pub fn present(init: &[u8]) -> bool {
    init.windows(FW_CFG_NAME.len())
        .any(|w| w == FW_CFG_NAME.as_bytes())
}

/// Checks the built init is the flavour asked for.
pub fn check(init: &[u8], flavour: Flavour) -> Result<(), DebugPortError> {
    match (flavour, present(init)) {
        (Flavour::Production, true) => Err(DebugPortError::InProduction),
        (Flavour::Test, false) => Err(DebugPortError::MissingInTest),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Input: an init with the marker among other bytes, and one without.
    /// Output: a production build refuses the first, a test build the
    /// second; each accepts the other.
    #[test]
    fn each_flavour_refuses_the_other_init() {
        let with = b"\x7fELF...\0/sys/firmware/qemu_fw_cfg/by_name/opt/appliance/debug/raw\0";
        let without =
            b"\x7fELF...\0/sys/firmware/qemu_fw_cfg/by_name/opt/appliance/ovf-env.xml/raw\0";
        assert!(matches!(
            check(with, Flavour::Production),
            Err(DebugPortError::InProduction)
        ));
        assert!(check(without, Flavour::Production).is_ok());
        assert!(matches!(
            check(without, Flavour::Test),
            Err(DebugPortError::MissingInTest)
        ));
        assert!(check(with, Flavour::Test).is_ok());
    }
}
