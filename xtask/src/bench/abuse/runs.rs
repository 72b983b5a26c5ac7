//! One run: a fresh proxy, the abuse of one condition, paced wrk on `web`
//! meanwhile, and what the proxy and the helpers show at the end.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use super::super::error::BenchError;
use super::super::load::{parse_wrk, WrkResult};
use super::super::netns::{Ns, Topology, PROXY_FRONT_ADDR};
use super::super::procs::{self, cpu_ticks, run_to_end, Daemon};
use super::super::servers::{write, LbdBinaries, Limits, Proxy, ProxyRun, FILE_PATH, LOAD_CPU};
use super::bad_logins::{BadLogins, Tally};
use super::configs::{haproxy_config, lbd_config, HttpRequestKey, Params, PORTS, WEB_PORT};
use super::report::{Condition, Measure, Samples, Tallies};
use super::slow_headers::{SlowHeaders, SlowTally};
use super::{pace_script, Options, PACE_DELAY_MS, WRK_CONNECTIONS};

/// The abuse starts this long before wrk, so wrk measures it in effect.
const LEAD: Duration = Duration::from_secs(1);
/// How long the bad-login helper waits for answers after the last send.
const LOGIN_GRACE_S: u64 = 2;
/// Pause after each run so TIME_WAIT and softirq work settle.
const SETTLE: Duration = Duration::from_millis(500);

/// What every run shares.
pub struct Bench<'a> {
    pub topo: &'a Topology,
    pub dir: &'a Path,
    pub bins: &'a LbdBinaries,
    pub opts: &'a Options,
    pub params: &'a Params,
    /// Per lbd binary, where it takes the request-header timeout.
    pub http_request: &'a [(Proxy, HttpRequestKey)],
    pub limits: Limits,
    /// Clock ticks per second of /proc/PID/stat.
    pub clk: u64,
}

/// What one run measured.
pub struct RunResult {
    wrk: WrkResult,
    cpu_pct: f64,
    logins: Option<Tally>,
    slow: Option<SlowTally>,
}

impl RunResult {
    #[allow(clippy::cast_precision_loss)] // counts far below 2^52
    pub fn record(&self, p: Proxy, c: Condition, samples: &mut Samples, tallies: &mut Tallies) {
        let rows = samples.entry(p).or_default();
        let mut put = |m: Measure, v: f64| rows.entry((c, m)).or_default().push(v);
        let w = &self.wrk;
        put(Measure::Rps, w.requests_per_s);
        // No request went through: no latency to speak of (NaN is left out
        // of the medians and shows as "-").
        let latency = |ms: f64| if w.requests == 0 { f64::NAN } else { ms };
        put(Measure::P50Ms, latency(w.p50_ms));
        put(Measure::P99Ms, latency(w.p99_ms));
        put(Measure::WrkErrors, (w.socket_errors + w.non_2xx) as f64);
        put(Measure::ProxyCpuPct, self.cpu_pct);
        if let Some(t) = &self.logins {
            put(Measure::LoginsSent, t.sent as f64);
            put(Measure::LoginsAnswered, t.answered_total() as f64);
            tallies.add_logins(p, t);
        }
        if let Some(t) = &self.slow {
            put(Measure::SlowOpened, t.opened as f64);
            put(Measure::SlowOpenAtEnd, t.open as f64);
            tallies.add_slow(p, t);
        }
    }
}

