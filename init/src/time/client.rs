//! The SNTP driver: blocking UDP exchanges, several per server and with
//! every server, then the majority's offset (`select.rs`) within the
//! step bound.
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

use settings::value::MaxStep;

use super::clock::{ClockAdjust, SystemClock};
use super::packet::{decode_reply, encode_request, DecodeError, NtpTimestamp, Sample};
use super::select::{self, Estimate, AGREEMENT_NS};

/// The NTP port, used when a server is given without one.
pub const NTP_PORT: u16 = 123;
/// Offsets larger than this (in either direction) are stepped, smaller ones
/// slewed: adjtime corrects at 0.5 ms/s, so 0.5 s already takes ~17 min.
pub const STEP_THRESHOLD_NS: i64 = 500_000_000;
/// Samples boot takes from each server: several, so one lost, late or
/// forged answer is outvoted by the others.
pub const SAMPLES_PER_SERVER: u32 = 4;
const NANOS_PER_SEC: u64 = 1_000_000_000;
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
    #[error("NTP server {server}: only {agreeing} of its {answered} answers agree within {} s; not used", seconds(AGREEMENT_NS))]
    TooFewAgree {
        server: SocketAddr,
        agreeing: usize,
        answered: usize,
    },
    #[error("NTP servers disagree ({}): no majority within {} s, the clock is left alone; check the servers", .estimates.iter().map(|e| format!("{} says {} s", show_server(e.server), seconds(e.offset_ns))).collect::<Vec<_>>().join(", "), seconds(AGREEMENT_NS))]
    NoAgreement { estimates: Vec<Estimate> },
    #[error("refusing to step the clock by {} s (NTP servers {servers}): more than ntp.max_step ({max_step_s} s); the clock is left as the hypervisor set it. If it really is that far off, set ntp.max_step to more seconds or any", seconds(*.offset_ns))]
    StepRefused {
        offset_ns: i64,
        max_step_s: u64,
        servers: String,
    },
    #[error("stepping the clock by {} s (NTP servers {servers}): {source}; init needs CAP_SYS_TIME", seconds(*.offset_ns))]
    Step {
        servers: String,
        offset_ns: i64,
        source: io::Error,
    },
    #[error("slewing the clock by {} s (NTP servers {servers}): {source}; init needs CAP_SYS_TIME", seconds(*.offset_ns))]
    Slew {
        servers: String,
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

/// The outcome of [`sync_at_boot`]: one console line via `Display`, and
/// [`TimeReport::warnings`] for what was not believed.
#[derive(Debug)]
pub struct TimeReport {
    /// What the clock was moved by.
    pub offset_ns: i64,
    pub adjustment: Adjustment,
    /// The servers whose estimates agreed, in the order given.
    pub agreeing: Vec<Estimate>,
    /// Servers that answered but were outvoted.
    pub disagreeing: Vec<Estimate>,
    /// Servers passed over, and why.
    pub skipped: Vec<SntpError>,
}

impl TimeReport {
    /// One line per server not used: outvoted, silent, or inconsistent.
    pub fn warnings(&self) -> Vec<String> {
        let outvoted = self.disagreeing.iter().map(|e| {
            format!(
                "time: warning: NTP server {} says the clock is off by {} s, the majority {} s: \
                 ignored; check that server",
                show_server(e.server),
                seconds(e.offset_ns),
                seconds(self.offset_ns)
            )
        });
        let skipped = self.skipped.iter().map(|e| format!("time: warning: {e}"));
        outvoted.chain(skipped).collect()
    }
}

impl fmt::Display for TimeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let action = match self.adjustment {
            Adjustment::Stepped => "STEPPED",
            Adjustment::Slewed => "slewed",
        };
        let delay = self
            .agreeing
            .iter()
            .map(|e| e.delay)
            .min()
            .unwrap_or_default();
        let samples: usize = self.agreeing.iter().map(|e| e.agreeing).sum();
        let answered: usize = self.agreeing.iter().map(|e| e.answered).sum();
        let servers = self.agreeing.len() + self.disagreeing.len();
        write!(
            f,
            "time: synchronised with {} (offset {} s, delay {:.1} ms; {} of {servers} servers \
             agree, {samples} of {answered} samples): {action}",
            server_list(&self.agreeing),
            seconds(self.offset_ns),
            delay.as_secs_f64() * 1000.0,
            self.agreeing.len(),
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

/// How boot asks: samples per server, the wait for each, and the largest
/// step allowed (`ntp.max_step`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncPolicy {
    pub timeout_per_query: Duration,
    pub samples_per_server: u32,
    pub max_step: MaxStep,
}

/// [`sync_with`] on the real clock: needs root or CAP_SYS_TIME.
pub fn sync_at_boot(servers: &[String], policy: &SyncPolicy) -> Result<TimeReport, SntpError> {
    sync_with(servers, policy, &mut SystemClock, query)
}

/// Asks every server in `servers` for `samples_per_server` samples with
/// `query_fn` (a server whose first query fails is passed over), keeps
/// what a majority agrees on ([`select`](super::select)), then steps
/// `clock` if the offset exceeds [`STEP_THRESHOLD_NS`] and the policy's
/// `max_step` allows it, slews it when smaller; refuses otherwise and
/// leaves the clock alone.
pub fn sync_with(
    servers: &[String],
    policy: &SyncPolicy,
    clock: &mut dyn ClockAdjust,
    mut query_fn: impl FnMut(SocketAddr, Duration) -> Result<Sample, SntpError>,
) -> Result<TimeReport, SntpError> {
    if servers.is_empty() {
        return Err(SntpError::NoServers);
    }
    let mut failures = Vec::new();
    let mut estimates = Vec::new();
    for server in servers {
        let addr = match parse_server(server) {
            Ok(addr) => addr,
            Err(e) => {
                failures.push(e);
                continue;
            }
        };
        let mut samples = Vec::new();
        for _ in 0..policy.samples_per_server.max(1) {
            match query_fn(addr, policy.timeout_per_query) {
                Ok(sample) => samples.push(sample),
                // Down or unreachable: do not wait on it again.
                Err(e) if samples.is_empty() => {
                    failures.push(e);
                    break;
                }
                // A lost answer: the others may still agree.
                Err(_) => {}
            }
        }
        if samples.is_empty() {
            continue;
        }
        match select::estimate(addr, &samples) {
            Ok(e) => estimates.push(e),
            Err(e) => failures.push(e),
        }
    }
    if estimates.is_empty() {
        return Err(SntpError::NoServerAnswered { failures });
    }
    let choice = select::choose(estimates)?;
    let offset_ns = choice.offset_ns;
    let adjustment = if offset_ns.unsigned_abs() > STEP_THRESHOLD_NS.unsigned_abs() {
        if let MaxStep::Seconds(max_s) = policy.max_step {
            if offset_ns.unsigned_abs() > max_s.saturating_mul(NANOS_PER_SEC) {
                return Err(SntpError::StepRefused {
                    offset_ns,
                    max_step_s: max_s,
                    servers: server_list(&choice.agreeing),
                });
            }
        }
        clock.step(offset_ns).map_err(|source| SntpError::Step {
            servers: server_list(&choice.agreeing),
            offset_ns,
            source,
        })?;
        Adjustment::Stepped
    } else {
        clock.slew(offset_ns).map_err(|source| SntpError::Slew {
            servers: server_list(&choice.agreeing),
            offset_ns,
            source,
        })?;
        Adjustment::Slewed
    };
    Ok(TimeReport {
        offset_ns,
        adjustment,
        agreeing: choice.agreeing,
        disagreeing: choice.disagreeing,
        skipped: failures,
    })
}

/// `192.0.2.1, 192.0.2.2:1123`: the port only when it is not 123.
fn server_list(estimates: &[Estimate]) -> String {
    estimates
        .iter()
        .map(|e| show_server(e.server))
        .collect::<Vec<_>>()
        .join(", ")
}

fn show_server(server: SocketAddr) -> String {
    if server.port() == NTP_PORT {
        server.ip().to_string()
    } else {
        server.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const S: i64 = 1_000_000_000;
    const TIMEOUT: Duration = Duration::from_millis(100);

    /// Records what SNTP asked of the clock instead of doing it.
    #[derive(Default)]
    struct FakeClock {
        calls: Vec<(Adjustment, i64)>,
    }

    impl ClockAdjust for FakeClock {
        fn step(&mut self, offset_ns: i64) -> io::Result<()> {
            self.calls.push((Adjustment::Stepped, offset_ns));
            Ok(())
        }
        fn slew(&mut self, offset_ns: i64) -> io::Result<()> {
            self.calls.push((Adjustment::Slewed, offset_ns));
            Ok(())
        }
    }

    fn policy(max_step: MaxStep) -> SyncPolicy {
        SyncPolicy {
            timeout_per_query: TIMEOUT,
            samples_per_server: SAMPLES_PER_SERVER,
            max_step,
        }
    }

    fn bounded() -> SyncPolicy {
        policy(MaxStep::Seconds(settings::DEFAULT_NTP_MAX_STEP_S))
    }

    fn servers(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    /// Fake servers: each address answers its offsets in turn (with a
    /// little jitter), then times out; counts the queries.
    struct FakeNet {
        answers: HashMap<SocketAddr, Vec<i64>>,
        asked: HashMap<SocketAddr, usize>,
    }

    impl FakeNet {
        fn new(servers: &[(&str, &[i64])]) -> Self {
            Self {
                answers: servers
                    .iter()
                    .map(|(a, o)| (parse_server(a).expect("test address"), o.to_vec()))
                    .collect(),
                asked: HashMap::new(),
            }
        }

        fn query(&mut self, server: SocketAddr, timeout: Duration) -> Result<Sample, SntpError> {
            let n = self.asked.entry(server).or_default();
            *n += 1;
            let offsets = self.answers.get(&server).map(Vec::as_slice).unwrap_or(&[]);
            match offsets.get(*n - 1) {
                Some(offset_ns) => Ok(Sample {
                    offset_ns: offset_ns + i64::try_from(*n).expect("few") * 1_000_000,
                    delay: Duration::from_micros(1200),
                    stratum: 2,
                }),
                None => Err(SntpError::Timeout { server, timeout }),
            }
        }
    }

    /// Input: three servers, the second an hour ahead (a liar), the others
    /// 0.2 s ahead. Output: the clock is slewed by the others' offset; the
    /// liar is named in a warning and never used.
    #[test]
    fn one_liar_among_servers_is_outvoted() {
        let mut net = FakeNet::new(&[
            ("192.0.2.1", &[S / 5; 4]),
            ("192.0.2.2", &[3600 * S; 4]),
            ("192.0.2.3", &[S / 5; 4]),
        ]);
        let mut clock = FakeClock::default();
        let list = servers(&["192.0.2.1", "192.0.2.2", "192.0.2.3"]);
        let report =
            sync_with(&list, &bounded(), &mut clock, |a, t| net.query(a, t)).expect("2 of 3");
        assert_eq!(report.adjustment, Adjustment::Slewed);
        assert_eq!(clock.calls, vec![(Adjustment::Slewed, report.offset_ns)]);
        assert!((report.offset_ns - S / 5).abs() < 10_000_000, "{report}");
        let line = report.to_string();
        assert!(
            line.starts_with("time: synchronised with 192.0.2.1, 192.0.2.3 (offset +0.2"),
            "{line}"
        );
        assert!(
            line.contains("2 of 3 servers agree, 8 of 8 samples"),
            "{line}"
        );
        let warnings = report.warnings();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains("192.0.2.2 says the clock is off by +3600.00"),
            "{warnings:?}"
        );
        assert_eq!(net.asked.values().sum::<usize>(), 12, "4 samples from each");
    }

    /// Input: one server whose first answer says an hour ahead and whose
    /// other answers are lost. Output: no step, no slew: one answer is
    /// never enough; the error says how many agreed.
    #[test]
    fn a_single_answer_with_a_huge_offset_is_refused() {
        let mut net = FakeNet::new(&[("192.0.2.1", &[3600 * S])]);
        let mut clock = FakeClock::default();
        let err = sync_with(
            &servers(&["192.0.2.1"]),
            &policy(MaxStep::Any),
            &mut clock,
            |a, t| net.query(a, t),
        )
        .expect_err("one answer");
        assert!(clock.calls.is_empty(), "{:?}", clock.calls);
        let text = err.to_string();
        assert!(text.contains("only 1 of its 1 answers agree"), "{text}");
    }

    /// Input: two servers that agree the clock is an hour behind, with the
    /// default ntp.max_step, then with `any` and with a bound above an
    /// hour. Output: refused (clock untouched, the error names the
    /// setting), then stepped by the hour both times.
    #[test]
    fn a_huge_step_needs_the_setting() {
        let table: &[(&str, &[i64])] = &[
            ("192.0.2.1", &[-3600 * S; 4]),
            ("[2001:db8::1]:1123", &[-3600 * S; 4]),
        ];
        let list = servers(&["192.0.2.1", "[2001:db8::1]:1123"]);
        let mut net = FakeNet::new(table);
        let mut clock = FakeClock::default();
        let err = sync_with(&list, &bounded(), &mut clock, |a, t| net.query(a, t))
            .expect_err("beyond 1000 s");
        assert!(clock.calls.is_empty(), "{:?}", clock.calls);
        let text = err.to_string();
        assert!(
            text.starts_with("refusing to step the clock by -3599.99"),
            "{text}"
        );
        assert!(text.contains("192.0.2.1, [2001:db8::1]:1123"), "{text}");
        assert!(text.contains("ntp.max_step (1000 s)"), "{text}");

        for allowed in [MaxStep::Any, MaxStep::Seconds(7200)] {
            let mut net = FakeNet::new(table);
            let mut clock = FakeClock::default();
            let report = sync_with(&list, &policy(allowed), &mut clock, |a, t| net.query(a, t))
                .expect("allowed");
            assert_eq!(report.adjustment, Adjustment::Stepped, "{allowed:?}");
            assert_eq!(clock.calls, vec![(Adjustment::Stepped, report.offset_ns)]);
            assert!((report.offset_ns + 3600 * S).abs() < 10_000_000);
            assert!(report.to_string().ends_with("): STEPPED"), "{report}");
        }
    }

    /// Input: two servers an hour apart. Output: no majority; the clock
    /// is left alone and the error gives both offsets.
    #[test]
    fn two_servers_that_disagree_leave_the_clock_alone() {
        let mut net = FakeNet::new(&[("192.0.2.1", &[0; 4]), ("192.0.2.2", &[3600 * S; 4])]);
        let mut clock = FakeClock::default();
        let err = sync_with(
            &servers(&["192.0.2.1", "192.0.2.2"]),
            &policy(MaxStep::Any),
            &mut clock,
            |a, t| net.query(a, t),
        )
        .expect_err("1 of 2");
        assert!(clock.calls.is_empty());
        let text = err.to_string();
        assert!(
            text.starts_with("NTP servers disagree (192.0.2.1 says +0.0"),
            "{text}"
        );
        assert!(text.contains("192.0.2.2 says +3600.00"), "{text}");
    }

    /// Input: a server that does not answer, then one that does. Output:
    /// the silent one is asked once (boot does not wait on it four times)
    /// and named in a warning; the other's samples set the clock.
    #[test]
    fn a_silent_server_is_asked_once() {
        let mut net = FakeNet::new(&[("192.0.2.2", &[-S / 100; 4])]);
        let mut clock = FakeClock::default();
        let report = sync_with(
            &servers(&["192.0.2.1", "192.0.2.2"]),
            &bounded(),
            &mut clock,
            |a, t| net.query(a, t),
        )
        .expect("one good server");
        assert_eq!(net.asked[&parse_server("192.0.2.1").expect("ip")], 1);
        assert_eq!(report.adjustment, Adjustment::Slewed);
        let warnings = report.warnings();
        assert_eq!(warnings.len(), 1);
        assert!(
            warnings[0].contains("192.0.2.1:123: no reply"),
            "{warnings:?}"
        );
    }
}
