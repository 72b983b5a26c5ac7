//! Overlay files as typed values: a [`Layer`] holds only the keys it sets,
//! with the schema's own value types, and serialises to the TOML lbd
//! layers over its other files (see [`crate::load`]). init writes its
//! boot-time overlays this way; the importer and the API will too.
//!
//! Each layer table converts from its schema table by an exhaustive
//! destructuring (`From<&Instance> for InstanceLayer` and the like): a
//! field renamed or added in the [`crate::schema`] breaks this crate's
//! build until the layer follows, and a layer field renamed breaks every
//! program that sets it. The tests serialise such a full layer and load it
//! back through lbd's loader, so the keys written are the keys lbd reads.
//!
//! Frontends and backends are in [`proxy`]. `[defaults]` is not here yet;
//! add it the same way when a program writes it.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use serde::Serialize;

mod proxy;

pub use proxy::{BackendLayer, FrontendLayer, ServerLayer};

use crate::duration::Dur;
use crate::schema::{Config, Console, Global, LogTarget, Stats, StatsUser};
use crate::vrrp::{AuthType, Cidr, Instance, Notify, Track};

/// Why a layer could not be written as TOML.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// A value TOML cannot hold, such as a path that is not UTF-8.
    #[error("serialising a config overlay to TOML: {source}")]
    Serialize { source: toml::ser::Error },
}

/// One overlay file: the keys it sets, nothing else.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Layer {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub global: Option<GlobalLayer>,
    /// `[frontends.NAME]` tables, merged key by key.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub frontends: BTreeMap<String, FrontendLayer>,
    /// `[backends.NAME]` tables, merged key by key.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub backends: BTreeMap<String, BackendLayer>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats: Option<StatsLayer>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub console: Option<ConsoleLayer>,
    /// `[vrrp.NAME]` tables, merged key by key into instances of that name.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub vrrp: BTreeMap<String, InstanceLayer>,
}

impl Layer {
    /// The overlay as TOML, opened by `header` as comment lines (who wrote
    /// it and from what), ready to be written next to lbd's other files.
    pub fn to_toml(&self, header: &str) -> Result<String, LayerError> {
        let body = toml::to_string(self).map_err(|source| LayerError::Serialize { source })?;
        let mut text = String::new();
        for line in header.lines() {
            text.push_str("# ");
            text.push_str(line);
            text.push('\n');
        }
        text.push_str(&body);
        Ok(text)
    }
}

/// `[global]` keys to set.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct GlobalLayer {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub control_socket: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_file: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maxconn: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reload_deadline: Option<Dur>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_deadline: Option<Dur>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub splice: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolv_conf: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log: Option<LogTarget>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub syslog_socket: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_header_size: Option<u32>,
}

/// `[stats]` keys to set; a user is given whole (hash and group).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StatsLayer {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh: Option<Dur>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub users: BTreeMap<String, StatsUser>,
}

/// `[console]` keys to set.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ConsoleLayer {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_idle: Option<Dur>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub appliance_socket: Option<PathBuf>,
}

/// `[vrrp.NAME]` keys to set. An instance that no other file defines needs
/// `interface`, `vrid`, `priority` and `virtual_ips` (lbd says so with the
/// overlay's file and line otherwise).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct InstanceLayer {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vrid: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advert_int: Option<Dur>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unicast_src_ip: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unicast_peers: Option<Vec<IpAddr>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_pass: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_type: Option<AuthType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub virtual_ips: Option<Vec<Cidr>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preempt: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nopreempt: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preempt_delay: Option<Dur>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub garp_delay: Option<Dur>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub garp_refresh: Option<Dur>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub track_backend: BTreeMap<String, Track>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub track_frontend: BTreeMap<String, Track>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notify: Option<Notify>,
}

/// Every `[global]`, `[frontends.NAME]`, `[backends.NAME]`, `[stats]` and
/// `[vrrp.NAME]` key of `config`.
impl From<&Config> for Layer {
    fn from(config: &Config) -> Self {
        Self {
            global: Some(GlobalLayer::from(&config.global)),
            frontends: config
                .frontends
                .iter()
                .map(|(name, fe)| (name.clone(), FrontendLayer::from(fe)))
                .collect(),
            backends: config
                .backends
                .iter()
                .map(|(name, be)| (name.clone(), BackendLayer::from(be)))
                .collect(),
            stats: config.stats.as_ref().map(StatsLayer::from),
            console: config.console.as_ref().map(ConsoleLayer::from),
            vrrp: config
                .vrrp
                .iter()
                .map(|(name, vi)| (name.clone(), InstanceLayer::from(vi)))
                .collect(),
        }
    }
}

