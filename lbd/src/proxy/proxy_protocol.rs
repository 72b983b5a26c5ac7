//! PROXY protocol v1 and v2 (haproxy.org's proxy-protocol.txt): a header
//! before the client's bytes that tells the server the real client address.
//!
//! ```text
//! v1: "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n"   (at most 107 bytes)
//!
//! v2: 0                   12      13      14      16
//!     +-------------------+-------+-------+-------+--------------------------+
//!     | \r\n\r\n\0\r\nQUIT\n| ver/cmd| fam  | len   | addresses (+ TLVs)       |
//!     +-------------------+-------+-------+-------+--------------------------+
//!     ver/cmd 0x21 PROXY, 0x20 LOCAL; fam 0x11 TCP/IPv4 (12 address bytes),
//!     0x21 TCP/IPv6 (36 bytes): src addr, dst addr, src port, dst port.
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};

/// The v2 signature.
pub const V2_SIGNATURE: [u8; 12] = [
    0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
];
/// Longest v1 line, CRLF included.
pub const V1_MAX: usize = 107;
/// Largest v2 header accepted (addresses plus TLVs).
pub const V2_MAX: usize = 16 + 512;

/// Decoded addresses; `None` for LOCAL / UNKNOWN (health checks of a peer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyHeader {
    pub source: Option<SocketAddr>,
    pub destination: Option<SocketAddr>,
}

/// Why a header was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    #[error("no PROXY protocol header (accept_proxy is set on this bind)")]
    Missing,
    #[error("bad PROXY v1 line: {0}")]
    V1(String),
    #[error("bad PROXY v2 header: {0}")]
    V2(String),
    #[error("reading PROXY header: {0}")]
    Io(String),
    #[error("no complete PROXY header within {0:?}")]
    Timeout(Duration),
}

/// Result of looking at the bytes received so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// The header and its length in bytes.
    Done(ProxyHeader, usize),
    /// At least this many more bytes are needed.
    Need(usize),
}

/// Decodes a header at the start of `buf`. Never panics.
pub fn decode(buf: &[u8]) -> Result<Decoded, ProxyError> {
    if buf.is_empty() {
        return Ok(Decoded::Need(1));
    }
    let n = buf.len().min(12);
    if buf[..n] == V2_SIGNATURE[..n] {
        return decode_v2(buf);
    }
    let n = buf.len().min(6);
    if buf[..n] == b"PROXY "[..n] {
        return decode_v1(buf);
    }
    Err(ProxyError::Missing)
}

fn decode_v1(buf: &[u8]) -> Result<Decoded, ProxyError> {
    let Some(end) = buf.windows(2).position(|w| w == b"\r\n") else {
        if buf.len() >= V1_MAX {
            return Err(ProxyError::V1("no CRLF within 107 bytes".into()));
        }
        return Ok(Decoded::Need(1));
    };
    let line = std::str::from_utf8(&buf[..end]).map_err(|_| ProxyError::V1("not ASCII".into()))?;
    let words: Vec<&str> = line.split(' ').collect();
    let header = match words.as_slice() {
        ["PROXY", "UNKNOWN", ..] => ProxyHeader {
            source: None,
            destination: None,
        },
        ["PROXY", proto @ ("TCP4" | "TCP6"), src, dst, sport, dport] => {
            let ip = |s: &str| -> Result<IpAddr, ProxyError> {
                let ip: IpAddr = s
                    .parse()
                    .map_err(|_| ProxyError::V1(format!("bad address {s:?}")))?;
                if (*proto == "TCP4") != ip.is_ipv4() {
                    return Err(ProxyError::V1(format!("{s} is not {proto}")));
                }
                Ok(ip)
            };
            let port = |s: &str| -> Result<u16, ProxyError> {
                s.parse()
                    .map_err(|_| ProxyError::V1(format!("bad port {s:?}")))
            };
            ProxyHeader {
                source: Some(SocketAddr::new(ip(src)?, port(sport)?)),
                destination: Some(SocketAddr::new(ip(dst)?, port(dport)?)),
            }
        }
        _ => return Err(ProxyError::V1(format!("{line:?}"))),
    };
    Ok(Decoded::Done(header, end + 2))
}

