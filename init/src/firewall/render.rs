//! The ruleset in the syntax of `nft list ruleset`, for the console and
//! for admins who compare it with what they know from other hosts.

use std::fmt::Write as _;
use std::net::IpAddr;

use super::model::{Chain, CtState, Match, Rule, Ruleset, Verdict};

/// The whole ruleset as `nft list ruleset` prints it (tabs, one rule per
/// line, trailing newline).
pub fn render_nft(ruleset: &Ruleset) -> String {
    let mut out = format!("table inet {} {{\n", ruleset.table);
    for (i, chain) in ruleset.chains.iter().enumerate() {
        // nft separates chains with an empty line.
        if i > 0 {
            out.push('\n');
        }
        render_chain(&mut out, chain);
    }
    out.push_str("}\n");
    out
}

fn render_chain(out: &mut String, chain: &Chain) {
    // Writing to a String cannot fail.
    let _ = writeln!(out, "\tchain {} {{", chain.name);
    let _ = writeln!(
        out,
        "\t\ttype filter hook {} priority {}; policy {};",
        chain.hook.name(),
        priority_name(chain.priority),
        verdict_name(chain.policy)
    );
    for rule in &chain.rules {
        let _ = writeln!(out, "\t\t{}", render_rule(rule));
    }
    out.push_str("\t}\n");
}

/// One rule on one line, without indentation (`tcp dport 443 accept`).
pub fn render_rule(rule: &Rule) -> String {
    let mut words: Vec<String> = rule.matches.iter().map(render_match).collect();
    words.push(verdict_name(rule.verdict).to_owned());
    words.join(" ")
}

/// nft names priority 0 of a filter chain `filter` and prints others
/// relative to it.
fn priority_name(priority: i32) -> String {
    match priority {
        0 => "filter".to_owned(),
        p if p > 0 => format!("filter + {p}"),
        p => format!("filter - {}", p.unsigned_abs()),
    }
}

fn verdict_name(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Accept => "accept",
        Verdict::Drop => "drop",
    }
}

fn render_match(m: &Match) -> String {
    match m {
        Match::CtState(states) => format!("ct state {}", ct_state_names(*states)),
        Match::Loopback => "iif \"lo\"".to_owned(),
        Match::IifName(name) => format!("iifname \"{}\"", name.escape_default()),
        Match::L4Proto(proto) => format!("meta l4proto {}", l4proto_name(*proto)),
        Match::IcmpType(t) => format!("icmp type {}", icmp_type_name(*t)),
        Match::Icmpv6Type(t) => format!("icmpv6 type {}", icmpv6_type_name(*t)),
        Match::Saddr(addr) => format!("{} saddr {addr}", ip_keyword(addr)),
        Match::Daddr(addr) => format!("{} daddr {addr}", ip_keyword(addr)),
        Match::TcpDport(port) => format!("tcp dport {port}"),
        Match::UdpSport(port) => format!("udp sport {port}"),
        Match::UdpDport(port) => format!("udp dport {port}"),
    }
}

fn ip_keyword(addr: &IpAddr) -> &'static str {
    match addr {
        IpAddr::V4(_) => "ip",
        IpAddr::V6(_) => "ip6",
    }
}

/// Known states by name in nft's order, unknown bits in hex.
fn ct_state_names(states: CtState) -> String {
    let mut names = Vec::new();
    let mut rest = states.0;
    for (state, name) in CtState::NAMES {
        if states.0 & state.0 != 0 {
            names.push(name.to_owned());
            rest &= !state.0;
        }
    }
    if rest != 0 || names.is_empty() {
        names.push(format!("{rest:#x}"));
    }
    names.join(",")
}

/// Protocol names as in /etc/protocols, which nft uses.
fn l4proto_name(proto: u8) -> String {
    match proto {
        1 => "icmp".to_owned(),
        6 => "tcp".to_owned(),
        17 => "udp".to_owned(),
        51 => "ah".to_owned(),
        58 => "ipv6-icmp".to_owned(),
        112 => "vrrp".to_owned(),
        p => p.to_string(),
    }
}

/// ICMPv4 type names (RFC 792, RFC 1256) as nft spells them.
fn icmp_type_name(t: u8) -> String {
    let name = match t {
        0 => "echo-reply",
        3 => "destination-unreachable",
        5 => "redirect",
        8 => "echo-request",
        9 => "router-advertisement",
        10 => "router-solicitation",
        11 => "time-exceeded",
        12 => "parameter-problem",
        _ => return t.to_string(),
    };
    name.to_owned()
}

/// ICMPv6 type names (RFC 4443, RFC 4861, RFC 3810) as nft spells them.
fn icmpv6_type_name(t: u8) -> String {
    let name = match t {
        1 => "destination-unreachable",
        2 => "packet-too-big",
        3 => "time-exceeded",
        4 => "parameter-problem",
        128 => "echo-request",
        129 => "echo-reply",
        130 => "mld-listener-query",
        131 => "mld-listener-report",
        132 => "mld-listener-done",
        133 => "nd-router-solicit",
        134 => "nd-router-advert",
        135 => "nd-neighbor-solicit",
        136 => "nd-neighbor-advert",
        137 => "nd-redirect",
        143 => "mld2-listener-report",
        _ => return t.to_string(),
    };
    name.to_owned()
}

