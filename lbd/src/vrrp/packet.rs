//! VRRP advertisement codec: v2 (RFC 3768, IPv4) and v3 (RFC 5798, IPv4
//! and IPv6). Pure: bytes in, [`Advert`] or a [`DecodeError`] out; decoding
//! never panics on any input.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Version| Type  | Virtual Rtr ID|   Priority    | Count IPvX Addr|
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! v2: |  Auth Type  |  Adver Int (s) |          Checksum           |
//! v3: |(rsvd) |  Max Adver Int (cs)  |          Checksum           |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                    IPvX Address(es) (Count of them)           |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! v2 only: |        Authentication Data (8 bytes, zero if none)    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! Checksums: v2 sums the VRRP message alone (RFC 3768 5.3.8); v3 prepends
//! the IP pseudo-header (RFC 5798 5.2.8): IPv4 src, dst, zero, protocol
//! 112, VRRP length; IPv6 src, dst, 32-bit length, 3 zero bytes, next
//! header 112.
//!
//! Authentication: v2 `PASS` (type 1) is the only type carried here, for
//! Keepalived interop. It is NOT security: the password travels in clear
//! in every advert and anyone on the segment can read and replay it. It
//! only keeps two misconfigured clusters with the same VRID apart. v3 has
//! no authentication field (RFC 5798 dropped it). AH (type 2) arrives as IP
//! protocol 51: [`super::ah`] checks and strips the AH header, then the
//! VRRP message inside decodes here with `Auth::Ah` (its 8 auth bytes are
//! zero; the ICV is in the AH header).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

/// IP protocol number of VRRP (shared with init's firewall).
pub use lbd_config::vrrp::IPPROTO_VRRP;
/// Adverts are sent with, and accepted only with, this TTL / hop limit.
pub const VRRP_TTL: u8 = 255;
/// Fixed header before the addresses.
pub const HEADER_LEN: usize = 8;
/// v2 authentication data after the addresses.
pub const V2_AUTH_LEN: usize = 8;
/// The only packet type (RFC 5798 5.2.2).
const TYPE_ADVERTISEMENT: u8 = 1;
/// v2 auth types (RFC 3768 5.3.6; 1 and 2 were dropped from RFC 3768 but
/// Keepalived still speaks 1).
const AUTH_NONE: u8 = 0;
const AUTH_PASS: u8 = 1;
const AUTH_AH: u8 = 2;
/// v3 Max Adver Int is 12 bits of centiseconds.
pub const V3_MAX_ADVERT_INT_CS: u16 = 0x0fff;

/// Protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Version {
    V2,
    V3,
}

/// v2 authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Auth {
    None,
    /// Type 1, "simple text password": the first 8 bytes, zero padded.
    Pass([u8; 8]),
    /// Type 2, IPsec AH as Keepalived does it (see [`super::ah`]).
    Ah,
}

impl Auth {
    /// Keepalived keeps the first 8 characters of `auth_pass`.
    pub fn pass(password: &str) -> Self {
        let mut data = [0u8; 8];
        for (d, s) in data.iter_mut().zip(password.as_bytes()) {
            *d = *s;
        }
        Auth::Pass(data)
    }
}

/// One decoded advertisement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Advert {
    pub version: Version,
    pub vrid: u8,
    pub priority: u8,
    /// v2: whole seconds x 100 on the wire as seconds; v3: centiseconds.
    pub advert_int_cs: u16,
    /// Always `Auth::None` in v3.
    pub auth: Auth,
    /// All IPv4 (v2, v3 over IPv4) or all IPv6 (v3 over IPv6).
    pub addrs: Vec<IpAddr>,
}

/// Why bytes are not a valid advert.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("VRRP packet of {len} bytes is shorter than the 8-byte header")]
    TooShort { len: usize },
    #[error("VRRP version {0} is not 2 or 3")]
    BadVersion(u8),
    #[error("VRRP type {0} is not 1 (advertisement)")]
    BadType(u8),
    #[error("VRRP v2 is IPv4 only, got it over IPv6")]
    V2OverIpv6,
    #[error("VRRP advert lists no addresses")]
    NoAddresses,
    #[error("VRRP packet of {got} bytes, its address count needs {expected}")]
    LengthMismatch { expected: usize, got: usize },
    #[error("VRRP checksum {got:#06x} does not match computed {expected:#06x}")]
    BadChecksum { expected: u16, got: u16 },
    #[error("VRRP v2 auth type {0} is not supported (only 0 none, 1 PASS and 2 AH)")]
    UnsupportedAuthType(u8),
    #[error("VRRP source and destination addresses are not the same family")]
    MixedFamilies,
    #[error("IPv4 header: {0}")]
    Ipv4Header(&'static str),
}

