//! rtnetlink messages to and from our own types: links out of
//! `RTM_NEWLINK`, addresses and routes into `RTM_NEWADDR`/`RTM_NEWROUTE`.
//! Pure functions, unit-tested without a kernel.

use std::net::IpAddr;

use netlink_packet_route::address::{AddressAttribute, AddressMessage, AddressScope};
use netlink_packet_route::link::{
    InfoKind, LinkAttribute, LinkFlags, LinkInfo, LinkLayerType, LinkMessage, State,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::AddressFamily;
use settings::value::IpCidr;

/// One network interface as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Kernel interface index.
    pub index: u32,
    /// Interface name (`eth0`, `ens192`, `lo`).
    pub name: String,
    /// Hardware address, when the link has one.
    pub mac: Option<[u8; 6]>,
    /// Current MTU.
    pub mtu: u32,
    /// Administratively up (`IFF_UP`).
    pub up: bool,
    /// Physical link present (`IFF_LOWER_UP` / `IFLA_CARRIER`).
    pub carrier: bool,
    /// RFC 2863 operational state, as `ip link` spells it (`UP`, `DOWN`, ...).
    pub operstate: String,
    /// The `rtnl_link_ops` kind for virtual links (`veth`, `bridge`); `None`
    /// for real NICs (vmxnet3, virtio_net).
    pub kind: Option<String>,
    /// `ARPHRD_ETHER` link layer.
    pub ethernet: bool,
    /// The loopback device.
    pub loopback: bool,
}

impl Link {
    /// `52:54:00:12:34:56`, or `-` without one.
    pub fn mac_text(&self) -> String {
        self.mac.map_or_else(
            || "-".to_owned(),
            |m| {
                m.iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<Vec<_>>()
                    .join(":")
            },
        )
    }
}

/// A route to add or delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// Destination network; `0.0.0.0/0` or `::/0` for a default route.
    pub destination: IpCidr,
    /// Next hop; `None` for a route straight onto the link.
    pub gateway: Option<IpAddr>,
    /// Outgoing interface index.
    pub ifindex: u32,
    /// Route metric (`priority`); `None` for the kernel's default of 0.
    pub metric: Option<u32>,
    /// Who installed it: static settings or DHCP (shown by `ip route` as
    /// `proto static` / `proto dhcp`).
    pub protocol: RouteOrigin,
}

/// Who installed a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteOrigin {
    /// From the settings.
    Static,
    /// From a DHCP lease.
    Dhcp,
}

pub(crate) fn link_from(msg: &LinkMessage) -> Link {
    let mut link = Link {
        index: msg.header.index,
        name: String::new(),
        mac: None,
        mtu: 0,
        up: msg.header.flags.contains(LinkFlags::Up),
        carrier: msg.header.flags.contains(LinkFlags::LowerUp),
        operstate: "UNKNOWN".to_owned(),
        kind: None,
        ethernet: msg.header.link_layer_type == LinkLayerType::Ether,
        loopback: msg.header.link_layer_type == LinkLayerType::Loopback
            || msg.header.flags.contains(LinkFlags::Loopback),
    };
    for attr in &msg.attributes {
        match attr {
            LinkAttribute::IfName(n) => link.name.clone_from(n),
            LinkAttribute::Address(a) => link.mac = <[u8; 6]>::try_from(a.as_slice()).ok(),
            LinkAttribute::Mtu(m) => link.mtu = *m,
            LinkAttribute::Carrier(c) => link.carrier = *c != 0,
            LinkAttribute::OperState(s) => link.operstate = operstate_text(*s),
            LinkAttribute::LinkInfo(infos) => {
                for info in infos {
                    if let LinkInfo::Kind(kind) = info {
                        link.kind = Some(kind_text(kind));
                    }
                }
            }
            _ => {}
        }
    }
    link
}

fn operstate_text(state: State) -> String {
    match state {
        State::Unknown => "UNKNOWN".to_owned(),
        State::NotPresent => "NOTPRESENT".to_owned(),
        State::Down => "DOWN".to_owned(),
        State::LowerLayerDown => "LOWERLAYERDOWN".to_owned(),
        State::Testing => "TESTING".to_owned(),
        State::Dormant => "DORMANT".to_owned(),
        State::Up => "UP".to_owned(),
        State::Other(n) => format!("STATE{n}"),
        _ => "UNKNOWN".to_owned(),
    }
}

