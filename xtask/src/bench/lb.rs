//! `cargo xtask bench lb`: lbd against HAProxy in mode tcp, alternating
//! runs (lbd, HAProxy, lbd, HAProxy, ...), same backend, same load; writes
//! the table of medians and spreads to BENCHMARKS.md.
//!
//! Per run, with the proxy freshly started on CPU 1: wrk keep-alive, wrk
//! `Connection: close`, iperf3 with 1 then 8 streams, then N idle
//! connections for RSS. Proxy CPU is the utime+stime delta of
//! /proc/PID/stat over each load, divided by its requests (or GB).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use xshell::{cmd, Shell};

use super::error::BenchError;
use super::idle::rss_with_idle;
use super::netns::{Ns, Topology, PROXY_FRONT_ADDR};
use super::procs::{self, catch_interrupts, check_interrupted, cpu_ticks, rss_kib, run_to_end};
use super::report::{table, Metric, Samples};
use super::servers::{
    check_lbd_binary, start_iperf3, start_nginx, start_proxy, LbdBinaries, Limits, Proxy,
    FILE_PATH, HTTP_PORT, IPERF_PORT, LOAD_CPU,
};
use super::sysinfo;

const DEFAULT_ROUNDS: u32 = 3;
const DEFAULT_DURATION_S: u64 = 10;
const DEFAULT_IDLE: usize = 10_000;
/// wrk: one thread (one load core), enough connections to keep the proxy
/// busy without queueing much in it.
const WRK_THREADS: &str = "1";
const WRK_CONNECTIONS: &str = "32";
/// Pause after each load so TIME_WAIT and softirq work settle.
const SETTLE: Duration = Duration::from_millis(500);

/// (a file the package installs, the Debian package).
const BENCH_PACKAGES: &[(&str, &str)] = &[
    ("/usr/sbin/haproxy", "haproxy"),
    ("/usr/sbin/nginx", "nginx-light"),
    ("/usr/bin/wrk", "wrk"),
    ("/usr/bin/iperf3", "iperf3"),
    ("/usr/sbin/ip", "iproute2"),
    ("/usr/bin/taskset", "util-linux"),
    ("/usr/bin/prlimit", "util-linux"),
];

pub struct Options {
    pub rounds: u32,
    pub duration_s: u64,
    pub idle: usize,
    pub output: PathBuf,
    /// `[global] splice` for lbd; None keeps lbd's default.
    pub lbd_splice: Option<bool>,
    /// `--lbd-before PATH`: an older lbd binary, a third proxy in the
    /// alternation and a column of the table.
    pub lbd_before: Option<PathBuf>,
}

fn usage(msg: String) -> BenchError {
    BenchError::Usage(msg)
}

pub fn parse_args(args: &[String], default_output: PathBuf) -> Result<Options, BenchError> {
    let mut o = Options {
        rounds: DEFAULT_ROUNDS,
        duration_s: DEFAULT_DURATION_S,
        idle: DEFAULT_IDLE,
        output: default_output,
        lbd_splice: None,
        lbd_before: None,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .ok_or_else(|| usage(format!("{flag} needs a value")))
        };
        match flag.as_str() {
            "--rounds" => {
                let v = value()?;
                o.rounds = v
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| usage(format!("--rounds {v}: want a whole number >= 1")))?;
            }
            "--duration" => {
                let v = value()?;
                o.duration_s = v
                    .strip_suffix('s')
                    .unwrap_or(v)
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| {
                        usage(format!("--duration {v}: want whole seconds, e.g. 10s"))
                    })?;
            }
            // `--idle` for short.
            "--idle-connections" | "--idle" => {
                let v = value()?;
                o.idle = v
                    .parse()
                    .ok()
                    .filter(|n| *n > 0 && *n <= 30_000)
                    .ok_or_else(|| usage(format!("{flag} {v}: want 1..=30000")))?;
            }
            "--output" => o.output = PathBuf::from(value()?),
            "--lbd-before" => o.lbd_before = Some(PathBuf::from(value()?)),
            "--lbd-splice" => {
                let v = value()?;
                o.lbd_splice = Some(match v.as_str() {
                    "on" => true,
                    "off" => false,
                    _ => return Err(usage(format!("--lbd-splice {v}: want on or off"))),
                });
            }
            other => return Err(usage(format!("unknown argument {other:?}"))),
        }
    }
    Ok(o)
}

