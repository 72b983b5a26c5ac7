//! Virtual IPs on an interface over rtnetlink: add, delete, list. One
//! synchronous request at a time on a private socket (each carries a fresh
//! sequence number and `NLM_F_ACK`, and the reply is read up to the ACK or
//! the end of the dump); the calls take microseconds, so the driver makes
//! them inline.

use std::io;
use std::net::IpAddr;

use netlink_packet_core::{
    NetlinkBuffer, NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE,
    NLM_F_DUMP, NLM_F_REPLACE, NLM_F_REQUEST,
};
use netlink_packet_route::address::{
    AddressAttribute, AddressHeaderFlags, AddressMessage, AddressScope,
};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

use super::config::Cidr;

/// Dumps come in datagrams of up to 32 KiB; 64 KiB leaves room.
const RECV_BUF_LEN: usize = 65_536;

#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    #[error("opening the rtnetlink socket (needs CAP_NET_ADMIN): {source}")]
    Open { source: io::Error },
    #[error("sending netlink request to {what}: {source}")]
    Send { what: String, source: io::Error },
    #[error("reading netlink reply to {what}: {source}")]
    Recv { what: String, source: io::Error },
    #[error("decoding netlink reply to {what}: {reason}")]
    Decode { what: String, reason: String },
    #[error("kernel refused to {what}: {source}")]
    Kernel { what: String, source: io::Error },
}

/// What the driver needs to know about its interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub mac: [u8; 6],
    pub up: bool,
}

pub struct Netlink {
    socket: Socket,
    seq: u32,
    buf: Vec<u8>,
}

fn message(index: u32, cidr: Cidr) -> AddressMessage {
    let mut msg = AddressMessage::default();
    msg.header.family = match cidr.addr {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    };
    msg.header.prefix_len = cidr.prefix;
    msg.header.index = index;
    msg.header.scope = AddressScope::Universe;
    match cidr.addr {
        IpAddr::V4(v4) => {
            // IFA_LOCAL is our address; IFA_ADDRESS the same on a LAN.
            msg.attributes.push(AddressAttribute::Local(cidr.addr));
            msg.attributes.push(AddressAttribute::Address(cidr.addr));
            if cidr.prefix < 31 {
                let host = u32::MAX.checked_shr(u32::from(cidr.prefix)).unwrap_or(0);
                msg.attributes
                    .push(AddressAttribute::Broadcast((u32::from(v4) | host).into()));
            }
        }
        IpAddr::V6(_) => {
            // No duplicate address detection: a tentative VIP would not
            // answer (nor be usable as a source) for a second or more, and
            // the VRRP election already decided who holds it.
            msg.header.flags = AddressHeaderFlags::Nodad;
            msg.attributes.push(AddressAttribute::Address(cidr.addr));
        }
    }
    msg
}

fn cidr_of(msg: &AddressMessage) -> Option<Cidr> {
    let find = |want_local: bool| {
        msg.attributes.iter().find_map(|a| match a {
            AddressAttribute::Local(ip) if want_local => Some(*ip),
            AddressAttribute::Address(ip) if !want_local => Some(*ip),
            _ => None,
        })
    };
    find(true).or_else(|| find(false)).map(|addr| Cidr {
        addr,
        prefix: msg.header.prefix_len,
    })
}

impl Netlink {
    pub fn open() -> Result<Self, NetlinkError> {
        let open = |source| NetlinkError::Open { source };
        let mut socket = Socket::new(NETLINK_ROUTE).map_err(open)?;
        socket.bind_auto().map_err(open)?;
        socket.connect(&SocketAddr::new(0, 0)).map_err(open)?;
        Ok(Self {
            socket,
            seq: 0,
            buf: Vec::with_capacity(RECV_BUF_LEN),
        })
    }

    /// The link called `name`, if any.
    pub fn link(&mut self, name: &str) -> Result<Option<Link>, NetlinkError> {
        let replies = self.request(
            "list links",
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
            NLM_F_DUMP,
        )?;
        Ok(replies.iter().find_map(|m| {
            let RouteNetlinkMessage::NewLink(l) = m else {
                return None;
            };
            let named = l
                .attributes
                .iter()
                .any(|a| matches!(a, LinkAttribute::IfName(n) if n == name));
            if !named {
                return None;
            }
            let mac = l.attributes.iter().find_map(|a| match a {
                LinkAttribute::Address(b) => <[u8; 6]>::try_from(b.as_slice()).ok(),
                _ => None,
            });
            Some(Link {
                index: l.header.index,
                mac: mac.unwrap_or_default(),
                up: l.header.flags.contains(LinkFlags::LowerUp),
            })
        }))
    }

    /// Adds a VIP (replacing it if present, so a retry is harmless).
    pub fn add(&mut self, index: u32, cidr: Cidr) -> Result<(), NetlinkError> {
        self.request(
            &format!("add {cidr} on link {index}"),
            RouteNetlinkMessage::NewAddress(message(index, cidr)),
            NLM_F_CREATE | NLM_F_REPLACE,
        )
        .map(drop)
    }

    /// Deletes a VIP; one that is already gone is not an error.
    pub fn delete(&mut self, index: u32, cidr: Cidr) -> Result<(), NetlinkError> {
        match self.request(
            &format!("delete {cidr} on link {index}"),
            RouteNetlinkMessage::DelAddress(message(index, cidr)),
            0,
        ) {
            Err(NetlinkError::Kernel { source, .. })
                if source.raw_os_error() == Some(libc::EADDRNOTAVAIL) =>
            {
                Ok(())
            }
            other => other.map(drop),
        }
    }

    /// Addresses on a link.
    pub fn list(&mut self, index: u32) -> Result<Vec<Cidr>, NetlinkError> {
        let replies = self.request(
            &format!("list addresses of link {index}"),
            RouteNetlinkMessage::GetAddress(AddressMessage::default()),
            NLM_F_DUMP,
        )?;
        Ok(replies
            .iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewAddress(a) if a.header.index == index => cidr_of(a),
                _ => None,
            })
            .collect())
    }

    fn request(
        &mut self,
        what: &str,
        message: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<Vec<RouteNetlinkMessage>, NetlinkError> {
        let decode = |reason: String| NetlinkError::Decode {
            what: what.to_owned(),
            reason,
        };
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
            self.socket
                .recv(&mut self.buf, 0)
                .map_err(|source| NetlinkError::Recv {
                    what: what.to_owned(),
                    source,
                })?;
            let mut offset = 0;
            while offset < self.buf.len() {
                let chunk = &self.buf[offset..];
                let len = NetlinkBuffer::new_checked(chunk)
                    .map(|b| usize::try_from(b.length()).unwrap_or(usize::MAX))
                    .map_err(|e| decode(e.to_string()))?;
                if len == 0 {
                    return Err(decode("zero-length message".into()));
                }
                let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(chunk)
                    .map_err(|e| decode(e.to_string()))?;
                offset = offset.saturating_add((len + 3) & !3);
                if msg.header.sequence_number != seq {
                    continue;
                }
                match msg.payload {
                    NetlinkPayload::Done(_) => return Ok(replies),
                    NetlinkPayload::Error(e) => {
                        return match e.code {
                            None => Ok(replies),
                            Some(code) => Err(NetlinkError::Kernel {
                                what: what.to_owned(),
                                source: io::Error::from_raw_os_error(code.get().saturating_abs()),
                            }),
                        }
                    }
                    NetlinkPayload::InnerMessage(inner) => replies.push(inner),
                    _ => {}
                }
            }
        }
    }
}