impl Bench<'_> {
    fn start_proxy(&self, proxy: Proxy) -> Result<Daemon, BenchError> {
        let stem = proxy.file_stem();
        let config = match proxy {
            Proxy::Haproxy => haproxy_config(self.params),
            Proxy::Lbd | Proxy::LbdBefore => {
                let key = self
                    .http_request
                    .iter()
                    .find(|(p, _)| *p == proxy)
                    .map_or(HttpRequestKey::Unsupported, |(_, k)| *k);
                lbd_config(self.dir, stem, self.params, key)
            }
        };
        ProxyRun {
            topo: self.topo,
            dir: self.dir,
            proxy,
            bins: self.bins,
            limits: self.limits,
        }
        .spawn(&config, &PORTS)
    }

    fn wrk(&self) -> Result<Command, BenchError> {
        let script = pace_script(self.dir);
        write(
            &script,
            &format!(
                "-- cargo xtask bench abuse: each connection pauses before each\n\
                 -- request, so the load is moderate, not the proxy's limit.\n\
                 function delay()\n  return {PACE_DELAY_MS}\nend\n"
            ),
        )?;
        let mut cmd = self.topo.exec(Ns::Client);
        cmd.args(["taskset", "-c", LOAD_CPU, "wrk", "-t", "1", "-c"])
            .arg(WRK_CONNECTIONS.to_string())
            .arg(format!("-d{}s", self.opts.duration_s))
            .arg("--latency")
            .arg("-s")
            .arg(&script)
            .arg(format!("http://{PROXY_FRONT_ADDR}:{WEB_PORT}{FILE_PATH}"));
        Ok(cmd)
    }

    /// wrk on `web`, and the proxy's CPU (% of a core) from `since`.
    fn measure(
        &self,
        proxy: &Daemon,
        condition: Condition,
        cpu_from: (Instant, u64),
    ) -> Result<(WrkResult, f64), BenchError> {
        let out = self.dir.join(format!("wrk-{condition:?}.out"));
        let text = run_to_end(self.wrk()?, &out)?;
        let wrk = parse_wrk(&text)?;
        let ticks = cpu_ticks(proxy.pid())?.saturating_sub(cpu_from.1);
        let wall = cpu_from.0.elapsed().as_secs_f64();
        // Tick counts stay far below 2^52: exact in f64.
        #[allow(clippy::cast_precision_loss)]
        let cpu_pct = ticks as f64 / self.clk as f64 / wall * 100.0;
        Ok((wrk, cpu_pct))
    }

    /// One run of `condition` on a fresh `proxy`.
    pub fn run(
        &self,
        proxy: Proxy,
        condition: Condition,
        warnings: &mut Vec<String>,
    ) -> Result<RunResult, BenchError> {
        let mut d = self.start_proxy(proxy)?;
        let cpu_from = (Instant::now(), cpu_ticks(d.pid())?);
        let o = self.opts;
        let mut logins = None;
        let mut slow = None;
        let (wrk, cpu_pct) = match condition {
            Condition::Baseline => self.measure(&d, condition, cpu_from)?,
            Condition::BadLogins => {
                let started = Instant::now();
                let helper = BadLogins::start(
                    self.topo,
                    self.dir,
                    self.limits,
                    o.login_rate,
                    LEAD.as_secs() + o.duration_s,
                    LOGIN_GRACE_S,
                )?;
                procs::sleep(LEAD)?;
                let m = self.measure(&d, condition, cpu_from)?;
                let t = helper.finish(started)?;
                eprintln!("  bad logins: {}", t.line());
                logins = Some(t);
                m
            }
            Condition::SlowHeaders => {
                let helper = SlowHeaders::open(self.topo, self.limits, o.slow_connections)?;
                eprintln!("  slow-header connections: {} connected", helper.connected);
                procs::sleep(LEAD)?;
                let m = self.measure(&d, condition, cpu_from)?;
                let t = helper.finish()?;
                eprintln!("  slow headers: {}", t.line());
                slow = Some(t);
                m
            }
        };
        eprintln!(
            "  wrk: {:.0} req/s, p50 {:.3} ms, p99 {:.3} ms, {} socket errors, {} non-2xx; proxy CPU {cpu_pct:.1} %",
            wrk.requests_per_s, wrk.p50_ms, wrk.p99_ms, wrk.socket_errors, wrk.non_2xx
        );
        if !d.running() {
            return Err(BenchError::CommandFailed {
                command: proxy.label().into(),
                status: format!("exited during {condition:?}"),
                stderr: d.log_tail(),
            });
        }
        if wrk.requests == 0 {
            warnings.push(format!(
                "{}, {}: no request of wrk went through (web starved)",
                proxy.label(),
                condition.label(o)
            ));
        }
        drop(d);
        procs::sleep(SETTLE)?;
        Ok(RunResult {
            wrk,
            cpu_pct,
            logins,
            slow,
        })
    }
}