fn decode_v2(buf: &[u8]) -> Result<Decoded, ProxyError> {
    if buf.len() < 16 {
        return Ok(Decoded::Need(16 - buf.len()));
    }
    let ver_cmd = buf[12];
    let family = buf[13];
    let len = usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    if 16 + len > V2_MAX {
        return Err(ProxyError::V2(format!("length {len} too large")));
    }
    if ver_cmd >> 4 != 2 {
        return Err(ProxyError::V2(format!("version {}", ver_cmd >> 4)));
    }
    if buf.len() < 16 + len {
        return Ok(Decoded::Need(16 + len - buf.len()));
    }
    let body = &buf[16..16 + len];
    let local = ProxyHeader {
        source: None,
        destination: None,
    };
    let header = match (ver_cmd & 0x0F, family) {
        (0x0, _) => local,
        (0x1, 0x11) if body.len() >= 12 => {
            let src = Ipv4Addr::new(body[0], body[1], body[2], body[3]);
            let dst = Ipv4Addr::new(body[4], body[5], body[6], body[7]);
            ProxyHeader {
                source: Some(SocketAddr::new(
                    src.into(),
                    u16::from_be_bytes([body[8], body[9]]),
                )),
                destination: Some(SocketAddr::new(
                    dst.into(),
                    u16::from_be_bytes([body[10], body[11]]),
                )),
            }
        }
        (0x1, 0x21) if body.len() >= 36 => {
            let mut s = [0u8; 16];
            let mut d = [0u8; 16];
            s.copy_from_slice(&body[..16]);
            d.copy_from_slice(&body[16..32]);
            ProxyHeader {
                source: Some(SocketAddr::new(
                    Ipv6Addr::from(s).into(),
                    u16::from_be_bytes([body[32], body[33]]),
                )),
                destination: Some(SocketAddr::new(
                    Ipv6Addr::from(d).into(),
                    u16::from_be_bytes([body[34], body[35]]),
                )),
            }
        }
        // UNSPEC or non-TCP families: addresses unknown, connection kept.
        (0x1, 0x00 | 0x12 | 0x22 | 0x31 | 0x32) => local,
        (0x1, f) => {
            return Err(ProxyError::V2(format!(
                "family 0x{f:02x} with {len} address bytes"
            )))
        }
        (c, _) => return Err(ProxyError::V2(format!("command {c}"))),
    };
    Ok(Decoded::Done(header, 16 + len))
}

/// Reads exactly one header from `stream` (never past it, so the client's
/// first bytes stay in the socket), within `timeout`.
pub async fn read_header<S: AsyncRead + Unpin>(
    stream: &mut S,
    timeout: Duration,
) -> Result<ProxyHeader, ProxyError> {
    let read = async {
        let mut buf = Vec::with_capacity(64);
        loop {
            match decode(&buf)? {
                Decoded::Done(h, _) => return Ok(h),
                Decoded::Need(n) => {
                    let start = buf.len();
                    buf.resize(start + n, 0);
                    stream
                        .read_exact(&mut buf[start..])
                        .await
                        .map_err(|e| ProxyError::Io(e.to_string()))?;
                }
            }
        }
    };
    tokio::time::timeout(timeout, read)
        .await
        .unwrap_or(Err(ProxyError::Timeout(timeout)))
}

/// Puts both addresses in one family (v4-mapped v6 when they differ).
fn same_family(src: SocketAddr, dst: SocketAddr) -> (SocketAddr, SocketAddr) {
    let v6 = |a: SocketAddr| match a.ip() {
        IpAddr::V4(v4) => SocketAddr::new(v4.to_ipv6_mapped().into(), a.port()),
        IpAddr::V6(_) => a,
    };
    if src.is_ipv4() == dst.is_ipv4() {
        (src, dst)
    } else {
        (v6(src), v6(dst))
    }
}

/// The v1 line for a TCP connection from `src` to `dst`.
pub fn encode_v1(src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    let (src, dst) = same_family(src, dst);
    let proto = if src.is_ipv4() { "TCP4" } else { "TCP6" };
    format!(
        "PROXY {proto} {} {} {} {}\r\n",
        src.ip(),
        dst.ip(),
        src.port(),
        dst.port()
    )
    .into_bytes()
}

