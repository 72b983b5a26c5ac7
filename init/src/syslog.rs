//! Remote syslog: every console line, as an RFC 5424 message, to the
//! `syslog.server` setting over UDP (one datagram per line) or TCP
//! (octet-counted frames, RFC 6587). Best effort: a server that is down
//! costs a dropped line, never a stalled PID 1.

use std::io::Write;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use settings::value::{Protocol, SyslogTarget};

/// facility daemon (3), RFC 5424 section 6.2.1.
const FACILITY_DAEMON: u8 = 3;
const SEVERITY_ERROR: u8 = 3;
const SEVERITY_WARNING: u8 = 4;
const SEVERITY_INFO: u8 = 6;
/// RFC 5426: receivers must take 480 bytes and should take 2048.
const MAX_MESSAGE: usize = 2048;
const TCP_TIMEOUT: Duration = Duration::from_millis(500);
const TCP_RETRY: Duration = Duration::from_secs(10);

enum Transport {
    Udp(UdpSocket),
    Tcp {
        stream: Option<TcpStream>,
        next_try: Instant,
    },
}

pub struct SyslogSink {
    target: SocketAddr,
    hostname: String,
    transport: Transport,
}

impl SyslogSink {
    pub fn new(target: SyslogTarget, hostname: &str) -> std::io::Result<Self> {
        let transport = match target.protocol {
            Protocol::Udp => {
                let bind: SocketAddr = if target.addr.is_ipv4() {
                    ([0, 0, 0, 0], 0).into()
                } else {
                    (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
                };
                let socket = UdpSocket::bind(bind)?;
                socket.connect(target.addr)?;
                socket.set_nonblocking(true)?;
                Transport::Udp(socket)
            }
            Protocol::Tcp => Transport::Tcp {
                stream: None,
                next_try: Instant::now(),
            },
        };
        Ok(Self {
            target: target.addr,
            hostname: hostname.to_string(),
            transport,
        })
    }

    /// Sends one console line; errors are swallowed (see the module doc).
    pub fn send(&mut self, line: &str) {
        let message = format_message(&self.hostname, SystemTime::now(), line);
        match &mut self.transport {
            Transport::Udp(socket) => {
                let _ = socket.send(message.as_bytes());
            }
            Transport::Tcp { stream, next_try } => {
                if stream.is_none() && Instant::now() >= *next_try {
                    *stream = TcpStream::connect_timeout(&self.target, TCP_TIMEOUT).ok();
                    if let Some(s) = stream {
                        let _ = s.set_write_timeout(Some(TCP_TIMEOUT));
                    }
                    *next_try = Instant::now() + TCP_RETRY;
                }
                if let Some(s) = stream {
                    let frame = format!("{} {message}", message.len());
                    if s.write_all(frame.as_bytes()).is_err() {
                        *stream = None;
                    }
                }
            }
        }
    }
}

/// `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD MSG` (RFC 5424),
/// app name from the console line's prefix (`lbd: ...`, `init: ...`).
pub fn format_message(hostname: &str, now: SystemTime, line: &str) -> String {
    let (app, text) = match line.split_once(": ") {
        Some((app, rest)) if !app.is_empty() && app.chars().all(|c| c.is_ascii_alphanumeric()) => {
            (app, rest)
        }
        _ => ("init", line),
    };
    let severity = if text.contains("error") || text.contains("ERROR") {
        SEVERITY_ERROR
    } else if text.contains("warning") || text.contains("WARN") {
        SEVERITY_WARNING
    } else {
        SEVERITY_INFO
    };
    let pri = FACILITY_DAEMON * 8 + severity;
    let host = if hostname.is_empty() { "-" } else { hostname };
    let mut m = format!("<{pri}>1 {} {host} {app} - - - {text}", rfc3339(now));
    if m.len() > MAX_MESSAGE {
        let mut cut = MAX_MESSAGE;
        while !m.is_char_boundary(cut) {
            cut -= 1;
        }
        m.truncate(cut);
    }
    m
}

/// UTC with milliseconds, e.g. `2026-11-22T02:10:00.123Z`.
fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let (year, month, day, hour, minute, second) = rootfs::civil::civil_from_unix(d.as_secs());
    format!(
        "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{:03}Z",
        d.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_follow_rfc5424() {
        let t = UNIX_EPOCH + Duration::from_millis(1_709_210_096_789);
        assert_eq!(
            format_message("lb1", t, "lbd: server is DOWN"),
            "<30>1 2024-02-29T12:34:56.789Z lb1 lbd - - - server is DOWN"
        );
        assert_eq!(
            format_message("lb1", t, "init: error: firewall not applied"),
            "<27>1 2024-02-29T12:34:56.789Z lb1 init - - - error: firewall not applied"
        );
        assert_eq!(
            format_message("", t, "appliance: ready"),
            "<30>1 2024-02-29T12:34:56.789Z - appliance - - - ready"
        );
        let long = format!("init: {}", "é".repeat(3000));
        assert!(format_message("lb1", t, &long).len() <= MAX_MESSAGE);
    }

    #[test]
    fn udp_lines_arrive_as_datagrams() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let target = SyslogTarget {
            protocol: Protocol::Udp,
            addr: server.local_addr().unwrap(),
        };
        let mut sink = SyslogSink::new(target, "lb1").unwrap();
        sink.send("init: hello");
        let mut buf = [0u8; 2048];
        let n = server.recv(&mut buf).unwrap();
        let got = String::from_utf8_lossy(&buf[..n]);
        assert!(
            got.starts_with("<30>1 ") && got.ends_with(" lb1 init - - - hello"),
            "{got}"
        );
    }
}
