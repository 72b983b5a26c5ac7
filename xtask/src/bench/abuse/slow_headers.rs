//! Slow-header connections (slowloris): a helper (this same binary, `cargo
//! xtask bench abuse-slow-headers ADDR COUNT INTERVAL_MS`, run in the
//! client namespace) opens COUNT connections and on each sends a request
//! header one byte every INTERVAL_MS, never finishing it:
//!
//! ```text
//! GET / HTTP/1.1\r\nHost: bench\r\nX-Slow: aaaaaaaa...   (no blank line, ever)
//! ```
//!
//! It prints `connected N failed F` once the connects are done, and when
//! its stdin closes, one tally line and exits:
//!
//! ```text
//! opened=1000 connect_failed=0 open=512 closed=488 408=488
//! ```
//!
//! `open` counts the connections the proxy has not closed (from the
//! client's side a connection still waiting in the listen backlog is open
//! too); `closed` those it closed, and by status those it answered first
//! (HAProxy sends 408 when `timeout http-request` fires).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use super::super::error::BenchError;
use super::super::netns::{Ns, Topology, PROXY_FRONT_ADDR};
use super::super::procs::describe;
use super::super::servers::{Limits, LOAD_CPU};
use super::bad_logins::status_of;
use super::configs::SLOW_PORT;

pub const SUBCOMMAND: &str = "abuse-slow-headers";
/// A byte per connection this often: far inside any inactivity timeout, so
/// only a timeout on the whole header (HAProxy's `timeout http-request`)
/// ends these connections.
pub const BYTE_INTERVAL: Duration = Duration::from_secs(3);
/// The start of the header; after it, `a` forever.
const HEADER_START: &[u8] = b"GET / HTTP/1.1\r\nHost: bench\r\nX-Slow: ";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Connects in parallel, so connects the proxy's backlog drops (each costs
/// CONNECT_TIMEOUT) do not add up.
const CONNECT_THREADS: usize = 32;
const TICK: Duration = Duration::from_millis(50);

/// The `i`-th byte a connection sends.
fn header_byte(i: usize) -> u8 {
    HEADER_START.get(i).copied().unwrap_or(b'a')
}

/// What the helper reports at the end.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SlowTally {
    pub opened: u64,
    pub connect_failed: u64,
    pub open: u64,
    pub closed: u64,
    /// Of the closed ones, those answered first, by HTTP status.
    pub answered: BTreeMap<u16, u64>,
}

impl SlowTally {
    pub fn line(&self) -> String {
        let mut s = format!(
            "opened={} connect_failed={} open={} closed={}",
            self.opened, self.connect_failed, self.open, self.closed
        );
        for (status, n) in &self.answered {
            s.push_str(&format!(" {status}={n}"));
        }
        s
    }

    pub fn parse(line: &str) -> Option<SlowTally> {
        let mut t = SlowTally::default();
        let mut seen = false;
        for pair in line.split_whitespace() {
            let (k, v) = pair.split_once('=')?;
            let v: u64 = v.parse().ok()?;
            match k {
                "opened" => {
                    t.opened = v;
                    seen = true;
                }
                "connect_failed" => t.connect_failed = v,
                "open" => t.open = v,
                "closed" => t.closed = v,
                status => {
                    t.answered.insert(status.parse().ok()?, v);
                }
            }
        }
        seen.then_some(t)
    }
}

/// One slow connection, from the client's side.
struct Slow {
    stream: TcpStream,
    sent: usize,
    /// None while open; Some(status) once closed (None inside: no answer).
    closed: Option<Option<u16>>,
}

impl Slow {
    /// Looks whether the proxy answered or closed; returns whether the
    /// connection is still open.
    fn poll(&mut self) -> bool {
        if self.closed.is_some() {
            return false;
        }
        let mut buf = [0u8; 512];
        match self.stream.read(&mut buf) {
            Err(e) if e.kind() == ErrorKind::WouldBlock => true,
            Ok(0) | Err(_) => {
                self.closed = Some(None);
                false
            }
            Ok(n) => {
                // An answer to a request never finished is the proxy
                // giving up on it (408, 400); it closes next.
                self.closed = Some(status_of(&buf[..n]));
                false
            }
        }
    }

