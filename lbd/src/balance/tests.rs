use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use super::*;

fn up(weight: u32) -> Candidate {
    Candidate {
        weight,
        eligible: true,
        backup: false,
        active: 0,
    }
}

fn backup(weight: u32) -> Candidate {
    Candidate {
        backup: true,
        ..up(weight)
    }
}

fn down(weight: u32) -> Candidate {
    Candidate {
        eligible: false,
        ..up(weight)
    }
}

fn balancer(algo: Balance, servers: &[Candidate]) -> Balancer {
    let names: Vec<String> = (0..servers.len()).map(|i| format!("s{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let weights: Vec<u32> = servers.iter().map(|s| s.weight).collect();
    Balancer::new(algo, &names, &weights)
}

fn sequence(algo: Balance, servers: &[Candidate], n: usize) -> Vec<usize> {
    let mut b = balancer(algo, servers);
    (0..n).filter_map(|_| b.pick(servers, None, 0)).collect()
}

fn counts(picks: &[usize]) -> BTreeMap<usize, usize> {
    let mut m = BTreeMap::new();
    for p in picks {
        *m.entry(*p).or_default() += 1;
    }
    m
}

#[test]
fn smooth_roundrobin_interleaves_by_weight() {
    // Input: weights 5,1,1. Output: nginx's smooth order, not five a's in a row.
    let servers = [up(5), up(1), up(1)];
    assert_eq!(
        sequence(Balance::Roundrobin, &servers, 7),
        vec![0, 0, 1, 0, 2, 0, 0]
    );
}

#[test]
fn roundrobin_follows_runtime_weight_changes() {
    let mut servers = [up(1), up(1)];
    let mut b = balancer(Balance::Roundrobin, &servers);
    servers[1].weight = 3;
    let picks: Vec<usize> = (0..8).filter_map(|_| b.pick(&servers, None, 0)).collect();
    assert_eq!(counts(&picks), BTreeMap::from([(0, 2), (1, 6)]));
}

#[test]
fn static_rr_uses_load_time_weights() {
    let mut servers = [up(2), up(1)];
    let mut b = balancer(Balance::StaticRr, &servers);
    servers[0].weight = 100; // ignored by static-rr
    let picks: Vec<usize> = (0..6).filter_map(|_| b.pick(&servers, None, 0)).collect();
    assert_eq!(counts(&picks), BTreeMap::from([(0, 4), (1, 2)]));
}

#[test]
fn down_and_zero_weight_servers_are_skipped() {
    for algo in [
        Balance::Roundrobin,
        Balance::StaticRr,
        Balance::Leastconn,
        Balance::First,
        Balance::Source,
        Balance::Random,
    ] {
        let servers = [down(1), up(0), up(1)];
        let mut b = balancer(algo, &[up(1), up(1), up(1)]);
        for r in 0..20u64 {
            let ip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, u8::try_from(r).unwrap_or(0)));
            assert_eq!(b.pick(&servers, Some(ip), r), Some(2), "{algo:?}");
        }
    }
}

#[test]
fn backups_only_when_all_normal_servers_are_down() {
    let mut servers = [up(1), backup(1), backup(1)];
    let mut b = balancer(Balance::Roundrobin, &servers);
    assert_eq!(b.pick(&servers, None, 0), Some(0));
    assert_eq!(b.pick(&servers, None, 0), Some(0));
    servers[0].eligible = false;
    let picks: Vec<usize> = (0..4).filter_map(|_| b.pick(&servers, None, 0)).collect();
    assert_eq!(counts(&picks), BTreeMap::from([(1, 2), (2, 2)]));
    servers[1].eligible = false;
    servers[2].eligible = false;
    assert_eq!(b.pick(&servers, None, 0), None);
}

#[test]
fn leastconn_weighs_active_connections() {
    // Input: s0 has 4 conns at weight 2 (2 per weight), s1 3 at weight 1 (3
    // per weight). Output: s0.
    let servers = [
        Candidate { active: 4, ..up(2) },
        Candidate { active: 3, ..up(1) },
    ];
    let mut b = balancer(Balance::Leastconn, &servers);
    assert_eq!(b.pick(&servers, None, 0), Some(0));
}

#[test]
fn leastconn_rotates_ties() {
    let servers = [up(1), up(1), up(1)];
    assert_eq!(
        sequence(Balance::Leastconn, &servers, 6),
        vec![0, 1, 2, 0, 1, 2]
    );
}

#[test]
fn first_fills_servers_in_order() {
    let mut servers = [up(1), up(1)];
    let mut b = balancer(Balance::First, &servers);
    assert_eq!(b.pick(&servers, None, 0), Some(0));
    servers[0].eligible = false; // full: the caller marks it so at maxconn
    assert_eq!(b.pick(&servers, None, 0), Some(1));
}

#[test]
fn source_is_sticky_and_consistent() {
    let servers = [up(1), up(1), up(1), up(1)];
    let mut b = balancer(Balance::Source, &servers);
    let clients: Vec<IpAddr> = (0..400u32)
        .map(|i| IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)))
        .collect();
    let before: Vec<Option<usize>> = clients
        .iter()
        .map(|c| b.pick(&servers, Some(*c), 0))
        .collect();
    let again: Vec<Option<usize>> = clients
        .iter()
        .map(|c| b.pick(&servers, Some(*c), 0))
        .collect();
    assert_eq!(before, again, "same client, same server");
    let spread = counts(&before.iter().flatten().copied().collect::<Vec<_>>());
    assert!(spread.values().all(|&n| n > 50), "roughly even: {spread:?}");

    // Server 2 goes down: only its clients move.
    let mut degraded = servers;
    degraded[2].eligible = false;
    for (c, old) in clients.iter().zip(&before) {
        let new = b.pick(&degraded, Some(*c), 0);
        if *old != Some(2) {
            assert_eq!(new, *old, "client {c} moved although its server stayed up");
        } else {
            assert_ne!(new, Some(2));
        }
    }
}

#[test]
fn random_respects_weights() {
    let servers = [up(3), up(1)];
    let mut b = balancer(Balance::Random, &servers);
    let mut state = 42u64;
    let picks: Vec<usize> = (0..4000)
        .filter_map(|_| b.pick(&servers, None, splitmix64(&mut state)))
        .collect();
    let c = counts(&picks);
    assert!(c[&0] > 2700 && c[&0] < 3300, "{c:?}");
}

#[test]
fn empty_backend_picks_nothing() {
    for algo in [
        Balance::Roundrobin,
        Balance::StaticRr,
        Balance::Source,
        Balance::Random,
    ] {
        let mut b = balancer(algo, &[]);
        assert_eq!(b.pick(&[], None, 0), None);
    }
}

#[test]
fn ring_hash_is_stable() {
    // The ring layout must not change between builds: clients keep servers
    // across an upgrade.
    assert_eq!(hash::hash_bytes(b"cs1"), hash::hash_bytes(b"cs1"));
    assert_ne!(hash::hash_bytes(b"cs1"), hash::hash_bytes(b"cs2"));
    let v4 = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    let mapped = IpAddr::V6(Ipv4Addr::new(192, 0, 2, 1).to_ipv6_mapped());
    assert_eq!(hash_ip(v4), hash_ip(mapped));
}
