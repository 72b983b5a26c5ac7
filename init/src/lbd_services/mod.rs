//! The overlay init writes for the deploy wizard's service slots
//! (`service.N.*`, checked by the settings merge into
//! [`settings::Service`]s and turned into lbd frontends and backends by
//! [`settings::service_layer`], the typed `lbd_config::Layer` that
//! `image-builder run` reads too).
//!
//! It goes after the base config and init's other overlay
//! (`crate::lbd_files`), so the firewall (which reads lbd's effective
//! config) opens its ports.

pub use settings::service_layer::services_layer;

#[cfg(test)]
mod tests;