pub fn run(args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let root = crate::workspace_root();
    let opts = parse_args(args, root.join("BENCHMARKS.md"))?;
    let command = std::iter::once("cargo xtask bench lb".to_string())
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
    let mut machine = sysinfo::machine(&bins.current);
    machine.add_lbd_before(bins.before.as_deref());
    eprintln!("{}", machine.describe().join("\n"));

    crate::section("network namespaces, nginx and iperf3 backend");
    let topo = Topology::create()?;
    let dir = tempfile::Builder::new().prefix("lbbench-").tempdir()?;
    let limits = Limits::probe(opts.idle);
    let idle = limits.idle(opts.idle);
    let mut warnings = Vec::new();
    if idle < opts.idle {
        let w = format!(
            "the open-file hard limit here is {} and may not be raised (no CAP_SYS_RESOURCE): maxconn {} for both proxies, {idle} idle connections instead of {}",
            limits.nofile, limits.maxconn, opts.idle
        );
        eprintln!("  warning: {w}");
        warnings.push(w);
    }
    let opts = Options { idle, ..opts };
    let _nginx = start_nginx(&topo, dir.path(), limits)?;
    let _iperf = start_iperf3(&topo, dir.path())?;
    let clk = procs::clock_ticks_per_second();

    let bench = Bench {
        topo: &topo,
        dir: dir.path(),
        bins: &bins,
        opts: &opts,
        limits,
        clk,
    };
    let mut samples = Samples::new();
    for round in 1..=opts.rounds {
        for proxy in bins.lineup() {
            crate::section(&format!("round {round}/{}: {}", opts.rounds, proxy.label()));
            let run = one_run(&bench, proxy, &mut warnings)?;
            let entry = samples.entry(proxy).or_default();
            for (m, v) in run {
                entry.entry(m).or_default().push(v);
            }
        }
    }

    let t = table(&samples, opts.idle);
    println!("\n{t}");
    let doc = sysinfo::document(&command, &machine, &opts, limits.maxconn, &t, &warnings);
    super::report::write_section(&opts.output, "lb", &doc)?;
    eprintln!("xtask: wrote {}", opts.output.display());
    Ok(())
}

/// Debian starts a service on install where systemd runs; ours run in the
/// namespaces with their own configs, so stop the ones this bench installed.
pub fn stop_services_we_installed(missing_before: &[&str]) {
    if !Path::new("/run/systemd/system").exists() {
        return;
    }
    for (pkg, unit) in [("haproxy", "haproxy"), ("nginx-light", "nginx")] {
        if missing_before.contains(&pkg) {
            eprintln!("  stopping the {unit} service the package started");
            let _ = Command::new("systemctl").args(["stop", unit]).status();
        }
    }
}

/// Builds this tree's release lbd and checks the `--lbd-before` binary, if
/// given, before any namespace exists (a wrong path fails at once).
pub fn build_lbd(
    sh: &Shell,
    before: Option<&Path>,
) -> Result<LbdBinaries, Box<dyn std::error::Error>> {
    if let Some(path) = before {
        check_lbd_binary("--lbd-before", path)?;
    }
    crate::section("cargo build --release -p lbd");
    cmd!(sh, "cargo build --release -p lbd").run()?;
    Ok(LbdBinaries {
        current: lbd_binary(sh)?,
        before: before.map(Path::to_path_buf),
    })
}

