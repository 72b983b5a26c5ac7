//! Errors of the benchmarks: each names the step and the thing, and where
//! there is one, the fix.

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("{0}\nusage: cargo xtask bench lb [--rounds N] [--duration 10s] [--idle-connections N] [--lbd-splice on|off] [--lbd-before PATH] [--output FILE]")]
    Usage(String),
    #[error("{0}\nusage: cargo xtask bench abuse [--rounds N] [--duration 15s] [--login-rate 50] [--slow-connections 1000] [--maxconn 1000] [--lbd-before PATH] [--output FILE]")]
    AbuseUsage(String),
    #[error("{0}\nusage: cargo xtask bench failover [--rounds N] [--output FILE]")]
    FailoverUsage(String),
    #[error("interrupted (Ctrl-C or SIGTERM); namespaces and processes cleaned up")]
    Interrupted,
    #[error("running {command}: {source}")]
    Spawn { command: String, source: io::Error },
    #[error("{command} failed ({status}): {stderr}")]
    CommandFailed {
        command: String,
        status: String,
        stderr: String,
    },
    #[error("{what} did not {until} within {seconds} s; its log: {log}")]
    NotReady {
        what: String,
        until: String,
        seconds: u64,
        log: String,
    },
    #[error("reading {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("writing {}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
    #[error("parsing {what} output: {detail}\n{output}")]
    Parse {
        what: String,
        detail: String,
        output: String,
    },
    #[error("{what}: {source}")]
    Io { what: String, source: io::Error },
}
