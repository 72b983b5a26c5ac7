//! The raw IPv6 socket for protocol 112 (VRRP v3 over IPv6, RFC 5798
//! 5.1.2): hop limit 255 on send (unicast and multicast), bound to the
//! interface and to our source address, joined to ff02::12 when no peers
//! are given, multicast loopback off.
//!
//! Raw IPv6 sockets hand over the payload only (RFC 3542 3): the hop limit
//! and the destination come as ancillary data (`IPV6_RECVHOPLIMIT`,
//! `IPV6_RECVPKTINFO`), the source as the message's name. The checks on
//! them are [`super::receive6`]'s.

use std::io;
use std::mem::MaybeUninit;
use std::net::{Ipv6Addr, SocketAddrV6};

use socket2::{Domain, MaybeUninitSlice, MsgHdrMut, Protocol, SockAddr, Socket, Type};
use tokio::io::unix::AsyncFd;

use super::packet::{IPPROTO_VRRP, VRRP_TTL};

/// VRRP's IPv6 multicast group (RFC 5798 5.1.2.2).
pub use lbd_config::vrrp::VRRP_GROUP_V6;
/// An IPv6 payload without jumbograms is at most this long.
const MAX_PAYLOAD: usize = 65_535;
/// Room for a hop-limit and a packet-info message with their headers.
const CONTROL_LEN: usize = 128;

/// One received VRRP message and what the kernel told about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram6 {
    pub src: Ipv6Addr,
    /// From `IPV6_PKTINFO`; `None` if the kernel did not say.
    pub dst: Option<Ipv6Addr>,
    /// From `IPV6_HOPLIMIT`; `None` if the kernel did not say.
    pub hop_limit: Option<u8>,
    /// The VRRP message (no IP header).
    pub payload: Vec<u8>,
}

/// Hop limit and destination read from a control buffer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ancillary {
    pub hop_limit: Option<u8>,
    pub dst: Option<Ipv6Addr>,
}