/// Every key of `[global]`.
impl From<&Global> for GlobalLayer {
    fn from(global: &Global) -> Self {
        let Global {
            control_socket,
            state_file,
            maxconn,
            reload_deadline,
            stop_deadline,
            splice,
            resolv_conf,
            log,
            syslog_socket,
            max_header_size,
        } = global.clone();
        Self {
            control_socket: Some(control_socket),
            state_file: Some(state_file),
            maxconn: Some(maxconn),
            reload_deadline: Some(reload_deadline),
            stop_deadline: Some(stop_deadline),
            splice: Some(splice),
            resolv_conf: Some(resolv_conf),
            log: Some(log),
            syslog_socket: Some(syslog_socket),
            max_header_size: Some(max_header_size),
        }
    }
}

/// Every key of `[stats]`.
impl From<&Stats> for StatsLayer {
    fn from(stats: &Stats) -> Self {
        let Stats {
            bind,
            refresh,
            users,
        } = stats.clone();
        Self {
            bind: Some(bind),
            refresh: Some(refresh),
            users,
        }
    }
}

/// Every key of `[console]`.
impl From<&Console> for ConsoleLayer {
    fn from(console: &Console) -> Self {
        let Console {
            bind,
            cert,
            key,
            session_idle,
            appliance_socket,
        } = console.clone();
        Self {
            bind: Some(bind),
            cert: Some(cert),
            key: Some(key),
            session_idle: Some(session_idle),
            appliance_socket: Some(appliance_socket),
        }
    }
}

