//! The prober the bench runs in the client namespace (`cargo xtask bench
//! failover-probe VIP`): an ICMP echo every 10 ms on absolute deadlines
//! (iputils ping paces `-i 0.01` at about 16 ms here), over a raw socket,
//! and one line per reply in `ping -D`'s format with its receive time and
//! TTL: `[epoch.micros] 64 bytes from VIP: icmp_seq=N ttl=T`.
//!
//! And the advert watcher the bench runs in B's namespace (`cargo xtask
//! bench failover-advert FROM`): it exits as soon as B receives a VRRP
//! advert from FROM, so the bench can fail A right after one of its
//! adverts and B's timer runs its full length in every run.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

use super::super::error::BenchError;
use super::probe::now_epoch;

pub const SUBCOMMAND: &str = "failover-probe";
pub const ADVERT_SUBCOMMAND: &str = "failover-advert";
/// IP protocol number of VRRP.
const VRRP_PROTO: u8 = 112;
/// The watcher gives up after this long without an advert.
const ADVERT_PATIENCE: Duration = Duration::from_secs(3);
const INTERVAL: Duration = Duration::from_millis(10);
const ECHO_REQUEST: u8 = 8;
const ECHO_REPLY: u8 = 0;

fn io(what: &str) -> impl FnOnce(std::io::Error) -> BenchError + '_ {
    move |source| BenchError::Io {
        what: what.to_string(),
        source,
    }
}

/// RFC 1071 Internet checksum.
pub fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    // The fold leaves at most 16 bits.
    !u16::try_from(sum).unwrap_or(u16::MAX)
}

/// An echo request with `id`, `seq` and 56 bytes of payload (as ping).
pub fn echo_request(id: u16, seq: u16) -> Vec<u8> {
    let mut p = vec![0u8; 64];
    p[0] = ECHO_REQUEST;
    p[4..6].copy_from_slice(&id.to_be_bytes());
    p[6..8].copy_from_slice(&seq.to_be_bytes());
    let c = checksum(&p);
    p[2..4].copy_from_slice(&c.to_be_bytes());
    p
}

/// (seq, ttl) of an echo reply to `id` in a raw IPv4 packet from `from`.
pub fn parse_reply(packet: &[u8], id: u16, from: Ipv4Addr) -> Option<(u16, u8)> {
    let ihl = usize::from(packet.first()? & 0x0f) * 4;
    let ttl = *packet.get(8)?;
    let src = Ipv4Addr::new(
        *packet.get(12)?,
        *packet.get(13)?,
        *packet.get(14)?,
        *packet.get(15)?,
    );
    let icmp = packet.get(ihl..)?;
    if src != from || icmp.len() < 8 || icmp[0] != ECHO_REPLY {
        return None;
    }
    if u16::from_be_bytes([icmp[4], icmp[5]]) != id {
        return None;
    }
    Some((u16::from_be_bytes([icmp[6], icmp[7]]), ttl))
}

/// The helper: probes `VIP` until killed.
pub fn probe(args: &[String]) -> Result<(), BenchError> {
    let vip: Ipv4Addr = args
        .first()
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| BenchError::FailoverUsage(format!("{SUBCOMMAND} IPV4")))?;
    let sock = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4))
        .map_err(io("opening a raw ICMP socket (needs root)"))?;
    let dest = SocketAddr::V4(SocketAddrV4::new(vip, 0)).into();
    let sender = sock.try_clone().map_err(io("cloning the ICMP socket"))?;
    // The low 16 bits of the pid: the echo identifier.
    let id = u16::try_from(std::process::id() & 0xffff).unwrap_or(0);
    std::thread::spawn(move || {
        let start = Instant::now();
        for n in 1u32.. {
            // icmp_seq wraps at 16 bits, as ping's does.
            let seq = u16::try_from(n & 0xffff).unwrap_or(0);
            // Unreachable neighbours make sends fail for a while: go on.
            let _ = sender.send_to(&echo_request(id, seq), &dest);
            let next = start + INTERVAL * n;
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
        }
    });
    let mut recv = &sock;
    let mut buf = [0u8; 1500];
    let mut out = std::io::stdout();
    loop {
        let n = recv.read(&mut buf).map_err(io("reading ICMP replies"))?;
        let at = now_epoch();
        if let Some((seq, ttl)) = parse_reply(&buf[..n], id, vip) {
            writeln!(
                out,
                "[{at:.6}] 64 bytes from {vip}: icmp_seq={seq} ttl={ttl}"
            )
            .and_then(|()| out.flush())
            .map_err(io("writing a reply line"))?;
        }
    }
}

