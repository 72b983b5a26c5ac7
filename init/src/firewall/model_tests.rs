//! The policy from its input: chains, order, VRRP per instance, ports.

use super::*;

fn input_chain(rs: &Ruleset) -> &Chain {
    rs.chains
        .iter()
        .find(|c| c.hook == Hook::Input)
        .expect("the policy always has an input chain")
}

fn has_rule(chain: &Chain, matches: &[Match]) -> bool {
    chain
        .rules
        .iter()
        .any(|r| r.matches == matches && r.verdict == Verdict::Accept)
}

#[test]
fn chains_and_policies() {
    let rs = build_ruleset(&FirewallInput::default());
    assert_eq!(rs.table, "appliance");
    let summary: Vec<_> = rs
        .chains
        .iter()
        .map(|c| (c.name.as_str(), c.hook, c.priority, c.policy))
        .collect();
    assert_eq!(
        summary,
        [
            ("input", Hook::Input, 0, Verdict::Drop),
            ("forward", Hook::Forward, 0, Verdict::Drop),
            ("output", Hook::Output, 0, Verdict::Accept),
        ]
    );
    assert!(rs.chains[1].rules.is_empty());
    assert!(rs.chains[2].rules.is_empty());
}

#[test]
fn established_and_loopback_come_first() {
    let rs = build_ruleset(&FirewallInput::default());
    let input = input_chain(&rs);
    assert_eq!(
        input.rules[0].matches,
        [Match::CtState(CtState(0b110))],
        "established|related bits"
    );
    assert_eq!(input.rules[1].matches, [Match::Loopback]);
}

#[test]
fn icmp_and_neighbour_discovery() {
    let rs = build_ruleset(&FirewallInput::default());
    let input = input_chain(&rs);
    assert!(has_rule(input, &[Match::IcmpType(8)]));
    for t in [128, 130, 133, 134, 135, 136] {
        assert!(has_rule(input, &[Match::Icmpv6Type(t)]), "icmpv6 type {t}");
    }
    assert!(has_rule(input, &[Match::UdpSport(67), Match::UdpDport(68)]));
}

/// Adverts of an instance `name` in `protocol` from `source`.
fn adverts(name: &str, protocol: u8, source: AdvertSource) -> VrrpAdverts {
    VrrpAdverts {
        instance: name.to_owned(),
        protocol,
        source,
    }
}

fn multicast() -> Vec<VrrpAdverts> {
    vec![
        adverts(
            "v4",
            IPPROTO_VRRP,
            AdvertSource::Group(VRRP_GROUP_V4.into()),
        ),
        adverts(
            "v6",
            IPPROTO_VRRP,
            AdvertSource::Group(VRRP_GROUP_V6.into()),
        ),
    ]
}

#[test]
fn vrrp_only_from_peers() {
    let peer4: IpAddr = "192.0.2.2".parse().expect("literal");
    let peer6: IpAddr = "2001:db8::2".parse().expect("literal");
    let input = FirewallInput {
        vrrp: vec![
            adverts("a", IPPROTO_VRRP, AdvertSource::Peers(vec![peer6, peer4])),
            adverts("b", IPPROTO_VRRP, AdvertSource::Peers(vec![peer4])),
        ],
        ..FirewallInput::default()
    };
    let rs = build_ruleset(&input);
    let vrrp: Vec<_> = input_chain(&rs)
        .rules
        .iter()
        .filter(|r| r.matches.contains(&Match::L4Proto(112)))
        .map(|r| r.matches[0].clone())
        .collect();
    assert_eq!(vrrp, [Match::Saddr(peer4), Match::Saddr(peer6)]);
}

#[test]
fn vrrp_to_groups_without_peers() {
    let rs = build_ruleset(&FirewallInput {
        vrrp: multicast(),
        ..FirewallInput::default()
    });
    let vrrp: Vec<_> = input_chain(&rs)
        .rules
        .iter()
        .filter(|r| r.matches.contains(&Match::L4Proto(112)))
        .map(|r| r.matches[0].clone())
        .collect();
    assert_eq!(
        vrrp,
        [
            Match::Daddr("224.0.0.18".parse().expect("literal")),
            Match::Daddr("ff02::12".parse().expect("literal")),
        ]
    );
}