/// Why an advert cannot be encoded (a config the validator should reject).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("VRRP v2 advert interval {0} cs is not whole seconds from 1 to 255 s")]
    V2Interval(u16),
    #[error("VRRP v3 advert interval {0} cs is not from 1 to 4095 cs")]
    V3Interval(u16),
    #[error("VRRP v2 carries IPv4 addresses only")]
    V2Ipv6,
    #[error("VRRP advert has {0} addresses, allowed 1 to 255 of one family")]
    AddressCount(usize),
    #[error("VRRP advert mixes IPv4 and IPv6 addresses or differs from the IP family")]
    MixedFamilies,
    #[error("VRRP v3 has no authentication; use v2 for auth_pass")]
    V3Auth,
}

/// Internet checksum (RFC 1071) over `data` preceded by `seed`'s sum.
pub(super) fn checksum(seed: u32, data: &[u8]) -> u16 {
    let mut sum = seed;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    // The fold above leaves at most 16 bits.
    !u16::try_from(sum).expect("folded to 16 bits")
}

/// Sum of the v3 pseudo-header (not folded).
fn pseudo_sum(src: IpAddr, dst: IpAddr, len: usize) -> Option<u32> {
    let mut buf = Vec::with_capacity(40);
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            buf.extend_from_slice(&s.octets());
            buf.extend_from_slice(&d.octets());
            buf.extend_from_slice(&[0, IPPROTO_VRRP]);
            buf.extend_from_slice(&u16::try_from(len).ok()?.to_be_bytes());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            buf.extend_from_slice(&s.octets());
            buf.extend_from_slice(&d.octets());
            buf.extend_from_slice(&u32::try_from(len).ok()?.to_be_bytes());
            buf.extend_from_slice(&[0, 0, 0, IPPROTO_VRRP]);
        }
        _ => return None,
    }
    let sum = buf
        .chunks_exact(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    Some(sum)
}

fn message_checksum(version: Version, msg: &[u8], src: IpAddr, dst: IpAddr) -> Option<u16> {
    match version {
        Version::V2 => Some(checksum(0, msg)),
        Version::V3 => Some(checksum(pseudo_sum(src, dst, msg.len())?, msg)),
    }
}

impl Advert {
    /// Encodes the VRRP message (no IP header), checksum filled in.
    /// `src`/`dst` are the IP addresses it will be sent with (v3 sums them).
    pub fn encode(&self, src: IpAddr, dst: IpAddr) -> Result<Vec<u8>, EncodeError> {
        let count = u8::try_from(self.addrs.len())
            .ok()
            .filter(|c| *c > 0)
            .ok_or(EncodeError::AddressCount(self.addrs.len()))?;
        let family_v4 = src.is_ipv4();
        if dst.is_ipv4() != family_v4 || self.addrs.iter().any(|a| a.is_ipv4() != family_v4) {
            return Err(EncodeError::MixedFamilies);
        }
        let mut out = Vec::with_capacity(HEADER_LEN + 16 * self.addrs.len() + V2_AUTH_LEN);
        match self.version {
            Version::V2 => {
                if !family_v4 {
                    return Err(EncodeError::V2Ipv6);
                }
                let secs = u8::try_from(self.advert_int_cs / 100)
                    .ok()
                    .filter(|s| *s > 0 && self.advert_int_cs.is_multiple_of(100))
                    .ok_or(EncodeError::V2Interval(self.advert_int_cs))?;
                let auth_type = match self.auth {
                    Auth::None => AUTH_NONE,
                    Auth::Pass(_) => AUTH_PASS,
                    Auth::Ah => AUTH_AH,
                };
                out.extend_from_slice(&[0x21, self.vrid, self.priority, count, auth_type, secs]);
            }
            Version::V3 => {
                if self.auth != Auth::None {
                    return Err(EncodeError::V3Auth);
                }
                if self.advert_int_cs == 0 || self.advert_int_cs > V3_MAX_ADVERT_INT_CS {
                    return Err(EncodeError::V3Interval(self.advert_int_cs));
                }
                let [hi, lo] = self.advert_int_cs.to_be_bytes();
                out.extend_from_slice(&[0x31, self.vrid, self.priority, count, hi, lo]);
            }
        }
        out.extend_from_slice(&[0, 0]);
        for addr in &self.addrs {
            match addr {
                IpAddr::V4(a) => out.extend_from_slice(&a.octets()),
                IpAddr::V6(a) => out.extend_from_slice(&a.octets()),
            }
        }
        if self.version == Version::V2 {
            match self.auth {
                Auth::None | Auth::Ah => out.extend_from_slice(&[0; V2_AUTH_LEN]),
                Auth::Pass(data) => out.extend_from_slice(&data),
            }
        }
        let sum =
            message_checksum(self.version, &out, src, dst).ok_or(EncodeError::MixedFamilies)?;
        out[6..8].copy_from_slice(&sum.to_be_bytes());
        Ok(out)
    }

