//! The ruleset as plain data, and the appliance's policy that builds it from
//! a [`FirewallInput`].
//!
//! The model only holds what the appliance uses: one `inet` table, base
//! chains with a hook and a policy, and rules that are a conjunction of
//! simple matches followed by a verdict. [`super::render_nft`] prints it,
//! [`super::apply`] encodes it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use settings::value::{PortRule, Protocol};
use settings::Settings;

/// The one table init owns; replacing it never touches other tables.
pub const TABLE_NAME: &str = "appliance";
/// VRRP's IP protocol number (RFC 5798 section 5.1.1.4).
pub const IPPROTO_VRRP: u8 = 112;
/// VRRP's IPv4 multicast group (RFC 5798 section 5.1.1.2).
pub const VRRP_GROUP_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// VRRP's IPv6 multicast group (RFC 5798 section 5.1.2.2).
pub const VRRP_GROUP_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
/// DHCPv4 server and client ports (RFC 2131 section 4.1).
pub const DHCP_SERVER_PORT: u16 = 67;
/// See [`DHCP_SERVER_PORT`].
pub const DHCP_CLIENT_PORT: u16 = 68;

/// ICMPv4 echo request (RFC 792).
pub const ICMP_ECHO_REQUEST: u8 = 8;
/// The ICMPv6 types a host must accept (RFC 4443, RFC 4861 section 4,
/// RFC 3810 section 5): echo request for ping; MLD query so snooping
/// switches keep forwarding the VRRP group to us; router solicitation and
/// advertisement (SLAAC) and neighbour solicitation and advertisement
/// (without them IPv6 has no link layer). Errors (packet too big and the
/// like) are `related` to a tracked flow and pass on the ct state rule.
pub const ICMPV6_ACCEPTED: [u8; 6] = [128, 130, 133, 134, 135, 136];

/// Everything the policy depends on, mapped by the boot sequence from the
/// settings and lbd's config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FirewallInput {
    /// Addresses of the VRRP peers; empty means accept VRRP sent to the
    /// VRRP multicast groups from anyone.
    pub vrrp_peers: Vec<IpAddr>,
    /// TCP destination ports to accept (lbd's frontends, the stats page).
    pub tcp_ports: Vec<u16>,
    /// UDP destination ports to accept.
    pub udp_ports: Vec<u16>,
}

impl FirewallInput {
    /// VRRP peers and extra ports from the settings; the boot sequence adds
    /// lbd's frontend and stats ports to `tcp_ports`.
    pub fn from_settings(settings: &Settings) -> Self {
        let mut input = Self {
            vrrp_peers: settings.vrrp.peers.clone(),
            ..Self::default()
        };
        input.add_port_rules(&settings.firewall_ports);
        input
    }

    /// Adds the extra ports from the settings (`firewall.ports`).
    pub fn add_port_rules(&mut self, rules: &[PortRule]) {
        for rule in rules {
            match rule.protocol {
                Protocol::Tcp => self.tcp_ports.push(rule.port),
                Protocol::Udp => self.udp_ports.push(rule.port),
            }
        }
    }
}

/// One `inet` table with its chains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ruleset {
    /// Table name (family is always `inet`: one table for IPv4 and IPv6).
    pub table: String,
    /// Base chains in the order they are created and printed.
    pub chains: Vec<Chain>,
}

/// A base chain of type `filter`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    /// Chain name.
    pub name: String,
    /// Netfilter hook the chain is attached to.
    pub hook: Hook,
    /// Hook priority; 0 is nft's `filter`.
    pub priority: i32,
    /// Verdict for packets no rule decided.
    pub policy: Verdict,
    /// Rules, evaluated in order.
    pub rules: Vec<Rule>,
}

/// The netfilter hooks a filter chain of the appliance uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    /// Packets for this host.
    Input,
    /// Packets routed through this host.
    Forward,
    /// Packets from this host.
    Output,
}

impl Hook {
    /// The name nft prints.
    pub fn name(self) -> &'static str {
        match self {
            Self::Input => "input",
            Self::Forward => "forward",
            Self::Output => "output",
        }
    }
}

/// A terminal verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Let the packet through.
    Accept,
    /// Discard the packet silently (no reset, no ICMP error).
    Drop,
}

/// All matches must hold for the verdict to apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Conditions, in the order the kernel evaluates them.
    pub matches: Vec<Match>,
    /// What happens to a packet that matches.
    pub verdict: Verdict,
}

/// Connection tracking states, as the bits of `ct state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CtState(pub u32);

impl CtState {
    /// No tracked flow or a malformed packet.
    pub const INVALID: Self = Self(1 << 0);
    /// Part of a flow that saw traffic both ways.
    pub const ESTABLISHED: Self = Self(1 << 1);
    /// A new flow related to a tracked one (ICMP errors, FTP data).
    pub const RELATED: Self = Self(1 << 2);
    /// The first packet of a flow.
    pub const NEW: Self = Self(1 << 3);
    /// Exempt from tracking.
    pub const UNTRACKED: Self = Self(1 << 6);