/// Every key of `[vrrp.NAME]`.
impl From<&Instance> for InstanceLayer {
    fn from(vi: &Instance) -> Self {
        let Instance {
            interface,
            vrid,
            priority,
            advert_int,
            version,
            unicast_src_ip,
            unicast_peers,
            auth_pass,
            auth_type,
            auth_key,
            virtual_ips,
            preempt,
            nopreempt,
            preempt_delay,
            garp_delay,
            garp_refresh,
            track_backend,
            track_frontend,
            notify,
        } = vi.clone();
        Self {
            interface: Some(interface),
            vrid: Some(vrid),
            priority: Some(priority),
            advert_int: Some(advert_int),
            version: Some(version),
            unicast_src_ip,
            unicast_peers: Some(unicast_peers),
            auth_pass,
            auth_type,
            auth_key,
            virtual_ips: Some(virtual_ips),
            preempt,
            nopreempt,
            preempt_delay,
            garp_delay: Some(garp_delay),
            garp_refresh,
            track_backend,
            track_frontend,
            notify: Some(notify),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::load_texts;
    use crate::schema::Group;

    fn load(files: &[(&str, &str)]) -> Result<Config, String> {
        load_texts(
            files
                .iter()
                .map(|(p, t)| (PathBuf::from(p), t.to_string()))
                .collect(),
        )
        .map_err(|e| e.to_string())
    }

    const BACKEND: &str = "[backends.web.servers.a]\naddress = \"10.9.0.1:80\"\n\
                           [frontends.web]\nbind = [\"0.0.0.0:80\"]\ndefault_backend = \"web\"\n";

    /// A config that sets every key a layer can hold, most of them away
    /// from their defaults, so a key written under a wrong name or in a
    /// wrong form is noticed when it is read back.
    const FULL: &str = "[global]\ncontrol_socket = \"/run/x.sock\"\nstate_file = \"/s.json\"\n\
        maxconn = 7\nreload_deadline = \"5m\"\nstop_deadline = \"3s\"\nsplice = false\n\
        resolv_conf = \"/r.conf\"\nlog = \"syslog\"\nsyslog_socket = \"/l\"\n\
        [stats]\nbind = \"127.0.0.1:9000\"\nrefresh = \"3s\"\n\
        [stats.users.admin]\ngroup = \"admin\"\n\
        password_hash = \"$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA\"\n\
        [vrrp.vi]\ninterface = \"eth1\"\nvrid = 9\npriority = 200\nadvert_int = \"2s\"\n\
        version = 2\nunicast_src_ip = \"10.0.0.1\"\nunicast_peers = [\"10.0.0.2\"]\n\
        auth_type = \"ah\"\nauth_pass = \"secret\"\nvirtual_ips = [\"10.0.0.100/24\"]\n\
        preempt = true\npreempt_delay = \"7s\"\ngarp_delay = \"2s\"\ngarp_refresh = \"1m\"\n\
        [vrrp.vi.track_backend.web]\nweight = 20\n\
        [vrrp.vi.track_frontend.web]\nfault = true\n\
        [vrrp.vi.notify]\nmaster = \"/bin/m\"\ntimeout = \"4s\"\n";

    /// Every frontend, backend and server key, away from the defaults.
    /// The TLS files only need to be readable here (no TLS stack checks
    /// them in this crate).
    fn full_proxy() -> String {
        let file = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
        format!(
            "[frontends.full]\nbind = [\"10.0.0.1:443\", \"[::1]:443\"]\nmode = \"http\"\n\
             default_backend = \"web2\"\nmaxconn = 9\naccept_proxy = true\n\
             forwarded_for = false\n\
             routes = [{{ host = \"a.example\", path_prefix = \"/api/\", backend = \"web2\" }}]\n\
             [frontends.full.timeout]\nclient = \"7s\"\n\
             [frontends.full.tls]\ncert = \"{file}\"\nkey = \"{file}\"\n\
             [frontends.redir]\nbind = [\"10.0.0.1:80\"]\nmode = \"http\"\nredirect_https = true\n\
             [backends.web2]\nmode = \"http\"\nbalance = \"static-rr\"\nsend_proxy = \"v2\"\n\
             [backends.web2.timeout]\nconnect = \"1s\"\nserver = \"2s\"\nqueue = \"3s\"\n\
             tunnel = \"4s\"\n\
             [backends.web2.check]\ntype = \"https\"\nmethod = \"HEAD\"\npath = \"/favicon.ico\"\n\
             host = \"cs.example\"\nexpect_status = [200, 204]\ninter = \"3s\"\n\
             fastinter = \"1s\"\ndowninter = \"9s\"\nrise = 4\nfall = 5\ntimeout = \"2s\"\n\
             [backends.web2.agent]\nport = 9999\ninter = \"5s\"\ntimeout = \"1s\"\n\
             [backends.web2.servers.s1]\naddress = \"cs1.example.com:443\"\nweight = 5\n\
             backup = true\nmaxconn = 3\ncheck = false\ncheck_port = 8443\n\
             [backends.web2.servers.s2]\naddress = \"10.0.0.22:443\"\n"
        )
    }

    /// Input: a config setting every layer key. Output: its layer, written
    /// as TOML and loaded by lbd's loader, gives the same config back.
    #[test]
    fn full_layer_round_trips_through_the_loader() {
        let full = format!("{BACKEND}{FULL}{}", full_proxy());
        let config = load(&[("full.toml", &full)]).expect("valid");
        assert_eq!(
            config.frontends.len(),
            3,
            "the proxy tables are in the test"
        );
        let text = Layer::from(&config).to_toml("test").expect("serialises");
        let back = load(&[("base.toml", BACKEND), ("layer.toml", &text)]).expect("loads");
        assert_eq!(back, config, "{text}");
    }

    /// Input: a layer with one global key, an admin user and a new VRRP
    /// instance. Output: the header as comments, then only those keys.
    #[test]
    fn only_the_keys_set_are_written() {
        let layer = Layer {
            global: Some(GlobalLayer {
                state_file: Some("/data/state.json".into()),
                ..GlobalLayer::default()
            }),
            stats: Some(StatsLayer {
                users: BTreeMap::from([(
                    "admin".to_string(),
                    StatsUser {
                        password_hash: "$argon2id$\"x\\".into(),
                        group: Group::Admin,
                    },
                )]),
                ..StatsLayer::default()
            }),
            vrrp: BTreeMap::from([(
                "appliance".to_string(),
                InstanceLayer {
                    interface: Some("eth0".into()),
                    vrid: Some(51),
                    ..InstanceLayer::default()
                },
            )]),
            ..Layer::default()
        };
        let text = layer
            .to_toml("Written by a test.\nSecond line.")
            .expect("ok");
        let expected = "# Written by a test.\n# Second line.\n\
                        [global]\nstate_file = \"/data/state.json\"\n\n\
                        [stats.users.admin]\npassword_hash = '$argon2id$\"x\\'\ngroup = \"admin\"\n\n\
                        [vrrp.appliance]\ninterface = \"eth0\"\nvrid = 51\n";
        assert_eq!(text, expected);
    }

    /// Input: a base with a tracked VRRP instance, a layer changing only its
    /// priority. Output: the priority changes, tracking and VIPs stay.
    #[test]
    fn a_layer_changes_single_keys_of_an_instance() {
        let base = format!(
            "{BACKEND}[vrrp.vi]\ninterface = \"eth0\"\nvrid = 1\npriority = 100\n\
             virtual_ips = [\"10.0.0.100/24\"]\n[vrrp.vi.track_backend.web]\nweight = 10\n"
        );
        let layer = Layer {
            vrrp: BTreeMap::from([(
                "vi".to_string(),
                InstanceLayer {
                    priority: Some(150),
                    ..InstanceLayer::default()
                },
            )]),
            ..Layer::default()
        };
        let text = layer.to_toml("").expect("ok");
        let config = load(&[("base.toml", &base), ("layer.toml", &text)]).expect("valid");
        let vi = &config.vrrp["vi"];
        assert_eq!(vi.priority, 150);
        assert_eq!(vi.track_backend["web"].weight, Some(10));
        assert_eq!(vi.virtual_ips.len(), 1);
    }

    /// Input: a layer defining a frontend and its backend from nothing,
    /// with a check given whole. Output: only those keys, and lbd's loader
    /// accepts them as a whole service on top of a file without any.
    #[test]
    fn a_service_layer_defines_a_frontend_and_backend() {
        use crate::schema::{Balance, Check, CheckKind, Mode};
        let layer = Layer {
            frontends: BTreeMap::from([(
                "app".to_string(),
                FrontendLayer {
                    bind: Some(vec!["10.0.0.101:443".parse().unwrap()]),
                    mode: Some(Mode::Tcp),
                    default_backend: Some("app".into()),
                    ..FrontendLayer::default()
                },
            )]),
            backends: BTreeMap::from([(
                "app".to_string(),
                BackendLayer {
                    mode: Some(Mode::Tcp),
                    balance: Some(Balance::Source),
                    check: Some(Check {
                        kind: CheckKind::Https,
                        method: None,
                        path: Some("/favicon.ico".into()),
                        host: None,
                        expect_status: None,
                        inter: None,
                        fastinter: None,
                        downinter: None,
                        rise: None,
                        fall: None,
                        timeout: None,
                    }),
                    servers: BTreeMap::from([(
                        "a1".to_string(),
                        ServerLayer {
                            address: Some(
                                crate::address::parse_server_addr("10.0.0.21:443").unwrap(),
                            ),
                            ..ServerLayer::default()
                        },
                    )]),
                    ..BackendLayer::default()
                },
            )]),
            ..Layer::default()
        };
        let text = layer.to_toml("").expect("ok");
        let expected = "[frontends.app]\nbind = [\"10.0.0.101:443\"]\nmode = \"tcp\"\n\
                        default_backend = \"app\"\n\n\
                        [backends.app]\nmode = \"tcp\"\nbalance = \"source\"\n\n\
                        [backends.app.check]\ntype = \"https\"\npath = \"/favicon.ico\"\n\n\
                        [backends.app.servers.a1]\naddress = \"10.0.0.21:443\"\n";
        assert_eq!(text, expected);
        let config = load(&[
            ("base.toml", "[global]\nmaxconn = 10\n"),
            ("app.toml", &text),
        ])
        .expect("valid");
        assert_eq!(config.listening_ports(), [443]);
        assert_eq!(config.backends["app"].balance, Balance::Source);
    }

    #[test]
    fn an_empty_layer_is_an_empty_file() {
        assert_eq!(Layer::default().to_toml("").expect("ok"), "");
    }

    #[test]
    fn a_path_toml_cannot_hold_is_an_error() {
        use std::os::unix::ffi::OsStrExt;
        let bad = PathBuf::from(std::ffi::OsStr::from_bytes(b"/state-\xff"));
        let layer = Layer {
            global: Some(GlobalLayer {
                state_file: Some(bad),
                ..GlobalLayer::default()
            }),
            ..Layer::default()
        };
        let err = layer.to_toml("").expect_err("not UTF-8");
        assert!(
            err.to_string()
                .starts_with("serialising a config overlay to TOML:"),
            "{err}"
        );
    }
}
