//! `lbd check` of `[vrrp.NAME]`: ranges, addresses, timing per version,
//! tracking and hooks. Every problem is collected, with its key path.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::{auth, Instance, Notify, Track, PRIORITY_OWNER};
use crate::schema::Config;
use crate::validate::Problem;

/// Linux interface names are at most 15 bytes (IFNAMSIZ - 1).
const MAX_IFNAME_LEN: usize = 15;
/// v2 PASS carries 8 bytes.
const MAX_AUTH_PASS_LEN: usize = 8;

pub(super) fn problem(name: &str, key: &str, message: impl Into<String>) -> Problem {
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
    auth::validate(name, vi, out);
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