/// Walks the `cmsghdr`s of a control buffer as recvmsg(2) fills it: each
/// is `{ size_t len; int level; int type; }`, its data, then padding to
/// the alignment of `size_t`. Bytes it cannot make sense of end the walk.
pub fn parse_ancillary(control: &[u8]) -> Ancillary {
    const WORD: usize = std::mem::size_of::<usize>();
    let header = std::mem::size_of::<libc::cmsghdr>();
    let int = |b: &[u8]| {
        b.get(..4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(i32::from_ne_bytes)
    };
    let mut out = Ancillary::default();
    let mut at = 0;
    while let Some(hdr) = control.get(at..at + header) {
        let Some(len) = hdr
            .get(..WORD)
            .and_then(|b| <[u8; WORD]>::try_from(b).ok())
            .map(usize::from_ne_bytes)
        else {
            break;
        };
        let (Some(level), Some(kind)) = (int(&hdr[WORD..]), int(&hdr[WORD + 4..])) else {
            break;
        };
        if len < header {
            break;
        }
        let Some(data) = control.get(at + header..at + len) else {
            break;
        };
        if level == libc::IPPROTO_IPV6 {
            if kind == libc::IPV6_HOPLIMIT {
                out.hop_limit = int(data).and_then(|h| u8::try_from(h).ok());
            } else if kind == libc::IPV6_PKTINFO {
                out.dst = data
                    .get(..16)
                    .and_then(|a| <[u8; 16]>::try_from(a).ok())
                    .map(Ipv6Addr::from);
            }
        }
        at += len.div_ceil(WORD) * WORD;
    }
    out
}

/// Turns on one boolean IPv6 socket option socket2 has no setter for.
fn enable_v6(socket: &Socket, option: libc::c_int) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let on: libc::c_int = 1;
    let len = libc::socklen_t::try_from(std::mem::size_of::<libc::c_int>())
        .map_err(|_| io::Error::other("option length"))?;
    // SAFETY: `on` is a live c_int for the duration of the call and `len`
    // is its size; the fd belongs to `socket`, which outlives the call.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IPV6,
            option,
            std::ptr::from_ref(&on).cast(),
            len,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Views an initialised byte buffer as the `MaybeUninit` one recvmsg
/// takes.
fn as_uninit(buf: &mut [u8]) -> &mut [MaybeUninit<u8>] {
    // SAFETY: MaybeUninit<u8> has the layout of u8, and recvmsg only ever
    // writes initialised bytes into it, so `buf` stays valid as `[u8]`.
    unsafe { &mut *(std::ptr::from_mut(buf) as *mut [MaybeUninit<u8>]) }
}

pub struct Vrrp6Socket {
    fd: AsyncFd<Socket>,
    ifindex: u32,
    buf: Vec<u8>,
    control: Vec<u8>,
}

impl Vrrp6Socket {
    /// Opens the socket on `interface` (index `ifindex`), sending from
    /// `src` (the interface's link-local address, or unicast_src_ip);
    /// joins ff02::12 when `multicast`. Fails with `EADDRNOTAVAIL` while
    /// `src` is not (yet) a usable address of the interface (duplicate
    /// address detection still running).
    pub fn open(interface: &str, ifindex: u32, src: Ipv6Addr, multicast: bool) -> io::Result<Self> {
        let socket = Socket::new(
            Domain::IPV6,
            Type::RAW,
            Some(Protocol::from(i32::from(IPPROTO_VRRP))),
        )?;
        socket.set_nonblocking(true)?;
        socket.bind_device(Some(interface.as_bytes()))?;
        socket.set_unicast_hops_v6(u32::from(VRRP_TTL))?;
        socket.set_multicast_hops_v6(u32::from(VRRP_TTL))?;
        socket.set_multicast_loop_v6(false)?;
        socket.set_multicast_if_v6(ifindex)?;
        socket.set_recv_hoplimit_v6(true)?;
        enable_v6(&socket, libc::IPV6_RECVPKTINFO)?;
        // Binding gives adverts their source (the checksum covers it); a
        // bound raw IPv6 socket still gets the groups it joined.
        socket.bind(&SockAddr::from(SocketAddrV6::new(src, 0, 0, ifindex)))?;
        if multicast {
            socket.join_multicast_v6(&VRRP_GROUP_V6, ifindex)?;
        }
        // SAFETY: `socket` owns an open fd and moves into the AsyncFd,
        // which keeps it (and so the same fd) until it is dropped.
        let fd = unsafe { AsyncFd::register(socket) }?;
        Ok(Self {
            fd,
            ifindex,
            buf: vec![0; MAX_PAYLOAD],
            control: vec![0; CONTROL_LEN],
        })
    }

    /// Waits for the next message, with its addresses and hop limit.
    pub async fn recv(&mut self) -> io::Result<Datagram6> {
        loop {
            let mut guard = self.fd.readable().await?;
            let (buf, control) = (&mut self.buf, &mut self.control);
            let received = guard.try_io(|inner| {
                let mut name = SockAddr::from(SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, 0, 0, 0));
                let mut bufs = [MaybeUninitSlice::new(as_uninit(buf))];
                let mut msg = MsgHdrMut::new()
                    .with_addr(&mut name)
                    .with_buffers(&mut bufs)
                    .with_control(as_uninit(control));
                let n = inner.get_ref().recvmsg(&mut msg, 0)?;
                let control_len = msg.control_len();
                Ok((n, control_len, name.as_socket_ipv6()))
            });
            match received {
                Ok(Ok((n, control_len, name))) => {
                    let Some(from) = name else {
                        return Err(io::Error::other("VRRP message without an IPv6 source"));
                    };
                    let anc = parse_ancillary(&self.control[..control_len.min(CONTROL_LEN)]);
                    return Ok(Datagram6 {
                        src: *from.ip(),
                        dst: anc.dst,
                        hop_limit: anc.hop_limit,
                        payload: self.buf[..n.min(MAX_PAYLOAD)].to_vec(),
                    });
                }
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
    }

    /// Sends one VRRP message to `dst`; the kernel adds the IPv6 header.
    pub fn send(&self, dst: Ipv6Addr, msg: &[u8]) -> io::Result<()> {
        self.fd
            .get_ref()
            .send_to(
                msg,
                &SockAddr::from(SocketAddrV6::new(dst, 0, 0, self.ifindex)),
            )
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A control buffer as Linux x86_64 fills it: a hop-limit message
    /// (len 20, padded to 24) then a packet-info one (len 36, padded to 40).
    fn control(hop: i32, dst: Ipv6Addr) -> Vec<u8> {
        let mut c = Vec::new();
        let header = |c: &mut Vec<u8>, len: usize, kind: i32| {
            c.extend_from_slice(&len.to_ne_bytes());
            c.extend_from_slice(&libc::IPPROTO_IPV6.to_ne_bytes());
            c.extend_from_slice(&kind.to_ne_bytes());
        };
        let hdr = std::mem::size_of::<libc::cmsghdr>();
        header(&mut c, hdr + 4, libc::IPV6_HOPLIMIT);
        c.extend_from_slice(&hop.to_ne_bytes());
        while c.len() % std::mem::size_of::<usize>() != 0 {
            c.push(0);
        }
        header(&mut c, hdr + 20, libc::IPV6_PKTINFO);
        c.extend_from_slice(&dst.octets());
        c.extend_from_slice(&7u32.to_ne_bytes());
        while c.len() % std::mem::size_of::<usize>() != 0 {
            c.push(0);
        }
        c
    }

    #[test]
    fn reads_hop_limit_and_destination() {
        assert_eq!(
            parse_ancillary(&control(255, VRRP_GROUP_V6)),
            Ancillary {
                hop_limit: Some(255),
                dst: Some(VRRP_GROUP_V6)
            }
        );
        assert_eq!(
            parse_ancillary(&control(64, VRRP_GROUP_V6)).hop_limit,
            Some(64)
        );
    }

    #[test]
    fn survives_truncated_and_empty_control() {
        assert_eq!(parse_ancillary(&[]), Ancillary::default());
        let c = control(255, VRRP_GROUP_V6);
        for cut in 0..c.len() {
            let got = parse_ancillary(&c[..cut]);
            assert!(got.dst.is_none() || cut >= c.len() - 4);
        }
        // A length shorter than the header ends the walk.
        let mut bad = c.clone();
        bad[..std::mem::size_of::<usize>()].fill(0);
        assert_eq!(parse_ancillary(&bad), Ancillary::default());
    }
}