    /// Sends the next byte if still open.
    fn dribble(&mut self) {
        if !self.poll() {
            return;
        }
        match self.stream.write(&[header_byte(self.sent)]) {
            Ok(n) => self.sent += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(_) => self.closed = Some(None),
        }
    }
}

fn connect_all(addr: SocketAddr, count: usize) -> (Vec<TcpStream>, usize) {
    let per_thread = count.div_ceil(CONNECT_THREADS);
    let handles: Vec<_> = (0..CONNECT_THREADS)
        .map(|t| {
            let n = per_thread.min(count.saturating_sub(t * per_thread));
            thread::spawn(move || {
                let mut ok = Vec::with_capacity(n);
                let mut failed = 0;
                for _ in 0..n {
                    match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
                        Ok(s) => ok.push(s),
                        Err(_) => failed += 1,
                    }
                }
                (ok, failed)
            })
        })
        .collect();
    let mut streams = Vec::with_capacity(count);
    let mut failed = 0;
    for h in handles {
        match h.join() {
            Ok((ok, f)) => {
                streams.extend(ok);
                failed += f;
            }
            Err(_) => failed += per_thread,
        }
    }
    (streams, failed)
}

fn usage() -> BenchError {
    BenchError::Usage(format!("{SUBCOMMAND} ADDR:PORT COUNT INTERVAL_MS"))
}

/// The helper: `abuse-slow-headers ADDR COUNT INTERVAL_MS`.
pub fn client(args: &[String]) -> Result<(), BenchError> {
    let addr: SocketAddr = args
        .first()
        .and_then(|a| a.parse().ok())
        .ok_or_else(usage)?;
    let count: usize = args.get(1).and_then(|n| n.parse().ok()).ok_or_else(usage)?;
    let interval = args
        .get(2)
        .and_then(|n| n.parse().ok())
        .filter(|ms| *ms > 0)
        .map(Duration::from_millis)
        .ok_or_else(usage)?;
    let (streams, failed) = connect_all(addr, count);
    let mut conns: Vec<Slow> = streams
        .into_iter()
        .filter(|s| s.set_nonblocking(true).is_ok())
        .map(|stream| Slow {
            stream,
            sent: 0,
            closed: None,
        })
        .collect();
    let io_err = |what: &str| {
        let what = what.to_string();
        move |source| BenchError::Io { what, source }
    };
    let mut out = std::io::stdout();
    writeln!(out, "connected {} failed {failed}", conns.len())
        .and_then(|()| out.flush())
        .map_err(io_err("telling the bench"))?;

    // The bench closes our stdin to stop us.
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
        flag.store(true, Ordering::SeqCst);
    });
    let mut next = Instant::now();
    while !stop.load(Ordering::SeqCst) {
        if Instant::now() >= next {
            conns.iter_mut().for_each(Slow::dribble);
            next += interval;
        }
        thread::sleep(TICK);
    }
    let mut t = SlowTally {
        opened: conns.len() as u64,
        connect_failed: failed as u64,
        ..SlowTally::default()
    };
    for c in &mut conns {
        if c.poll() {
            t.open += 1;
        } else {
            t.closed += 1;
            if let Some(Some(status)) = c.closed {
                *t.answered.entry(status).or_default() += 1;
            }
        }
    }
    writeln!(out, "{}", t.line())
        .and_then(|()| out.flush())
        .map_err(io_err("printing the slow-header tally"))
}

/// The helper running in the client namespace, holding its connections.
pub struct SlowHeaders {
    child: Child,
    command: String,
    stdout: BufReader<std::process::ChildStdout>,
    pub connected: u64,
}