/// The v2 header for a TCP connection from `src` to `dst`.
pub fn encode_v2(src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    let (src, dst) = same_family(src, dst);
    let mut out = V2_SIGNATURE.to_vec();
    out.push(0x21);
    match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            out.extend_from_slice(&[0x11, 0, 12]);
            out.extend_from_slice(&s.octets());
            out.extend_from_slice(&d.octets());
        }
        (s, d) => {
            let six = |ip: IpAddr| match ip {
                IpAddr::V6(v6) => v6.octets(),
                IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
            };
            out.extend_from_slice(&[0x21, 0, 36]);
            out.extend_from_slice(&six(s));
            out.extend_from_slice(&six(d));
        }
    }
    out.extend_from_slice(&src.port().to_be_bytes());
    out.extend_from_slice(&dst.port().to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("literal")
    }

    #[test]
    fn v1_bytes_round_trip() {
        let bytes = encode_v1(addr("192.0.2.1:56324"), addr("198.51.100.2:443"));
        assert_eq!(bytes, b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n");
        let mut with_data = bytes.clone();
        with_data.extend_from_slice(b"GET /");
        assert_eq!(
            decode(&with_data),
            Ok(Decoded::Done(
                ProxyHeader {
                    source: Some(addr("192.0.2.1:56324")),
                    destination: Some(addr("198.51.100.2:443")),
                },
                bytes.len()
            ))
        );
    }

    #[test]
    fn v2_bytes_round_trip() {
        let bytes = encode_v2(addr("192.0.2.1:56324"), addr("198.51.100.2:443"));
        let mut expect = V2_SIGNATURE.to_vec();
        expect.extend_from_slice(&[
            0x21, 0x11, 0x00, 0x0C, 192, 0, 2, 1, 198, 51, 100, 2, 0xDC, 0x04, 0x01, 0xBB,
        ]);
        assert_eq!(bytes, expect);
        let Ok(Decoded::Done(h, n)) = decode(&bytes) else {
            panic!("decodes")
        };
        assert_eq!(n, 28);
        assert_eq!(h.source, Some(addr("192.0.2.1:56324")));
        let six = encode_v2(addr("[2001:db8::1]:1"), addr("[2001:db8::2]:2"));
        let Ok(Decoded::Done(h, n)) = decode(&six) else {
            panic!("decodes")
        };
        assert_eq!((n, h.destination), (52, Some(addr("[2001:db8::2]:2"))));
    }

    #[test]
    fn mixed_families_are_mapped() {
        let line = encode_v1(addr("192.0.2.1:1"), addr("[2001:db8::2]:2"));
        assert_eq!(line, b"PROXY TCP6 ::ffff:192.0.2.1 2001:db8::2 1 2\r\n");
    }

    #[test]
    fn incomplete_and_bad_headers() {
        assert_eq!(decode(b"PROX"), Ok(Decoded::Need(1)));
        assert_eq!(decode(&V2_SIGNATURE[..5]), Ok(Decoded::Need(11)));
        assert_eq!(decode(b"GET / HTTP/1.1\r\n"), Err(ProxyError::Missing));
        assert!(matches!(
            decode(b"PROXY TCP4 1.2.3.4 ::1 1 2\r\n"),
            Err(ProxyError::V1(_))
        ));
        assert!(matches!(
            decode(b"PROXY TCP4 1.2.3.4 5.6.7.8 99999 2\r\n"),
            Err(ProxyError::V1(_))
        ));
        assert!(matches!(
            decode(&[b'P', b'R', b'O', b'X', b'Y', b' ', b'x'].repeat(20)),
            Err(ProxyError::V1(_))
        ));
        let mut v3 = V2_SIGNATURE.to_vec();
        v3.extend_from_slice(&[0x31, 0x11, 0, 0]);
        assert!(matches!(decode(&v3), Err(ProxyError::V2(_))));
        let mut short = V2_SIGNATURE.to_vec();
        short.extend_from_slice(&[0x21, 0x11, 0, 4, 1, 2, 3, 4]);
        assert!(matches!(decode(&short), Err(ProxyError::V2(_))));
    }

    #[test]
    fn local_and_unknown_carry_no_address() {
        let Ok(Decoded::Done(h, _)) = decode(b"PROXY UNKNOWN\r\n") else {
            panic!("decodes")
        };
        assert_eq!(h.source, None);
        let mut local = V2_SIGNATURE.to_vec();
        local.extend_from_slice(&[0x20, 0x00, 0, 0]);
        assert_eq!(
            decode(&local).map(|d| matches!(d, Decoded::Done(_, 16))),
            Ok(true)
        );
    }

    #[tokio::test]
    async fn reader_stops_at_the_header() {
        let mut data = encode_v1(addr("192.0.2.1:5"), addr("192.0.2.2:6"));
        data.extend_from_slice(b"rest");
        let mut cursor = std::io::Cursor::new(data);
        let h = read_header(&mut cursor, Duration::from_secs(1))
            .await
            .expect("header");
        assert_eq!(h.source, Some(addr("192.0.2.1:5")));
        let mut rest = String::new();
        cursor.read_to_string(&mut rest).await.expect("rest");
        assert_eq!(rest, "rest");
    }
}
