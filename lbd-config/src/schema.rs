//! The lbd configuration schema. Every table denies unknown keys, so a typo
//! is an error with file and line, never a silently ignored option.
//!
//! Named tables (`[frontends.NAME]`, `[backends.NAME]`,
//! `[backends.NAME.servers.NAME]`, `[stats.users.NAME]`) let an overlay file
//! change one key of one server; arrays (`bind`, `routes`) are replaced whole.
//! `[vrrp.NAME]` tables are VRRP instances, defined in [`crate::vrrp`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::address::ServerAddr;
use crate::duration::Dur;

/// Default path of the control socket.
pub const DEFAULT_CONTROL_SOCKET: &str = "/run/lbd/lbd.sock";
/// Default path of the admin-state file (the appliance points it at its data partition).
pub const DEFAULT_STATE_FILE: &str = "/var/lib/lbd/server-state.json";
/// Default DNS configuration for servers given by name.
pub const DEFAULT_RESOLV_CONF: &str = "/etc/resolv.conf";
/// Default stats listener, as HAProxy admins know it.
pub const DEFAULT_STATS_BIND: &str = "0.0.0.0:8404";
/// The local syslog socket `log = "syslog"` writes to by default.
pub const DEFAULT_SYSLOG_SOCKET: &str = "/dev/log";
/// Default limit on a request's start line and headers (HAProxy's
/// `tune.bufsize` order of size).
pub const DEFAULT_MAX_HEADER_SIZE: u32 = 16 * 1024;
/// Accepted range of `global.max_header_size`.
pub const MAX_HEADER_SIZE_RANGE: std::ops::RangeInclusive<u32> = 1024..=1024 * 1024;
/// Default time a client has to send a request's headers (HAProxy's
/// `timeout http-request`).
pub const DEFAULT_HTTP_REQUEST_TIMEOUT_SECS: u64 = 10;
/// The upgrade protocol an http frontend tunnels when none are configured.
pub const DEFAULT_UPGRADE_PROTOCOL: &str = "websocket";

/// The whole configuration after layering.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub global: Global,
    #[serde(default)]
    pub defaults: Defaults,
    #[serde(default)]
    pub frontends: BTreeMap<String, Frontend>,
    #[serde(default)]
    pub backends: BTreeMap<String, Backend>,
    #[serde(default)]
    pub stats: Option<Stats>,
    /// The appliance's web console and API (HTTPS, :5480).
    #[serde(default)]
    pub console: Option<Console>,
    /// VRRP instances (see [`crate::vrrp`]).
    #[serde(default)]
    pub vrrp: BTreeMap<String, crate::vrrp::Instance>,
}

/// Process-wide settings.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Global {
    /// Unix socket for `lbd ctl` and the appliance status screen.
    pub control_socket: PathBuf,
    /// Where admin states (ready/drain/maint) and weights survive restarts.
    pub state_file: PathBuf,
    /// Total concurrent client connections across all frontends.
    pub maxconn: u32,
    /// How long connections of an old configuration may live after a reload.
    pub reload_deadline: Dur,
    /// How long a graceful stop (SIGTERM) waits for connections to finish.
    pub stop_deadline: Dur,
    /// Mode tcp: move a direction to splice(2) once it carried 128 KiB.
    pub splice: bool,
    /// DNS configuration for servers given by name.
    pub resolv_conf: PathBuf,
    /// Where logs go.
    pub log: LogTarget,
    /// The syslog socket when `log = "syslog"`.
    pub syslog_socket: PathBuf,
    /// Mode http: most bytes of a request's start line and headers; a
    /// client sending more gets 431 and the connection closes.
    pub max_header_size: u32,
}

/// Log destination.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogTarget {
    #[default]
    Stderr,
    Syslog,
}

impl Default for Global {
    fn default() -> Self {
        Self {
            control_socket: PathBuf::from(DEFAULT_CONTROL_SOCKET),
            state_file: PathBuf::from(DEFAULT_STATE_FILE),
            maxconn: 20_000,
            reload_deadline: Dur::secs(3600),
            stop_deadline: Dur::secs(10),
            splice: true,
            resolv_conf: PathBuf::from(DEFAULT_RESOLV_CONF),
            log: LogTarget::Stderr,
            syslog_socket: PathBuf::from(DEFAULT_SYSLOG_SOCKET),
            max_header_size: DEFAULT_MAX_HEADER_SIZE,
        }
    }
}

/// Timeouts used where a frontend or backend sets none.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Defaults {
    pub timeout: Timeouts,
}

impl Default for Defaults {
    fn default() -> Self {
        Self {
            timeout: Timeouts {
                connect: Some(Dur::secs(5)),
                client: Some(Dur::secs(50)),
                server: Some(Dur::secs(50)),
                queue: Some(Dur::secs(10)),
                tunnel: None,
                http_request: Some(Dur::secs(DEFAULT_HTTP_REQUEST_TIMEOUT_SECS)),
            },
        }
    }
}

