//! A synchronous rtnetlink socket: list links, set them up, set the MTU,
//! add, list and flush addresses, add and delete routes.
//!
//! One request at a time: each message carries a fresh sequence number and
//! `NLM_F_ACK`, and [`Netlink::request`] reads until the kernel's ACK (an
//! `NLMSG_ERROR` with code 0), its error, or `NLMSG_DONE` for a dump.
//! Replies for other sequence numbers (none on this private socket) are
//! skipped.

use std::io;

use netlink_packet_core::{
    NetlinkBuffer, NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE,
    NLM_F_DUMP, NLM_F_REPLACE, NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressMessage, AddressScope};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use settings::value::IpCidr;

use super::rtmsg::{address_message, cidr_of, describe, link_from, route_message};
pub use super::rtmsg::{Link, Route, RouteOrigin};

/// Largest datagram the kernel sends on a dump (it fills up to 32 KiB
/// pages; 64 KiB leaves room).
pub(crate) const RECV_BUF_LEN: usize = 65_536;

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

pub(crate) fn aligned(len: usize) -> usize {
    (len + 3) & !3
}

fn decode_error(what: &str, reason: &str) -> NetlinkError {
    NetlinkError::Decode {
        what: what.to_owned(),
        reason: reason.to_owned(),
    }
}
