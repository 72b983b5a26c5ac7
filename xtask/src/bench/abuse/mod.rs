//! `cargo xtask bench abuse`: does abuse of one listener hurt the traffic
//! of another? lbd against HAProxy (and an older lbd with `--lbd-before`),
//! runs alternating, same topology as `bench lb`.
//!
//! Per round, proxy and condition, a freshly started proxy (configs.rs)
//! and wrk at a moderate paced rate on the `web` frontend, measuring
//! p50/p99 latency and req/s:
//! - no abuse;
//! - bad logins on the stats page at 50/s (bad_logins.rs);
//! - 1000 slow-header connections on the `slow` frontend (slow_headers.rs).
//!
//! Then the table and its BENCHMARKS.md section (report.rs). The run of one
//! condition is runs.rs.

mod bad_logins;
mod configs;
mod report;
mod runs;
mod slow_headers;

use std::path::{Path, PathBuf};

use xshell::Shell;

use super::error::BenchError;
use super::lb::{build_lbd, stop_services_we_installed};
use super::netns::Topology;
use super::procs::{self, catch_interrupts};
use super::servers::{start_nginx, Limits, Proxy};
use super::sysinfo;
use configs::{detect_http_request, hash_password, Params};
use report::{Condition, Document, Tallies};
use runs::Bench;

pub use bad_logins::{client as bad_logins_client, SUBCOMMAND as BAD_LOGINS_SUBCOMMAND};
pub use slow_headers::{client as slow_headers_client, SUBCOMMAND as SLOW_HEADERS_SUBCOMMAND};

const DEFAULT_ROUNDS: u32 = 3;
/// Longer than HAProxy's `timeout http-request` (10 s): by the end of the
/// slow-header condition a proxy with a header timeout has fired it.
const DEFAULT_DURATION_S: u64 = 15;
const DEFAULT_LOGIN_RATE: u64 = 50;
const DEFAULT_SLOW_CONNECTIONS: usize = 1000;
const DEFAULT_MAXCONN: u64 = 1000;
/// wrk connections and the pause before each request on each: at most
/// WRK_CONNECTIONS * 1000 / PACE_DELAY_MS requests a second.
pub const WRK_CONNECTIONS: u32 = 8;
pub const PACE_DELAY_MS: u64 = 4;

/// (a file the package installs, the Debian package).
const BENCH_PACKAGES: &[(&str, &str)] = &[
    ("/usr/sbin/haproxy", "haproxy"),
    ("/usr/sbin/nginx", "nginx-light"),
    ("/usr/bin/wrk", "wrk"),
    ("/usr/sbin/ip", "iproute2"),
    ("/usr/bin/taskset", "util-linux"),
    ("/usr/bin/prlimit", "util-linux"),
];

pub struct Options {
    pub rounds: u32,
    pub duration_s: u64,
    pub login_rate: u64,
    pub slow_connections: usize,
    pub maxconn: u64,
    pub lbd_before: Option<PathBuf>,
    pub output: PathBuf,
}

impl Options {
    fn defaults(output: PathBuf) -> Self {
        Self {
            rounds: DEFAULT_ROUNDS,
            duration_s: DEFAULT_DURATION_S,
            login_rate: DEFAULT_LOGIN_RATE,
            slow_connections: DEFAULT_SLOW_CONNECTIONS,
            maxconn: DEFAULT_MAXCONN,
            lbd_before: None,
            output,
        }
    }

    #[cfg(test)]
    pub fn default_for_tests() -> Self {
        Self::defaults(PathBuf::from("BENCHMARKS.md"))
    }
}

fn usage(msg: String) -> BenchError {
    BenchError::AbuseUsage(msg)
}

/// A whole number in `range`, for `flag`.
fn number<T>(flag: &str, v: &str, range: std::ops::RangeInclusive<T>) -> Result<T, BenchError>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display,
{
    v.strip_suffix('s')
        .filter(|_| flag == "--duration")
        .unwrap_or(v)
        .parse()
        .ok()
        .filter(|n| range.contains(n))
        .ok_or_else(|| {
            usage(format!(
                "{flag} {v}: want a whole number in {}..={}",
                range.start(),
                range.end()
            ))
        })
}

pub fn parse_args(args: &[String], default_output: PathBuf) -> Result<Options, BenchError> {
    let mut o = Options::defaults(default_output);
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .ok_or_else(|| usage(format!("{flag} needs a value")))
        };
        match flag.as_str() {
            "--rounds" => o.rounds = number(flag, value()?, 1..=100)?,
            "--duration" => o.duration_s = number(flag, value()?, 1..=3600)?,
            "--login-rate" => o.login_rate = number(flag, value()?, 1..=1000)?,
            "--slow-connections" => o.slow_connections = number(flag, value()?, 1..=20_000)?,
            "--maxconn" => o.maxconn = number(flag, value()?, 2..=20_000)?,
            "--lbd-before" => o.lbd_before = Some(PathBuf::from(value()?)),
            "--output" => o.output = PathBuf::from(value()?),
            other => return Err(usage(format!("unknown argument {other:?}"))),
        }
    }
    Ok(o)
}

