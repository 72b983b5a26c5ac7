//! Raw IPv4 sockets of an instance, bound to the interface, joined to
//! 224.0.0.18 when no peers are given (bound to the source address with
//! them), multicast loopback off (our own adverts are not input):
//!
//! - [`VrrpSocket`], protocol 112: the kernel writes the IP header, with
//!   TTL 255 (unicast and multicast);
//! - [`AhSocket`], protocol 51 for `auth_type = "ah"`: AH in, whole
//!   datagrams out. The AH ICV covers the IP header's ID, so we write the
//!   header ourselves (IP_HDRINCL; the kernel still fills in the header
//!   checksum).

use std::io::{self, Read};
use std::net::{Ipv4Addr, SocketAddrV4};

use socket2::{Domain, InterfaceIndexOrAddress, Protocol, SockAddr, Socket, Type};
use tokio::io::unix::AsyncFd;

use super::ah::IPPROTO_AH;
use super::packet::{IPPROTO_VRRP, VRRP_TTL};

/// VRRP's IPv4 multicast group (RFC 5798 5.1.1.2).
pub use lbd_config::vrrp::VRRP_GROUP_V4;
/// An IPv4 datagram is at most this long.
const MAX_DATAGRAM: usize = 65_535;

/// A raw IPv4 socket for one IP protocol on one interface.
pub struct RawV4Socket {
    fd: AsyncFd<Socket>,
    buf: Vec<u8>,
}

/// Plain adverts: VRRP messages out, IPv4 datagrams in.
pub type VrrpSocket = RawV4Socket;
/// AH adverts: whole IPv4 datagrams out and in.
pub type AhSocket = RawV4Socket;

impl RawV4Socket {
    /// Protocol 112 on `interface` (index `ifindex`), sending from `src`;
    /// joins the group when `multicast`.
    pub fn open(interface: &str, ifindex: u32, src: Ipv4Addr, multicast: bool) -> io::Result<Self> {
        Self::open_protocol(interface, ifindex, src, multicast, IPPROTO_VRRP, false)
    }

    /// Protocol 51 with our own IP headers, otherwise as [`Self::open`].
    pub fn open_ah(
        interface: &str,
        ifindex: u32,
        src: Ipv4Addr,
        multicast: bool,
    ) -> io::Result<Self> {
        Self::open_protocol(interface, ifindex, src, multicast, IPPROTO_AH, true)
    }

    fn open_protocol(
        interface: &str,
        ifindex: u32,
        src: Ipv4Addr,
        multicast: bool,
        protocol: u8,
        header_included: bool,
    ) -> io::Result<Self> {
        let socket = Socket::new(
            Domain::IPV4,
            Type::RAW,
            Some(Protocol::from(i32::from(protocol))),
        )?;
        socket.set_nonblocking(true)?;
        socket.bind_device(Some(interface.as_bytes()))?;
        if header_included {
            socket.set_header_included_v4(true)?;
        } else {
            socket.set_ttl(u32::from(VRRP_TTL))?;
            socket.set_multicast_ttl_v4(u32::from(VRRP_TTL))?;
        }
        socket.set_multicast_loop_v4(false)?;
        socket.set_multicast_if_v4(&src)?;
        if multicast {
            // A raw socket bound to an address only receives datagrams sent
            // to it, so a multicast socket stays unbound: IP_MULTICAST_IF
            // above gives its adverts their source address.
            socket.join_multicast_v4_n(&VRRP_GROUP_V4, &InterfaceIndexOrAddress::Index(ifindex))?;
        } else {
            // Unicast: binding makes the kernel send from `src`, and only
            // datagrams to `src` are received.
            socket.bind(&SockAddr::from(SocketAddrV4::new(src, 0)))?;
        }
        // SAFETY: `socket` owns an open fd and moves into the AsyncFd,
        // which keeps it (and so the same fd) until it is dropped.
        let fd = unsafe { AsyncFd::register(socket) }?;
        Ok(Self {
            fd,
            buf: vec![0; MAX_DATAGRAM],
        })
    }

    /// Waits for the next datagram (IPv4 header included).
    pub async fn recv(&mut self) -> io::Result<Vec<u8>> {
        loop {
            let mut guard = self.fd.readable().await?;
            let buf = &mut self.buf;
            match guard.try_io(|inner| (&mut inner.get_ref()).read(buf)) {
                Ok(Ok(n)) => return Ok(self.buf[..n].to_vec()),
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
    }

    /// Sends one VRRP message (the kernel adds the IP header), or on an AH
    /// socket one whole datagram (from [`super::ah::seal`]), to `dst`.
    pub fn send(&self, dst: Ipv4Addr, msg: &[u8]) -> io::Result<()> {
        self.fd
            .get_ref()
            .send_to(msg, &SockAddr::from(SocketAddrV4::new(dst, 0)))
            .map(drop)
    }
}

/// Waits on the AH socket when there is one; never returns otherwise (a
/// `select!` arm for instances without AH).
pub async fn recv_if_any(socket: &mut Option<AhSocket>) -> io::Result<Vec<u8>> {
    match socket {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}
