//! `cargo xtask bench failover`: the outage a client sees when the VRRP
//! master fails, lbd against Keepalived with the same settings, runs
//! alternating; writes its section of BENCHMARKS.md.
//!
//! Per setting (advert_int 1 s v2, 1 s v3, 0.1 s v3), round and scenario
//! (master killed, link down, graceful stop, master returning, backend
//! failure): a fresh pair in fresh namespaces (net.rs), the daemons
//! (daemons.rs), a client pinging the VIP every 10 ms (probe.rs), the
//! event, and the gap or takeover time; then the tables (report.rs).

mod daemons;
mod net;
mod pinger;
mod probe;
mod report;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use xshell::{cmd, Shell};

use super::error::BenchError;
use super::procs::{catch_interrupts, sleep, Daemon};
use super::sysinfo;
pub use daemons::{serve_backend, LISTEN_SUBCOMMAND};
use daemons::{spec, start_backend, Impl, Settings, VrrpNode};
use net::{FailoverNet, Node, TTL_A, TTL_B};
pub use pinger::{await_advert, probe, ADVERT_SUBCOMMAND, SUBCOMMAND as PROBE_SUBCOMMAND};
use probe::{analyse, now_epoch, Prober};
use report::{Sample, Samples};

const DEFAULT_ROUNDS: u32 = 3;
/// Settled pair, then this long before the probe starts.
const SETTLE_EXTRA: Duration = Duration::from_secs(1);
/// Replies before the event.
const BASELINE: Duration = Duration::from_secs(1);
/// Replies after the new master holds the VIP.
const TAIL: Duration = Duration::from_millis(1500);
const POLL: Duration = Duration::from_millis(20);

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scenario {
    Kill,
    LinkDown,
    Graceful,
    Returning,
    Backend,
}

/// Which figure of a run a scenario reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Measure {
    /// The longest gap between replies.
    Gap,
    /// From the event to the new master's first reply.
    Takeover,
}

impl Measure {
    pub fn label(self) -> &'static str {
        match self {
            Measure::Gap => "gap",
            Measure::Takeover => "takeover",
        }
    }
}

impl Scenario {
    pub const ALL: [Scenario; 5] = [
        Scenario::Kill,
        Scenario::LinkDown,
        Scenario::Graceful,
        Scenario::Returning,
        Scenario::Backend,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Scenario::Kill => "master killed (SIGKILL)",
            Scenario::LinkDown => "link down",
            Scenario::Graceful => "graceful stop (SIGTERM)",
            Scenario::Returning => "master returning",
            Scenario::Backend => "backend failure",
        }
    }

    /// A killed daemon leaves the VIP and A's kernel keeps answering, and a
    /// failed backend leaves A answering too: the service is out from the
    /// event until B answers.
    pub fn measure(self) -> Measure {
        match self {
            Scenario::Kill | Scenario::Backend => Measure::Takeover,
            _ => Measure::Gap,
        }
    }

    /// The node that holds the VIP once it is over.
    fn new_master(self) -> Node {
        if self == Scenario::Returning {
            Node::A
        } else {
            Node::B
        }
    }
}

pub struct Options {
    pub rounds: u32,
    pub output: PathBuf,
}

pub fn parse_args(args: &[String], default_output: PathBuf) -> Result<Options, BenchError> {
    let mut o = Options {
        rounds: DEFAULT_ROUNDS,
        output: default_output,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .ok_or_else(|| BenchError::FailoverUsage(format!("{flag} needs a value")))
        };
        match flag.as_str() {
            "--rounds" => {
                let v = value()?;
                o.rounds = v.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                    BenchError::FailoverUsage(format!("--rounds {v}: want a whole number >= 1"))
                })?;
            }
            "--output" => o.output = PathBuf::from(value()?),
            other => {
                return Err(BenchError::FailoverUsage(format!(
                    "unknown argument {other:?}"
                )))
            }
        }
    }
    Ok(o)
}

const BENCH_PACKAGES: &[(&str, &str)] = &[
    ("/usr/sbin/keepalived", "keepalived"),
    ("/usr/bin/ping", "iputils-ping"),
    ("/usr/sbin/ip", "iproute2"),
    ("/usr/bin/timeout", "coreutils"),
];

