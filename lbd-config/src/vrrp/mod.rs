//! `[vrrp.NAME]`: one VRRP instance per table ([`Instance`]), the protocol
//! facts other programs need about it (IP protocol, multicast groups), and
//! its validation ([`validate`], called from [`crate::validate`] so problems
//! carry file:line like the rest of the config).
//!
//! ```toml
//! [vrrp.vi1]
//! interface = "eth0"
//! vrid = 51
//! priority = 100
//! advert_int = "1s"
//! version = 2                      # Keepalived peers; default 3
//! unicast_src_ip = "10.0.0.1"
//! unicast_peers = ["10.0.0.2"]     # none: multicast 224.0.0.18 / ff02::12
//! auth_pass = "secret"             # v2 only; NOT security
//! # auth_type = "ah"               # v2 Keepalived AH with auth_pass
//! # auth_type = "hmac"             # v3, lbd-to-lbd, with auth_key
//! virtual_ips = ["10.0.0.100/24"]
//! [vrrp.vi1.track_backend.horizon]
//! weight = 30                      # or: fault = true
//! ```

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::duration::Dur;

mod auth;
mod cidr;
mod validate;

pub use cidr::Cidr;
pub use validate::{validate, warnings};

/// Keepalived's default `garp_master_delay`: the second burst.
pub const DEFAULT_GARP_DELAY: Dur = Dur::secs(5);
/// Priority of the address owner (RFC 5798 5.2.4).
pub const PRIORITY_OWNER: u8 = 255;
/// The shortest `auth_key` of `auth_type = "hmac"` lbd accepts: long
/// enough to resist guessing from captured adverts.
pub const MIN_AUTH_KEY_LEN: usize = 16;
/// VRRP's IP protocol number (RFC 5798 section 5.1.1.4).
pub const IPPROTO_VRRP: u8 = 112;
/// IPsec AH's IP protocol number (RFC 4302): `auth_type = "ah"` adverts
/// are AH datagrams whose next header is VRRP.
pub const IPPROTO_AH: u8 = 51;
/// VRRP's IPv4 multicast group (RFC 5798 section 5.1.1.2).
pub const VRRP_GROUP_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// VRRP's IPv6 multicast group (RFC 5798 section 5.1.2.2).
pub const VRRP_GROUP_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);

/// `auth_type`: how adverts are authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthType {
    /// v2 simple password (Keepalived `PASS`): sent in clear, not security.
    Pass,
    /// v2 IPsec AH with HMAC-MD5-96 (Keepalived `AH`).
    Ah,
    /// v3 with lbd's HMAC-SHA256 trailer and anti-replay (lbd-to-lbd).
    Hmac,
}

/// One VRRP instance.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Instance {
    pub interface: String,
    pub vrid: u8,
    pub priority: u8,
    #[serde(default = "default_advert_int")]
    pub advert_int: Dur,
    #[serde(default = "default_version")]
    pub version: u8,
    pub unicast_src_ip: Option<IpAddr>,
    #[serde(default)]
    pub unicast_peers: Vec<IpAddr>,
    pub auth_pass: Option<String>,
    /// Unset: `pass` when `auth_pass` is given, else none.
    pub auth_type: Option<AuthType>,
    /// The shared secret of `auth_type = "hmac"`.
    pub auth_key: Option<String>,
    pub virtual_ips: Vec<Cidr>,
    /// Default on; `preempt = false` and `nopreempt = true` say the same.
    pub preempt: Option<bool>,
    /// Keepalived's spelling.
    pub nopreempt: Option<bool>,
    #[serde(default)]
    pub preempt_delay: Option<Dur>,
    /// Second gratuitous ARP / NA burst after becoming master.
    #[serde(default = "default_garp_delay")]
    pub garp_delay: Dur,
    /// Then one every this long while master (off when unset).
    pub garp_refresh: Option<Dur>,
    /// Backends whose health moves this instance's priority.
    #[serde(default)]
    pub track_backend: BTreeMap<String, Track>,
    /// Frontends whose listeners move this instance's priority: a frontend
    /// counts as down while any of its addresses is not accepting
    /// (disabled by an operator, or accept failing for a second).
    #[serde(default)]
    pub track_frontend: BTreeMap<String, Track>,
    /// Programs run on state changes, Keepalived-style (optional: the
    /// control socket's `events` stream carries the same changes).
    #[serde(default)]
    pub notify: Notify,
}

