//! Unsolicited neighbour advertisements for IPv6 VIPs (RFC 4861 4.4,
//! 7.2.6): the frame, pure; sent over [`super::garp::GarpSocket`]'s
//! AF_PACKET socket like the gratuitous ARPs.
//!
//! ```text
//! Ethernet: dst 33:33:00:00:00:01 | src our MAC | type 0x86dd
//! IPv6:     version 6 | payload length 32 | next header 58 | hop limit 255
//!           src our link-local address | dst ff02::1 (all nodes)
//! ICMPv6:   type 136 | code 0 | checksum (over the IPv6 pseudo-header)
//!           R=0 S=0 O=1, 29 reserved bits | target = the VIP
//!           option 2 (target link-layer address), length 1 (8 bytes),
//!           our MAC
//! ```
//! Override set: neighbours replace the MAC they cached for the VIP (the
//! old master's). Solicited clear: nobody asked. Router clear: lbd is not
//! a router. Hop limit 255, or receivers drop it (RFC 4861 7.1.2).

use std::net::Ipv6Addr;

use super::packet::checksum;

/// The all-nodes group the advertisement goes to.
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
/// Its Ethernet address (RFC 2464 7: 33:33 and the group's last 32 bits).
const ALL_NODES_MAC: [u8; 6] = [0x33, 0x33, 0, 0, 0, 1];
const ETH_P_IPV6: u16 = 0x86dd;
const IPPROTO_ICMPV6: u8 = 58;
const NEIGHBOR_ADVERTISEMENT: u8 = 136;
/// R (0x80) and S (0x40) clear, O (0x20) set.
const FLAG_OVERRIDE: u8 = 0x20;
const OPTION_TARGET_LL_ADDR: u8 = 2;
/// Required on neighbour discovery messages (RFC 4861 7.1.2).
const HOP_LIMIT: u8 = 255;
const ETH_LEN: usize = 14;
const IPV6_LEN: usize = 40;
/// Type, code, checksum, flags, target, then the 8-byte option.
const ICMP_LEN: usize = 4 + 4 + 16 + 8;
/// Length of the whole frame.
pub const FRAME_LEN: usize = ETH_LEN + IPV6_LEN + ICMP_LEN;

/// One unsolicited neighbour advertisement for `target` (a VIP), from
/// `mac` and the IPv6 address `src` (the interface's link-local one).
pub fn frame(mac: [u8; 6], src: Ipv6Addr, target: Ipv6Addr) -> [u8; FRAME_LEN] {
    let mut icmp = [0u8; ICMP_LEN];
    icmp[0] = NEIGHBOR_ADVERTISEMENT;
    icmp[4] = FLAG_OVERRIDE;
    icmp[8..24].copy_from_slice(&target.octets());
    icmp[24] = OPTION_TARGET_LL_ADDR;
    icmp[25] = 1;
    icmp[26..32].copy_from_slice(&mac);
    // Pseudo-header (RFC 8200 8.1): src, dst, 32-bit length, 3 zero bytes,
    // next header; then the message with its checksum field zero.
    let mut summed = Vec::with_capacity(IPV6_LEN + ICMP_LEN);
    summed.extend_from_slice(&src.octets());
    summed.extend_from_slice(&ALL_NODES.octets());
    summed.extend_from_slice(&u32::try_from(ICMP_LEN).unwrap_or(0).to_be_bytes());
    summed.extend_from_slice(&[0, 0, 0, IPPROTO_ICMPV6]);
    summed.extend_from_slice(&icmp);
    icmp[2..4].copy_from_slice(&checksum(0, &summed).to_be_bytes());

    let mut f = [0u8; FRAME_LEN];
    f[0..6].copy_from_slice(&ALL_NODES_MAC);
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&ETH_P_IPV6.to_be_bytes());
    let ip = &mut f[ETH_LEN..ETH_LEN + IPV6_LEN];
    ip[0] = 0x60;
    ip[4..6].copy_from_slice(&u16::try_from(ICMP_LEN).unwrap_or(0).to_be_bytes());
    ip[6] = IPPROTO_ICMPV6;
    ip[7] = HOP_LIMIT;
    ip[8..24].copy_from_slice(&src.octets());
    ip[24..40].copy_from_slice(&ALL_NODES.octets());
    f[ETH_LEN + IPV6_LEN..].copy_from_slice(&icmp);
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Worked out field by field from RFC 4861 4.4 and RFC 2464 for MAC
    /// 02:00:00:00:00:01, source fe80::1 and VIP fd00::100. Checksum: the
    /// 16-bit one's complement sum of the pseudo-header (fe80::1, ff02::1,
    /// length 32, next header 58) and the message is 0xa7e3, so 0x581c.
    #[test]
    fn na_frame_bytes() {
        let expected: [u8; FRAME_LEN] = [
            // Ethernet
            0x33, 0x33, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x86, 0xdd,
            // IPv6 header: version, payload length 32, ICMPv6, hop limit 255
            0x60, 0x00, 0x00, 0x00, 0x00, 0x20, 0x3a, 0xff, // source fe80::1
            0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x01, // destination ff02::1
            0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x01, // type 136, code 0, checksum, flags O
            0x88, 0x00, 0x58, 0x1c, 0x20, 0x00, 0x00, 0x00, // target fd00::100
            0xfd, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x01, 0x00, // option: target link-layer address, 8 bytes, the MAC
            0x02, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01,
        ];
        let got = frame(
            [2, 0, 0, 0, 0, 1],
            "fe80::1".parse().expect("ip"),
            "fd00::100".parse().expect("ip"),
        );
        assert_eq!(got, expected);
    }

    /// Summing the ICMPv6 message with the pseudo-header, checksum in
    /// place, gives zero for any target and source.
    #[test]
    fn na_checksum_verifies() {
        let src: Ipv6Addr = "fe80::a8bb:ccff:fedd:eeff".parse().expect("ip");
        let target: Ipv6Addr = "2001:db8::ffff:1".parse().expect("ip");
        let f = frame([0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff], src, target);
        let mut summed = Vec::new();
        summed.extend_from_slice(&f[22..54]);
        summed.extend_from_slice(&[0, 0, 0, 32, 0, 0, 0, 58]);
        summed.extend_from_slice(&f[54..]);
        assert_eq!(checksum(0, &summed), 0);
        assert_eq!(&f[62..78], &target.octets());
    }
}
