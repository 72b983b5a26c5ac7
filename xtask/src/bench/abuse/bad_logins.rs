//! Bad logins at a paced rate: a helper (this same binary, `cargo xtask
//! bench abuse-bad-logins ADDR RATE SECONDS GRACE`, run in the client
//! namespace) sends RATE requests a second for SECONDS to the proxy's stats
//! page, each on a new connection, with HTTP Basic and a wrong password. It
//! waits GRACE more seconds for the answers still due, then prints one
//! tally line and exits:
//!
//! ```text
//! sent=500 connect_failed=0 unanswered=3 401=497
//! ```
//!
//! Each attempt has its own thread, so a proxy that answers slowly (lbd
//! delays repeated failures from one address and verifies one argon2id
//! hash at a time) does not slow the pace: attempts pile up instead, as
//! they would from a real client.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::super::error::BenchError;
use super::super::netns::{Ns, Topology, PROXY_FRONT_ADDR};
use super::super::procs::Daemon;
use super::super::servers::{Limits, LOAD_CPU};
use super::configs::STATS_PORT;

pub const SUBCOMMAND: &str = "abuse-bad-logins";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// An attempt's thread does little: a connect, a write, a short read.
const ATTEMPT_STACK: usize = 64 * 1024;
/// base64 of `admin:wrong-password` (configs::STATS_USER and a password neither
/// proxy has), for the `Authorization: Basic` header.
const WRONG_CREDENTIALS_B64: &str = "YWRtaW46d3JvbmctcGFzc3dvcmQ=";
/// How long past its SECONDS + GRACE the bench lets the helper run.
const EXIT_SLACK: Duration = Duration::from_secs(10);
/// How often the helper looks whether its attempts are done.
const POLL: Duration = Duration::from_millis(50);

/// The request every attempt sends.
fn request() -> String {
    format!(
        "GET / HTTP/1.1\r\nHost: {PROXY_FRONT_ADDR}:{STATS_PORT}\r\nAuthorization: Basic {WRONG_CREDENTIALS_B64}\r\nConnection: close\r\n\r\n"
    )
}

/// What the attempts got.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Tally {
    pub sent: u64,
    pub connect_failed: u64,
    /// Attempts with no status line by the end (closed, timed out, or still
    /// waiting).
    pub unanswered: u64,
    /// Answers by HTTP status.
    pub answered: BTreeMap<u16, u64>,
}

impl Tally {
    pub fn answered_total(&self) -> u64 {
        self.answered.values().sum()
    }

    pub fn line(&self) -> String {
        let mut s = format!(
            "sent={} connect_failed={} unanswered={}",
            self.sent, self.connect_failed, self.unanswered
        );
        for (status, n) in &self.answered {
            s.push_str(&format!(" {status}={n}"));
        }
        s
    }

    /// Parses [`Tally::line`].
    pub fn parse(line: &str) -> Option<Tally> {
        let mut t = Tally::default();
        let mut seen_sent = false;
        for pair in line.split_whitespace() {
            let (k, v) = pair.split_once('=')?;
            let v: u64 = v.parse().ok()?;
            match k {
                "sent" => {
                    t.sent = v;
                    seen_sent = true;
                }
                "connect_failed" => t.connect_failed = v,
                "unanswered" => t.unanswered = v,
                status => {
                    t.answered.insert(status.parse().ok()?, v);
                }
            }
        }
        seen_sent.then_some(t)
    }
}

/// The status code of an HTTP/1 status line at the start of `head`.
pub fn status_of(head: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(head.get(..12)?).ok()?;
    let rest = text.strip_prefix("HTTP/1.")?;
    rest.get(2..5)?.parse().ok()
}

enum Outcome {
    ConnectFailed,
    Status(u16),
    NoAnswer,
}

fn attempt(addr: SocketAddr, deadline: Instant) -> Outcome {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) else {
        return Outcome::ConnectFailed;
    };
    let wait = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(1));
    if s.set_read_timeout(Some(wait)).is_err() || s.write_all(request().as_bytes()).is_err() {
        return Outcome::NoAnswer;
    }
    let mut head = Vec::with_capacity(64);
    let mut buf = [0u8; 256];
    while head.len() < 12 {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return Outcome::NoAnswer,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    status_of(&head).map_or(Outcome::NoAnswer, Outcome::Status)
}

fn usage() -> BenchError {
    BenchError::Usage(format!("{SUBCOMMAND} ADDR:PORT RATE SECONDS GRACE_SECONDS"))
}