pub fn run(args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let root = crate::workspace_root();
    let opts = parse_args(args, root.join("BENCHMARKS.md"))?;
    let command = std::iter::once("cargo xtask bench failover".to_string())
        .chain(args.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ");
    catch_interrupts()?;
    let sh = Shell::new()?;
    sh.change_dir(&root);
    crate::section("system packages");
    crate::packages::ensure(&sh, BENCH_PACKAGES)?;
    crate::section("cargo build --release -p lbd");
    cmd!(sh, "cargo build --release -p lbd").run()?;
    let lbd_bin = super::lb::lbd_binary(&sh)?;
    let machine = sysinfo::machine_with(
        &lbd_bin,
        &[
            ("keepalived", "keepalived", &["--version"]),
            ("ping", "ping", &["-V"]),
        ],
    );
    eprintln!("{}", machine.describe().join("\n"));

    let dir = tempfile::Builder::new().prefix("lbfo-").tempdir()?;
    let mut samples = Samples::new();
    let mut notes = Vec::new();
    let mut n = 0;
    for s in Settings::ALL {
        for round in 1..=opts.rounds {
            for sc in Scenario::ALL {
                for kind in Impl::ALL {
                    n += 1;
                    crate::section(&format!(
                        "{}, round {round}/{}: {}, {}",
                        s.label(),
                        opts.rounds,
                        sc.label(),
                        kind.label()
                    ));
                    let run_dir = dir.path().join(format!("run{n}"));
                    let ctx = Run {
                        dir: &run_dir,
                        lbd_bin: &lbd_bin,
                        kind,
                        settings: s,
                        scenario: sc,
                    };
                    match one_run(&ctx)? {
                        Ok(sample) => {
                            eprintln!(
                                "  {}: {:.3} s, {} probes lost",
                                sc.measure().label(),
                                sample.seconds,
                                sample.lost
                            );
                            samples.entry((s, sc, kind)).or_default().push(sample);
                        }
                        Err(note) => {
                            eprintln!("  no figure: {note}");
                            notes.push(format!(
                                "{}, {}, round {round}, {}: {note}",
                                s.label(),
                                sc.label(),
                                kind.label()
                            ));
                        }
                    }
                }
            }
        }
    }
    for s in Settings::ALL {
        println!("\n{}\n{}", s.label(), report::table(&samples, s));
    }
    let body = report::document(&report::Doc {
        command: &command,
        machine: &machine,
        rounds: opts.rounds,
        samples: &samples,
        notes: &notes,
    });
    super::report::write_section(&opts.output, "failover", &body)?;
    eprintln!("xtask: wrote {}", opts.output.display());
    Ok(())
}

struct Run<'a> {
    dir: &'a Path,
    lbd_bin: &'a Path,
    kind: Impl,
    settings: Settings,
    scenario: Scenario,
}

/// Polls `cond` until it holds (true) or `timeout` passes (false).
fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> Result<bool, BenchError> {
    let end = Instant::now() + timeout;
    loop {
        if cond() {
            return Ok(true);
        }
        if Instant::now() >= end {
            return Ok(false);
        }
        sleep(POLL)?;
    }
}