#[test]
fn ports_sorted_deduplicated_and_extra_ports_added() {
    let mut input = FirewallInput {
        tcp_ports: vec![8404, 443, 80, 443, 0],
        udp_ports: vec![],
        ..FirewallInput::default()
    };
    input.add_port_rules(&[
        PortRule {
            port: 22,
            protocol: Protocol::Tcp,
        },
        PortRule {
            port: 161,
            protocol: Protocol::Udp,
        },
    ]);
    let rs = build_ruleset(&input);
    let ports: Vec<_> = input_chain(&rs)
        .rules
        .iter()
        .filter_map(|r| match r.matches.as_slice() {
            [Match::TcpDport(p)] => Some(format!("tcp {p}")),
            [Match::UdpDport(p)] => Some(format!("udp {p}")),
            _ => None,
        })
        .collect();
    assert_eq!(
        ports,
        ["tcp 22", "tcp 80", "tcp 443", "tcp 8404", "udp 161"]
    );
}

#[test]
fn no_vrrp_instance_no_vrrp_rule() {
    let rs = build_ruleset(&FirewallInput::default());
    assert!(!input_chain(&rs)
        .rules
        .iter()
        .flat_map(|r| &r.matches)
        .any(|m| matches!(m, Match::L4Proto(_))));
}

#[test]
fn from_settings_takes_extra_ports_only() {
    let mut settings = Settings::default();
    // The settings' peers reach the firewall through lbd's config
    // (init's VRRP overlay), not from here.
    settings.vrrp.peers = vec!["192.0.2.7".parse().expect("literal")];
    settings.firewall_ports = vec![PortRule {
        port: 9000,
        protocol: Protocol::Udp,
    }];
    let input = FirewallInput::from_settings(&settings);
    assert!(input.vrrp.is_empty());
    assert_eq!(input.udp_ports, [9000]);
    assert!(input.tcp_ports.is_empty());
}

/// Input: an admin's whole lbd config with a Keepalived AH instance
/// (multicast) and a unicast v3 instance, a frontend and the stats
/// page. Output: AH (51) to the IPv4 group, VRRP (112) from the peer,
/// and the frontend's and stats page's ports.
#[test]
fn lbd_config_with_ah_is_let_through() {
    let text = "[backends.b.servers.s]\naddress = \"192.0.2.20:443\"\n\
                [frontends.f]\nbind = [\"0.0.0.0:443\"]\ndefault_backend = \"b\"\n\
                [stats]\nbind = \"0.0.0.0:8404\"\n\
                [vrrp.keepalived]\ninterface = \"eth0\"\nvrid = 51\npriority = 100\n\
                version = 2\nauth_type = \"ah\"\nauth_pass = \"secret\"\n\
                virtual_ips = [\"192.0.2.100/24\"]\n\
                [vrrp.pair]\ninterface = \"eth0\"\nvrid = 52\npriority = 100\n\
                unicast_src_ip = \"192.0.2.10\"\nunicast_peers = [\"192.0.2.11\"]\n\
                virtual_ips = [\"192.0.2.101/24\"]\n";
    let config = lbd_config::load_texts(vec![("lbd.toml".into(), text.to_owned())])
        .expect("a valid lbd config");
    let mut input = FirewallInput::default();
    input.add_lbd(&config);
    let rs = build_ruleset(&input);
    let input_rules = input_chain(&rs);
    let peer: IpAddr = "192.0.2.11".parse().expect("literal");
    assert!(has_rule(
        input_rules,
        &[Match::Saddr(peer), Match::L4Proto(IPPROTO_VRRP)]
    ));
    assert!(has_rule(
        input_rules,
        &[
            Match::Daddr(VRRP_GROUP_V4.into()),
            Match::L4Proto(IPPROTO_AH)
        ]
    ));
    let vrrp_rules = input_rules
        .rules
        .iter()
        .filter(|r| r.matches.iter().any(|m| matches!(m, Match::L4Proto(_))))
        .count();
    assert_eq!(vrrp_rules, 2, "nothing else, no IPv6 group");
    assert!(has_rule(input_rules, &[Match::TcpDport(443)]));
    assert!(has_rule(input_rules, &[Match::TcpDport(8404)]));
}

#[test]
fn every_rule_accepts() {
    let rs = build_ruleset(&FirewallInput {
        tcp_ports: vec![443],
        ..FirewallInput::default()
    });
    assert!(rs
        .chains
        .iter()
        .flat_map(|c| &c.rules)
        .all(|r| r.verdict == Verdict::Accept && !r.matches.is_empty()));
}