pub fn run(args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let root = crate::workspace_root();
    let opts = parse_args(args, root.join("BENCHMARKS.md"))?;
    let command = std::iter::once("cargo xtask bench abuse".to_string())
        .chain(args.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ");
    catch_interrupts()?;
    let sh = Shell::new()?;
    sh.change_dir(&root);

    crate::section("system packages");
    let missing_before: Vec<&str> = BENCH_PACKAGES
        .iter()
        .filter(|(f, _)| !Path::new(f).exists())
        .map(|(_, p)| *p)
        .collect();
    crate::packages::ensure(&sh, BENCH_PACKAGES)?;
    stop_services_we_installed(&missing_before);
    let bins = build_lbd(&sh, opts.lbd_before.as_deref())?;
    let mut machine = sysinfo::machine_with(
        &bins.current,
        &[
            ("haproxy", "haproxy", &["-v"]),
            ("nginx", "nginx", &["-v"]),
            ("wrk", "wrk", &["-v"]),
        ],
    );
    machine.add_lbd_before(bins.before.as_deref());
    eprintln!("{}", machine.describe().join("\n"));

    let dir = tempfile::Builder::new().prefix("lbabuse-").tempdir()?;
    let params = Params::new(opts.maxconn, hash_password(&bins.current)?);
    let mut http_request = Vec::new();
    for proxy in bins.lineup() {
        if let Some(bin) = bins.for_proxy(proxy) {
            let key = detect_http_request(bin, dir.path(), proxy.file_stem(), &params)?;
            eprintln!("  {}: {}", proxy.label(), key.describe());
            http_request.push((proxy, key));
        }
    }

    crate::section("network namespaces and the nginx backend");
    let topo = Topology::create()?;
    // Room for the slow connections, wrk and the bad logins in flight, two
    // descriptors each at the proxy.
    let in_flight = opts.login_rate * (opts.duration_s + 4);
    let wanted =
        usize::try_from(opts.maxconn + in_flight).unwrap_or(usize::MAX) + opts.slow_connections;
    let limits = Limits::probe(wanted);
    let mut warnings = Vec::new();
    if limits.maxconn < opts.maxconn {
        return Err(usage(format!(
            "--maxconn {}: the open-file hard limit here ({}) fits only {}; lower --maxconn",
            opts.maxconn, limits.nofile, limits.maxconn
        ))
        .into());
    }
    let _nginx = start_nginx(&topo, dir.path(), limits)?;
    let bench = Bench {
        topo: &topo,
        dir: dir.path(),
        bins: &bins,
        opts: &opts,
        params: &params,
        http_request: &http_request,
        limits,
        clk: procs::clock_ticks_per_second(),
    };
    let mut samples = report::Samples::new();
    let mut tallies = Tallies::default();
    for round in 1..=opts.rounds {
        for proxy in bins.lineup() {
            for condition in Condition::ALL {
                crate::section(&format!(
                    "round {round}/{}: {}, {}",
                    opts.rounds,
                    proxy.label(),
                    condition.label(&opts)
                ));
                let run = bench.run(proxy, condition, &mut warnings)?;
                run.record(proxy, condition, &mut samples, &mut tallies);
            }
        }
    }

    let table = report::table(&samples, &opts);
    println!("\n{table}");
    let how: Vec<(Proxy, String)> = http_request
        .iter()
        .map(|(p, key)| (*p, key.describe()))
        .collect();
    let doc = Document {
        command: &command,
        machine: &machine,
        opts: &opts,
        params: &params,
        table: &table,
        tallies: &tallies,
        http_request: &how,
        warnings: &warnings,
    }
    .render();
    super::report::write_section(&opts.output, "abuse", &doc)?;
    eprintln!("xtask: wrote {}", opts.output.display());
    Ok(())
}

/// Where the wrk pacing script goes.
fn pace_script(dir: &Path) -> PathBuf {
    dir.join("pace.lua")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| (*s).to_string()).collect()
    }

    #[test]
    fn defaults_and_flags() {
        let o = parse_args(&[], PathBuf::from("B.md")).expect("defaults");
        assert_eq!(
            (
                o.rounds,
                o.duration_s,
                o.login_rate,
                o.slow_connections,
                o.maxconn
            ),
            (3, 15, 50, 1000, 1000)
        );
        assert_eq!(o.lbd_before, None);
        let o = parse_args(
            &args(&[
                "--rounds",
                "1",
                "--duration",
                "5s",
                "--login-rate",
                "20",
                "--slow-connections",
                "200",
                "--maxconn",
                "400",
                "--lbd-before",
                "/tmp/lbd-before",
                "--output",
                "/tmp/x.md",
            ]),
            PathBuf::new(),
        )
        .expect("flags");
        assert_eq!(
            (
                o.rounds,
                o.duration_s,
                o.login_rate,
                o.slow_connections,
                o.maxconn
            ),
            (1, 5, 20, 200, 400)
        );
        assert_eq!(o.lbd_before, Some(PathBuf::from("/tmp/lbd-before")));
        assert_eq!(o.output, PathBuf::from("/tmp/x.md"));
    }

    #[test]
    fn bad_flags_are_named() {
        for bad in [
            &["--rounds", "0"][..],
            &["--duration", "fast"],
            &["--maxconn", "1"],
            &["--login-rate", "5s"],
            &["--slow-connections"],
            &["--idle", "5"],
        ] {
            let e = parse_args(&args(bad), PathBuf::new()).err().expect("error");
            let msg = e.to_string();
            assert!(msg.contains(bad[0]), "{msg}");
            assert!(msg.contains("usage: cargo xtask bench abuse"), "{msg}");
        }
    }
}
