//! lbd's frontends and backends for the deploy wizard's service slots
//! (`service.N.*`, checked by the settings merge into
//! [`settings::Service`]s), as a typed [`Layer`] of the `lbd_config` crate:
//! built field by field from lbd's schema types and serialised by that
//! crate, so a renamed lbd key breaks this build, not a boot.
//!
//! Per service and port: a frontend binding `VIP:port` (every address,
//! 0.0.0.0 and [::], without a VIP) with a backend of the same name, named
//! after the service with one port and `<name>-<port>` with several; each
//! server item without a port takes the listener's port. `redirect_http`
//! adds an http frontend `<name>-http` on `VIP:80` answering with a
//! redirect to https. Check timers are lbd's defaults, which are HAProxy's
//! (inter 2 s, rise 2, fall 3).
//!
//! The overlay goes after the base config and init's other overlay, so the
//! firewall (which reads lbd's effective config) opens its ports.

use std::collections::BTreeMap;

use lbd_config::layer::{BackendLayer, FrontendLayer, ServerLayer};
use lbd_config::{Check, CheckKind, Layer, Mode};
use settings::{HealthCheck, Service};

use crate::lbd_config::write_overlay;

/// Written at boot on tmpfs, like init's other overlays: a slot emptied in
/// vSphere is gone at the next boot.
pub const SERVICES_OVERLAY: &str = "/run/lbd/appliance-services.toml";
const SERVICES_HEADER: &str = "Written by init from the service.N.* settings (the deploy \
                               wizard's Service 1-4 slots) at boot.";

/// The overlay for `services`, or `None` when there are none (the image
/// then serves nothing but its stats page, and the status screen says how
/// to add a service).
pub fn services_layer(services: &[Service]) -> Option<Layer> {
    if services.is_empty() {
        return None;
    }
    let mut layer = Layer::default();
    for service in services {
        for listener in service.listeners() {
            layer.frontends.insert(
                listener.name.clone(),
                FrontendLayer {
                    bind: Some(service.binds(listener.port)),
                    mode: Some(service.mode),
                    default_backend: Some(listener.name.clone()),
                    ..FrontendLayer::default()
                },
            );
            layer
                .backends
                .insert(listener.name, backend(service, listener.port));
        }
        if let Some(redirect) = service.redirect() {
            layer.frontends.insert(
                redirect.name,
                FrontendLayer {
                    bind: Some(service.binds(redirect.port)),
                    mode: Some(Mode::Http),
                    redirect_https: Some(true),
                    ..FrontendLayer::default()
                },
            );
        }
    }
    Some(layer)
}

/// Writes [`services_layer`] to [`SERVICES_OVERLAY`]; `Ok(false)` when
/// there is nothing to write.
pub fn write_services_overlay(services: &[Service]) -> Result<bool, String> {
    match services_layer(services) {
        Some(layer) => write_overlay(SERVICES_OVERLAY, SERVICES_HEADER, &layer).map(|()| true),
        None => Ok(false),
    }
}

/// The backend of `service`'s listener on `port`.
fn backend(service: &Service, port: u16) -> BackendLayer {
    let servers = service
        .servers
        .iter()
        .map(|item| {
            let server = ServerLayer {
                address: Some(item.address(port)),
                ..ServerLayer::default()
            };
            (item.server_name(), server)
        })
        .collect::<BTreeMap<_, _>>();
    BackendLayer {
        mode: Some(service.mode),
        balance: Some(service.balance),
        check: check(&service.check),
        servers,
        ..BackendLayer::default()
    }
}

/// lbd's `[check]` table for the slot's check; every key but the type and
/// path left to lbd's defaults.
fn check(check: &HealthCheck) -> Option<Check> {
    let (kind, path) = match check {
        HealthCheck::None => return None,
        HealthCheck::Tcp => (CheckKind::Tcp, None),
        HealthCheck::Tls => (CheckKind::TlsHello, None),
        HealthCheck::Http { path } => (CheckKind::Http, path.clone()),
        HealthCheck::Https { path } => (CheckKind::Https, path.clone()),
    };
    Some(Check {
        kind,
        method: None,
        path,
        host: None,
        expect_status: None,
        inter: None,
        fastinter: None,
        downinter: None,
        rise: None,
        fall: None,
        timeout: None,
    })
}

#[cfg(test)]
mod tests;
