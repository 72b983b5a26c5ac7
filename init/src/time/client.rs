//! The SNTP driver: one blocking UDP exchange per server, tried in order.
//!
//! ```text
//!  client                         server
//!    | T1 = now; request(T1) -----> | T2 = receive
//!    | T4 = now <------ reply(T1, T2, T3) | T3 = transmit
//! ```

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::{Duration, SystemTime};

use super::clock::{ClockAdjust, SystemClock};
use super::packet::{decode_reply, encode_request, DecodeError, NtpTimestamp, Sample};

/// The NTP port, used when a server is given without one.
pub const NTP_PORT: u16 = 123;
/// Offsets larger than this (in either direction) are stepped, smaller ones
/// slewed: adjtime corrects at 0.5 ms/s, so 0.5 s already takes ~17 min.
pub const STEP_THRESHOLD_NS: i64 = 500_000_000;
/// Bigger than a reply (48 bytes) so an oversized datagram is not truncated
/// into something that looks valid.
const RECV_BUF_LEN: usize = 512;

/// Why SNTP did not set the clock.
#[derive(Debug, thiserror::Error)]
pub enum SntpError {
    #[error(
        "NTP server {server}: not resolved: no DNS lookups in the guest yet; give an IP address"
    )]
    NotResolved { server: String },
    #[error("NTP server {server}: {step}: {source}")]
    Socket {
        server: SocketAddr,
        step: &'static str,
        source: io::Error,
    },
    #[error("NTP server {server}: no reply within {} ms; check the address and that UDP port {} is open", timeout.as_millis(), server.port())]
    Timeout {
        server: SocketAddr,
        timeout: Duration,
    },
    #[error("NTP server {server}: bad reply: {source}")]
    BadReply {
        server: SocketAddr,
        source: DecodeError,
    },
    #[error("no NTP server configured: set ntp servers in the settings or get them from DHCP")]
    NoServers,
    #[error("no NTP server answered: {}", .failures.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    NoServerAnswered { failures: Vec<SntpError> },
    #[error("stepping the clock by {} s (server {server}): {source}; init needs CAP_SYS_TIME", seconds(*.offset_ns))]
    Step {
        server: SocketAddr,
        offset_ns: i64,
        source: io::Error,
    },
    #[error("slewing the clock by {} s (server {server}): {source}; init needs CAP_SYS_TIME", seconds(*.offset_ns))]
    Slew {
        server: SocketAddr,
        offset_ns: i64,
        source: io::Error,
    },
}

fn seconds(ns: i64) -> String {
    // Display only: f64 has ample precision for milliseconds.
    format!("{:+.3}", ns as f64 / 1e9)
}

/// What was done to the clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adjustment {
    Stepped,
    Slewed,
}

/// The outcome of [`sync_at_boot`]: one console line via `Display`.
#[derive(Debug)]
pub struct TimeReport {
    pub server: SocketAddr,
    pub sample: Sample,
    pub adjustment: Adjustment,
    /// Servers tried before `server`, and why each was passed over.
    pub skipped: Vec<SntpError>,
}

impl fmt::Display for TimeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let action = match self.adjustment {
            Adjustment::Stepped => "stepped",
            Adjustment::Slewed => "slewed",
        };
        write!(f, "time: synchronised with ")?;
        if self.server.port() == NTP_PORT {
            write!(f, "{}", self.server.ip())?;
        } else {
            write!(f, "{}", self.server)?;
        }
        write!(
            f,
            " (offset {} s, delay {:.1} ms): {action}",
            seconds(self.sample.offset_ns),
            self.sample.delay.as_secs_f64() * 1000.0
        )
    }
}

/// `IP` (port 123) or `IP:port` / `[IPv6]:port`; anything else is a host
/// name, which the guest cannot resolve yet.
pub fn parse_server(server: &str) -> Result<SocketAddr, SntpError> {
    let server = server.trim();
    if let Ok(addr) = server.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if let Ok(ip) = server.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, NTP_PORT));
    }
    Err(SntpError::NotResolved {
        server: server.to_owned(),
    })
}

/// One SNTP exchange with `server`, waiting at most `timeout` for the reply.
pub fn query(server: SocketAddr, timeout: Duration) -> Result<Sample, SntpError> {
    let socket_err = |step| {
        move |source| SntpError::Socket {
            server,
            step,
            source,
        }
    };
    let any: IpAddr = match server {
        SocketAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        SocketAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    };
    let socket = UdpSocket::bind((any, 0)).map_err(socket_err("binding a UDP socket"))?;
    // connect() makes the kernel drop datagrams from anyone but the server.
    socket.connect(server).map_err(socket_err("connecting"))?;
    // A zero read timeout is rejected by set_read_timeout; 1 ms is "now".
    let wait = timeout.max(Duration::from_millis(1));
    socket
        .set_read_timeout(Some(wait))
        .map_err(socket_err("setting the read timeout"))?;
    let sent = NtpTimestamp::from_system_time(SystemTime::now());
    socket
        .send(&encode_request(sent))
        .map_err(socket_err("sending the request"))?;
    let mut buf = [0u8; RECV_BUF_LEN];
    let len = match socket.recv(&mut buf) {
        Ok(len) => len,
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            return Err(SntpError::Timeout { server, timeout })
        }
        Err(e) => return Err(socket_err("receiving the reply")(e)),
    };
    let received = NtpTimestamp::from_system_time(SystemTime::now());
    let reply =
        decode_reply(&buf[..len], sent).map_err(|source| SntpError::BadReply { server, source })?;
    Ok(Sample::new(sent, &reply, received))
}

/// [`sync_with`] on the real clock: needs root or CAP_SYS_TIME.
pub fn sync_at_boot(
    servers: &[String],
    timeout_per_server: Duration,
) -> Result<TimeReport, SntpError> {
    sync_with(servers, timeout_per_server, &mut SystemClock, query)
}

/// Tries `servers` in order with `query_fn` until one answers, then steps
/// `clock` if the offset exceeds [`STEP_THRESHOLD_NS`], else slews it.
pub fn sync_with(
    servers: &[String],
    timeout_per_server: Duration,
    clock: &mut dyn ClockAdjust,
    mut query_fn: impl FnMut(SocketAddr, Duration) -> Result<Sample, SntpError>,
) -> Result<TimeReport, SntpError> {
    if servers.is_empty() {
        return Err(SntpError::NoServers);
    }
    let mut skipped = Vec::new();
    for server in servers {
        let sample = match parse_server(server)
            .and_then(|addr| query_fn(addr, timeout_per_server).map(|s| (addr, s)))
        {
            Ok(found) => found,
            Err(e) => {
                skipped.push(e);
                continue;
            }
        };
        let (server, sample) = sample;
        let offset_ns = sample.offset_ns;
        let adjustment = if offset_ns.unsigned_abs() > STEP_THRESHOLD_NS.unsigned_abs() {
            clock.step(offset_ns).map_err(|source| SntpError::Step {
                server,
                offset_ns,
                source,
            })?;
            Adjustment::Stepped
        } else {
            clock.slew(offset_ns).map_err(|source| SntpError::Slew {
                server,
                offset_ns,
                source,
            })?;
            Adjustment::Slewed
        };
        return Ok(TimeReport {
            server,
            sample,
            adjustment,
            skipped,
        });
    }
    Err(SntpError::NoServerAnswered { failures: skipped })
}
