//! RSS with idle connections: a helper (this same binary, `cargo xtask bench
//! lb-idle-client ADDR N`, run in the client namespace) opens N TCP
//! connections through the proxy, says so on stdout and holds them until its
//! stdin closes; the bench meanwhile waits until the proxy holds them too
//! (two descriptors each) and reads its VmRSS.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Stdio;
use std::time::Duration;

use super::error::BenchError;
use super::netns::{Ns, Topology, PROXY_FRONT_ADDR};
use super::procs::{describe, fd_count, rss_kib, Daemon};
use super::servers::{Limits, HTTP_PORT, LOAD_CPU};

pub const SUBCOMMAND: &str = "lb-idle-client";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the proxy may take to accept and connect all of them.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);

/// The helper: `lb-idle-client ADDR N`.
pub fn client(args: &[String]) -> Result<(), BenchError> {
    let usage = || BenchError::Usage(format!("{SUBCOMMAND} ADDR:PORT COUNT"));
    let addr: SocketAddr = args
        .first()
        .and_then(|a| a.parse().ok())
        .ok_or_else(usage)?;
    let count: usize = args.get(1).and_then(|n| n.parse().ok()).ok_or_else(usage)?;
    let mut held = Vec::with_capacity(count);
    for i in 0..count {
        let s = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT).map_err(|source| {
            BenchError::Io {
                what: format!(
                    "idle connection {} of {count} to {addr} (open-file limit?)",
                    i + 1
                ),
                source,
            }
        })?;
        held.push(s);
    }
    let mut out = std::io::stdout();
    writeln!(out, "connected {}", held.len())
        .and_then(|()| out.flush())
        .map_err(|source| BenchError::Io {
            what: "telling the bench".into(),
            source,
        })?;
    // Hold them until the bench closes our stdin.
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    drop(held);
    Ok(())
}

/// Opens `count` idle connections through the proxy and returns the proxy's
/// VmRSS in KiB before and once it holds them all.
pub fn rss_with_idle(
    topo: &Topology,
    proxy: &mut Daemon,
    count: usize,
    limits: Limits,
) -> Result<(u64, u64), BenchError> {
    let before_kib = rss_kib(proxy.pid())?;
    let exe = std::env::current_exe().map_err(|source| BenchError::Io {
        what: "finding the xtask binary for the idle client".into(),
        source,
    })?;
    let mut cmd = topo.exec(Ns::Client);
    cmd.args(["prlimit", &limits.prlimit()])
        .args(["taskset", "-c", LOAD_CPU])
        .arg(exe)
        .args(["bench", SUBCOMMAND])
        .arg(format!("{PROXY_FRONT_ADDR}:{HTTP_PORT}"))
        .arg(count.to_string());
    let command = describe(&cmd);
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| BenchError::Spawn {
            command: command.clone(),
            source,
        })?;
    let mut line = String::new();
    if let Some(out) = child.stdout.take() {
        let _ = BufReader::new(out).read_line(&mut line);
    }
    let result = if line.starts_with("connected") {
        let before = fd_count(proxy.pid());
        // Each proxied connection holds a client and a server socket.
        proxy
            .wait_until(
                &format!("hold {count} connections (had {before} fds)"),
                SETTLE_TIMEOUT,
                |pid| fd_count(pid) >= 2 * count,
            )
            .and_then(|()| rss_kib(proxy.pid()))
            .map(|with| (before_kib, with))
    } else {
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        Err(BenchError::CommandFailed {
            command: command.clone(),
            status: "no 'connected' line".into(),
            stderr: err,
        })
    };
    // Closing stdin lets the helper drop its connections and exit.
    drop(child.stdin.take());
    let _ = child.wait();
    result
}