    /// Names in the order nft prints them.
    pub const NAMES: [(Self, &'static str); 5] = [
        (Self::INVALID, "invalid"),
        (Self::ESTABLISHED, "established"),
        (Self::RELATED, "related"),
        (Self::NEW, "new"),
        (Self::UNTRACKED, "untracked"),
    ];

    /// The union of two sets of states.
    #[must_use]
    pub const fn or(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }
}

/// One condition of a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Match {
    /// The flow is in any of these states (`ct state established,related`).
    CtState(CtState),
    /// Arrived on the loopback interface (`iif "lo"`; its index is 1 in
    /// every network namespace).
    Loopback,
    /// Arrived on the interface of this name (`iifname "eth0"`).
    IifName(String),
    /// Layer 4 protocol number (`meta l4proto 112`).
    L4Proto(u8),
    /// ICMPv4 type (`icmp type echo-request`).
    IcmpType(u8),
    /// ICMPv6 type (`icmpv6 type nd-neighbor-solicit`).
    Icmpv6Type(u8),
    /// Source address (`ip saddr` or `ip6 saddr`).
    Saddr(IpAddr),
    /// Destination address (`ip daddr` or `ip6 daddr`).
    Daddr(IpAddr),
    /// TCP destination port.
    TcpDport(u16),
    /// UDP source port.
    UdpSport(u16),
    /// UDP destination port.
    UdpDport(u16),
}

impl Rule {
    /// A rule that accepts what matches all of `matches`.
    pub fn accept(matches: Vec<Match>) -> Self {
        Self {
            matches,
            verdict: Verdict::Accept,
        }
    }
}

/// The appliance's policy: inbound dropped unless listed, forwarding
/// dropped (lbd proxies at L4/L7 in userspace, so nothing is routed
/// through the appliance), outbound accepted.
pub fn build_ruleset(input: &FirewallInput) -> Ruleset {
    let filter_chain = |hook: Hook, policy: Verdict, rules: Vec<Rule>| Chain {
        name: hook.name().to_owned(),
        hook,
        priority: 0,
        policy,
        rules,
    };
    Ruleset {
        table: TABLE_NAME.to_owned(),
        chains: vec![
            filter_chain(Hook::Input, Verdict::Drop, input_rules(input)),
            filter_chain(Hook::Forward, Verdict::Drop, Vec::new()),
            filter_chain(Hook::Output, Verdict::Accept, Vec::new()),
        ],
    }
}

/// Rules of the input chain, the common cases first.
fn input_rules(input: &FirewallInput) -> Vec<Rule> {
    let mut rules = vec![
        // Replies to our own DNS, NTP, DHCP renewals, health checks and
        // connections to the backends.
        Rule::accept(vec![Match::CtState(
            CtState::ESTABLISHED.or(CtState::RELATED),
        )]),
        Rule::accept(vec![Match::Loopback]),
        Rule::accept(vec![Match::IcmpType(ICMP_ECHO_REQUEST)]),
    ];
    rules.extend(
        ICMPV6_ACCEPTED
            .iter()
            .map(|&t| Rule::accept(vec![Match::Icmpv6Type(t)])),
    );
    // DHCP offers and acks answer a broadcast request, so conntrack cannot
    // tie them to it: they are not `established`.
    rules.push(Rule::accept(vec![
        Match::UdpSport(DHCP_SERVER_PORT),
        Match::UdpDport(DHCP_CLIENT_PORT),
    ]));
    rules.extend(vrrp_rules(&input.vrrp_peers));
    rules.extend(sorted_unique(&input.tcp_ports).map(|p| Rule::accept(vec![Match::TcpDport(p)])));
    rules.extend(sorted_unique(&input.udp_ports).map(|p| Rule::accept(vec![Match::UdpDport(p)])));
    rules
}

/// VRRP from each peer (to the group or unicast), or to the groups from
/// anyone when no peer is configured.
fn vrrp_rules(peers: &[IpAddr]) -> Vec<Rule> {
    let vrrp = Match::L4Proto(IPPROTO_VRRP);
    if peers.is_empty() {
        return [IpAddr::V4(VRRP_GROUP_V4), IpAddr::V6(VRRP_GROUP_V6)]
            .into_iter()
            .map(|group| Rule::accept(vec![Match::Daddr(group), vrrp.clone()]))
            .collect();
    }
    let mut peers = peers.to_vec();
    peers.sort_unstable();
    peers.dedup();
    peers
        .into_iter()
        .map(|peer| Rule::accept(vec![Match::Saddr(peer), vrrp.clone()]))
        .collect()
}

/// Ports in ascending order without repeats; port 0 never matches traffic.
fn sorted_unique(ports: &[u16]) -> impl Iterator<Item = u16> {
    let mut ports: Vec<u16> = ports.iter().copied().filter(|&p| p != 0).collect();
    ports.sort_unstable();
    ports.dedup();
    ports.into_iter()
}

#[cfg(test)]
mod tests {
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

    #[test]
    fn vrrp_only_from_peers() {
        let peer4: IpAddr = "192.0.2.2".parse().expect("literal");
        let peer6: IpAddr = "2001:db8::2".parse().expect("literal");
        let input = FirewallInput {
            vrrp_peers: vec![peer6, peer4, peer4],
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
        let rs = build_ruleset(&FirewallInput::default());
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
    fn from_settings_takes_peers_and_extra_ports() {
        let mut settings = Settings::default();
        let peer: IpAddr = "192.0.2.7".parse().expect("literal");
        settings.vrrp.peers = vec![peer];
        settings.firewall_ports = vec![PortRule {
            port: 9000,
            protocol: Protocol::Udp,
        }];
        let input = FirewallInput::from_settings(&settings);
        assert_eq!(input.vrrp_peers, [peer]);
        assert_eq!(input.udp_ports, [9000]);
        assert!(input.tcp_ports.is_empty());
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
}
