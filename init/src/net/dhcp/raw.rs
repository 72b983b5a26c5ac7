//! IPv4 + UDP framing for DHCP on a packet socket, before the interface has
//! an address (the kernel's UDP stack cannot send from 0.0.0.0 or receive
//! for an address it does not have yet).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-------+-------+---------------+-------------------------------+
//! |Ver=4  |IHL=5  |   TOS = 0     |         Total Length          |
//! +-------+-------+---------------+-----+-------------------------+
//! |       Identification = 0      |Flags|  Fragment Offset = 0    |
//! +---------------+---------------+-----+-------------------------+
//! |   TTL = 64    | Protocol = 17 |        Header Checksum        |
//! +---------------+---------------+-------------------------------+
//! |                Source Address (0.0.0.0 or ours)               |
//! +---------------------------------------------------------------+
//! |             Destination Address (255.255.255.255)             |
//! +-------------------------------+-------------------------------+
//! |     Source Port = 68          |    Destination Port = 67      |
//! +-------------------------------+-------------------------------+
//! |          UDP Length           |         UDP Checksum          |
//! +-------------------------------+-------------------------------+
//! |                      DHCP message ...                         |
//! ```

use std::net::Ipv4Addr;

/// DHCP client port.
pub const CLIENT_PORT: u16 = 68;
/// DHCP server port.
pub const SERVER_PORT: u16 = 67;
const IPV4_HEADER_LEN: usize = 20;
const UDP_HEADER_LEN: usize = 8;
const PROTO_UDP: u8 = 17;
const TTL: u8 = 64;

/// Why a received frame is not a DHCP reply for us.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("shorter than its headers ({len} bytes)")]
    Short { len: usize },
    #[error("not IPv4 with a valid header length")]
    NotIpv4,
    #[error("IPv4 header checksum is wrong")]
    Checksum,
    #[error("not UDP (protocol {proto})")]
    NotUdp { proto: u8 },
    #[error("a fragment")]
    Fragment,
    #[error("UDP to port {port}, not {CLIENT_PORT}")]
    WrongPort { port: u16 },
    #[error("UDP length {udp_len} does not fit the IPv4 packet")]
    BadLength { udp_len: usize },
}

/// Wraps a DHCP message in IPv4 and UDP headers, 68 -> 67.
pub fn encode(source: Ipv4Addr, destination: Ipv4Addr, payload: &[u8]) -> Vec<u8> {
    let udp_len = UDP_HEADER_LEN + payload.len();
    let total = IPV4_HEADER_LEN + udp_len;
    let mut p = Vec::with_capacity(total);
    p.extend_from_slice(&[0x45, 0]);
    p.extend_from_slice(&u16::try_from(total).unwrap_or(u16::MAX).to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 0, TTL, PROTO_UDP, 0, 0]);
    p.extend_from_slice(&source.octets());
    p.extend_from_slice(&destination.octets());
    let sum = checksum(0, &p[..IPV4_HEADER_LEN]);
    p[10..12].copy_from_slice(&sum.to_be_bytes());

    let udp_len16 = u16::try_from(udp_len).unwrap_or(u16::MAX);
    p.extend_from_slice(&CLIENT_PORT.to_be_bytes());
    p.extend_from_slice(&SERVER_PORT.to_be_bytes());
    p.extend_from_slice(&udp_len16.to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(payload);
    // Pseudo-header: source, destination, zero, protocol, UDP length.
    let mut pseudo = Vec::with_capacity(12);
    pseudo.extend_from_slice(&source.octets());
    pseudo.extend_from_slice(&destination.octets());
    pseudo.extend_from_slice(&[0, PROTO_UDP]);
    pseudo.extend_from_slice(&udp_len16.to_be_bytes());
    let partial = sum_words(0, &pseudo);
    let mut udp_sum = checksum(partial, &p[IPV4_HEADER_LEN..]);
    if udp_sum == 0 {
        // RFC 768: a computed zero is sent as all ones.
        udp_sum = 0xffff;
    }
    p[IPV4_HEADER_LEN + 6..IPV4_HEADER_LEN + 8].copy_from_slice(&udp_sum.to_be_bytes());
    p
}

/// The UDP payload of an IPv4 packet to port 68. The UDP checksum is not
/// checked: on veth and virtio the kernel may hand a packet socket frames
/// whose checksum is left to offload; the DHCP layer checks xid and MAC.
pub fn decode(packet: &[u8]) -> Result<&[u8], DecodeError> {
    if packet.len() < IPV4_HEADER_LEN + UDP_HEADER_LEN {
        return Err(DecodeError::Short { len: packet.len() });
    }
    let ihl = usize::from(packet[0] & 0x0f) * 4;
    if packet[0] >> 4 != 4 || ihl < IPV4_HEADER_LEN || packet.len() < ihl + UDP_HEADER_LEN {
        return Err(DecodeError::NotIpv4);
    }
    if checksum(0, &packet[..ihl]) != 0 {
        return Err(DecodeError::Checksum);
    }
    if packet[9] != PROTO_UDP {
        return Err(DecodeError::NotUdp { proto: packet[9] });
    }
    if u16::from_be_bytes([packet[6], packet[7]]) & 0x3fff != 0 {
        return Err(DecodeError::Fragment);
    }
    let total = usize::from(u16::from_be_bytes([packet[2], packet[3]])).min(packet.len());
    let udp = &packet[ihl..total.max(ihl)];
    if udp.len() < UDP_HEADER_LEN {
        return Err(DecodeError::Short { len: packet.len() });
    }
    let port = u16::from_be_bytes([udp[2], udp[3]]);
    if port != CLIENT_PORT {
        return Err(DecodeError::WrongPort { port });
    }
    let udp_len = usize::from(u16::from_be_bytes([udp[4], udp[5]]));
    if udp_len < UDP_HEADER_LEN || udp_len > udp.len() {
        return Err(DecodeError::BadLength { udp_len });
    }
    Ok(&udp[UDP_HEADER_LEN..udp_len])
}