/// HAProxy's `timeout` family. `client` and `server` are inactivity timeouts
/// on each side of a proxied connection; `tunnel`, when set (backend or
/// defaults), replaces both once bytes flow as a tunnel (mode tcp, or an
/// upgraded HTTP connection), as in HAProxy. `http_request` (frontends,
/// mode http) is HAProxy's `timeout http-request`: the time a client has
/// to send a whole request head, also the idle time between keep-alive
/// requests.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Timeouts {
    pub connect: Option<Dur>,
    pub client: Option<Dur>,
    pub server: Option<Dur>,
    pub queue: Option<Dur>,
    pub tunnel: Option<Dur>,
    pub http_request: Option<Dur>,
}

/// `tcp` passes bytes (TLS stays end to end); `http` parses requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Tcp,
    Http,
}

/// A listener: addresses, mode and where its traffic goes.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Frontend {
    /// `IP:port` strings; bound with `IP_FREEBIND` so a VIP not yet held works.
    pub bind: Vec<SocketAddr>,
    #[serde(default)]
    pub mode: Mode,
    pub default_backend: Option<String>,
    pub maxconn: Option<u32>,
    #[serde(default)]
    pub timeout: Timeouts,
    /// Expect a PROXY protocol v1/v2 header from the client side.
    #[serde(default)]
    pub accept_proxy: bool,
    /// TLS termination (mode http only).
    pub tls: Option<TlsFiles>,
    /// Answer every request with a redirect to the same URL over https.
    #[serde(default)]
    pub redirect_https: bool,
    /// Host/path routing (mode http only); first match wins.
    #[serde(default)]
    pub routes: Vec<Route>,
    /// Add `X-Forwarded-For` (mode http only).
    #[serde(default = "yes")]
    pub forwarded_for: bool,
    /// With `forwarded_for`: replace the client's `X-Forwarded-For` with
    /// the client address instead of appending to it, and drop the
    /// client's `Forwarded` and `X-Real-IP` (for frontends facing clients
    /// who could forge them).
    #[serde(default)]
    pub forwarded_for_replace: bool,
    /// Open connections allowed from one client IP address (none: only
    /// `maxconn` limits). Beyond it new connections are closed at once.
    pub maxconn_per_source: Option<u32>,
    /// `Upgrade` protocols tunnelled after a 101 (mode http), compared
    /// case-insensitively; requests to upgrade to others are forwarded as
    /// plain requests without their `Upgrade` header.
    #[serde(default = "default_upgrade_protocols")]
    pub upgrade_protocols: Vec<String>,
}

fn yes() -> bool {
    true
}

fn default_upgrade_protocols() -> Vec<String> {
    vec![DEFAULT_UPGRADE_PROTOCOL.to_string()]
}

/// PEM files for TLS termination.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// Certificate chain, leaf first.
    pub cert: PathBuf,
    /// Private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// One routing rule of an http frontend.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Exact host name (port ignored), case-insensitive.
    pub host: Option<String>,
    /// Path prefix such as `/api/`.
    pub path_prefix: Option<String>,
    pub backend: String,
}

/// HAProxy's balance algorithms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Balance {
    /// Smooth weighted round robin; follows weight changes at once.
    #[default]
    Roundrobin,
    /// Weighted round robin fixed at load time.
    StaticRr,
    /// Fewest active connections per unit of weight.
    Leastconn,
    /// First server (in name order) with a free slot under its maxconn.
    First,
    /// Client-IP consistent hash: a server change remaps few clients.
    Source,
    /// Weighted random.
    Random,
}

/// The `balance` values as lbd's TOML spells them, in [`Balance::ALL`]
/// order: the deploy wizard's choices (a `ValueMap` needs them as text).
pub const BALANCE_NAMES: [&str; 6] = [
    "roundrobin",
    "static-rr",
    "leastconn",
    "first",
    "source",
    "random",
];

impl Balance {
    /// Every algorithm, in [`BALANCE_NAMES`] order.
    pub const ALL: [Self; 6] = [
        Self::Roundrobin,
        Self::StaticRr,
        Self::Leastconn,
        Self::First,
        Self::Source,
        Self::Random,
    ];

    /// The algorithm named as in lbd's TOML (`static-rr`), if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|b| b.name() == name)
    }

    /// The name as lbd's TOML spells it.
    pub fn name(self) -> &'static str {
        // Exhaustive: a new algorithm breaks the build here until it has
        // a name (and a place in ALL and BALANCE_NAMES).
        let i = match self {
            Self::Roundrobin => 0,
            Self::StaticRr => 1,
            Self::Leastconn => 2,
            Self::First => 3,
            Self::Source => 4,
            Self::Random => 5,
        };
        BALANCE_NAMES[i]
    }
}

/// PROXY protocol header sent to servers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SendProxy {
    #[default]
    None,
    V1,
    V2,
}

/// A pool of servers.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Backend {
    #[serde(default)]
    pub mode: Mode,
    #[serde(default)]
    pub balance: Balance,
    #[serde(default)]
    pub timeout: Timeouts,
    pub check: Option<Check>,
    pub agent: Option<AgentCheck>,
    #[serde(default)]
    pub send_proxy: SendProxy,
    #[serde(default)]
    pub servers: BTreeMap<String, Server>,
}

