//! `[frontends.NAME]` and `[backends.NAME]` keys of an overlay, built the
//! same way as the other layer tables: each converts from its schema table
//! by an exhaustive destructuring, so a schema field renamed or added
//! breaks this build until the layer follows.
//!
//! A frontend or backend that no other file defines needs the schema's
//! required keys (`bind` for a frontend; a server's `address`); lbd says
//! so with the overlay's file and line otherwise.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde::Serialize;

use crate::address::ServerAddr;
use crate::schema::{
    AgentCheck, Backend, Balance, Check, Frontend, Mode, Route, SendProxy, Server, Timeouts,
    TlsFiles,
};

/// `[frontends.NAME]` keys to set.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FrontendLayer {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind: Option<Vec<SocketAddr>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_backend: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maxconn: Option<u32>,
    /// Given whole: its keys are all optional.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Timeouts>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accept_proxy: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsFiles>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect_https: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub routes: Option<Vec<Route>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forwarded_for: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forwarded_for_replace: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maxconn_per_source: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upgrade_protocols: Option<Vec<String>>,
}

/// `[backends.NAME]` keys to set; the check and the agent are given whole.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BackendLayer {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub balance: Option<Balance>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Timeouts>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<Check>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentCheck>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub send_proxy: Option<SendProxy>,
    /// `[backends.NAME.servers.NAME]` tables, merged key by key.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub servers: BTreeMap<String, ServerLayer>,
}

/// `[backends.NAME.servers.NAME]` keys to set.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ServerLayer {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<ServerAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maxconn: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check_port: Option<u16>,
}

/// Every key of `[frontends.NAME]`.
impl From<&Frontend> for FrontendLayer {
    fn from(fe: &Frontend) -> Self {
        let Frontend {
            bind,
            mode,
            default_backend,
            maxconn,
            timeout,
            accept_proxy,
            tls,
            redirect_https,
            routes,
            forwarded_for,
            forwarded_for_replace,
            maxconn_per_source,
            upgrade_protocols,
        } = fe.clone();
        Self {
            bind: Some(bind),
            mode: Some(mode),
            default_backend,
            maxconn,
            timeout: Some(timeout),
            accept_proxy: Some(accept_proxy),
            tls,
            redirect_https: Some(redirect_https),
            routes: Some(routes),
            forwarded_for: Some(forwarded_for),
            forwarded_for_replace: Some(forwarded_for_replace),
            maxconn_per_source,
            upgrade_protocols: Some(upgrade_protocols),
        }
    }
}

/// Every key of `[backends.NAME]` and of its servers.
impl From<&Backend> for BackendLayer {
    fn from(be: &Backend) -> Self {
        let Backend {
            mode,
            balance,
            timeout,
            check,
            agent,
            send_proxy,
            servers,
        } = be.clone();
        Self {
            mode: Some(mode),
            balance: Some(balance),
            timeout: Some(timeout),
            check,
            agent,
            send_proxy: Some(send_proxy),
            servers: servers
                .iter()
                .map(|(name, server)| (name.clone(), ServerLayer::from(server)))
                .collect(),
        }
    }
}

/// Every key of `[backends.NAME.servers.NAME]`.
impl From<&Server> for ServerLayer {
    fn from(server: &Server) -> Self {
        let Server {
            address,
            weight,
            backup,
            maxconn,
            check,
            check_port,
        } = server.clone();
        Self {
            address: Some(address),
            weight: Some(weight),
            backup: Some(backup),
            maxconn,
            check: Some(check),
            check_port,
        }
    }
}
