//! VRRP v2 `AH` authentication as Keepalived does it (RFC 2338's IPsec AH,
//! RFC 2402, with HMAC-MD5-96): pure, bytes in and out, never panics on
//! input.
//!
//! ```text
//!  IPv4 header (20 bytes, protocol 51, TOS 0xc0, TTL 255, our own ID)
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Next Hdr 112  | Payload Len 4 |          Reserved 0           |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |            SPI = the sender's IPv4 source address             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                 Sequence Number (1, 2, 3, ...)                |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |         ICV: HMAC-MD5 truncated to 96 bits (12 bytes)         |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!  VRRP v2 message, auth type 2, its 8 auth bytes zero
//! ```
//!
//! The ICV is keyed with the password zero-padded to exactly 8 bytes (what
//! Keepalived keeps of `auth_pass`) and covers the IP header with its
//! mutable fields zeroed (TOS, fragment offset and flags, header checksum,
//! and the TTL only when unicast peers are configured, as Keepalived does),
//! the AH header with a zero ICV, and the VRRP message. The IP ID is
//! covered, so the sender writes the whole IP header itself (IP_HDRINCL)
//! with a non-zero ID (the kernel replaces a zero one).
//!
//! Anti-replay is Keepalived's: ONE counter per instance, shared by both
//! directions. A received sequence number must be above it and becomes it;
//! each advert sent carries it plus one. So the new master of a pair goes
//! on from the last number it heard, and its peer (which heard that too)
//! accepts it. Checked against adverts captured from Keepalived 2.2.7.

use std::net::Ipv4Addr;

use hmac::{Hmac, Mac};
use md5::Md5;

use super::packet::{decode_ipv4, DecodeError, IPPROTO_VRRP, VRRP_TTL};

/// IP protocol number of AH (shared with init's firewall).
pub use lbd_config::vrrp::IPPROTO_AH;
/// The AH header with its 96-bit ICV.
pub const AH_LEN: usize = 24;
/// HMAC-MD5-96.
const ICV_LEN: usize = 12;
/// Where the ICV starts in the AH header.
const ICV_AT: usize = 12;
/// AH length in 32-bit words minus 2 (RFC 2402 2.2).
const AH_PAYLOAD_LEN: u8 = 4;
/// The IP header we send (no options).
const IPV4_HEADER_LEN: usize = 20;
/// Internetwork control, as Keepalived sends it.
const TOS_NETWORK_CONTROL: u8 = 0xc0;
/// Keepalived keys the HMAC with exactly this many bytes of the password.
pub const AH_KEY_LEN: usize = 8;

type HmacMd5 = Hmac<Md5>;

/// The HMAC key: `auth_pass` zero-padded (or cut) to 8 bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct AhKey([u8; AH_KEY_LEN]);

impl AhKey {
    pub fn new(password: &str) -> Self {
        let mut key = [0u8; AH_KEY_LEN];
        for (k, p) in key.iter_mut().zip(password.as_bytes()) {
            *k = *p;
        }
        Self(key)
    }
}

impl std::fmt::Debug for AhKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AhKey(..)")
    }
}

/// Why a datagram is not a valid AH advert.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AhError {
    #[error("AH advert: {0}")]
    Ipv4(#[from] DecodeError),
    #[error("IP protocol {0} is not AH (51)")]
    NotAh(u8),
    #[error("AH advert of {len} bytes after the IP header is shorter than the AH header")]
    TooShort { len: usize },
    #[error("AH next header {0} is not VRRP (112)")]
    NextHeader(u8),
    #[error("AH payload length {0} is not 4 (HMAC-MD5-96)")]
    PayloadLen(u8),
    #[error("AH ICV from {src} does not match: another auth_pass, or the advert was altered")]
    Icv { src: Ipv4Addr },
    #[error("AH SPI {spi:#010x} is not the sender's address {src}")]
    Spi { spi: u32, src: Ipv4Addr },
    #[error("AH advert of {0} bytes does not fit an IPv4 datagram")]
    TooLong(usize),
    #[error(
        "AH sequence number {seq} from {src} is not above {last} already seen: a replayed \
         advert (Keepalived's anti-replay)"
    )]
    Replayed { src: Ipv4Addr, seq: u32, last: u32 },
}

/// Keepalived's per-instance sequence counter (see the module doc).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AhCounter {
    seq: u32,
}

impl AhCounter {
    /// The number for the next advert sent.
    pub fn next_send(&mut self) -> u32 {
        // 2^32 adverts at 1 s (v2's minimum) is 136 years: saturate.
        self.seq = self.seq.saturating_add(1);
        self.seq
    }

    /// Accepts `seq` from `src` only above every number seen or sent.
    pub fn check(&mut self, src: Ipv4Addr, seq: u32) -> Result<(), AhError> {
        if seq > self.seq {
            self.seq = seq;
            Ok(())
        } else {
            Err(AhError::Replayed {
                src,
                seq,
                last: self.seq,
            })
        }
    }
}

/// One AH advert to send.
#[derive(Debug, Clone, Copy)]
pub struct Seal<'a> {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    /// Non-zero: the kernel replaces a zero ID, which the ICV covers.
    pub ip_id: u16,
    pub seq: u32,
    /// Unicast peers configured (the TTL is then left out of the ICV).
    pub unicast: bool,
    /// The encoded VRRP v2 message (auth type 2).
    pub vrrp: &'a [u8],
}