/// Source address of an IPv4 packet of protocol `proto`, else None.
pub fn source_if(packet: &[u8], proto: u8) -> Option<Ipv4Addr> {
    if packet.len() < 20 || packet[0] >> 4 != 4 || packet[9] != proto {
        return None;
    }
    Some(Ipv4Addr::new(
        packet[12], packet[13], packet[14], packet[15],
    ))
}

/// The watcher: waits for a VRRP advert from `FROM`, says `advert` on
/// stdout and exits 0; exits with an error after ADVERT_PATIENCE.
pub fn await_advert(args: &[String]) -> Result<(), BenchError> {
    let from: Ipv4Addr = args
        .first()
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| BenchError::FailoverUsage(format!("{ADVERT_SUBCOMMAND} IPV4")))?;
    let sock = Socket::new(
        Domain::IPV4,
        Type::RAW,
        Some(Protocol::from(i32::from(VRRP_PROTO))),
    )
    .map_err(io("opening a raw VRRP socket (needs root)"))?;
    let end = Instant::now() + ADVERT_PATIENCE;
    let mut buf = [0u8; 1500];
    let mut recv = &sock;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(BenchError::Io {
                what: format!("waiting for a VRRP advert from {from}"),
                source: std::io::ErrorKind::TimedOut.into(),
            });
        }
        sock.set_read_timeout(Some(left))
            .map_err(io("setting the advert wait's timeout"))?;
        let n = match recv.read(&mut buf) {
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(source) => {
                return Err(BenchError::Io {
                    what: "reading VRRP adverts".into(),
                    source,
                })
            }
        };
        if source_if(&buf[..n], VRRP_PROTO) == Some(from) {
            let mut out = std::io::stdout();
            return writeln!(out, "advert")
                .and_then(|()| out.flush())
                .map_err(io("telling the bench"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::probe::parse_ping;
    use super::*;

    #[test]
    fn echo_request_checksums_to_zero() {
        let p = echo_request(0x1234, 7);
        assert_eq!(checksum(&p), 0);
        assert_eq!((p[0], &p[4..8]), (8, &[0x12, 0x34, 0, 7][..]));
        // Odd lengths pad with a zero byte.
        assert_eq!(checksum(&[0xff]), !0xff00);
    }

    #[test]
    fn replies_to_us_from_the_vip_are_read() {
        let vip = Ipv4Addr::new(10, 78, 0, 100);
        let mut pkt = vec![
            0x45, 0, 0, 84, 0, 0, 0, 0, 62, 1, 0, 0, 10, 78, 0, 100, 10, 78, 0, 3,
        ];
        let mut icmp = echo_request(0x1234, 9);
        icmp[0] = ECHO_REPLY;
        pkt.extend(&icmp);
        assert_eq!(parse_reply(&pkt, 0x1234, vip), Some((9, 62)));
        assert_eq!(parse_reply(&pkt, 0x4321, vip), None);
        assert_eq!(parse_reply(&pkt, 0x1234, Ipv4Addr::new(10, 78, 0, 1)), None);
        pkt[20] = ECHO_REQUEST;
        assert_eq!(parse_reply(&pkt, 0x1234, vip), None);
        assert_eq!(parse_reply(&pkt[..10], 0x1234, vip), None);
        assert_eq!(parse_reply(&[], 0x1234, vip), None);
    }

    #[test]
    fn adverts_are_told_by_protocol_and_source() {
        let mut pkt = vec![
            0x45, 0, 0, 40, 0, 0, 0, 0, 255, 112, 0, 0, 10, 78, 0, 1, 10, 78, 0, 2,
        ];
        assert_eq!(source_if(&pkt, 112), Some(Ipv4Addr::new(10, 78, 0, 1)));
        pkt[9] = 1;
        assert_eq!(source_if(&pkt, 112), None);
        assert_eq!(source_if(&pkt[..12], 1), None);
        pkt[0] = 0x65;
        assert_eq!(source_if(&pkt, 1), None);
    }

    #[test]
    fn our_lines_parse_as_ping_lines() {
        let line = format!(
            "[{:.6}] 64 bytes from 10.78.0.100: icmp_seq=3 ttl=61\n",
            1_795_316_501.574_738
        );
        let r = parse_ping(&line, "10.78.0.100");
        assert_eq!(r.len(), 1);
        assert_eq!((r[0].seq, r[0].ttl), (3, 61));
    }
}