/// Keepalived's notify hooks, as `[vrrp.NAME.notify]` with `all`,
/// `master`, `backup`, `fault`, `stop`. Each is a program path (no shell),
/// run with the arguments `INSTANCE <name> <MASTER|BACKUP|FAULT|STOP>
/// <priority>` as Keepalived's generic `notify` script gets them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Notify {
    /// Run on every change (Keepalived's generic `notify`).
    pub all: Option<PathBuf>,
    pub master: Option<PathBuf>,
    pub backup: Option<PathBuf>,
    pub fault: Option<PathBuf>,
    /// Run when the instance stops (lbd stopping or the instance removed).
    pub stop: Option<PathBuf>,
    /// A hook still running after this long is killed.
    #[serde(default = "default_notify_timeout")]
    pub timeout: Dur,
}

fn default_notify_timeout() -> Dur {
    Dur::secs(10)
}

impl Default for Notify {
    fn default() -> Self {
        Self {
            all: None,
            master: None,
            backup: None,
            fault: None,
            stop: None,
            timeout: default_notify_timeout(),
        }
    }
}

impl Notify {
    /// Every configured hook with its key.
    pub fn hooks(&self) -> impl Iterator<Item = (&'static str, &PathBuf)> {
        [
            ("all", &self.all),
            ("master", &self.master),
            ("backup", &self.backup),
            ("fault", &self.fault),
            ("stop", &self.stop),
        ]
        .into_iter()
        .filter_map(|(k, p)| p.as_ref().map(|p| (k, p)))
    }
}

fn default_advert_int() -> Dur {
    Dur::secs(1)
}
fn default_version() -> u8 {
    3
}
fn default_garp_delay() -> Dur {
    DEFAULT_GARP_DELAY
}

/// What a tracked backend with no usable server does.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Track {
    /// Lower the priority by this much.
    pub weight: Option<u8>,
    /// Put the instance in Fault.
    #[serde(default)]
    pub fault: bool,
}

impl Instance {
    /// Preemption after resolving `preempt` / `nopreempt`.
    pub fn preempts(&self) -> bool {
        match (self.preempt, self.nopreempt) {
            (Some(p), _) => p,
            (None, Some(n)) => !n,
            (None, None) => true,
        }
    }

    /// The family adverts are sent in: the source address's, else the
    /// first VIP's.
    pub fn is_ipv4(&self) -> bool {
        self.unicast_src_ip
            .or_else(|| self.virtual_ips.first().map(|c| c.addr))
            .is_none_or(|a| a.is_ipv4())
    }

    /// VIPs carried in adverts (those of the advert family); the others
    /// are added and removed with them but not advertised (as Keepalived's
    /// `virtual_ipaddress_excluded`).
    pub fn advertised_ips(&self) -> Vec<IpAddr> {
        let v4 = self.is_ipv4();
        self.virtual_ips
            .iter()
            .map(|c| c.addr)
            .filter(|a| a.is_ipv4() == v4)
            .collect()
    }

    /// The authentication in force: `auth_type`, else `pass` when
    /// `auth_pass` is given (what existing configs and init's overlay
    /// mean), else none.
    pub fn auth(&self) -> Option<AuthType> {
        self.auth_type
            .or_else(|| self.auth_pass.as_ref().map(|_| AuthType::Pass))
    }

    pub fn advert_interval(&self) -> Duration {
        self.advert_int.0
    }

    /// The IP protocol its adverts travel in: AH (whose next header is
    /// VRRP) for `auth_type = "ah"`, else VRRP (PASS and hmac live inside
    /// the VRRP message).
    pub fn ip_protocol(&self) -> u8 {
        match self.auth() {
            Some(AuthType::Ah) => IPPROTO_AH,
            Some(AuthType::Pass | AuthType::Hmac) | None => IPPROTO_VRRP,
        }
    }

    /// Where its adverts come from: the unicast peers, else anyone sending
    /// to the VRRP group of the advert family.
    pub fn advert_source(&self) -> AdvertSource {
        if !self.unicast_peers.is_empty() {
            AdvertSource::Peers(self.unicast_peers.clone())
        } else if self.is_ipv4() {
            AdvertSource::Group(IpAddr::V4(VRRP_GROUP_V4))
        } else {
            AdvertSource::Group(IpAddr::V6(VRRP_GROUP_V6))
        }
    }
}

/// Where an instance's adverts come from, as a firewall must see them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AdvertSource {
    /// Unicast from each of `unicast_peers` to this node.
    Peers(Vec<IpAddr>),
    /// Multicast to this group (224.0.0.18 or ff02::12) from anyone on the
    /// segment.
    Group(IpAddr),
}

#[cfg(test)]
mod tests;
