//! Which guest ports `image-builder run` forwards: every frontend's port
//! and the stats page's, from the effective lbd config the guest will run
//! (the image's baked one, or `lbd.config` when it is set), each to a free
//! port on 127.0.0.1.

use std::net::{Ipv4Addr, TcpListener};
use std::path::PathBuf;

use lbd_config::Mode;

/// Ports below 1024 need root on the host: they move up by this much.
const PRIVILEGED_OFFSET: u16 = 8000;

/// One guest port and what listens there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestPort {
    pub port: u16,
    /// "stats page", "frontend horizon" ...
    pub what: String,
    /// Speaks HTTP (printed as an http:// URL).
    pub http: bool,
}

/// The guest's listening TCP ports, read from its lbd config files
/// (`(name, text)` in lbd's order: the base, then the overlay init writes
/// for the service slots) through lbd's own loader; the names say which
/// file in errors. A config lbd would refuse gives its errors instead:
/// nothing would listen in the guest.
pub fn guest_ports(files: &[(&str, &str)]) -> Result<Vec<GuestPort>, String> {
    let texts = files
        .iter()
        .map(|(name, text)| (PathBuf::from(name), (*text).to_string()))
        .collect();
    let config = lbd_config::load_texts(texts).map_err(|e| e.to_string())?;
    let mut ports = Vec::new();
    let mut add = |port: u16, what: String, http: bool| {
        if !ports.iter().any(|p: &GuestPort| p.port == port) {
            ports.push(GuestPort { port, what, http });
        }
    };
    if let Some(stats) = &config.stats {
        add(stats.bind.port(), "stats page".into(), true);
    }
    for (name, fe) in &config.frontends {
        for bind in &fe.bind {
            add(
                bind.port(),
                format!("frontend {name}"),
                fe.mode == Mode::Http,
            );
        }
    }
    Ok(ports)
}

/// A host port for each guest port: the same number when it is free and
/// unprivileged, else 8000 above it, else any free one.
pub fn host_ports(guest: &[GuestPort]) -> Vec<u16> {
    let mut taken = Vec::new();
    for g in guest {
        let wanted = [
            (g.port >= 1024).then_some(g.port),
            g.port.checked_add(PRIVILEGED_OFFSET),
        ];
        let port = wanted
            .into_iter()
            .flatten()
            .find(|p| !taken.contains(p) && is_free(*p))
            .or_else(any_free)
            .unwrap_or(0);
        taken.push(port);
    }
    taken
}

fn is_free(port: u16) -> bool {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
}

fn any_free() -> Option<u16> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const WEB: &str = "[frontends.web]\nbind = [\"0.0.0.0:443\", \"[::]:443\"]\ndefault_backend = \"web\"\n[frontends.http]\nbind = [\"0.0.0.0:80\"]\nmode = \"http\"\nredirect_https = true\n[backends.web.servers.a]\naddress = \"192.0.2.1:443\"\n[stats]\nbind = \"0.0.0.0:9000\"\n";

    #[test]
    fn frontends_and_the_stats_page_are_found() {
        let ports = guest_ports(&[("lbd.toml", WEB)]).unwrap();
        let summary: Vec<(u16, &str, bool)> = ports
            .iter()
            .map(|p| (p.port, p.what.as_str(), p.http))
            .collect();
        assert_eq!(
            summary,
            [
                (9000, "stats page", true),
                (80, "frontend http", true),
                (443, "frontend web", false)
            ]
        );
    }

    #[test]
    fn a_config_lbd_refuses_says_why() {
        let err = guest_ports(&[("lbd.config", "[frontends.x]\nbind = [\"0.0.0.0:70000\"]\n")])
            .unwrap_err();
        assert!(err.contains("lbd.config"), "{err}");
    }

    /// Input: a base with the stats page only (the image's), and the
    /// overlay of one service slot. Output: the slot's frontends are
    /// forwarded too.
    #[test]
    fn service_slots_are_forwarded() {
        let merged = ::settings::merge([::settings::Layer::new(
            ::settings::Source::Cmdline,
            vec![
                ("service.1.name".into(), "web".into()),
                ("service.1.ports".into(), "443".into()),
                ("service.1.servers".into(), "10.0.2.2:8443".into()),
            ],
        )]);
        let overlay = ::settings::service_layer::services_layer(&merged.settings.services)
            .unwrap()
            .to_toml("")
            .unwrap();
        let base = "[stats]\nbind = \"0.0.0.0:8404\"\n";
        let ports = guest_ports(&[("lbd.toml", base), ("service slots", &overlay)]).unwrap();
        let summary: Vec<(u16, &str)> = ports.iter().map(|p| (p.port, p.what.as_str())).collect();
        assert_eq!(summary, [(8404, "stats page"), (443, "frontend web")]);
    }

    #[test]
    fn privileged_and_busy_ports_move() {
        let busy = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let busy_port = busy.local_addr().unwrap().port();
        let guest = [
            GuestPort {
                port: busy_port,
                what: "a".into(),
                http: false,
            },
            GuestPort {
                port: 443,
                what: "b".into(),
                http: false,
            },
        ];
        let host = host_ports(&guest);
        assert_ne!(host[0], busy_port);
        assert_ne!(host[0], 0);
        assert!(host[1] >= 1024, "{host:?}");
    }
}
