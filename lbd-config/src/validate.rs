//! Checks that need more than one key: references between sections, options
//! that only make sense together, ranges. Every problem is collected (not
//! only the first) so `lbd check` shows them all at once.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use crate::schema::{Backend, Check, CheckKind, Config, Frontend, Mode, TlsFiles};

/// HAProxy's maximum server weight.
pub const MAX_WEIGHT: u32 = 256;

/// Whether a frontend's readable certificate and key form a TLS config;
/// `Err` is the message shown for `frontends.NAME.tls`.
pub type TlsCheck = fn(&TlsFiles) -> Result<(), String>;

/// Checks only the program that uses a value can make, run where the
/// crate's own check of that value ends so problems keep their order.
/// lbd passes its TLS stack here; init, the importer and the API use
/// [`Checks::default`] (TLS files are only checked to be readable).
#[derive(Debug, Clone, Copy, Default)]
pub struct Checks {
    /// lbd's TLS stack; `None` checks only that the files can be read.
    pub tls: Option<TlsCheck>,
}

/// A problem with the key path it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: Vec<String>,
    pub message: String,
}

fn problem(key: &[&str], message: impl Into<String>) -> Problem {
    Problem {
        key: key.iter().map(|s| (*s).to_string()).collect(),
        message: message.into(),
    }
}

/// Returns every problem in `config` (empty when it is valid).
pub fn validate(config: &Config, checks: &Checks) -> Vec<Problem> {
    let mut out = Vec::new();
    if config.global.maxconn == 0 {
        out.push(problem(&["global", "maxconn"], "must be at least 1"));
    }
    if !crate::schema::MAX_HEADER_SIZE_RANGE.contains(&config.global.max_header_size) {
        out.push(problem(
            &["global", "max_header_size"],
            format!(
                "must be {} to {} bytes",
                crate::schema::MAX_HEADER_SIZE_RANGE.start(),
                crate::schema::MAX_HEADER_SIZE_RANGE.end()
            ),
        ));
    }
    let mut binds: BTreeMap<SocketAddr, String> = BTreeMap::new();
    for (name, fe) in &config.frontends {
        if let Err(message) = crate::name::check_name(name) {
            out.push(problem(&["frontends", name], message));
        }
        frontend(config, checks, name, fe, &mut out);
        for addr in &fe.bind {
            if let Some(other) = binds.insert(*addr, format!("frontends.{name}")) {
                out.push(problem(
                    &["frontends", name, "bind"],
                    format!("{addr} is also bound by {other}: give each listener its own address"),
                ));
            }
        }
    }
    for (name, be) in &config.backends {
        if let Err(message) = crate::name::check_name(name) {
            out.push(problem(&["backends", name], message));
        }
        backend(name, be, &mut out);
    }
    if let Some(stats) = &config.stats {
        if let Some(other) = binds.get(&stats.bind) {
            out.push(problem(
                &["stats", "bind"],
                format!("{} is also bound by {other}", stats.bind),
            ));
        }
        for (user, u) in &stats.users {
            if let Err(e) = password_hash::PasswordHash::new(&u.password_hash) {
                out.push(problem(
                    &["stats", "users", user, "password_hash"],
                    format!(
                        "not a PHC password hash ({e}): make one with `lbd hash-password`; \
                         plain passwords are not accepted"
                    ),
                ));
            }
        }
    }
    if let Some(console) = &config.console {
        let stats = config.stats.as_ref().map(|s| s.bind);
        if let Some(other) = binds.get(&console.bind) {
            out.push(problem(
                &["console", "bind"],
                format!("{} is also bound by {other}", console.bind),
            ));
        } else if stats == Some(console.bind) {
            out.push(problem(
                &["console", "bind"],
                format!("{} is also bound by stats", console.bind),
            ));
        }
    }
    crate::vrrp::validate(config, &mut out);
    out
}

