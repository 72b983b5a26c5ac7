//! Which guest ports `image-builder run` forwards: every frontend's port
//! and the stats page's, from the lbd config the guest will run (the
//! image's baked one, or `lbd.config` when it is set), each to a free
//! port on 127.0.0.1.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};

/// lbd's stats page when its config names none.
const DEFAULT_STATS_PORT: u16 = 8404;
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

/// The guest's listening TCP ports from its lbd config text; a config
/// that does not parse gives only the stats page (lbd reports the error on
/// the VM's console).
pub fn guest_ports(lbd_config: &str) -> Vec<GuestPort> {
    let table: toml::Table = lbd_config.parse().unwrap_or_default();
    let port_of = |bind: &str| bind.parse::<SocketAddr>().ok().map(|a| a.port());
    let mut ports = Vec::new();
    let stats_port = table
        .get("stats")
        .and_then(|s| s.get("bind"))
        .and_then(toml::Value::as_str)
        .and_then(port_of)
        .unwrap_or(DEFAULT_STATS_PORT);
    ports.push(GuestPort {
        port: stats_port,
        what: "stats page".into(),
        http: true,
    });
    let frontends = table.get("frontends").and_then(toml::Value::as_table);
    for (name, fe) in frontends.into_iter().flatten() {
        let http = fe.get("mode").and_then(toml::Value::as_str) == Some("http");
        let binds = fe.get("bind").and_then(toml::Value::as_array);
        for port in binds
            .into_iter()
            .flatten()
            .filter_map(toml::Value::as_str)
            .filter_map(port_of)
        {
            if !ports.iter().any(|p| p.port == port) {
                ports.push(GuestPort {
                    port,
                    what: format!("frontend {name}"),
                    http,
                });
            }
        }
    }
    ports
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

    #[test]
    fn frontends_and_the_stats_page_are_found() {
        let ports = guest_ports(
            "[frontends.web]\nbind = [\"0.0.0.0:443\", \"[::]:443\"]\n[frontends.http]\nbind = [\"0.0.0.0:80\"]\nmode = \"http\"\n[stats]\nbind = \"0.0.0.0:9000\"\n",
        );
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
    fn no_services_still_forwards_the_stats_page() {
        assert_eq!(guest_ports("")[0].port, DEFAULT_STATS_PORT);
        assert_eq!(guest_ports("not toml [")[0].port, DEFAULT_STATS_PORT);
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