/// The release binary, from the target dir cargo uses (CARGO_TARGET_DIR or
/// the workspace's).
pub fn lbd_binary(sh: &Shell) -> Result<PathBuf, Box<dyn std::error::Error>> {
    let meta = cmd!(sh, "cargo metadata --format-version 1 --no-deps").read()?;
    let json: serde_json::Value = serde_json::from_str(&meta)?;
    let dir = json["target_directory"]
        .as_str()
        .ok_or("cargo metadata: no target_directory")?;
    Ok(Path::new(dir).join("release/lbd"))
}

fn wrk(topo: &Topology, duration_s: u64, close: bool) -> Command {
    let mut cmd = topo.exec(Ns::Client);
    cmd.args([
        "taskset",
        "-c",
        LOAD_CPU,
        "wrk",
        "-t",
        WRK_THREADS,
        "-c",
        WRK_CONNECTIONS,
    ])
    .arg(format!("-d{duration_s}s"))
    .arg("--latency");
    if close {
        cmd.args(["-H", "Connection: close"]);
    }
    cmd.arg(format!("http://{PROXY_FRONT_ADDR}:{HTTP_PORT}{FILE_PATH}"));
    cmd
}

fn iperf3(topo: &Topology, duration_s: u64, streams: u32) -> Command {
    let mut cmd = topo.exec(Ns::Client);
    cmd.args(["taskset", "-c", LOAD_CPU, "timeout"])
        .arg((duration_s + 30).to_string())
        .args(["iperf3", "-J", "-c", PROXY_FRONT_ADDR, "-p"])
        .arg(IPERF_PORT.to_string())
        .arg("-t")
        .arg(duration_s.to_string())
        .arg("-P")
        .arg(streams.to_string());
    cmd
}

/// CPU seconds the proxy used while `f` ran.
fn cpu_during<T>(
    pid: u32,
    clk: u64,
    f: impl FnOnce() -> Result<T, BenchError>,
) -> Result<(T, f64), BenchError> {
    let before = cpu_ticks(pid)?;
    let out = f()?;
    let after = cpu_ticks(pid)?;
    // Tick counts stay far below 2^52: exact in f64.
    #[allow(clippy::cast_precision_loss)]
    let secs = after.saturating_sub(before) as f64 / clk as f64;
    Ok((out, secs))
}

/// What every run shares.
struct Bench<'a> {
    topo: &'a Topology,
    dir: &'a Path,
    bins: &'a LbdBinaries,
    opts: &'a Options,
    limits: Limits,
    /// Clock ticks per second of /proc/PID/stat.
    clk: u64,
}