fn kind_text(kind: &InfoKind) -> String {
    // `InfoKind`'s Display is the kernel's kind string (`veth`, `bridge`).
    kind.to_string()
}

fn family_of(addr: IpAddr) -> AddressFamily {
    match addr {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    }
}

pub(crate) fn address_message(index: u32, cidr: IpCidr) -> AddressMessage {
    let mut msg = AddressMessage::default();
    msg.header.family = family_of(cidr.addr);
    msg.header.prefix_len = cidr.prefix;
    msg.header.index = index;
    msg.header.scope = AddressScope::Universe;
    match cidr.addr {
        IpAddr::V4(v4) => {
            // IFA_LOCAL is the interface's own address; IFA_ADDRESS the
            // peer on point-to-point links, the same address otherwise.
            msg.attributes.push(AddressAttribute::Local(cidr.addr));
            msg.attributes.push(AddressAttribute::Address(cidr.addr));
            if cidr.prefix < 31 {
                let host_mask = u32::MAX.checked_shr(u32::from(cidr.prefix)).unwrap_or(0);
                let broadcast = u32::from(v4) | host_mask;
                msg.attributes
                    .push(AddressAttribute::Broadcast(broadcast.into()));
            }
        }
        IpAddr::V6(_) => msg.attributes.push(AddressAttribute::Address(cidr.addr)),
    }
    msg
}

pub(crate) fn cidr_of(msg: &AddressMessage) -> Option<IpCidr> {
    // For IPv4 IFA_LOCAL is the address; IPv6 has only IFA_ADDRESS.
    let local = msg.attributes.iter().find_map(|a| match a {
        AddressAttribute::Local(ip) => Some(*ip),
        _ => None,
    });
    let address = msg.attributes.iter().find_map(|a| match a {
        AddressAttribute::Address(ip) => Some(*ip),
        _ => None,
    });
    local.or(address).map(|addr| IpCidr {
        addr,
        prefix: msg.header.prefix_len,
    })
}

fn route_address(addr: IpAddr) -> RouteAddress {
    match addr {
        IpAddr::V4(a) => RouteAddress::Inet(a),
        IpAddr::V6(a) => RouteAddress::Inet6(a),
    }
}

pub(crate) fn route_message(route: &Route) -> RouteMessage {
    let mut msg = RouteMessage::default();
    msg.header.address_family = family_of(route.destination.addr);
    msg.header.destination_prefix_length = route.destination.prefix;
    msg.header.table = RouteHeader::RT_TABLE_MAIN;
    msg.header.protocol = match route.protocol {
        RouteOrigin::Static => RouteProtocol::Static,
        RouteOrigin::Dhcp => RouteProtocol::Dhcp,
    };
    msg.header.scope = if route.gateway.is_some() {
        RouteScope::Universe
    } else {
        RouteScope::Link
    };
    msg.header.kind = RouteType::Unicast;
    if route.destination.prefix > 0 {
        msg.attributes
            .push(RouteAttribute::Destination(route_address(
                route.destination.addr,
            )));
    }
    if let Some(gw) = route.gateway {
        msg.attributes
            .push(RouteAttribute::Gateway(route_address(gw)));
    }
    msg.attributes.push(RouteAttribute::Oif(route.ifindex));
    if let Some(metric) = route.metric {
        msg.attributes.push(RouteAttribute::Priority(metric));
    }
    msg
}