#[cfg(test)]
mod tests {
    use lbd_config::vrrp::AdvertSource;
    use lbd_config::VrrpAdverts;

    use super::super::model::{build_ruleset, FirewallInput, Hook, IPPROTO_AH, IPPROTO_VRRP};
    use super::*;

    fn adverts(protocol: u8, source: AdvertSource) -> VrrpAdverts {
        VrrpAdverts {
            instance: "vi".to_owned(),
            protocol,
            source,
        }
    }

    #[test]
    fn whole_ruleset_with_peers_and_ports() {
        let input = FirewallInput {
            vrrp: vec![adverts(
                IPPROTO_VRRP,
                AdvertSource::Peers(vec![
                    "192.0.2.2".parse().expect("literal"),
                    "2001:db8::2".parse().expect("literal"),
                ]),
            )],
            tcp_ports: vec![443, 80, 8404],
            udp_ports: vec![514],
        };
        let expected = "\
table inet appliance {
\tchain input {
\t\ttype filter hook input priority filter; policy drop;
\t\tct state established,related accept
\t\tiif \"lo\" accept
\t\ticmp type echo-request accept
\t\ticmpv6 type echo-request accept
\t\ticmpv6 type mld-listener-query accept
\t\ticmpv6 type nd-router-solicit accept
\t\ticmpv6 type nd-router-advert accept
\t\ticmpv6 type nd-neighbor-solicit accept
\t\ticmpv6 type nd-neighbor-advert accept
\t\tudp sport 67 udp dport 68 accept
\t\tip saddr 192.0.2.2 meta l4proto vrrp accept
\t\tip6 saddr 2001:db8::2 meta l4proto vrrp accept
\t\ttcp dport 80 accept
\t\ttcp dport 443 accept
\t\ttcp dport 8404 accept
\t\tudp dport 514 accept
\t}

\tchain forward {
\t\ttype filter hook forward priority filter; policy drop;
\t}

\tchain output {
\t\ttype filter hook output priority filter; policy accept;
\t}
}
";
        assert_eq!(render_nft(&build_ruleset(&input)), expected);
    }

    #[test]
    fn vrrp_groups_without_peers() {
        let input = FirewallInput {
            vrrp: vec![
                adverts(
                    IPPROTO_VRRP,
                    AdvertSource::Group("224.0.0.18".parse().expect("literal")),
                ),
                adverts(
                    IPPROTO_VRRP,
                    AdvertSource::Group("ff02::12".parse().expect("literal")),
                ),
            ],
            ..FirewallInput::default()
        };
        let text = render_nft(&build_ruleset(&input));
        assert!(text.contains("\t\tip daddr 224.0.0.18 meta l4proto vrrp accept\n"));
        assert!(text.contains("\t\tip6 daddr ff02::12 meta l4proto vrrp accept\n"));
        assert!(!text.contains("dport 80"));
    }

    /// `auth_type = "ah"` adverts are AH datagrams: nft names protocol 51
    /// as /etc/protocols does.
    #[test]
    fn ah_adverts_render_as_ah() {
        let input = FirewallInput {
            vrrp: vec![adverts(
                IPPROTO_AH,
                AdvertSource::Group("224.0.0.18".parse().expect("literal")),
            )],
            ..FirewallInput::default()
        };
        let text = render_nft(&build_ruleset(&input));
        assert!(
            text.contains("\t\tip daddr 224.0.0.18 meta l4proto ah accept\n"),
            "{text}"
        );
        assert!(!text.contains("l4proto vrrp"), "{text}");
    }

    #[test]
    fn priorities_verdicts_and_odd_values() {
        let rs = Ruleset {
            table: "t".to_owned(),
            chains: vec![Chain {
                name: "c".to_owned(),
                hook: Hook::Forward,
                priority: -10,
                policy: Verdict::Accept,
                rules: vec![Rule {
                    matches: vec![
                        Match::IifName("eth\"0".to_owned()),
                        Match::CtState(CtState::NEW.or(CtState(1 << 5))),
                        Match::L4Proto(47),
                        Match::IcmpType(42),
                    ],
                    verdict: Verdict::Drop,
                }],
            }],
        };
        let text = render_nft(&rs);
        assert!(text.contains("type filter hook forward priority filter - 10; policy accept;"));
        assert!(text.contains(
            "\t\tiifname \"eth\\\"0\" ct state new,0x20 meta l4proto 47 icmp type 42 drop\n"
        ));
        let plus = Chain {
            priority: 5,
            ..rs.chains[0].clone()
        };
        assert!(render_nft(&Ruleset {
            chains: vec![plus],
            ..rs
        })
        .contains("priority filter + 5;"));
    }

    #[test]
    fn empty_ct_state_is_visible() {
        assert_eq!(ct_state_names(CtState(0)), "0x0");
    }
}