/// The helper: `abuse-bad-logins ADDR RATE SECONDS GRACE`.
pub fn client(args: &[String]) -> Result<(), BenchError> {
    let addr: SocketAddr = args
        .first()
        .and_then(|a| a.parse().ok())
        .ok_or_else(usage)?;
    let num = |i: usize| -> Result<u64, BenchError> {
        args.get(i)
            .and_then(|n| n.parse().ok())
            .filter(|n| *n > 0 || i == 3)
            .ok_or_else(usage)
    };
    let (rate, seconds, grace) = (num(1)?, num(2)?, num(3)?);
    let total = rate * seconds;
    let start = Instant::now();
    let end_of_sending = start + Duration::from_secs(seconds);
    let deadline = end_of_sending + Duration::from_secs(grace);
    let tally = Arc::new(Mutex::new(Tally::default()));
    let mut threads = Vec::new();
    for i in 0..total {
        // An absolute schedule: a late send does not push the later ones.
        let due = start + Duration::from_secs_f64(i as f64 / rate as f64);
        thread::sleep(due.saturating_duration_since(Instant::now()));
        let shared = Arc::clone(&tally);
        let spawned = thread::Builder::new()
            .stack_size(ATTEMPT_STACK)
            .spawn(move || {
                let outcome = attempt(addr, deadline);
                if let Ok(mut t) = shared.lock() {
                    match outcome {
                        Outcome::ConnectFailed => t.connect_failed += 1,
                        Outcome::Status(s) => *t.answered.entry(s).or_default() += 1,
                        Outcome::NoAnswer => {}
                    }
                }
            });
        if let Ok(mut t) = tally.lock() {
            t.sent += 1;
            if spawned.is_err() {
                t.connect_failed += 1;
            }
        }
        if let Ok(h) = spawned {
            threads.push(h);
        }
    }
    // Wait for the answers still due, but not past the deadline: the
    // attempts still waiting then count as unanswered.
    while Instant::now() < deadline && threads.iter().any(|h| !h.is_finished()) {
        thread::sleep(POLL);
    }
    let mut t = tally.lock().map(|t| t.clone()).unwrap_or_default();
    t.unanswered = t.sent - t.connect_failed - t.answered_total();
    let mut out = std::io::stdout();
    writeln!(out, "{}", t.line())
        .and_then(|()| out.flush())
        .map_err(|source| BenchError::Io {
            what: "printing the bad-login tally".into(),
            source,
        })?;
    // Threads still waiting end with the process.
    std::process::exit(0);
}

/// The helper running in the client namespace.
pub struct BadLogins {
    helper: Daemon,
    log: std::path::PathBuf,
    runs_for: Duration,
}

impl BadLogins {
    /// Starts `rate` bad logins a second for `seconds`, then `grace` seconds
    /// for the last answers.
    pub fn start(
        topo: &Topology,
        dir: &Path,
        limits: Limits,
        rate: u64,
        seconds: u64,
        grace: u64,
    ) -> Result<Self, BenchError> {
        let exe = std::env::current_exe().map_err(|source| BenchError::Io {
            what: "finding the xtask binary for the bad-login helper".into(),
            source,
        })?;
        let mut cmd = topo.exec(Ns::Client);
        cmd.args(["prlimit", &limits.prlimit()])
            .args(["taskset", "-c", LOAD_CPU])
            .arg(exe)
            .args(["bench", SUBCOMMAND])
            .arg(format!("{PROXY_FRONT_ADDR}:{STATS_PORT}"))
            .args([rate, seconds, grace].map(|n| n.to_string()));
        let log = dir.join("bad-logins.out");
        let helper = Daemon::spawn("bad-login helper", cmd, &log)?;
        Ok(Self {
            helper,
            log,
            runs_for: Duration::from_secs(seconds + grace),
        })
    }

    /// Waits for the helper's tally.
    pub fn finish(mut self, started: Instant) -> Result<Tally, BenchError> {
        let left = (started + self.runs_for + EXIT_SLACK).saturating_duration_since(Instant::now());
        let ok = self.helper.wait_exit(left)?;
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let tally = text.lines().rev().find_map(Tally::parse);
        match (ok, tally) {
            (true, Some(t)) => Ok(t),
            _ => Err(BenchError::CommandFailed {
                command: format!("{SUBCOMMAND} (the bad-login helper)"),
                status: if ok {
                    "no tally line".into()
                } else {
                    "failed or did not finish in time".into()
                },
                stderr: text,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_credentials_are_the_admin_user_with_a_wrong_password() {
        // base64("admin:wrong-password"), checked by hand against the table
        // of RFC 4648: "adm" -> YWRt, "in:" -> aW46, "wro" -> d3Jv,
        // "ng-" -> bmct, "pas" -> cGFz, "swo" -> c3dv, "rd" -> cmQ=.
        assert_eq!(super::super::configs::STATS_USER, "admin");
        assert_eq!(
            WRONG_CREDENTIALS_B64,
            ["YWRt", "aW46", "d3Jv", "bmct", "cGFz", "c3dv", "cmQ="].concat()
        );
        let r = request();
        assert!(r.starts_with("GET / HTTP/1.1\r\n"));
        assert!(r.ends_with("Connection: close\r\n\r\n"));
    }

    #[test]
    fn status_lines_are_read() {
        assert_eq!(status_of(b"HTTP/1.1 401 Unauthorized\r\n"), Some(401));
        assert_eq!(status_of(b"HTTP/1.0 503 Service"), Some(503));
        assert_eq!(status_of(b"HTTP/1.1 40"), None);
        assert_eq!(status_of(b"SSH-2.0-OpenSSH_9"), None);
    }

    #[test]
    fn the_tally_line_round_trips() {
        let t = Tally {
            sent: 500,
            connect_failed: 1,
            unanswered: 3,
            answered: BTreeMap::from([(401, 490), (503, 6)]),
        };
        assert_eq!(
            t.line(),
            "sent=500 connect_failed=1 unanswered=3 401=490 503=6"
        );
        assert_eq!(Tally::parse(&t.line()), Some(t));
        assert_eq!(Tally::parse("connected 5"), None);
        assert_eq!(Tally::parse("connect_failed=1"), None);
        assert_eq!(Tally::parse("sent=x"), None);
    }
}