pub(crate) fn describe(route: &Route) -> String {
    let via = route
        .gateway
        .map_or_else(String::new, |g| format!(" via {g}"));
    format!("{}{via} dev {}", route.destination, route.ifindex)
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn cidr(s: &str) -> IpCidr {
        let (a, p) = s.split_once('/').expect("test cidr");
        IpCidr {
            addr: a.parse().expect("address"),
            prefix: p.parse().expect("prefix"),
        }
    }

    #[test]
    fn ipv4_address_carries_local_and_broadcast() {
        let msg = address_message(3, cidr("192.0.2.10/24"));
        assert_eq!((msg.header.index, msg.header.prefix_len), (3, 24));
        assert_eq!(msg.header.family, AddressFamily::Inet);
        let ip = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10));
        assert_eq!(
            msg.attributes,
            vec![
                AddressAttribute::Local(ip),
                AddressAttribute::Address(ip),
                AddressAttribute::Broadcast(Ipv4Addr::new(192, 0, 2, 255)),
            ]
        );
        assert_eq!(cidr_of(&msg), Some(cidr("192.0.2.10/24")));
        // Point-to-point prefixes have no broadcast address (RFC 3021).
        let p2p = address_message(3, cidr("192.0.2.10/31"));
        assert_eq!(p2p.attributes.len(), 2);
        assert_eq!(address_message(3, cidr("192.0.2.10/0")).attributes.len(), 3);
    }

    #[test]
    fn ipv6_address_has_only_ifa_address() {
        let msg = address_message(3, cidr("2001:db8::10/64"));
        assert_eq!(msg.header.family, AddressFamily::Inet6);
        assert_eq!(msg.attributes.len(), 1);
        assert_eq!(cidr_of(&msg), Some(cidr("2001:db8::10/64")));
    }

    #[test]
    fn default_route_has_no_destination() {
        let route = Route {
            destination: cidr("0.0.0.0/0"),
            gateway: Some("192.0.2.1".parse().expect("address")),
            ifindex: 3,
            metric: None,
            protocol: RouteOrigin::Dhcp,
        };
        let msg = route_message(&route);
        assert_eq!(msg.header.table, RouteHeader::RT_TABLE_MAIN);
        assert_eq!(msg.header.protocol, RouteProtocol::Dhcp);
        assert_eq!(msg.header.scope, RouteScope::Universe);
        assert_eq!(
            msg.attributes,
            vec![
                RouteAttribute::Gateway(RouteAddress::Inet(Ipv4Addr::new(192, 0, 2, 1))),
                RouteAttribute::Oif(3),
            ]
        );
        assert_eq!(describe(&route), "0.0.0.0/0 via 192.0.2.1 dev 3");
    }

    #[test]
    fn on_link_route_is_link_scoped() {
        let route = Route {
            destination: cidr("198.51.100.0/24"),
            gateway: None,
            ifindex: 4,
            metric: Some(10),
            protocol: RouteOrigin::Static,
        };
        let msg = route_message(&route);
        assert_eq!(msg.header.scope, RouteScope::Link);
        assert_eq!(msg.header.protocol, RouteProtocol::Static);
        assert_eq!(
            msg.attributes,
            vec![
                RouteAttribute::Destination(RouteAddress::Inet(Ipv4Addr::new(198, 51, 100, 0))),
                RouteAttribute::Oif(4),
                RouteAttribute::Priority(10),
            ]
        );
    }

    #[test]
    fn link_from_newlink() {
        let mut msg = LinkMessage::default();
        msg.header.index = 2;
        msg.header.link_layer_type = LinkLayerType::Ether;
        msg.header.flags = LinkFlags::Up | LinkFlags::LowerUp;
        msg.attributes = vec![
            LinkAttribute::IfName("ens192".to_owned()),
            LinkAttribute::Address(vec![0x00, 0x50, 0x56, 0x01, 0x02, 0x03]),
            LinkAttribute::Mtu(1500),
            LinkAttribute::OperState(State::Up),
            LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Veth)]),
        ];
        let link = link_from(&msg);
        assert_eq!(link.name, "ens192");
        assert_eq!(link.mac_text(), "00:50:56:01:02:03");
        assert_eq!((link.mtu, link.up, link.carrier), (1500, true, true));
        assert_eq!(link.operstate, "UP");
        assert_eq!(link.kind.as_deref(), Some("veth"));
        assert!(link.ethernet && !link.loopback);
        // Carrier attribute overrides the flag; no MAC prints as "-".
        msg.attributes = vec![LinkAttribute::Carrier(0)];
        let link = link_from(&msg);
        assert!(!link.carrier);
        assert_eq!(link.mac_text(), "-");
    }
}
