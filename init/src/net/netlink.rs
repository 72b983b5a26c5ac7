//! A synchronous rtnetlink socket: list links, set them up, set the MTU,
//! add and flush addresses, add and delete routes, wait for carrier.
//!
//! One request at a time: each message carries a fresh sequence number and
//! `NLM_F_ACK`, and [`Netlink::request`] reads until the kernel's ACK (an
//! `NLMSG_ERROR` with code 0), its error, or `NLMSG_DONE` for a dump.
//! Replies for other sequence numbers (none on this private socket) are
//! skipped.

use std::io;
use std::net::IpAddr;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use netlink_packet_core::{
    NetlinkBuffer, NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE,
    NLM_F_DUMP, NLM_F_REPLACE, NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage, AddressScope};
use netlink_packet_route::link::{
    InfoKind, LinkAttribute, LinkFlags, LinkInfo, LinkLayerType, LinkMessage, State,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use settings::value::IpCidr;

/// Largest datagram the kernel sends on a dump (it fills up to 32 KiB
/// pages; 64 KiB leaves room).
const RECV_BUF_LEN: usize = 65_536;
/// Multicast group of link changes (`RTMGRP_LINK`), for carrier waits.
const RTMGRP_LINK: u32 = 1;

/// A failed netlink step, naming what was asked.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    #[error("opening the rtnetlink socket (is this Linux, with CAP_NET_ADMIN?): {source}")]
    Open { source: io::Error },
    #[error("sending netlink request to {what}: {source}")]
    Send { what: String, source: io::Error },
    #[error("reading netlink reply to {what}: {source}")]
    Recv { what: String, source: io::Error },
    #[error("decoding netlink reply to {what}: {reason}")]
    Decode { what: String, reason: String },
    #[error("kernel refused to {what}: {source}")]
    Kernel { what: String, source: io::Error },
    #[error("no network interface named {name:?} (see the list of links on the console)")]
    NoSuchLink { name: String },
}

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

/// The rtnetlink socket.
pub struct Netlink {
    socket: Socket,
    seq: u32,
    buf: Vec<u8>,
}

impl Netlink {
    /// Opens and binds the socket in the caller's network namespace.
    pub fn open() -> Result<Self, NetlinkError> {
        let mut socket =
            Socket::new(NETLINK_ROUTE).map_err(|source| NetlinkError::Open { source })?;
        socket
            .bind_auto()
            .map_err(|source| NetlinkError::Open { source })?;
        socket
            .connect(&SocketAddr::new(0, 0))
            .map_err(|source| NetlinkError::Open { source })?;
        Ok(Self {
            socket,
            seq: 0,
            buf: Vec::with_capacity(RECV_BUF_LEN),
        })
    }