impl SlowHeaders {
    /// Opens `count` slow connections to the slow frontend; returns once
    /// the connects are done.
    pub fn open(topo: &Topology, limits: Limits, count: usize) -> Result<Self, BenchError> {
        let exe = std::env::current_exe().map_err(|source| BenchError::Io {
            what: "finding the xtask binary for the slow-header helper".into(),
            source,
        })?;
        let mut cmd = topo.exec(Ns::Client);
        cmd.args(["prlimit", &limits.prlimit()])
            .args(["taskset", "-c", LOAD_CPU])
            .arg(exe)
            .args(["bench", SUBCOMMAND])
            .arg(format!("{PROXY_FRONT_ADDR}:{SLOW_PORT}"))
            .arg(count.to_string())
            .arg(BYTE_INTERVAL.as_millis().to_string());
        let command = describe(&cmd);
        eprintln!("  start slow-header helper: {command}");
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|source| BenchError::Spawn {
                command: command.clone(),
                source,
            })?;
        let Some(out) = child.stdout.take() else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(BenchError::CommandFailed {
                command,
                status: "no stdout pipe".into(),
                stderr: String::new(),
            });
        };
        let mut stdout = BufReader::new(out);
        let mut line = String::new();
        let _ = stdout.read_line(&mut line);
        let connected = line
            .strip_prefix("connected ")
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse().ok());
        let Some(connected) = connected else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(BenchError::CommandFailed {
                command,
                status: format!("no 'connected N' line (got {:?})", line.trim()),
                stderr: "see the helper's stderr above".into(),
            });
        };
        Ok(Self {
            child,
            command,
            stdout,
            connected,
        })
    }

    /// Stops the helper and returns what became of its connections.
    pub fn finish(mut self) -> Result<SlowTally, BenchError> {
        drop(self.child.stdin.take());
        let mut rest = String::new();
        let _ = self.stdout.read_to_string(&mut rest);
        let status = self.child.wait().map_err(|source| BenchError::Spawn {
            command: self.command.clone(),
            source,
        })?;
        match rest.lines().rev().find_map(SlowTally::parse) {
            Some(t) if status.success() => Ok(t),
            _ => Err(BenchError::CommandFailed {
                command: self.command.clone(),
                status: status.to_string(),
                stderr: format!("no tally line; it printed {rest:?}"),
            }),
        }
    }
}

impl Drop for SlowHeaders {
    fn drop(&mut self) {
        // Our own child, by its pid; errors mean it is already gone.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_never_ends() {
        let sent: Vec<u8> = (0..200).map(header_byte).collect();
        assert!(sent.starts_with(b"GET / HTTP/1.1\r\nHost: bench\r\n"));
        // Only the request line and the Host line end; no blank line.
        assert_eq!(sent.windows(2).filter(|w| w == b"\r\n").count(), 2);
        assert!(!sent.windows(4).any(|w| w == b"\r\n\r\n"));
        assert_eq!(header_byte(100_000), b'a');
    }

    #[test]
    fn the_tally_line_round_trips() {
        let t = SlowTally {
            opened: 1000,
            connect_failed: 0,
            open: 512,
            closed: 488,
            answered: BTreeMap::from([(408, 488)]),
        };
        assert_eq!(
            t.line(),
            "opened=1000 connect_failed=0 open=512 closed=488 408=488"
        );
        assert_eq!(SlowTally::parse(&t.line()), Some(t));
        assert_eq!(SlowTally::parse("connected 1000 failed 0"), None);
    }

    #[test]
    fn a_closed_or_answered_connection_is_seen() {
        use std::net::TcpListener;
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut slows = Vec::new();
        let mut servers = Vec::new();
        for _ in 0..3 {
            let stream = TcpStream::connect(addr).expect("connect");
            stream.set_nonblocking(true).expect("nonblocking");
            slows.push(Slow {
                stream,
                sent: 0,
                closed: None,
            });
            servers.push(listener.accept().expect("accept").0);
        }
        // One stays open, one is answered 408 and closed, one just closed.
        servers[1]
            .write_all(b"HTTP/1.1 408 Request Time-out\r\n\r\n")
            .expect("answer");
        drop(servers.remove(2));
        drop(servers.remove(1));
        // The answers arrive on loopback at once; poll until they show.
        let deadline = Instant::now() + Duration::from_secs(5);
        while slows[1].closed.is_none() || slows[2].closed.is_none() {
            slows.iter_mut().for_each(Slow::dribble);
            assert!(Instant::now() < deadline, "closes not seen");
            thread::sleep(Duration::from_millis(5));
        }
        assert!(slows[0].poll());
        assert_eq!(slows[1].closed, Some(Some(408)));
        assert_eq!(slows[2].closed, Some(None));
        let mut got = [0u8; 8];
        let n = servers[0].read(&mut got).expect("read");
        assert!(n >= 1 && b"GET / HT".starts_with(&got[..n]));
    }
}