/// One server of a backend.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Server {
    /// `IP:port` or `host:port`; names are resolved by lbd (no NSS) and
    /// retried until they resolve.
    pub address: ServerAddr,
    /// 0..=256 as in HAProxy; 0 takes no new connections from balancing.
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// Used only when no normal server is up.
    #[serde(default)]
    pub backup: bool,
    pub maxconn: Option<u32>,
    /// Health-check this server when the backend has a `check` table.
    #[serde(default = "yes")]
    pub check: bool,
    /// Port for health checks if not the service port.
    pub check_port: Option<u16>,
}

fn default_weight() -> u32 {
    1
}

/// The kind of active health check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckKind {
    /// TCP connect succeeds.
    Tcp,
    /// A real TLS ClientHello; passes only on a ServerHello (HAProxy's
    /// `ssl-hello-chk` also passes on an alert).
    TlsHello,
    /// HTTP request, status compared with `expect_status`.
    Http,
    /// The same over TLS (certificate not verified: the backend is known).
    Https,
}

/// Active health check of a backend's servers.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Check {
    #[serde(rename = "type")]
    pub kind: CheckKind,
    /// HTTP method, default `GET` (http/https only).
    pub method: Option<String>,
    /// Request path, default `/` (http/https only).
    pub path: Option<String>,
    /// Host header, default the server address (http/https only).
    pub host: Option<String>,
    /// Accepted status codes, default 200..=399 (http/https only).
    pub expect_status: Option<Vec<u16>>,
    /// Interval while the server is fully up (default 2s).
    pub inter: Option<Dur>,
    /// Interval while counting towards rise or fall, and before the first result.
    pub fastinter: Option<Dur>,
    /// Interval while the server is fully down.
    pub downinter: Option<Dur>,
    /// Successes needed to go up (default 2).
    pub rise: Option<u32>,
    /// Failures needed to go down (default 3).
    pub fall: Option<u32>,
    /// Check timeout (default `inter`).
    pub timeout: Option<Dur>,
}

/// HAProxy's `agent-check`: a TCP port on the server answering one line.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AgentCheck {
    pub port: u16,
    /// Default 2s.
    pub inter: Option<Dur>,
    /// Default `inter`.
    pub timeout: Option<Dur>,
}

/// The stats/admin page.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Stats {
    #[serde(default = "default_stats_bind")]
    pub bind: SocketAddr,
    /// Refresh interval of the HTML page.
    #[serde(default = "default_refresh")]
    pub refresh: Dur,
    #[serde(default)]
    pub users: BTreeMap<String, StatsUser>,
}

fn default_stats_bind() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 8404))
}

fn default_refresh() -> Dur {
    Dur::secs(10)
}

/// The web console and API: HTTPS only, users of `[stats.users]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Console {
    /// Taken at start; not changed by reload. Plain HTTP on the same port
    /// is answered with a redirect to HTTPS.
    #[serde(default = "default_console_bind")]
    pub bind: SocketAddr,
    /// PEM certificate chain (the appliance makes one on first boot).
    pub cert: PathBuf,
    /// PEM private key of `cert`.
    pub key: PathBuf,
    /// A session without requests for this long is logged out.
    #[serde(default = "default_session_idle")]
    pub session_idle: Dur,
    /// init's appliance socket, where the console's configuration pages
    /// read and change the appliance store. Where nothing listens (a plain
    /// Linux host) those pages say the configuration is in lbd's files.
    #[serde(default = "default_appliance_socket")]
    pub appliance_socket: PathBuf,
}

/// Where init serves the appliance store (`appliance_api::SOCKET`).
pub const DEFAULT_APPLIANCE_SOCKET: &str = "/run/appliance/appliance.sock";

fn default_appliance_socket() -> PathBuf {
    PathBuf::from(DEFAULT_APPLIANCE_SOCKET)
}

/// Default console listener, where vSphere admins find VAMI.
pub const DEFAULT_CONSOLE_BIND: &str = "0.0.0.0:5480";

fn default_console_bind() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 5480))
}

fn default_session_idle() -> Dur {
    Dur::secs(30 * 60)
}

/// A stats page user; the password is stored only as a PHC hash
/// (`lbd hash-password` makes one).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StatsUser {
    pub password_hash: String,
    pub group: Group,
}

/// What a stats user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Group {
    ReadOnly,
    Admin,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Input: each name of BALANCE_NAMES as a TOML value. Output: the
    /// algorithm of ALL at the same place, and back to the same name.
    #[test]
    fn balance_names_are_the_toml_spelling() {
        for (name, balance) in BALANCE_NAMES.iter().zip(Balance::ALL) {
            let table: toml::Table = toml::from_str(&format!("b = \"{name}\"")).expect("toml");
            let parsed: Balance = table["b"].clone().try_into().expect("a balance");
            assert_eq!(parsed, balance, "{name}");
            assert_eq!(balance.name(), *name);
            assert_eq!(Balance::from_name(name), Some(balance));
        }
        assert_eq!(Balance::from_name("hash"), None);
    }
}