fn frontend(config: &Config, checks: &Checks, name: &str, fe: &Frontend, out: &mut Vec<Problem>) {
    let key = |k: &'static str| ["frontends", name, k];
    if fe.bind.is_empty() {
        out.push(problem(&key("bind"), "needs at least one IP:port"));
    }
    if fe.maxconn == Some(0) {
        out.push(problem(&key("maxconn"), "must be at least 1"));
    }
    if fe.maxconn_per_source == Some(0) {
        out.push(problem(
            &key("maxconn_per_source"),
            "must be at least 1 (leave it out for no per-source limit)",
        ));
    }
    for protocol in &fe.upgrade_protocols {
        let token = protocol
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~/".contains(&b));
        if protocol.is_empty() || !token {
            out.push(problem(
                &key("upgrade_protocols"),
                format!("`{protocol}` is not an HTTP Upgrade token (such as \"websocket\")"),
            ));
        }
    }
    for (k, set) in [
        ("connect", fe.timeout.connect.is_some()),
        ("server", fe.timeout.server.is_some()),
        ("queue", fe.timeout.queue.is_some()),
        ("tunnel", fe.timeout.tunnel.is_some()),
    ] {
        if set {
            out.push(problem(
                &["frontends", name, "timeout", k],
                "a backend timeout: set it on the backend or in [defaults.timeout]",
            ));
        }
    }
    if fe.mode == Mode::Tcp {
        if fe.timeout.http_request.is_some() {
            out.push(problem(
                &["frontends", name, "timeout", "http_request"],
                "needs mode = \"http\"",
            ));
        }
        if fe.forwarded_for_replace {
            out.push(problem(
                &key("forwarded_for_replace"),
                "needs mode = \"http\"",
            ));
        }
        if fe.tls.is_some() {
            out.push(problem(
                &key("tls"),
                "TLS termination needs mode = \"http\"; in mode tcp TLS passes through",
            ));
        }
        if fe.redirect_https {
            out.push(problem(&key("redirect_https"), "needs mode = \"http\""));
        }
        if !fe.routes.is_empty() {
            out.push(problem(
                &key("routes"),
                "host/path routing needs mode = \"http\"",
            ));
        }
    }
    if let Some(tls) = &fe.tls {
        let mut readable = true;
        for (k, path) in [("cert", &tls.cert), ("key", &tls.key)] {
            if let Err(e) = std::fs::metadata(path) {
                readable = false;
                out.push(problem(
                    &["frontends", name, "tls", k],
                    format!("cannot read {}: {e}", path.display()),
                ));
            }
        }
        if let (true, Some(check)) = (readable, checks.tls) {
            if let Err(message) = check(tls) {
                out.push(problem(&["frontends", name, "tls"], message));
            }
        }
        if fe.redirect_https {
            out.push(problem(
                &key("redirect_https"),
                "this frontend already terminates TLS: redirecting to https would loop",
            ));
        }
    }
    let mut targets: Vec<(Vec<String>, &String)> = Vec::new();
    if let Some(b) = &fe.default_backend {
        targets.push((
            vec!["frontends".into(), name.into(), "default_backend".into()],
            b,
        ));
    }
    for (i, route) in fe.routes.iter().enumerate() {
        let route_key: Vec<String> = vec![
            "frontends".into(),
            name.into(),
            "routes".into(),
            i.to_string(),
        ];
        if route.host.is_none() && route.path_prefix.is_none() {
            out.push(Problem {
                key: route_key.clone(),
                message: "a route needs `host` or `path_prefix` (use default_backend for the rest)"
                    .into(),
            });
        }
        if route
            .path_prefix
            .as_deref()
            .is_some_and(|p| !p.starts_with('/'))
        {
            out.push(Problem {
                key: route_key.clone(),
                message: "path_prefix must start with `/`".into(),
            });
        }
        targets.push(([route_key, vec!["backend".into()]].concat(), &route.backend));
    }
    if targets.is_empty() && !fe.redirect_https {
        out.push(problem(
            &key("default_backend"),
            "a frontend needs default_backend, routes, or redirect_https",
        ));
    }
    for (k, target) in targets {
        match config.backends.get(target) {
            None => out.push(Problem {
                key: k,
                message: format!(
                    "no backend named `{target}`; defined: {}",
                    config
                        .backends
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }),
            Some(be) if be.mode != fe.mode => out.push(Problem {
                key: k,
                message: format!(
                    "backend `{target}` is mode {:?} but this frontend is mode {:?}",
                    be.mode, fe.mode
                ),
            }),
            Some(_) => {}
        }
    }
}

fn backend(name: &str, be: &Backend, out: &mut Vec<Problem>) {
    for (k, set) in [
        ("client", be.timeout.client.is_some()),
        ("http_request", be.timeout.http_request.is_some()),
    ] {
        if set {
            out.push(problem(
                &["backends", name, "timeout", k],
                "a frontend timeout: set it on the frontend or in [defaults.timeout]",
            ));
        }
    }
    for (sname, server) in &be.servers {
        let key = |k: &'static str| ["backends", name, "servers", sname, k];
        if server.weight > MAX_WEIGHT {
            out.push(problem(&key("weight"), format!("must be 0..={MAX_WEIGHT}")));
        }
        if server.maxconn == Some(0) {
            out.push(problem(&key("maxconn"), "must be at least 1"));
        }
        if server.check_port.is_some() && be.check.is_none() {
            out.push(problem(
                &key("check_port"),
                "set, but the backend has no [check] table",
            ));
        }
        if server.address.port() == 0 {
            out.push(problem(&key("address"), "port 0 is not a service port"));
        }
    }
    if let Some(check) = &be.check {
        check_table(name, check, out);
    }
    if let Some(agent) = &be.agent {
        if agent.port == 0 {
            out.push(problem(
                &["backends", name, "agent", "port"],
                "must be 1..=65535",
            ));
        }
    }
}

fn check_table(name: &str, check: &Check, out: &mut Vec<Problem>) {
    let key = |k: &'static str| ["backends", name, "check", k];
    let http = matches!(check.kind, CheckKind::Http | CheckKind::Https);
    // HAProxy lets a later check option silently override an earlier one;
    // here an option that the chosen check type ignores is an error.
    if !http {
        for (k, set) in [
            ("method", check.method.is_some()),
            ("path", check.path.is_some()),
            ("host", check.host.is_some()),
            ("expect_status", check.expect_status.is_some()),
        ] {
            if set {
                out.push(problem(
                    &key(k),
                    format!(
                        "only used by http/https checks, but type is {:?}: remove it or change type",
                        check.kind
                    ),
                ));
            }
        }
    }
    if let Some(m) = &check.method {
        if m.is_empty() || !m.bytes().all(|b| b.is_ascii_uppercase()) {
            out.push(problem(
                &key("method"),
                "must be an upper-case HTTP method such as GET or HEAD",
            ));
        }
    }
    if let Some(p) = &check.path {
        if !p.starts_with('/')
            || p.bytes()
                .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
        {
            out.push(problem(
                &key("path"),
                "must start with `/` and contain no spaces",
            ));
        }
    }
    if let Some(h) = &check.host {
        if h.is_empty()
            || h.bytes()
                .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
        {
            out.push(problem(&key("host"), "must be a host name without spaces"));
        }
    }
    if let Some(codes) = &check.expect_status {
        if codes.is_empty() || codes.iter().any(|c| !(100..=599).contains(c)) {
            out.push(problem(
                &key("expect_status"),
                "must list status codes in 100..=599",
            ));
        }
    }
    for (k, v) in [("rise", check.rise), ("fall", check.fall)] {
        if v == Some(0) {
            out.push(problem(&key(k), "must be at least 1"));
        }
    }
    for (k, v) in [
        ("inter", check.inter),
        ("fastinter", check.fastinter),
        ("downinter", check.downinter),
        ("timeout", check.timeout),
    ] {
        if v.is_some_and(|d| d.0.is_zero()) {
            out.push(problem(&key(k), "must be longer than 0"));
        }
    }
}

/// Things that are valid but probably not meant: printed by `lbd check`
/// and logged at start, never fatal.
pub fn warnings(config: &Config) -> Vec<Problem> {
    let mut out = Vec::new();
    if let Some(stats) = &config.stats {
        if stats.users.is_empty() {
            out.push(problem(
                &["stats", "users"],
                "no users: the stats page is open read-only to anyone who reaches it",
            ));
        }
    }
    for (name, be) in &config.backends {
        if be.servers.is_empty() {
            out.push(problem(
                &["backends", name],
                "has no servers: its clients get no service",
            ));
        }
        let used = config.frontends.values().any(|f| {
            f.default_backend.as_deref() == Some(name.as_str())
                || f.routes.iter().any(|r| &r.backend == name)
        });
        if !used {
            out.push(problem(&["backends", name], "no frontend uses it"));
        }
        if !be.servers.is_empty() && be.servers.values().all(|s| s.backup) {
            out.push(problem(&["backends", name], "all servers are backups"));
        }
    }
    let reserved: u64 = config
        .frontends
        .values()
        .filter_map(|f| f.maxconn)
        .map(u64::from)
        .sum();
    if reserved > u64::from(config.global.maxconn) {
        out.push(problem(
            &["global", "maxconn"],
            format!(
                "frontends' own maxconn add up to {reserved}, more than global.maxconn {}: \
                 a busy frontend can then take connection slots from the others",
                config.global.maxconn
            ),
        ));
    }
    crate::vrrp::warnings(config, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        toml::from_str(text).expect("test config parses")
    }

    #[test]
    fn frontends_reserving_more_than_global_maxconn_warn() {
        let text = "[global]\nmaxconn = 100\n\
             [frontends.a]\nbind = [\"127.0.0.1:1\"]\nmaxconn = 80\ndefault_backend = \"b\"\n\
             [frontends.c]\nbind = [\"127.0.0.1:2\"]\nmaxconn = 30\ndefault_backend = \"b\"\n\
             [backends.b.servers.s]\naddress = \"127.0.0.1:3\"\n";
        let warned = warnings(&config(text));
        assert!(
            warned
                .iter()
                .any(|w| w.key == ["global", "maxconn"] && w.message.contains("add up to 110")),
            "{warned:?}"
        );
        let fits = text.replace("maxconn = 30", "maxconn = 20");
        assert!(!warnings(&config(&fits))
            .iter()
            .any(|w| w.key == ["global", "maxconn"]));
    }

    #[test]
    fn http_only_keys_on_a_tcp_frontend_are_errors() {
        let text = "[frontends.a]\nbind = [\"127.0.0.1:1\"]\ndefault_backend = \"b\"\n\
             forwarded_for_replace = true\ntimeout = { http_request = \"5s\" }\n\
             [backends.b.servers.s]\naddress = \"127.0.0.1:3\"\n";
        let keys: Vec<String> = validate(&config(text), &Checks::default())
            .into_iter()
            .map(|p| p.key.join("."))
            .collect();
        assert!(
            keys.contains(&"frontends.a.forwarded_for_replace".to_string()),
            "{keys:?}"
        );
        assert!(
            keys.contains(&"frontends.a.timeout.http_request".to_string()),
            "{keys:?}"
        );
    }
}
