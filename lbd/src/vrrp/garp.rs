//! Gratuitous ARP for IPv4 VIPs: the frame (pure) and an AF_PACKET socket
//! that sends it on one interface.
//!
//! ```text
//! Ethernet: dst ff:ff:ff:ff:ff:ff | src our MAC | type 0x0806
//! ARP:      htype 1 | ptype 0x0800 | hlen 6 | plen 4 | oper 1 (request)
//!           sha our MAC | spa VIP | tha ff:ff:ff:ff:ff:ff | tpa VIP
//! ```
//! A request with sender = target = VIP is what Keepalived sends (and what
//! switches and hosts that ignore unsolicited replies still learn from).
//! The VM's own MAC is used: a virtual MAC would need forged transmits on
//! vSphere port groups.

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const ETH_P_ARP: u16 = 0x0806;
const BROADCAST: [u8; 6] = [0xff; 6];
/// Length of the frame before the kernel pads it to 60 bytes.
pub const FRAME_LEN: usize = 42;

/// One gratuitous ARP frame for `vip` from `mac`.
pub fn frame(mac: [u8; 6], vip: Ipv4Addr) -> [u8; FRAME_LEN] {
    let mut f = [0u8; FRAME_LEN];
    f[0..6].copy_from_slice(&BROADCAST);
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&ETH_P_ARP.to_be_bytes());
    f[14..22].copy_from_slice(&[0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01]);
    f[22..28].copy_from_slice(&mac);
    f[28..32].copy_from_slice(&vip.octets());
    f[32..38].copy_from_slice(&BROADCAST);
    f[38..42].copy_from_slice(&vip.octets());
    f
}

/// An AF_PACKET socket bound to nothing; frames go to `ifindex`.
pub struct GarpSocket {
    fd: OwnedFd,
    ifindex: i32,
}

impl GarpSocket {
    pub fn open(ifindex: u32) -> io::Result<Self> {
        let ifindex = i32::try_from(ifindex).map_err(|_| io::Error::other("ifindex too large"))?;
        // SAFETY: plain socket(2) with constant arguments; no pointers.
        let fd = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                i32::from(ETH_P_ARP.to_be()),
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd was just returned by socket(2), is valid and owned by
        // nobody else; OwnedFd closes it once.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Self { fd, ifindex })
    }

    /// Sends one Ethernet frame (a gratuitous ARP, or an unsolicited
    /// neighbour advertisement from [`super::ndisc`]) out of the interface;
    /// its own header gives the destination and the protocol.
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        let (Some(dst), Some(ethertype)) = (frame.get(0..6), frame.get(12..14)) else {
            return Err(io::Error::other("frame shorter than an Ethernet header"));
        };
        // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = u16::try_from(libc::AF_PACKET).unwrap_or_default();
        addr.sll_protocol = u16::from_ne_bytes([ethertype[0], ethertype[1]]);
        addr.sll_ifindex = self.ifindex;
        addr.sll_halen = 6;
        addr.sll_addr[..6].copy_from_slice(dst);
        let len = u32::try_from(std::mem::size_of::<libc::sockaddr_ll>()).unwrap_or(u32::MAX);
        // SAFETY: `frame` is a live slice for the call's duration; `addr`
        // is a local sockaddr_ll and `len` its exact size; the fd is ours.
        let n = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                0,
                std::ptr::from_ref(&addr).cast(),
                len,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Worked out from RFC 826's layout for MAC 02:00:00:00:00:01 and VIP
    /// 10.0.0.100.
    #[test]
    fn garp_frame_bytes() {
        let expected: [u8; FRAME_LEN] = [
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06,
            0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01,
            0x0a, 0x00, 0x00, 0x64, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0a, 0x00, 0x00, 0x64,
        ];
        assert_eq!(
            frame([2, 0, 0, 0, 0, 1], Ipv4Addr::new(10, 0, 0, 100)),
            expected
        );
    }
}
