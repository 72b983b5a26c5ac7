//! The raw IPv4 socket of `auth_type = "ah"` instances: protocol 51 (AH)
//! in, whole datagrams out. The AH ICV covers the IP header's ID, so we
//! write the header ourselves (IP_HDRINCL; the kernel still fills in the
//! header checksum). Bound to the interface, joined to 224.0.0.18 without
//! peers (bound to `src` with them), multicast loopback off, like
//! [`super::socket::VrrpSocket`].

use std::io::{self, Read};
use std::net::{Ipv4Addr, SocketAddrV4};

use socket2::{Domain, InterfaceIndexOrAddress, Protocol, SockAddr, Socket, Type};
use tokio::io::unix::AsyncFd;

use super::ah::IPPROTO_AH;
use super::socket::VRRP_GROUP_V4;

/// An IPv4 datagram is at most this long.
const MAX_DATAGRAM: usize = 65_535;

pub struct AhSocket {
    fd: AsyncFd<Socket>,
    buf: Vec<u8>,
}

impl AhSocket {
    /// Opens the socket on `interface` (index `ifindex`) for adverts from
    /// `src`; joins the group when `multicast`.
    pub fn open(interface: &str, ifindex: u32, src: Ipv4Addr, multicast: bool) -> io::Result<Self> {
        let socket = Socket::new(
            Domain::IPV4,
            Type::RAW,
            Some(Protocol::from(i32::from(IPPROTO_AH))),
        )?;
        socket.set_nonblocking(true)?;
        socket.bind_device(Some(interface.as_bytes()))?;
        socket.set_header_included_v4(true)?;
        socket.set_multicast_loop_v4(false)?;
        socket.set_multicast_if_v4(&src)?;
        if multicast {
            socket.join_multicast_v4_n(&VRRP_GROUP_V4, &InterfaceIndexOrAddress::Index(ifindex))?;
        } else {
            // Only datagrams to `src` are received, as for plain adverts.
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

    /// Waits for the next AH datagram (IPv4 header included).
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

    /// Sends one whole datagram (from [`super::ah::seal`]) to `dst`.
    pub fn send(&self, dst: Ipv4Addr, datagram: &[u8]) -> io::Result<()> {
        self.fd
            .get_ref()
            .send_to(datagram, &SockAddr::from(SocketAddrV4::new(dst, 0)))
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
