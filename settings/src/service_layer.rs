//! The service slots as lbd config: a typed [`Layer`] of the `lbd_config`
//! crate, built field by field from lbd's schema types and serialised by
//! that crate, so a renamed lbd key breaks the build, not a boot. init
//! writes it as an overlay at boot; `image-builder run` reads it to know
//! which ports the guest will listen on.
//!
//! Per service and port: a frontend binding `VIP:port` (every address,
//! 0.0.0.0 and [::], without a VIP) with a backend of the same name, named
//! after the service with one port and `<name>-<port>` with several; each
//! server item without a port takes the listener's port. `redirect_http`
//! adds an http frontend `<name>-http` on `VIP:80` answering with a
//! redirect to https. Check timers are lbd's defaults, which are HAProxy's
//! (inter 2 s, rise 2, fall 3).

use std::collections::BTreeMap;

use lbd_config::layer::{BackendLayer, FrontendLayer, ServerLayer};
use lbd_config::{Check, CheckKind, Layer, Mode};

use crate::service::{HealthCheck, Service};

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