/// One run. The outer error aborts the bench (it could not do its part);
/// the inner one is a run without a figure, kept as a note (a daemon that
/// did not behave).
fn one_run(r: &Run) -> Result<Result<Sample, String>, BenchError> {
    let s = r.settings;
    let sc = r.scenario;
    let mdi = Duration::from_secs_f64(report::master_down_s(s, daemons::PRIO_B));
    let net = FailoverNet::create()?;
    std::fs::create_dir_all(r.dir).map_err(|source| BenchError::Write {
        path: r.dir.to_path_buf(),
        source,
    })?;
    let script = r.dir.join("a").join("check_backend.sh");
    let mut backend: Option<Daemon> = None;
    if sc == Scenario::Backend {
        std::fs::create_dir_all(r.dir.join("a")).map_err(|source| BenchError::Write {
            path: r.dir.join("a"),
            source,
        })?;
        std::fs::write(&script, daemons::check_script()).map_err(|source| BenchError::Write {
            path: script.clone(),
            source,
        })?;
        set_executable(&script)?;
        backend = Some(start_backend(&net, r.dir, &script)?);
    }
    let start = |node: Node| {
        VrrpNode::start(
            &net,
            &r.dir.join(if node == Node::A { "a" } else { "b" }),
            r.kind,
            s,
            &spec(node, sc == Scenario::Backend && node == Node::A),
            r.lbd_bin,
        )
    };
    let mut a = Some(start(Node::A)?);
    let mut b = start(Node::B)?;
    let settle = mdi * 3 + Duration::from_secs(15);
    let settled = wait_for(settle, || {
        a.as_mut().is_some_and(VrrpNode::ready)
            && b.ready()
            && net.holds_vip(Node::A)
            && !net.holds_vip(Node::B)
            && net.ping_vip()
    })?;
    let tails = |a: &Option<VrrpNode>, b: &VrrpNode| {
        format!(
            "A's log: {}\nB's log: {}",
            a.as_ref().map(VrrpNode::log_tail).unwrap_or_default(),
            b.log_tail()
        )
    };
    if !settled {
        return Ok(Err(format!(
            "the pair did not settle (A master, B backup, VIP answering) within {} s\n{}",
            settle.as_secs(),
            tails(&a, &b)
        )));
    }
    sleep(SETTLE_EXTRA)?;
    if sc == Scenario::Returning {
        if let Some(old) = a.take() {
            old.terminate()?;
        }
        let moved = wait_for(mdi + Duration::from_secs(10), || {
            net.holds_vip(Node::B) && net.ping_vip()
        })?;
        if !moved {
            return Ok(Err(format!(
                "B did not take over after A's graceful stop\n{}",
                tails(&a, &b)
            )));
        }
        sleep(SETTLE_EXTRA)?;
    }

    let prober = Prober::start(&net, r.dir)?;
    sleep(BASELINE)?;
    if sc != Scenario::Returning && !after_advert(&net)? {
        return Ok(Err(format!(
            "B heard no advert from A within 3 s before the event\n{}",
            tails(&a, &b)
        )));
    }
    let mut event = now_epoch();
    match sc {
        Scenario::Kill => {
            if let Some(old) = a.take() {
                event = old.kill9()?;
            }
        }
        Scenario::LinkDown => net.link_down(Node::A)?,
        Scenario::Graceful => {
            if let Some(old) = a.take() {
                if !old.terminate()? {
                    eprintln!("  warning: A did not exit cleanly on SIGTERM");
                }
            }
        }
        Scenario::Returning => a = Some(start(Node::A)?),
        Scenario::Backend => drop(backend.take()),
    }
    let new = sc.new_master();
    let limit = mdi * 2 + Duration::from_secs(u64::from(daemons::CHECK_FALL) + 10);
    let over = wait_for(limit, || {
        net.holds_vip(new) && (new == Node::B || !net.holds_vip(Node::B))
    })?;
    sleep(TAIL)?;
    let replies = prober.stop()?;
    if !over {
        return Ok(Err(format!(
            "{:?} did not hold the VIP alone {} s after the event\n{}",
            new,
            limit.as_secs(),
            tails(&a, &b)
        )));
    }
    let new_ttl = if new == Node::A { TTL_A } else { TTL_B };
    let Some(o) = analyse(&replies, event, new_ttl) else {
        return Ok(Err("no reply before the event: not settled".into()));
    };
    let seconds = match sc.measure() {
        Measure::Gap => o.gap_s,
        Measure::Takeover => match o.takeover_s {
            Some(t) => t,
            None => {
                return Ok(Err(format!(
                    "{new:?} held the VIP but never answered the client\n{}",
                    tails(&a, &b)
                )))
            }
        },
    };
    drop(a);
    drop(b);
    Ok(Ok(Sample {
        seconds,
        lost: o.lost,
    }))
}

/// Returns right after B receives one of A's adverts (false if none came
/// within the watcher's 3 s), so every event starts B's timer afresh.
fn after_advert(net: &FailoverNet) -> Result<bool, BenchError> {
    let exe = std::env::current_exe().map_err(|source| BenchError::Io {
        what: "finding this xtask binary".into(),
        source,
    })?;
    let mut cmd = net.exec(Node::B);
    cmd.arg(exe)
        .args(["bench", ADVERT_SUBCOMMAND, net::ADDR_A])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .stdout(Stdio::piped());
    let command = super::procs::describe(&cmd);
    let mut child = cmd.spawn().map_err(|source| BenchError::Spawn {
        command: command.clone(),
        source,
    })?;
    let mut line = String::new();
    if let Some(out) = child.stdout.take() {
        // Blocks until the advert or the watcher's own 3 s timeout.
        let _ = BufReader::new(out).read_line(&mut line);
    }
    let _ = child.wait();
    Ok(line.trim() == "advert")
}

fn set_executable(path: &Path) -> Result<(), BenchError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).map_err(|source| {
        BenchError::Write {
            path: path.to_path_buf(),
            source,
        }
    })
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
        assert_eq!((o.rounds, o.output), (3, PathBuf::from("B.md")));
        let o = parse_args(
            &args(&["--rounds", "2", "--output", "x.md"]),
            PathBuf::new(),
        )
        .expect("flags");
        assert_eq!((o.rounds, o.output), (2, PathBuf::from("x.md")));
        for bad in [&["--rounds", "0"][..], &["--rounds"], &["--duration", "1s"]] {
            let e = parse_args(&args(bad), PathBuf::new()).err().expect("error");
            assert!(e.to_string().contains(bad[0]), "{e}");
        }
    }

    #[test]
    fn killed_and_backend_report_the_takeover_the_rest_the_gap() {
        assert_eq!(Scenario::Kill.measure(), Measure::Takeover);
        assert_eq!(Scenario::Backend.measure(), Measure::Takeover);
        assert_eq!(Scenario::LinkDown.measure(), Measure::Gap);
        assert_eq!(Scenario::Returning.new_master(), Node::A);
        assert_eq!(Scenario::Graceful.new_master(), Node::B);
    }
}
