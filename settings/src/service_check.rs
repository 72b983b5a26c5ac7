//! The checks of the service slots that need several fields or several
//! slots, run by the merge once every source is applied: each slot in use
//! becomes a [`Service`] or a [`SettingError`] per problem. A slot with a
//! missing field, or clashing with an earlier slot, is not configured; a
//! field that cannot apply (a check path for a tcp check, a redirect on a
//! port the service takes itself) is ignored with an error. Either way the
//! other slots apply. Services' virtual IPs then join the VRRP addresses.

use std::collections::BTreeMap;

use crate::merge::{Origin, SettingError};
use crate::model::Settings;
use crate::service::{HealthCheck, Service, ServiceSlot, SlotCheck};
use crate::source::Source;
use crate::value::IpCidr;

/// Checks every slot in use and stores the services that pass in
/// `settings.services`; returns the problems.
pub(crate) fn resolve(
    settings: &mut Settings,
    origins: &BTreeMap<&'static str, Origin>,
) -> Vec<SettingError> {
    let mut errors = Vec::new();
    let mut services: Vec<Service> = Vec::new();
    for (i, slot) in settings.service_slots.iter().enumerate() {
        if !slot.in_use() {
            continue;
        }
        let check = SlotCheckContext {
            n: i + 1,
            origins,
            errors: &mut errors,
        };
        if let Some(service) = check.service(slot, &services) {
            services.push(service);
        }
    }
    for vip in services.iter().filter_map(|s| s.virtual_ip) {
        join_vrrp(&mut settings.vrrp.virtual_ips, vip);
    }
    settings.services = services;
    errors
}

/// Adds `vip` unless the address is there already (with whatever prefix
/// the admin gave it in `vrrp.virtual_ips`): each address is typed once.
fn join_vrrp(vips: &mut Vec<IpCidr>, vip: IpCidr) {
    if !vips.iter().any(|v| v.addr == vip.addr) {
        vips.push(vip);
    }
}

/// One slot's checks: its number, where its values came from, and the
/// errors so far.
struct SlotCheckContext<'a> {
    n: usize,
    origins: &'a BTreeMap<&'static str, Origin>,
    errors: &'a mut Vec<SettingError>,
}

impl SlotCheckContext<'_> {
    /// The slot as a service, or `None` (and errors) when it cannot be.
    fn service(mut self, slot: &ServiceSlot, earlier: &[Service]) -> Option<Service> {
        let n = self.n;
        if slot.ports.is_empty() {
            self.error(
                "ports",
                format!(
                    "service {n} is in use but has no ports: set service.{n}.ports, \
                     e.g. 443 or 443,8443; service {n} is not configured"
                ),
            );
        }
        if slot.servers.is_empty() {
            self.error(
                "servers",
                format!(
                    "service {n} is in use but has no servers: set service.{n}.servers, \
                     e.g. 10.0.0.11,10.0.0.12; service {n} is not configured"
                ),
            );
        }
        if slot.ports.is_empty() || slot.servers.is_empty() {
            return None;
        }
        let check = self.health_check(slot);
        let redirect_http = slot.redirect_http && !self.port_80_taken(slot);
        let service = Service {
            slot: n,
            name: slot.name.clone().unwrap_or_else(|| format!("service{n}")),
            virtual_ip: slot.virtual_ip,
            ports: slot.ports.clone(),
            mode: slot.mode,
            servers: slot.servers.clone(),
            balance: slot.balance,
            check,
            redirect_http,
        };
        self.clashes(&service, earlier).then_some(service)
    }

    /// The check, with the path where the check type uses it.
    fn health_check(&mut self, slot: &ServiceSlot) -> HealthCheck {
        let path = slot.check_path.clone();
        let n = self.n;
        match slot.check {
            SlotCheck::Http => return HealthCheck::Http { path },
            SlotCheck::Https => return HealthCheck::Https { path },
            _ => {}
        }
        if path.is_some() {
            let kind = match slot.check {
                SlotCheck::None => "none",
                SlotCheck::Tcp => "tcp",
                _ => "tls",
            };
            self.error(
                "check_path",
                format!(
                    "only an http or https check uses a path, but service.{n}.check is {kind}: \
                     set check to http or https, or clear check_path; the path is ignored"
                ),
            );
        }
        match slot.check {
            SlotCheck::None => HealthCheck::None,
            SlotCheck::Tls => HealthCheck::Tls,
            _ => HealthCheck::Tcp,
        }
    }

    /// Whether the service's own ports hold the redirect's port (an error).
    fn port_80_taken(&mut self, slot: &ServiceSlot) -> bool {
        let port = crate::service::REDIRECT_PORT;
        let taken = slot.ports.contains(&port);
        if taken {
            let n = self.n;
            self.error(
                "redirect_http",
                format!(
                    "service {n} listens on port {port} itself: remove {port} from \
                     service.{n}.ports or turn redirect_http off; no redirect is made"
                ),
            );
        }
        taken
    }

    /// False (and errors) when a frontend name or an address:port of
    /// `service` is an earlier service's.
    fn clashes(&mut self, service: &Service, earlier: &[Service]) -> bool {
        let n = self.n;
        let mut ok = true;
        let mine: Vec<_> = service
            .listeners()
            .into_iter()
            .chain(service.redirect())
            .collect();
        for other in earlier {
            let theirs: Vec<_> = other
                .listeners()
                .into_iter()
                .chain(other.redirect())
                .collect();
            let m = other.slot;
            if let Some(name) = mine
                .iter()
                .find(|a| theirs.iter().any(|b| a.name == b.name))
                .map(|l| l.name.clone())
            {
                ok = false;
                self.error(
                    "name",
                    format!(
                        "the name {name} is service {m}'s already: give service.{n}.name \
                         another name; service {n} is not configured"
                    ),
                );
            }
            let same_place = |a: Option<IpCidr>, b: Option<IpCidr>| match (a, b) {
                (Some(a), Some(b)) => a.addr == b.addr,
                // A listener on every address takes the port from all.
                _ => true,
            };
            let clash = mine.iter().find(|a| {
                theirs
                    .iter()
                    .any(|b| a.port == b.port && same_place(service.virtual_ip, other.virtual_ip))
            });
            if let Some(listener) = clash {
                ok = false;
                let place = service
                    .virtual_ip
                    .map_or("every address".to_owned(), |v| v.addr.to_string());
                let field = if service.redirect().as_ref() == Some(listener) {
                    "redirect_http"
                } else {
                    "ports"
                };
                self.error(
                    field,
                    format!(
                        "port {} on {place} is service {m}'s ({}) already: give each service \
                         its own virtual IP or port; service {n} is not configured",
                        listener.port, other.name
                    ),
                );
            }
        }
        ok
    }

    /// An error about `service.N.<field>`, with the value and source in
    /// effect for it (or, for a field never set, the source that put the
    /// slot in use).
    fn error(&mut self, field: &str, message: String) {
        let key = format!("service.{}.{field}", self.n);
        let set = |k: &str| {
            self.origins
                .get(k)
                .filter(|o| o.source != Source::Default && !o.raw.trim().is_empty())
        };
        let servers = format!("service.{}.servers", self.n);
        let name = format!("service.{}.name", self.n);
        let source = set(&key)
            .or_else(|| set(&servers))
            .or_else(|| set(&name))
            .map_or(Source::Default, |o| o.source);
        let value = set(&key)
            .map(|o| o.raw.trim().to_owned())
            .unwrap_or_default();
        self.errors.push(SettingError {
            key,
            value,
            source,
            message,
        });
    }
}

#[cfg(test)]
#[path = "service_check_tests.rs"]
mod tests;
