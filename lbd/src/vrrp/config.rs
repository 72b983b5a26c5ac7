//! `[vrrp.NAME]`: one VRRP instance per table, and its validation (called
//! from [`crate::config::validate`] so problems carry file:line like the
//! rest of the config).
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
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::config::validate::Problem;
use crate::config::{Config, Dur};

use super::fsm::PRIORITY_OWNER;

/// Keepalived's default `garp_master_delay`: the second burst.
pub const DEFAULT_GARP_DELAY: Dur = Dur::secs(5);
/// Linux interface names are at most 15 bytes (IFNAMSIZ - 1).
const MAX_IFNAME_LEN: usize = 15;
/// v2 PASS carries 8 bytes.
const MAX_AUTH_PASS_LEN: usize = 8;

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
}

/// An address with its prefix length, `10.0.0.100/24` (a bare address
/// means /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl FromStr for Cidr {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let (addr_text, prefix_text) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr = addr_text
            .trim()
            .parse()
            .map_err(|_| format!("`{text}` is not an IP address with an optional /prefix"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix_text {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("`{text}`: prefix length must be 0 to {max}"))?,
        };
        Ok(Self { addr, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for Cidr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

fn problem(name: &str, key: &str, message: impl Into<String>) -> Problem {
    let mut path = vec!["vrrp".to_string(), name.to_string()];
    path.extend(key.split('.').filter(|k| !k.is_empty()).map(str::to_string));
    Problem {
        key: path,
        message: message.into(),
    }
}

/// Every problem of every `[vrrp.NAME]`.
pub fn validate(config: &Config, out: &mut Vec<Problem>) {
    let mut seen: BTreeMap<(String, u8, bool), &str> = BTreeMap::new();
    for (name, vi) in &config.vrrp {
        instance(config, name, vi, out);
        let key = (vi.interface.clone(), vi.vrid, vi.is_ipv4());
        if let Some(other) = seen.insert(key, name) {
            out.push(problem(
                name,
                "vrid",
                format!(
                    "VRID {} on {} is also used by vrrp.{other}: each instance needs its own",
                    vi.vrid, vi.interface
                ),
            ));
        }
    }
}

/// Valid but probably not meant (printed by `lbd check`, logged at start).
pub fn warnings(config: &Config, out: &mut Vec<Problem>) {
    for (name, vi) in &config.vrrp {
        // RFC 5798 5.2.9; Keepalived warns the same ("the first IPv6 VIP
        // address should be link local") and both accept such adverts.
        let first = vi.advertised_ips().first().copied();
        if let Some(IpAddr::V6(a)) = first {
            if a.segments()[0] & 0xffc0 != 0xfe80 {
                out.push(problem(
                    name,
                    "virtual_ips",
                    format!(
                        "{a} comes first: RFC 5798 wants an IPv6 advert's first address to be \
                         a link-local virtual address; list one first (e.g. \"fe80::{:x}/64\") \
                         for routers that check it",
                        vi.vrid
                    ),
                ));
            }
        }
    }
}

fn instance(config: &Config, name: &str, vi: &Instance, out: &mut Vec<Problem>) {
    if vi.interface.is_empty() || vi.interface.len() > MAX_IFNAME_LEN || vi.interface.contains('/')
    {
        out.push(problem(
            name,
            "interface",
            "must be an interface name of 1 to 15 characters, e.g. \"eth0\"",
        ));
    }
    if vi.vrid == 0 {
        out.push(problem(name, "vrid", "must be 1 to 255"));
    }
    let owner = vi.priority == PRIORITY_OWNER;
    if vi.priority == 0 {
        out.push(problem(
            name,
            "priority",
            "must be 1 to 254 (0 is what a stopping master sends)",
        ));
    } else if owner
        && !vi
            .unicast_src_ip
            .is_some_and(|src| vi.virtual_ips.iter().any(|c| c.addr == src))
    {
        out.push(problem(
            name,
            "priority",
            "255 is for the address owner (a virtual IP that is this host's own address, \
             given as unicast_src_ip); use 1 to 254",
        ));
    }
    version_and_timing(name, vi, out);
    addresses(name, vi, out);
    if vi.preempt.is_some() && vi.nopreempt.is_some() && vi.preempt == vi.nopreempt {
        out.push(problem(
            name,
            "nopreempt",
            "contradicts `preempt`: keep only one of them",
        ));
    }
    if vi.preempt_delay.is_some() && !vi.preempts() {
        out.push(problem(
            name,
            "preempt_delay",
            "has no effect without preemption: remove it or enable preempt",
        ));
    }
    let tracked = [
        ("track_backend", "backend", "backends", &vi.track_backend),
        (
            "track_frontend",
            "frontend",
            "frontends",
            &vi.track_frontend,
        ),
    ];
    for (table, kind, section, tracks) in tracked {
        for (target, track) in tracks {
            let key = format!("{table}.{target}");
            let exists = match kind {
                "backend" => config.backends.contains_key(target),
                _ => config.frontends.contains_key(target),
            };
            if !exists {
                out.push(problem(
                    name,
                    &key,
                    format!(
                        "no {kind} `{target}` to track: add [{section}.{target}] or fix the name"
                    ),
                ));
            }
            check_track(name, &key, track, owner, out);
        }
    }
    notify_hooks(name, &vi.notify, out);
}

fn check_track(name: &str, key: &str, track: &Track, owner: bool, out: &mut Vec<Problem>) {
    match (track.weight, track.fault) {
        (Some(_), true) | (None, false) => out.push(problem(
            name,
            key,
            "set exactly one of `weight = N` (lower the priority) or `fault = true`",
        )),
        (Some(0), false) => out.push(problem(name, key, "weight must be 1 to 254")),
        (Some(_), false) if owner => out.push(problem(
            name,
            key,
            "the address owner (priority 255) keeps its priority: use `fault = true`",
        )),
        _ => {}
    }
}

/// Hooks are run directly (no shell), so each must be an absolute path;
/// whether it exists is checked when it runs (a missing hook is logged),
/// so a config can be checked on another machine.
fn notify_hooks(name: &str, notify: &Notify, out: &mut Vec<Problem>) {
    for (key, path) in notify.hooks() {
        if !path.is_absolute() {
            out.push(problem(
                name,
                &format!("notify.{key}"),
                format!(
                    "`{}` must be an absolute path to a program (hooks run without a shell)",
                    path.display()
                ),
            ));
        }
    }
    let t = notify.timeout.0;
    if t.is_zero() || t > std::time::Duration::from_secs(300) {
        out.push(problem(name, "notify.timeout", "must be 1ms to 300s"));
    }
}

fn version_and_timing(name: &str, vi: &Instance, out: &mut Vec<Problem>) {
    let int = vi.advert_int.0;
    match vi.version {
        2 => {
            if int.subsec_nanos() != 0 || int.as_secs() == 0 || int.as_secs() > 255 {
                out.push(problem(
                    name,
                    "advert_int",
                    "VRRP v2 counts whole seconds: use 1s to 255s (or version = 3 for less)",
                ));
            }
            if !vi.is_ipv4() {
                out.push(problem(
                    name,
                    "version",
                    "VRRP v2 is IPv4 only: use version = 3 for IPv6",
                ));
            }
        }
        3 => {
            let ms = int.as_millis();
            if !int.subsec_nanos().is_multiple_of(10_000_000) || !(10..=40_950).contains(&ms) {
                out.push(problem(
                    name,
                    "advert_int",
                    "VRRP v3 counts centiseconds: use 10ms to 40950ms in steps of 10ms",
                ));
            }
            if vi.auth_pass.is_some() && vi.auth_type.is_none() {
                out.push(problem(
                    name,
                    "auth_pass",
                    "VRRP v3 has no authentication (RFC 5798): remove auth_pass, or set \
                     version = 2 to match a Keepalived peer using PASS",
                ));
            }
        }
        v => out.push(problem(
            name,
            "version",
            format!("{v} is not a VRRP version: use 2 (Keepalived v2) or 3"),
        )),
    }
    if let Some(pass) = &vi.auth_pass {
        if pass.is_empty() || pass.len() > MAX_AUTH_PASS_LEN || !pass.is_ascii() {
            out.push(problem(
                name,
                "auth_pass",
                "must be 1 to 8 ASCII characters: PASS and AH use only 8 bytes (Keepalived \
                 silently cuts longer ones)",
            ));
        }
    }
    config_auth::validate(name, vi, out);
}

fn addresses(name: &str, vi: &Instance, out: &mut Vec<Problem>) {
    let v4 = vi.is_ipv4();
    if vi.virtual_ips.is_empty() {
        out.push(problem(name, "virtual_ips", "needs at least one address"));
    } else if vi.advertised_ips().is_empty() {
        out.push(problem(
            name,
            "virtual_ips",
            "none is of the advert family (that of unicast_src_ip): add one",
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    for cidr in &vi.virtual_ips {
        let a = cidr.addr;
        if a.is_unspecified() || a.is_loopback() || a.is_multicast() {
            out.push(problem(
                name,
                "virtual_ips",
                format!("{cidr}: not a unicast address a host can hold"),
            ));
        }
        if let IpAddr::V4(v) = a {
            let host_bits = 32 - u32::from(cidr.prefix);
            let host = u32::from(v) & (u32::MAX.checked_shr(u32::from(cidr.prefix)).unwrap_or(0));
            if host_bits >= 2 && (host == 0 || host.count_ones() == host_bits) {
                out.push(problem(
                    name,
                    "virtual_ips",
                    format!("{cidr}: the network or broadcast address of its subnet"),
                ));
            }
        }
        if !seen.insert(a) {
            out.push(problem(name, "virtual_ips", format!("{a} is listed twice")));
        }
    }
    if !vi.unicast_peers.is_empty() && vi.unicast_src_ip.is_none() {
        out.push(problem(
            name,
            "unicast_peers",
            "unicast needs `unicast_src_ip`, the address adverts are sent from",
        ));
    }
    if let Some(src) = vi.unicast_src_ip {
        if src.is_unspecified() || src.is_multicast() || src.is_loopback() {
            out.push(problem(
                name,
                "unicast_src_ip",
                "must be this host's own unicast address on the interface",
            ));
        }
    }
    let mut peers = std::collections::BTreeSet::new();
    for peer in &vi.unicast_peers {
        if peer.is_ipv4() != v4 {
            out.push(problem(
                name,
                "unicast_peers",
                format!("{peer} is not of the same family as unicast_src_ip"),
            ));
        }
        if Some(*peer) == vi.unicast_src_ip {
            out.push(problem(
                name,
                "unicast_peers",
                format!("{peer} is unicast_src_ip itself: list the other nodes only"),
            ));
        }
        if !peers.insert(*peer) {
            out.push(problem(
                name,
                "unicast_peers",
                format!("{peer} is listed twice"),
            ));
        }
    }
}

#[path = "config_auth.rs"]
mod config_auth;

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
