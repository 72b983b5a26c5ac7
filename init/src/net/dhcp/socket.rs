//! The packet socket the client sends and receives on before it has an
//! address: `AF_PACKET`/`SOCK_DGRAM` bound to one interface for IPv4
//! frames, with [`raw::filter`] attached so only UDP to port 68 wakes us.

use std::io;
use std::mem::size_of;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use super::raw;

/// EtherType of IPv4, in host order.
const ETH_P_IP: u16 = 0x0800;
/// Longest frame we read; DHCP replies fit in 1500 bytes, bigger ones are
/// not for us and fail to decode.
pub const RECV_LEN: usize = 4096;

/// A packet socket on one interface.
pub struct PacketSocket {
    fd: OwnedFd,
    ifindex: i32,
}

impl PacketSocket {
    /// Opens the socket on interface `ifindex`, filter first, then bind, so
    /// no unfiltered frame is queued in between.
    pub fn open(ifindex: u32) -> io::Result<Self> {
        let ifindex =
            i32::try_from(ifindex).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: plain socket(2) call with constant arguments; the result
        // is checked before use.
        let raw_fd = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_DGRAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                0,
            )
        };
        if raw_fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw_fd` is a fresh descriptor we own and nothing else
        // holds; OwnedFd closes it on every path from here.
        let fd = unsafe { OwnedFd::from_raw_fd(raw_fd) };
        let sock = Self { fd, ifindex };
        sock.attach_filter()?;
        let addr = sock.link_addr([0; 8], 0);
        // SAFETY: `addr` is a valid sockaddr_ll on the stack for the whole
        // call and the length passed is its size.
        let rc = unsafe {
            libc::bind(
                sock.fd.as_raw_fd(),
                std::ptr::from_ref(&addr).cast::<libc::sockaddr>(),
                socklen::<libc::sockaddr_ll>(),
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(sock)
    }

    fn attach_filter(&self) -> io::Result<()> {
        let mut insns: Vec<libc::sock_filter> = raw::filter()
            .iter()
            .map(|i| libc::sock_filter {
                code: i.code,
                jt: i.jt,
                jf: i.jf,
                k: i.k,
            })
            .collect();
        let prog = libc::sock_fprog {
            len: u16::try_from(insns.len()).unwrap_or(0),
            filter: insns.as_mut_ptr(),
        };
        // SAFETY: `prog` points at `insns`, both alive on this frame for the
        // whole call; the kernel copies the program.
        let rc = unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_ATTACH_FILTER,
                std::ptr::from_ref(&prog).cast::<libc::c_void>(),
                socklen::<libc::sock_fprog>(),
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn link_addr(&self, mac: [u8; 8], halen: u8) -> libc::sockaddr_ll {
        libc::sockaddr_ll {
            sll_family: u16::try_from(libc::AF_PACKET).unwrap_or(0),
            sll_protocol: ETH_P_IP.to_be(),
            sll_ifindex: self.ifindex,
            sll_hatype: 0,
            sll_pkttype: 0,
            sll_halen: halen,
            sll_addr: mac,
        }
    }

    /// Sends an IPv4 packet to the Ethernet broadcast address.
    pub fn send_broadcast(&self, packet: &[u8]) -> io::Result<()> {
        let addr = self.link_addr([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0], 6);
        // SAFETY: `packet` and `addr` are valid for reads of the lengths
        // given for the whole call; the fd is ours.
        let rc = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                packet.as_ptr().cast::<libc::c_void>(),
                packet.len(),
                0,
                std::ptr::from_ref(&addr).cast::<libc::sockaddr>(),
                socklen::<libc::sockaddr_ll>(),
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Reads one frame (the IPv4 packet); `WouldBlock` when none is queued.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the
        // whole call; the fd is ours.
        let n = unsafe {
            libc::recv(
                self.fd.as_raw_fd(),
                buf.as_mut_ptr().cast::<libc::c_void>(),
                buf.len(),
                0,
            )
        };
        usize::try_from(n).map_err(|_| io::Error::last_os_error())
    }
}

impl AsFd for PacketSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

fn socklen<T>() -> libc::socklen_t {
    libc::socklen_t::try_from(size_of::<T>()).unwrap_or(0)
}
