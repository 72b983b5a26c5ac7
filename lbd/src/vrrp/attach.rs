//! Binding one instance to its interface: find the link, remove VIPs a
//! killed predecessor left, pick the advert source, open the VRRP socket
//! (IPv4 or IPv6) and the AF_PACKET one. [`super::driver::Driver`] retries
//! this every link poll while it fails for a reason that can heal by
//! itself (no such interface yet, no usable address yet), holding the
//! instance in Fault meanwhile.
//!
//! Sources (RFC 5798 5.1.1.1, 5.1.2.1): `unicast_src_ip` if given, else
//! the interface's first IPv4 address, or for IPv6 its link-local address.

use std::io;
use std::net::{IpAddr, Ipv6Addr};

use super::auth::Authenticator;
use super::config::AuthType;
use super::config::Instance;
use super::driver::DriverError;
use super::fsm::Input;
use super::garp::GarpSocket;
use super::netlink::Netlink;
use super::packet::Version;
use super::receive::{accept, Dropped, Expect};
use super::receive6::accept_v6;
use super::socket::AhSocket;
use super::socket::{VrrpSocket, VRRP_GROUP_V4};
use super::socket6::{Datagram6, Vrrp6Socket, VRRP_GROUP_V6};

/// The VRRP socket of the instance's family.
pub enum Transport {
    V4(VrrpSocket),
    V6(Vrrp6Socket),
}

/// What one receive gave.
pub enum Received {
    /// IPv4 datagram, header included.
    V4(Vec<u8>),
    V6(Datagram6),
}

impl Transport {
    pub async fn recv(&mut self) -> io::Result<Received> {
        match self {
            Transport::V4(s) => s.recv().await.map(Received::V4),
            Transport::V6(s) => s.recv().await.map(Received::V6),
        }
    }

    pub fn send(&self, dst: IpAddr, msg: &[u8]) -> io::Result<()> {
        match (self, dst) {
            (Transport::V4(s), IpAddr::V4(d)) => s.send(d, msg),
            (Transport::V6(s), IpAddr::V6(d)) => s.send(d, msg),
            _ => Err(io::Error::other("destination of the other IP family")),
        }
    }
}

/// An instance bound to its interface.
pub struct Attached {
    pub ifindex: u32,
    pub mac: [u8; 6],
    pub src: IpAddr,
    /// Source of unsolicited neighbour advertisements (RFC 4861 7.2.6:
    /// an address of the interface; Keepalived uses the link-local one).
    pub link_local: Option<Ipv6Addr>,
    pub dests: Vec<IpAddr>,
    pub expect: Expect,
    pub transport: Transport,
    /// `auth_type = "ah"` only: AH in, whole datagrams out.
    pub ah_socket: Option<AhSocket>,
    pub garp: GarpSocket,
}

impl Attached {
    /// Checks a received message against this instance.
    pub fn accept(&self, received: &Received) -> Result<Input, Dropped> {
        match received {
            Received::V4(d) => accept(&self.expect, d),
            Received::V6(d) => accept_v6(&self.expect, d),
        }
    }
}

pub fn version_of(cfg: &Instance) -> Version {
    if cfg.version == 2 {
        Version::V2
    } else {
        Version::V3
    }
}

fn is_link_local(a: Ipv6Addr) -> bool {
    a.segments()[0] & 0xffc0 == 0xfe80
}

/// Binds instance `name` to its interface (see the module doc).
pub fn attach(name: &str, cfg: &Instance, netlink: &mut Netlink) -> Result<Attached, DriverError> {
    let instance = name.to_string();
    let interface = cfg.interface.clone();
    let nl_err = |source| DriverError::Netlink {
        instance: instance.clone(),
        source,
    };
    let link = netlink
        .link(&cfg.interface)
        .map_err(nl_err)?
        .ok_or_else(|| DriverError::NoSuchLink {
            instance: instance.clone(),
            interface: interface.clone(),
        })?;
    let present = netlink.list(link.index).map_err(nl_err)?;
    let is_vip = |a: IpAddr| cfg.virtual_ips.iter().any(|c| c.addr == a);
    for stale in present.iter().filter(|c| is_vip(c.addr)) {
        tracing::warn!(instance = name, vip = %stale, "removing a VIP left by a previous run");
        netlink.delete(link.index, *stale).map_err(nl_err)?;
    }
    let link_local = present.iter().find_map(|c| match c.addr {
        IpAddr::V6(a) if is_link_local(a) && !is_vip(c.addr) => Some(a),
        _ => None,
    });
    let v4 = cfg.is_ipv4();
    let no_source = || {
        if v4 {
            DriverError::NoSource {
                instance: instance.clone(),
                interface: interface.clone(),
            }
        } else {
            DriverError::NoSource6 {
                instance: instance.clone(),
                interface: interface.clone(),
            }
        }
    };
    let src = match cfg.unicast_src_ip {
        Some(a) => a,
        None if v4 => present
            .iter()
            .map(|c| c.addr)
            .find(|a| a.is_ipv4() && !is_vip(*a))
            .ok_or_else(no_source)?,
        None => IpAddr::V6(link_local.ok_or_else(no_source)?),
    };
    let peers: Vec<IpAddr> = cfg
        .unicast_peers
        .iter()
        .copied()
        .filter(|p| p.is_ipv4() == v4)
        .collect();
    let multicast = peers.is_empty();
    let opened = match src {
        IpAddr::V4(s) => {
            VrrpSocket::open(&cfg.interface, link.index, s, multicast).map(Transport::V4)
        }
        IpAddr::V6(s) => {
            Vrrp6Socket::open(&cfg.interface, link.index, s, multicast).map(Transport::V6)
        }
    };
    let transport = opened.map_err(|source| {
        if source.raw_os_error() != Some(libc::EADDRNOTAVAIL) {
            DriverError::Socket {
                instance: instance.clone(),
                what: "raw VRRP",
                source,
            }
        } else if cfg.unicast_src_ip.is_some() {
            DriverError::SourceNotLocal {
                instance: instance.clone(),
                interface: interface.clone(),
                src,
            }
        } else {
            // The link-local address is still tentative (duplicate
            // address detection runs for a second or so after link up).
            no_source()
        }
    })?;
    let ah_socket = match src {
        IpAddr::V4(s) if cfg.auth() == Some(AuthType::Ah) => Some(
            AhSocket::open_ah(&cfg.interface, link.index, s, multicast).map_err(|source| {
                DriverError::Socket {
                    instance: instance.clone(),
                    what: "raw AH",
                    source,
                }
            })?,
        ),
        _ => None,
    };
    let garp = GarpSocket::open(link.index).map_err(|source| DriverError::Socket {
        instance: instance.clone(),
        what: "AF_PACKET",
        source,
    })?;
    let dests = if !multicast {
        peers.clone()
    } else if v4 {
        vec![IpAddr::V4(VRRP_GROUP_V4)]
    } else {
        vec![IpAddr::V6(VRRP_GROUP_V6)]
    };
    Ok(Attached {
        ifindex: link.index,
        mac: link.mac,
        src,
        link_local,
        dests,
        expect: Expect {
            version: version_of(cfg),
            vrid: cfg.vrid,
            src,
            peers,
            addr_count: cfg.advertised_ips().len(),
            auth: Authenticator::new(cfg).expected(),
        },
        transport,
        ah_socket,
        garp,
    })
}