    /// Decodes a VRRP message (the IP payload) received from `src` to
    /// `dst`, verifying length and checksum. TTL, VRID, peers and the
    /// password are the caller's checks.
    pub fn decode(msg: &[u8], src: IpAddr, dst: IpAddr) -> Result<Self, DecodeError> {
        let header: &[u8; HEADER_LEN] = msg
            .get(..HEADER_LEN)
            .and_then(|h| h.try_into().ok())
            .ok_or(DecodeError::TooShort { len: msg.len() })?;
        let version = match header[0] >> 4 {
            2 => Version::V2,
            3 => Version::V3,
            v => return Err(DecodeError::BadVersion(v)),
        };
        if header[0] & 0x0f != TYPE_ADVERTISEMENT {
            return Err(DecodeError::BadType(header[0] & 0x0f));
        }
        if src.is_ipv4() != dst.is_ipv4() {
            return Err(DecodeError::MixedFamilies);
        }
        let v4 = src.is_ipv4();
        if version == Version::V2 && !v4 {
            return Err(DecodeError::V2OverIpv6);
        }
        let count = usize::from(header[3]);
        if count == 0 {
            return Err(DecodeError::NoAddresses);
        }
        let addr_len = if v4 { 4 } else { 16 };
        let auth_len = if version == Version::V2 {
            V2_AUTH_LEN
        } else {
            0
        };
        let expected = HEADER_LEN + count * addr_len + auth_len;
        if msg.len() != expected {
            return Err(DecodeError::LengthMismatch {
                expected,
                got: msg.len(),
            });
        }
        let got = u16::from_be_bytes([header[6], header[7]]);
        // Summing the whole message with its checksum in place gives 0.
        let residue = message_checksum(version, msg, src, dst).ok_or(DecodeError::MixedFamilies)?;
        if residue != 0 {
            let mut zeroed = msg.to_vec();
            zeroed[6] = 0;
            zeroed[7] = 0;
            let expected = message_checksum(version, &zeroed, src, dst).unwrap_or(0);
            return Err(DecodeError::BadChecksum { expected, got });
        }
        let body = &msg[HEADER_LEN..HEADER_LEN + count * addr_len];
        let addrs = body
            .chunks_exact(addr_len)
            .map(|c| match <[u8; 4]>::try_from(c) {
                Ok(a) => IpAddr::V4(Ipv4Addr::from(a)),
                Err(_) => {
                    let mut a = [0u8; 16];
                    a.copy_from_slice(c);
                    IpAddr::V6(Ipv6Addr::from(a))
                }
            })
            .collect();
        let (advert_int_cs, auth) = match version {
            Version::V2 => {
                let auth = match header[4] {
                    AUTH_NONE => Auth::None,
                    AUTH_PASS => {
                        let mut data = [0u8; 8];
                        data.copy_from_slice(&msg[expected - V2_AUTH_LEN..]);
                        Auth::Pass(data)
                    }
                    AUTH_AH => Auth::Ah,
                    t => return Err(DecodeError::UnsupportedAuthType(t)),
                };
                (u16::from(header[5]) * 100, auth)
            }
            // The 4 reserved bits are ignored on receipt (RFC 5798 5.2.5).
            Version::V3 => (
                u16::from_be_bytes([header[4], header[5]]) & V3_MAX_ADVERT_INT_CS,
                Auth::None,
            ),
        };
        Ok(Self {
            version,
            vrid: header[1],
            priority: header[2],
            advert_int_cs,
            auth,
            addrs,
        })
    }
}

/// What the driver needs from a received IPv4 header (raw IPv4 sockets
/// deliver it; IPv6 raw sockets do not, the hop limit comes in a cmsg).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Header {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub ttl: u8,
    pub protocol: u8,
}

/// Splits a received IPv4 datagram into its header and payload.
pub fn decode_ipv4(datagram: &[u8]) -> Result<(Ipv4Header, &[u8]), DecodeError> {
    let first = *datagram.first().ok_or(DecodeError::Ipv4Header("empty"))?;
    if first >> 4 != 4 {
        return Err(DecodeError::Ipv4Header("version is not 4"));
    }
    let ihl = usize::from(first & 0x0f) * 4;
    if ihl < 20 || datagram.len() < ihl {
        return Err(DecodeError::Ipv4Header("header length out of range"));
    }
    let total = usize::from(u16::from_be_bytes([datagram[2], datagram[3]]));
    // Linux hands raw sockets the total length as sent; be lenient only
    // about trailing padding, never about missing bytes.
    if total < ihl || total > datagram.len() {
        return Err(DecodeError::Ipv4Header("total length out of range"));
    }
    let addr = |at: usize| {
        Ipv4Addr::new(
            datagram[at],
            datagram[at + 1],
            datagram[at + 2],
            datagram[at + 3],
        )
    };
    let header = Ipv4Header {
        ttl: datagram[8],
        protocol: datagram[9],
        src: addr(12),
        dst: addr(16),
    };
    Ok((header, &datagram[ihl..total]))
}

#[cfg(test)]
#[path = "packet_tests.rs"]
mod tests;
