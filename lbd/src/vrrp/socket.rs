//! The raw IPv4 socket for protocol 112: TTL 255 on send (unicast and
//! multicast), bound to the interface, joined to 224.0.0.18 when no peers
//! are given, multicast loopback off (our own adverts are not input).

use std::io::{self, Read};
use std::net::{Ipv4Addr, SocketAddrV4};

use socket2::{Domain, InterfaceIndexOrAddress, Protocol, SockAddr, Socket, Type};
use tokio::io::unix::AsyncFd;

use super::packet::{IPPROTO_VRRP, VRRP_TTL};

/// VRRP's IPv4 multicast group (RFC 5798 5.1.1.2).
pub const VRRP_GROUP_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// An IPv4 datagram is at most this long.
const MAX_DATAGRAM: usize = 65_535;

pub struct VrrpSocket {
    fd: AsyncFd<Socket>,
    buf: Vec<u8>,
}

impl VrrpSocket {
    /// Opens the socket on `interface` (index `ifindex`), sending from
    /// `src`; joins the group when `multicast`.
    pub fn open(interface: &str, ifindex: u32, src: Ipv4Addr, multicast: bool) -> io::Result<Self> {
        let socket = Socket::new(
            Domain::IPV4,
            Type::RAW,
            Some(Protocol::from(i32::from(IPPROTO_VRRP))),
        )?;
        socket.set_nonblocking(true)?;
        socket.bind_device(Some(interface.as_bytes()))?;
        socket.set_ttl(u32::from(VRRP_TTL))?;
        socket.set_multicast_ttl_v4(u32::from(VRRP_TTL))?;
        socket.set_multicast_loop_v4(false)?;
        socket.set_multicast_if_v4(&src)?;
        if multicast {
            // A raw socket bound to an address only receives datagrams sent
            // to it, so a multicast socket stays unbound: IP_MULTICAST_IF
            // above gives its adverts their source address.
            socket.join_multicast_v4_n(&VRRP_GROUP_V4, &InterfaceIndexOrAddress::Index(ifindex))?;
        } else {
            // Unicast: binding makes the kernel send from `src`.
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

    /// Sends one VRRP message; the kernel adds the IP header.
    pub fn send(&self, dst: Ipv4Addr, msg: &[u8]) -> io::Result<()> {
        self.fd
            .get_ref()
            .send_to(msg, &SockAddr::from(SocketAddrV4::new(dst, 0)))
            .map(drop)
    }
}