    /// Every link, in interface-index order.
    pub fn links(&mut self) -> Result<Vec<Link>, NetlinkError> {
        let replies = self.request(
            "list links",
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
            NLM_F_DUMP,
        )?;
        let mut links: Vec<Link> = replies
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(link_from(&l)),
                _ => None,
            })
            .collect();
        links.sort_by_key(|l| l.index);
        Ok(links)
    }

    /// The link called `name`.
    pub fn link(&mut self, name: &str) -> Result<Link, NetlinkError> {
        self.links()?
            .into_iter()
            .find(|l| l.name == name)
            .ok_or_else(|| NetlinkError::NoSuchLink {
                name: name.to_owned(),
            })
    }

    /// Sets `IFF_UP` on a link.
    pub fn set_up(&mut self, index: u32) -> Result<(), NetlinkError> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.header.flags = LinkFlags::Up;
        msg.header.change_mask = LinkFlags::Up;
        self.request(
            &format!("set link {index} up"),
            RouteNetlinkMessage::SetLink(msg),
            0,
        )
        .map(drop)
    }

    /// Sets a link's MTU.
    pub fn set_mtu(&mut self, index: u32, mtu: u32) -> Result<(), NetlinkError> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.attributes.push(LinkAttribute::Mtu(mtu));
        self.request(
            &format!("set MTU {mtu} on link {index}"),
            RouteNetlinkMessage::SetLink(msg),
            0,
        )
        .map(drop)
    }

    /// Adds (or refreshes) an interface address with its prefix. The kernel
    /// adds the prefix route itself once the link is up.
    pub fn add_address(&mut self, index: u32, cidr: IpCidr) -> Result<(), NetlinkError> {
        let msg = address_message(index, cidr);
        self.request(
            &format!("add address {cidr} on link {index}"),
            RouteNetlinkMessage::NewAddress(msg),
            NLM_F_CREATE | NLM_F_REPLACE,
        )
        .map(drop)
    }

    /// Removes one interface address.
    pub fn delete_address(&mut self, index: u32, cidr: IpCidr) -> Result<(), NetlinkError> {
        let msg = address_message(index, cidr);
        self.request(
            &format!("delete address {cidr} on link {index}"),
            RouteNetlinkMessage::DelAddress(msg),
            0,
        )
        .map(drop)
    }

    /// The addresses on a link (both families, link-local included).
    pub fn addresses(&mut self, index: u32) -> Result<Vec<IpCidr>, NetlinkError> {
        Ok(self
            .address_messages(index)?
            .iter()
            .filter_map(cidr_of)
            .collect())
    }

    /// Removes every global-scope address of a link, keeping IPv6
    /// link-local ones (neighbour discovery needs them). Returns what it
    /// removed.
    pub fn flush_addresses(&mut self, index: u32) -> Result<Vec<IpCidr>, NetlinkError> {
        let mut removed = Vec::new();
        for msg in self.address_messages(index)? {
            if msg.header.scope != AddressScope::Universe {
                continue;
            }
            if let Some(cidr) = cidr_of(&msg) {
                self.delete_address(index, cidr)?;
                removed.push(cidr);
            }
        }
        Ok(removed)
    }

    fn address_messages(&mut self, index: u32) -> Result<Vec<AddressMessage>, NetlinkError> {
        let replies = self.request(
            &format!("list addresses of link {index}"),
            RouteNetlinkMessage::GetAddress(AddressMessage::default()),
            NLM_F_DUMP,
        )?;
        Ok(replies
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewAddress(a) if a.header.index == index => Some(a),
                _ => None,
            })
            .collect())
    }

    /// Adds (or replaces) a route in the main table.
    pub fn add_route(&mut self, route: &Route) -> Result<(), NetlinkError> {
        self.request(
            &format!("add route {}", describe(route)),
            RouteNetlinkMessage::NewRoute(route_message(route)),
            NLM_F_CREATE | NLM_F_REPLACE,
        )
        .map(drop)
    }

    /// Deletes a route from the main table.
    pub fn delete_route(&mut self, route: &Route) -> Result<(), NetlinkError> {
        self.request(
            &format!("delete route {}", describe(route)),
            RouteNetlinkMessage::DelRoute(route_message(route)),
            0,
        )
        .map(drop)
    }

    /// Sends one request and collects the replies until its ACK or the end
    /// of the dump.
    fn request(
        &mut self,
        what: &str,
        message: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<Vec<RouteNetlinkMessage>, NetlinkError> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
        header.sequence_number = seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(message));
        packet.finalize();
        let mut bytes = vec![0; packet.buffer_len()];
        packet.serialize(&mut bytes);
        self.socket
            .send(&bytes, 0)
            .map_err(|source| NetlinkError::Send {
                what: what.to_owned(),
                source,
            })?;

        let mut replies = Vec::new();
        loop {
            self.buf.clear();
            let n = self
                .socket
                .recv(&mut self.buf, 0)
                .map_err(|source| NetlinkError::Recv {
                    what: what.to_owned(),
                    source,
                })?;
            if n > self.buf.len() {
                return Err(decode_error(what, "reply larger than the receive buffer"));
            }
            let mut offset = 0;
            while offset < self.buf.len() {
                let chunk = &self.buf[offset..];
                let len = NetlinkBuffer::new_checked(chunk)
                    .map(|b| b.length() as usize)
                    .map_err(|e| decode_error(what, &e.to_string()))?;
                if len == 0 {
                    return Err(decode_error(what, "zero-length message"));
                }
                let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(chunk)
                    .map_err(|e| decode_error(what, &e.to_string()))?;
                offset += aligned(len);
                if msg.header.sequence_number != seq {
                    continue;
                }
                match msg.payload {
                    NetlinkPayload::Done(_) => return Ok(replies),
                    NetlinkPayload::Error(e) => match e.code {
                        None => return Ok(replies),
                        Some(code) => {
                            return Err(NetlinkError::Kernel {
                                what: what.to_owned(),
                                source: io::Error::from_raw_os_error(code.get().saturating_abs()),
                            })
                        }
                    },
                    NetlinkPayload::InnerMessage(inner) => replies.push(inner),
                    _ => {}
                }
            }
        }
    }
}

/// Waits until the link `index` has carrier, or `timeout` passes. Returns
/// whether it got carrier. Listens to link events on its own socket, so it
/// wakes on the change rather than polling.
pub fn wait_for_carrier(index: u32, timeout: Duration) -> Result<bool, NetlinkError> {
    let what = format!("wait for carrier on link {index}");
    let mut events = Socket::new(NETLINK_ROUTE).map_err(|source| NetlinkError::Open { source })?;
    events
        .bind(&SocketAddr::new(0, RTMGRP_LINK))
        .map_err(|source| NetlinkError::Open { source })?;
    // Subscribe first, then look: a change between the two is not lost.
    let mut nl = Netlink::open()?;
    if nl.links()?.iter().any(|l| l.index == index && l.carrier) {
        return Ok(true);
    }
    let deadline = Instant::now() + timeout;
    let mut buf: Vec<u8> = Vec::with_capacity(RECV_BUF_LEN);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(false);
        }
        let ms = u16::try_from(left.as_millis().saturating_add(1)).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(events.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => {
                return Err(NetlinkError::Recv {
                    what,
                    source: e.into(),
                })
            }
        }
        buf.clear();
        events
            .recv(&mut buf, 0)
            .map_err(|source| NetlinkError::Recv {
                what: what.clone(),
                source,
            })?;
        let mut offset = 0;
        while offset < buf.len() {
            let Ok(len) = NetlinkBuffer::new_checked(&buf[offset..]).map(|b| b.length() as usize)
            else {
                break;
            };
            if len == 0 {
                break;
            }
            if let Ok(msg) = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&buf[offset..]) {
                if let NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(l)) = msg.payload {
                    let link = link_from(&l);
                    if link.index == index && link.carrier {
                        return Ok(true);
                    }
                }
            }
            offset += aligned(len);
        }
    }
}

fn aligned(len: usize) -> usize {
    (len + 3) & !3
}

fn decode_error(what: &str, reason: &str) -> NetlinkError {
    NetlinkError::Decode {
        what: what.to_owned(),
        reason: reason.to_owned(),
    }
}

fn link_from(msg: &LinkMessage) -> Link {
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

fn address_message(index: u32, cidr: IpCidr) -> AddressMessage {
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

fn cidr_of(msg: &AddressMessage) -> Option<IpCidr> {
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

fn route_message(route: &Route) -> RouteMessage {
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

fn describe(route: &Route) -> String {
    let via = route
        .gateway
        .map_or_else(String::new, |g| format!(" via {g}"));
    format!("{}{via} dev {}", route.destination, route.ifindex)
}
