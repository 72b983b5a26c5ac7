//! Processes the bench starts: daemons killed when their guard drops, load
//! generators run to the end (or killed on Ctrl-C), and what /proc says
//! about the proxy (CPU time, RSS, open files, listening ports).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use super::error::BenchError;

/// How often waits look at their child, their condition and Ctrl-C.
const POLL: Duration = Duration::from_millis(50);

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Ctrl-C and SIGTERM set a flag; every wait checks it, so the guards
/// unwind and clean up instead of the process dying with namespaces left.
pub fn catch_interrupts() -> Result<(), BenchError> {
    ctrlc::set_handler(|| INTERRUPTED.store(true, Ordering::SeqCst)).map_err(|e| BenchError::Io {
        what: "installing the Ctrl-C handler".into(),
        source: std::io::Error::other(e),
    })
}

pub fn check_interrupted() -> Result<(), BenchError> {
    if INTERRUPTED.load(Ordering::SeqCst) {
        return Err(BenchError::Interrupted);
    }
    Ok(())
}

/// Sleeps, but returns early with an error on Ctrl-C.
pub fn sleep(d: Duration) -> Result<(), BenchError> {
    let end = Instant::now() + d;
    while Instant::now() < end {
        check_interrupted()?;
        thread::sleep(POLL.min(end.saturating_duration_since(Instant::now())));
    }
    check_interrupted()
}

pub fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

fn log_file(path: &Path) -> Result<File, BenchError> {
    File::create(path).map_err(|source| BenchError::Write {
        path: path.to_path_buf(),
        source,
    })
}

fn read_log(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let tail: Vec<&str> = text.lines().rev().take(20).collect();
    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
}

/// A background process killed (SIGKILL) and reaped when dropped.
pub struct Daemon {
    pub name: String,
    child: Child,
    log: PathBuf,
}