fn sum_words(mut sum: u32, bytes: &[u8]) -> u32 {
    let mut chunks = bytes.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    sum
}

/// RFC 1071 Internet checksum over `bytes`, starting from `partial`.
fn checksum(partial: u32, bytes: &[u8]) -> u16 {
    let mut sum = sum_words(partial, bytes);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !u16::try_from(sum).unwrap_or(u16::MAX)
}

/// One classic BPF instruction (`struct sock_filter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BpfInsn {
    /// Opcode.
    pub code: u16,
    /// Jump offset if true.
    pub jt: u8,
    /// Jump offset if false.
    pub jf: u8,
    /// Constant.
    pub k: u32,
}

/// The socket filter: keep unfragmented UDP to port 68, drop the rest in
/// the kernel (as udhcpc does), so init is not woken by other traffic.
/// Offsets are from the IPv4 header (a `SOCK_DGRAM` packet socket).
pub fn filter() -> [BpfInsn; 9] {
    const LD_B_ABS: u16 = 0x30;
    const LD_H_ABS: u16 = 0x28;
    const LD_H_IND: u16 = 0x48;
    const LDX_B_MSH: u16 = 0xb1;
    const JEQ_K: u16 = 0x15;
    const JSET_K: u16 = 0x45;
    const RET_K: u16 = 0x06;
    let i = |code, jt, jf, k| BpfInsn { code, jt, jf, k };
    [
        i(LD_B_ABS, 0, 0, 9),                   // 0: A = IPv4 protocol
        i(JEQ_K, 0, 6, u32::from(PROTO_UDP)),   // 1: not UDP -> 8
        i(LD_H_ABS, 0, 0, 6),                   // 2: A = flags + fragment offset
        i(JSET_K, 4, 0, 0x1fff),                // 3: a fragment -> 8
        i(LDX_B_MSH, 0, 0, 0),                  // 4: X = IHL * 4
        i(LD_H_IND, 0, 0, 2),                   // 5: A = UDP destination port
        i(JEQ_K, 0, 1, u32::from(CLIENT_PORT)), // 6: not 68 -> 8
        i(RET_K, 0, 0, 0x0004_0000),            // 7: keep the whole packet
        i(RET_K, 0, 0, 0),                      // 8: drop
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_then_decode() {
        let payload = b"dhcp message";
        let mut p = encode(Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST, payload);
        assert_eq!(p.len(), 20 + 8 + payload.len());
        assert_eq!(checksum(0, &p[..20]), 0);
        // Swap ports so the packet is "to" port 68, fixing nothing else.
        p.swap(20, 22);
        p.swap(21, 23);
        assert_eq!(decode(&p), Ok(&payload[..]));
    }

    #[test]
    fn udp_checksum_verifies() {
        // Summing the pseudo-header and the UDP part with the checksum in
        // place must give 0.
        let p = encode(Ipv4Addr::new(192, 0, 2, 10), Ipv4Addr::BROADCAST, b"abc");
        let mut pseudo = Vec::new();
        pseudo.extend_from_slice(&p[12..20]);
        pseudo.extend_from_slice(&[0, 17, 0, 11]);
        assert_eq!(checksum(sum_words(0, &pseudo), &p[20..]), 0);
    }

    #[test]
    fn decode_errors() {
        let good = {
            let mut p = encode(Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST, b"x");
            p.swap(20, 22);
            p.swap(21, 23);
            p
        };
        assert_eq!(decode(&good[..10]), Err(DecodeError::Short { len: 10 }));
        let mut v6 = good.clone();
        v6[0] = 0x65;
        assert_eq!(decode(&v6), Err(DecodeError::NotIpv4));
        let mut bad_sum = good.clone();
        bad_sum[8] = 1;
        assert_eq!(decode(&bad_sum), Err(DecodeError::Checksum));
        let to_server = encode(Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST, b"x");
        assert_eq!(decode(&to_server), Err(DecodeError::WrongPort { port: 67 }));
        let mut long = good.clone();
        long[24..26].copy_from_slice(&100u16.to_be_bytes());
        assert_eq!(decode(&long), Err(DecodeError::BadLength { udp_len: 100 }));
    }

    #[test]
    fn filter_jumps_land_on_returns() {
        let f = filter();
        for (n, insn) in f.iter().enumerate() {
            if insn.code == 0x15 || insn.code == 0x45 {
                for off in [insn.jt, insn.jf] {
                    let target = n + 1 + usize::from(off);
                    assert!(target < f.len(), "insn {n} jumps past the end");
                }
            }
        }
        assert_eq!(f[8].k, 0, "last instruction drops");
        // Every drop branch lands on the last instruction.
        assert_eq!(1 + 1 + usize::from(f[1].jf), 8);
        assert_eq!(3 + 1 + usize::from(f[3].jt), 8);
        assert_eq!(6 + 1 + usize::from(f[6].jf), 8);
    }
}
