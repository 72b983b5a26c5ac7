//! The overlay init writes for the deploy wizard's service slots
//! (`service.N.*`, checked by the settings merge into
//! [`settings::Service`]s and turned into lbd frontends and backends by
//! [`settings::service_layer`], the typed `lbd_config::Layer` that
//! `image-builder run` reads too).
//!
//! It goes after the base config and init's other overlay, so the firewall
//! (which reads lbd's effective config) opens its ports.

use settings::Service;

pub use settings::service_layer::services_layer;

use crate::lbd_config::write_overlay;

/// Written at boot on tmpfs, like init's other overlays: a slot emptied in
/// vSphere is gone at the next boot.
pub const SERVICES_OVERLAY: &str = "/run/lbd/appliance-services.toml";
const SERVICES_HEADER: &str = "Written by init from the service.N.* settings (the deploy \
                               wizard's Service 1-4 slots) at boot.";

/// Writes [`services_layer`] to [`SERVICES_OVERLAY`]; `Ok(false)` when
/// there is nothing to write.
pub fn write_services_overlay(services: &[Service]) -> Result<bool, String> {
    match services_layer(services) {
        Some(layer) => write_overlay(SERVICES_OVERLAY, SERVICES_HEADER, &layer).map(|()| true),
        None => Ok(false),
    }
}

#[cfg(test)]
mod tests;