impl Daemon {
    /// Starts `cmd` with stdout and stderr to `log`.
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> Result<Self, BenchError> {
        let out = log_file(log)?;
        let err = out.try_clone().map_err(|source| BenchError::Write {
            path: log.to_path_buf(),
            source,
        })?;
        let command = describe(&cmd);
        eprintln!("  start {name}: {command}");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|source| BenchError::Spawn { command, source })?;
        Ok(Self {
            name: name.to_string(),
            child,
            log: log.to_path_buf(),
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log_tail(&self) -> String {
        read_log(&self.log)
    }

    /// Sends `signal` (a `kill -s` name: TERM, KILL, STOP) to the process.
    pub fn signal(&self, signal: &str) -> Result<(), BenchError> {
        send_signal(self.pid(), signal)
    }

    /// Whether the process has not exited yet.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits for the process to exit; kills it (SIGKILL) after `timeout`.
    /// Returns whether it exited by itself with status 0.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<bool, BenchError> {
        let end = Instant::now() + timeout;
        loop {
            check_interrupted()?;
            if let Ok(Some(status)) = self.child.try_wait() {
                return Ok(status.success());
            }
            if Instant::now() >= end {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return Ok(false);
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits until `ready` holds, failing if the process exits first.
    pub fn wait_until(
        &mut self,
        until: &str,
        timeout: Duration,
        mut ready: impl FnMut(u32) -> bool,
    ) -> Result<(), BenchError> {
        let end = Instant::now() + timeout;
        loop {
            check_interrupted()?;
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(BenchError::CommandFailed {
                    command: self.name.clone(),
                    status: status.to_string(),
                    stderr: self.log_tail(),
                });
            }
            if ready(self.pid()) {
                return Ok(());
            }
            if Instant::now() >= end {
                return Err(BenchError::NotReady {
                    what: self.name.clone(),
                    until: until.to_string(),
                    seconds: timeout.as_secs(),
                    log: self.log_tail(),
                });
            }
            thread::sleep(POLL);
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // Our own child, by its pid; errors mean it is already gone.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `kill -s SIGNAL PID`, for a process the bench started.
pub fn send_signal(pid: u32, signal: &str) -> Result<(), BenchError> {
    let mut cmd = Command::new("kill");
    cmd.args(["-s", signal, &pid.to_string()]);
    checked(cmd)
}

/// Runs `cmd` to the end; a non-zero exit is an error carrying its stderr.
pub fn checked(mut cmd: Command) -> Result<(), BenchError> {
    let command = describe(&cmd);
    let out = cmd.output().map_err(|source| BenchError::Spawn {
        command: command.clone(),
        source,
    })?;
    if !out.status.success() {
        return Err(BenchError::CommandFailed {
            command,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(())
}

/// Runs `cmd` to the end with stdout to `out` and returns stdout; kills it
/// on Ctrl-C. Fails on a non-zero exit, with the tail of its output.
pub fn run_to_end(mut cmd: Command, out: &Path) -> Result<String, BenchError> {
    let command = describe(&cmd);
    let err_path = out.with_extension("stderr");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(log_file(out)?)
        .stderr(log_file(&err_path)?)
        .spawn()
        .map_err(|source| BenchError::Spawn {
            command: command.clone(),
            source,
        })?;
    let status = loop {
        if let Err(e) = check_interrupted() {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => thread::sleep(POLL),
            Err(source) => return Err(BenchError::Spawn { command, source }),
        }
    };
    let stdout = std::fs::read_to_string(out).map_err(|source| BenchError::Read {
        path: out.to_path_buf(),
        source,
    })?;
    if !status.success() {
        return Err(BenchError::CommandFailed {
            command,
            status: status.to_string(),
            stderr: format!("{}\n{}", read_log(&err_path), read_log(out)),
        });
    }
    Ok(stdout)
}

fn proc_file(pid: u32, name: &str) -> Result<String, BenchError> {
    let path = PathBuf::from(format!("/proc/{pid}/{name}"));
    std::fs::read_to_string(&path).map_err(|source| BenchError::Read { path, source })
}

/// utime + stime of the whole process (all threads), in clock ticks.
pub fn cpu_ticks(pid: u32) -> Result<u64, BenchError> {
    let stat = proc_file(pid, "stat")?;
    parse_cpu_ticks(&stat).ok_or_else(|| BenchError::Parse {
        what: format!("/proc/{pid}/stat"),
        detail: "no utime/stime fields".into(),
        output: stat.clone(),
    })
}

/// Fields 14 and 15 (utime, stime) of /proc/PID/stat, counted after the
/// command name, which is in parentheses and may hold spaces.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // `after` starts at field 3 (state): utime is field 14, index 11.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// VmRSS from /proc/PID/status, in KiB.
pub fn rss_kib(pid: u32) -> Result<u64, BenchError> {
    let status = proc_file(pid, "status")?;
    parse_vm_rss(&status).ok_or_else(|| BenchError::Parse {
        what: format!("/proc/{pid}/status"),
        detail: "no VmRSS line".into(),
        output: status.clone(),
    })
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Number of open file descriptors of the process.
pub fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// The process's command name (to check that the pid is the proxy, not a
/// wrapper that forked).
pub fn comm(pid: u32) -> String {
    proc_file(pid, "comm")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// TCP ports in LISTEN state in the network namespace of `pid`.
pub fn listening_ports(pid: u32) -> Vec<u16> {
    ["net/tcp", "net/tcp6"]
        .iter()
        .filter_map(|f| proc_file(pid, f).ok())
        .flat_map(|t| parse_listening(&t))
        .collect()
}

/// Rows of /proc/net/tcp: `sl local_address rem_address st ...` with
/// addresses as `HEXIP:HEXPORT` and state 0A for LISTEN.
fn parse_listening(table: &str) -> Vec<u16> {
    table
        .lines()
        .skip(1)
        .filter_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            if cols.get(3) != Some(&"0A") {
                return None;
            }
            let port = cols.get(1)?.rsplit(':').next()?;
            u16::from_str_radix(port, 16).ok()
        })
        .collect()
}

/// Clock ticks per second for /proc/PID/stat times.
pub fn clock_ticks_per_second() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_skip_a_command_name_with_spaces() {
        // utime 1500, stime 250.
        let stat = "4242 (tokio rt) S 1 4242 4242 0 -1 4194560 900 0 0 0 1500 250 0 0 20 0 2 0 100 1000 200";
        assert_eq!(parse_cpu_ticks(stat), Some(1750));
        assert_eq!(parse_cpu_ticks("4242 (lbd) S 1"), None);
    }

    #[test]
    fn vm_rss_is_read_in_kib() {
        let status = "Name:\tlbd\nVmPeak:\t  20000 kB\nVmRSS:\t    6612 kB\nThreads:\t2\n";
        assert_eq!(parse_vm_rss(status), Some(6612));
        assert_eq!(parse_vm_rss("Name:\tlbd\n"), None);
    }

    #[test]
    fn only_listening_sockets_count() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue\n   0: 0201A8C0:0050 00000000:0000 0A 00000000:00000000\n   1: 0201A8C0:0050 0101A8C0:D431 01 00000000:00000000\n   2: 00000000:1451 00000000:0000 0A 00000000:00000000\n";
        assert_eq!(parse_listening(table), vec![80, 5201]);
    }
}