#[allow(clippy::cast_precision_loss)] // counts far below 2^52
fn one_run(
    b: &Bench,
    proxy: Proxy,
    warnings: &mut Vec<String>,
) -> Result<Vec<(Metric, f64)>, BenchError> {
    let mut d = start_proxy(b.topo, b.dir, proxy, b.bins, b.limits, b.opts.lbd_splice)?;
    let pid = d.pid();
    let mut out = vec![(Metric::RssStartMb, rss_kib(pid)? as f64 / 1024.0)];
    let name = proxy.label();
    let (topo, dir, opts, clk) = (b.topo, b.dir, b.opts, b.clk);

    for close in [false, true] {
        let what = if close {
            "wrk Connection: close"
        } else {
            "wrk keep-alive"
        };
        let file = dir.join(format!("wrk-{}.out", if close { "close" } else { "ka" }));
        let (text, cpu_s) = cpu_during(pid, clk, || {
            run_to_end(wrk(topo, opts.duration_s, close), &file)
        })?;
        let r = super::load::parse_wrk(&text)?;
        if r.requests == 0 {
            return Err(BenchError::Parse {
                what: what.into(),
                detail: format!("no request went through {name}; its log: {}", d.log_tail()),
                output: text,
            });
        }
        if r.socket_errors > 0 || r.non_2xx > 0 {
            warnings.push(format!(
                "{name}, {what}: {} socket errors, {} non-2xx of {} requests",
                r.socket_errors, r.non_2xx, r.requests
            ));
        }
        let cpu_us = cpu_s * 1e6 / r.requests as f64;
        eprintln!(
            "  {what}: {:.0} req/s, p50 {:.3} ms, p99 {:.3} ms, {cpu_us:.1} us CPU/request",
            r.requests_per_s, r.p50_ms, r.p99_ms
        );
        if close {
            out.push((Metric::CloseConnPerS, r.requests_per_s));
            out.push((Metric::CpuUsPerConnection, cpu_us));
        } else {
            out.push((Metric::KeepAliveRps, r.requests_per_s));
            out.push((Metric::P50Ms, r.p50_ms));
            out.push((Metric::P99Ms, r.p99_ms));
            out.push((Metric::CpuUsPerRequest, cpu_us));
        }
        procs::sleep(SETTLE)?;
    }

    for streams in [1, 8] {
        let file = dir.join(format!("iperf3-{streams}.json"));
        let (text, cpu_s) = cpu_during(pid, clk, || {
            run_to_end(iperf3(topo, opts.duration_s, streams), &file)
        })?;
        let r = super::load::parse_iperf3(&text)?;
        eprintln!(
            "  iperf3 -P {streams}: {:.2} Gbit/s, {:.0} ms CPU/GB",
            r.gbit_per_s,
            cpu_s * 1e3 / (r.bytes / 1e9)
        );
        if streams == 1 {
            out.push((Metric::Iperf1Gbps, r.gbit_per_s));
            out.push((Metric::CpuMsPerGb, cpu_s * 1e3 / (r.bytes / 1e9)));
        } else {
            out.push((Metric::Iperf8Gbps, r.gbit_per_s));
        }
        procs::sleep(SETTLE)?;
    }

    check_interrupted()?;
    let (before, with) = rss_with_idle(topo, &mut d, opts.idle, b.limits)?;
    let (before, with) = (before as f64 / 1024.0, with as f64 / 1024.0);
    eprintln!(
        "  RSS {before:.2} MB, with {} idle connections {with:.2} MB",
        opts.idle
    );
    out.push((Metric::RssAfterLoadMb, before));
    out.push((Metric::RssIdleMb, with));
    drop(d);
    procs::sleep(SETTLE)?;
    Ok(out)
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
        assert_eq!((o.rounds, o.duration_s, o.idle), (3, 10, 10_000));
        let o = parse_args(
            &args(&["--rounds", "5", "--duration", "7s"]),
            PathBuf::new(),
        )
        .expect("flags");
        assert_eq!((o.rounds, o.duration_s), (5, 7));
        assert_eq!(o.lbd_splice, None);
        let o = parse_args(&args(&["--lbd-splice", "off"]), PathBuf::new()).expect("splice");
        assert_eq!(o.lbd_splice, Some(false));
        assert_eq!(o.lbd_before, None);
    }

    #[test]
    fn an_older_lbd_and_the_short_idle_flag() {
        let o = parse_args(
            &args(&["--lbd-before", "/tmp/lbd-before", "--idle", "100"]),
            PathBuf::new(),
        )
        .expect("flags");
        assert_eq!(o.lbd_before, Some(PathBuf::from("/tmp/lbd-before")));
        assert_eq!(o.idle, 100);
        let e = parse_args(&args(&["--idle", "0"]), PathBuf::new())
            .err()
            .expect("error");
        assert!(e.to_string().contains("--idle 0"), "{e}");
    }

    #[test]
    fn bad_flags_are_named() {
        for bad in [
            &["--rounds", "0"][..],
            &["--duration", "fast"],
            &["--rounds"],
            &["--lbd-before"],
            &["-x"],
        ] {
            let e = parse_args(&args(bad), PathBuf::new()).err().expect("error");
            assert!(e.to_string().contains(bad[0]), "{e}");
        }
    }
}