/// An AH advert checked and stripped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    pub src: Ipv4Addr,
    pub seq: u32,
    /// The same datagram without the AH header: IPv4 header with protocol
    /// 112 and the total length fixed, then the VRRP message.
    pub datagram: Vec<u8>,
}

/// Internet checksum of an IPv4 header.
fn header_checksum(header: &[u8]) -> u16 {
    let mut sum: u32 = header
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !u16::try_from(sum).unwrap_or(0xffff)
}

/// The ICV over header (mutable fields zeroed here), AH (ICV zeroed here)
/// and the VRRP message.
fn icv(key: &AhKey, header: &[u8], ah: &[u8], vrrp: &[u8], unicast: bool) -> HmacMd5 {
    let mut ip = header.to_vec();
    ip[1] = 0; // TOS
    ip[6] = 0; // flags + fragment offset
    ip[7] = 0;
    ip[10] = 0; // header checksum
    ip[11] = 0;
    if unicast {
        ip[8] = 0; // TTL
    }
    let mut ah = ah.to_vec();
    ah[ICV_AT..ICV_AT + ICV_LEN].fill(0);
    let mut mac = HmacMd5::new_from_slice(&key.0).expect("HMAC takes keys of any length");
    mac.update(&ip);
    mac.update(&ah);
    mac.update(vrrp);
    mac
}

/// Builds the whole IPv4 datagram of an AH advert.
pub fn seal(key: &AhKey, s: &Seal<'_>) -> Result<Vec<u8>, AhError> {
    let total = IPV4_HEADER_LEN + AH_LEN + s.vrrp.len();
    let total_u16 = u16::try_from(total).map_err(|_| AhError::TooLong(total))?;
    let mut header = Vec::with_capacity(IPV4_HEADER_LEN);
    header.extend_from_slice(&[0x45, TOS_NETWORK_CONTROL]);
    header.extend_from_slice(&total_u16.to_be_bytes());
    header.extend_from_slice(&s.ip_id.to_be_bytes());
    header.extend_from_slice(&[0, 0, VRRP_TTL, IPPROTO_AH, 0, 0]);
    header.extend_from_slice(&s.src.octets());
    header.extend_from_slice(&s.dst.octets());
    let sum = header_checksum(&header);
    header[10..12].copy_from_slice(&sum.to_be_bytes());

    let mut ah = Vec::with_capacity(AH_LEN);
    ah.extend_from_slice(&[IPPROTO_VRRP, AH_PAYLOAD_LEN, 0, 0]);
    ah.extend_from_slice(&s.src.octets());
    ah.extend_from_slice(&s.seq.to_be_bytes());
    ah.extend_from_slice(&[0; ICV_LEN]);
    let digest = icv(key, &header, &ah, s.vrrp, s.unicast)
        .finalize()
        .into_bytes();
    ah[ICV_AT..].copy_from_slice(&digest[..ICV_LEN]);

    let mut out = header;
    out.extend_from_slice(&ah);
    out.extend_from_slice(s.vrrp);
    Ok(out)
}

/// Checks an AH advert (IPv4 header included): structure, ICV (constant
/// time) and SPI. The sequence number is the caller's check
/// ([`AhCounter::check`]) once the advert is known to be for the instance.
pub fn open(key: &AhKey, datagram: &[u8], unicast: bool) -> Result<Opened, AhError> {
    let (ip, payload) = decode_ipv4(datagram)?;
    if ip.protocol != IPPROTO_AH {
        return Err(AhError::NotAh(ip.protocol));
    }
    // decode_ipv4 checked the header length against the datagram.
    let ihl = usize::from(datagram[0] & 0x0f) * 4;
    let header = datagram.get(..ihl).ok_or(AhError::TooShort { len: 0 })?;
    let (ah, vrrp) = payload
        .split_at_checked(AH_LEN)
        .ok_or(AhError::TooShort { len: payload.len() })?;
    if ah[0] != IPPROTO_VRRP {
        return Err(AhError::NextHeader(ah[0]));
    }
    if ah[1] != AH_PAYLOAD_LEN {
        return Err(AhError::PayloadLen(ah[1]));
    }
    let mac = icv(key, header, ah, vrrp, unicast);
    mac.verify_truncated_left(&ah[ICV_AT..ICV_AT + ICV_LEN])
        .map_err(|_| AhError::Icv { src: ip.src })?;
    let spi = u32::from_be_bytes([ah[4], ah[5], ah[6], ah[7]]);
    if spi != u32::from(ip.src) {
        return Err(AhError::Spi { spi, src: ip.src });
    }
    let seq = u32::from_be_bytes([ah[8], ah[9], ah[10], ah[11]]);
    let mut plain = header.to_vec();
    let total = ihl + vrrp.len();
    let total_u16 = u16::try_from(total).map_err(|_| AhError::TooLong(total))?;
    plain[2..4].copy_from_slice(&total_u16.to_be_bytes());
    plain[9] = IPPROTO_VRRP;
    plain.extend_from_slice(vrrp);
    Ok(Opened {
        src: ip.src,
        seq,
        datagram: plain,
    })
}

#[cfg(test)]
#[path = "ah_tests.rs"]
mod tests;
