//! The ruleset as plain data, and the appliance's policy that builds it from
//! a [`FirewallInput`].
//!
//! The model only holds what the appliance uses: one `inet` table, base
//! chains with a hook and a policy, and rules that are a conjunction of
//! simple matches followed by a verdict. [`super::render_nft`] prints it,
//! [`super::apply`] encodes it.

use std::collections::BTreeSet;
use std::net::IpAddr;

use lbd_config::vrrp::AdvertSource;
use lbd_config::{Config, VrrpAdverts};
use settings::value::{PortRule, Protocol};
use settings::Settings;

/// The VRRP facts lbd's adverts follow, from lbd's own config crate.
pub use lbd_config::vrrp::{IPPROTO_AH, IPPROTO_VRRP, VRRP_GROUP_V4, VRRP_GROUP_V6};

/// The one table init owns; replacing it never touches other tables.
pub const TABLE_NAME: &str = "appliance";
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
/// settings and lbd's effective config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FirewallInput {
    /// The adverts of lbd's VRRP instances: from their unicast peers or to
    /// their multicast group, in VRRP (112) or AH (51) datagrams. None
    /// without an instance.
    pub vrrp: Vec<VrrpAdverts>,
    /// TCP destination ports to accept (lbd's frontends, the stats page).
    pub tcp_ports: Vec<u16>,
    /// UDP destination ports to accept.
    pub udp_ports: Vec<u16>,
}

impl FirewallInput {
    /// The extra ports from the settings; the boot sequence adds what lbd
    /// needs with [`Self::add_lbd`].
    pub fn from_settings(settings: &Settings) -> Self {
        let mut input = Self::default();
        input.add_port_rules(&settings.firewall_ports);
        input
    }

    /// What lbd's effective config needs let in: its frontend and stats
    /// ports, and its VRRP instances' adverts (so an admin's `lbd.config`
    /// with its own instances, AH included, works as the settings' one).
    pub fn add_lbd(&mut self, config: &Config) {
        self.tcp_ports.extend(config.listening_ports());
        self.vrrp.extend(config.vrrp_adverts());
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
    rules.extend(vrrp_rules(&input.vrrp));
    rules.extend(sorted_unique(&input.tcp_ports).map(|p| Rule::accept(vec![Match::TcpDport(p)])));
    rules.extend(sorted_unique(&input.udp_ports).map(|p| Rule::accept(vec![Match::UdpDport(p)])));
    rules
}

/// Adverts from each unicast peer, then to each multicast group from
/// anyone, each in its instance's IP protocol; sorted, without repeats
/// (two instances may share peers).
fn vrrp_rules(adverts: &[VrrpAdverts]) -> Vec<Rule> {
    // Peers sort before groups (`false` < `true`), then by address.
    let mut flows: BTreeSet<(bool, IpAddr, u8)> = BTreeSet::new();
    for a in adverts {
        match &a.source {
            AdvertSource::Peers(peers) => {
                flows.extend(peers.iter().map(|&p| (false, p, a.protocol)));
            }
            AdvertSource::Group(group) => {
                flows.insert((true, *group, a.protocol));
            }
        }
    }
    flows
        .into_iter()
        .map(|(group, addr, protocol)| {
            let from = if group {
                Match::Daddr(addr)
            } else {
                Match::Saddr(addr)
            };
            Rule::accept(vec![from, Match::L4Proto(protocol)])
        })
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
#[path = "model_tests.rs"]
mod tests;
