//! `bench abuse`'s table and its BENCHMARKS.md section.

use std::collections::BTreeMap;

use super::super::report::{side_by_side, RowSamples, RowSpec};
use super::super::servers::Proxy;
use super::super::sysinfo::{self, Machine};
use super::bad_logins::Tally;
use super::configs::{Params, HTTP_REQUEST_TIMEOUT, SLOW_PORT, STATS_PORT, WEB_PORT};
use super::slow_headers::{SlowTally, BYTE_INTERVAL};
use super::{Options, PACE_DELAY_MS, WRK_CONNECTIONS};

/// The three conditions wrk measures under.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Condition {
    Baseline,
    BadLogins,
    SlowHeaders,
}

impl Condition {
    pub const ALL: [Condition; 3] = [
        Condition::Baseline,
        Condition::BadLogins,
        Condition::SlowHeaders,
    ];

    pub fn label(self, o: &Options) -> String {
        match self {
            Condition::Baseline => "no abuse".into(),
            Condition::BadLogins => format!("{} bad logins/s", o.login_rate),
            Condition::SlowHeaders => format!("{} slow-header conns", o.slow_connections),
        }
    }
}

/// What a row measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Measure {
    Rps,
    P50Ms,
    P99Ms,
    /// wrk's socket errors (connect, read, write, timeout) and non-2xx.
    WrkErrors,
    /// utime+stime of the proxy over the condition, % of one core.
    ProxyCpuPct,
    LoginsSent,
    LoginsAnswered,
    SlowOpened,
    SlowOpenAtEnd,
}

impl Measure {
    /// The rows every condition has.
    const EVERY: [Measure; 5] = [
        Measure::Rps,
        Measure::P50Ms,
        Measure::P99Ms,
        Measure::WrkErrors,
        Measure::ProxyCpuPct,
    ];

    fn spec(self, condition: &str) -> RowSpec {
        let (what, decimals, higher_is_better) = match self {
            Measure::Rps => ("req/s", 0, Some(true)),
            Measure::P50Ms => ("p50 latency (ms)", 3, Some(false)),
            Measure::P99Ms => ("p99 latency (ms)", 3, Some(false)),
            Measure::WrkErrors => ("wrk errors + non-2xx", 0, Some(false)),
            Measure::ProxyCpuPct => ("proxy CPU (% of a core)", 1, Some(false)),
            Measure::LoginsSent => ("bad logins sent", 0, None),
            Measure::LoginsAnswered => ("bad logins answered", 0, None),
            Measure::SlowOpened => ("slow conns connected", 0, None),
            Measure::SlowOpenAtEnd => ("slow conns still open at the end", 0, None),
        };
        RowSpec {
            label: format!("{condition}: {what}"),
            decimals,
            higher_is_better,
        }
    }
}

pub type Row = (Condition, Measure);
pub type Samples = RowSamples<Row>;

/// The rows in table order.
pub fn rows(o: &Options) -> Vec<(Row, RowSpec)> {
    let mut rows = Vec::new();
    for c in Condition::ALL {
        let label = c.label(o);
        let extra: &[Measure] = match c {
            Condition::Baseline => &[],
            Condition::BadLogins => &[Measure::LoginsSent, Measure::LoginsAnswered],
            Condition::SlowHeaders => &[Measure::SlowOpened, Measure::SlowOpenAtEnd],
        };
        for m in Measure::EVERY.iter().chain(extra) {
            rows.push(((c, *m), m.spec(&label)));
        }
    }
    rows
}

/// What the helpers saw, summed over the rounds, per proxy.
#[derive(Default)]
pub struct Tallies {
    pub logins: BTreeMap<Proxy, Tally>,
    pub slow: BTreeMap<Proxy, SlowTally>,
}

impl Tallies {
    pub fn add_logins(&mut self, p: Proxy, t: &Tally) {
        let sum = self.logins.entry(p).or_default();
        sum.sent += t.sent;
        sum.connect_failed += t.connect_failed;
        sum.unanswered += t.unanswered;
        for (s, n) in &t.answered {
            *sum.answered.entry(*s).or_default() += n;
        }
    }

    pub fn add_slow(&mut self, p: Proxy, t: &SlowTally) {
        let sum = self.slow.entry(p).or_default();
        sum.opened += t.opened;
        sum.connect_failed += t.connect_failed;
        sum.open += t.open;
        sum.closed += t.closed;
        for (s, n) in &t.answered {
            *sum.answered.entry(*s).or_default() += n;
        }
    }

    /// One line per proxy and helper: `401 x 497, unanswered x 3`.
    pub fn describe(&self) -> Vec<String> {
        let counts = |answered: &BTreeMap<u16, u64>, others: &[(&str, u64)]| {
            let mut parts: Vec<String> =
                answered.iter().map(|(s, n)| format!("{s} x {n}")).collect();
            parts.extend(
                others
                    .iter()
                    .filter(|(_, n)| *n > 0)
                    .map(|(what, n)| format!("{what} x {n}")),
            );
            if parts.is_empty() {
                "none".into()
            } else {
                parts.join(", ")
            }
        };
        let mut lines = Vec::new();
        for (p, t) in &self.logins {
            lines.push(format!(
                "- {}, bad logins (all rounds, {} sent): {}",
                p.label(),
                t.sent,
                counts(
                    &t.answered,
                    &[
                        ("unanswered", t.unanswered),
                        ("connect failed", t.connect_failed)
                    ]
                )
            ));
        }
        for (p, t) in &self.slow {
            let answered: u64 = t.answered.values().sum();
            lines.push(format!(
                "- {}, slow-header connections (all rounds, {} connected, {} failed to connect): {} still open at the end, {} closed by the proxy ({})",
                p.label(),
                t.opened,
                t.connect_failed,
                t.open,
                t.closed,
                counts(&t.answered, &[("without an answer", t.closed - answered)])
            ));
        }
        lines
    }
}

/// The BENCHMARKS.md section.
pub struct Document<'a> {
    pub command: &'a str,
    pub machine: &'a Machine,
    pub opts: &'a Options,
    pub params: &'a Params,
    pub table: &'a str,
    pub tallies: &'a Tallies,
    /// Per lbd binary, where it took the request-header timeout.
    pub http_request: &'a [(Proxy, String)],
    pub warnings: &'a [String],
}

impl Document<'_> {
    pub fn render(&self) -> String {
        let o = self.opts;
        let end_load = sysinfo::loadavg();
        let busy = sysinfo::busy(&self.machine.loadavg, &end_load);
        let with_before = o.lbd_before.is_some();
        let mut doc = format!(
            "## lbd against HAProxy under abuse, mode http

Command (as root):

    {command}

{machine}
- load average at the end (/proc/loadavg): {end_load}
{busy}
### Results

{rounds} round(s); per round each proxy goes through the three
conditions in turn, each on a freshly started proxy, {duration} s of wrk
per condition. Runs alternate: {alternation}. Median and spread (min-max)
over the rounds. \"lbd vs HAProxy\" is the difference of the medians; \"at
or above\" means lbd is as good or better on that row (higher req/s;
lower latency, errors and CPU); count rows get no verdict.{before}

{table}
",
            command = self.command,
            machine = self.machine.describe().join("\n"),
            busy = if busy {
                "\nOther work was running on this machine (load average above 0.5): the\n\
                 latency rows are noisy (see the spreads).\n"
            } else {
                ""
            },
            rounds = o.rounds,
            alternation = sysinfo::alternation(with_before),
            duration = o.duration_s,
            before = if with_before {
                sysinfo::before_note()
            } else {
                ""
            },
            table = self.table,
        );
        doc.push_str("What the helpers saw:\n\n");
        for l in self.tallies.describe() {
            doc.push_str(&l);
            doc.push('\n');
        }
        doc.push('\n');
        if !self.warnings.is_empty() {
            doc.push_str("Notes from the run:\n\n");
            for w in self.warnings {
                doc.push_str(&format!("- {w}\n"));
            }
            doc.push('\n');
        }
        doc.push_str(&self.setup());
        doc
    }

    fn setup(&self) -> String {
        let o = self.opts;
        let mut http_request = String::new();
        for (p, how) in self.http_request {
            http_request.push_str(&format!("\n  - {}: {how}.", p.label()));
        }
        format!(
            "### Setup

- The namespaces of `bench lb` (client 10.77.1.1 - 10.77.1.2 proxy
  10.77.2.1 - 10.77.2.2 backend); nginx on CPU 0 as the backend, the
  proxy on CPU 1, wrk and the helpers on CPU 0. Logs off.
- Both proxies, mode http: frontend `web` :{WEB_PORT} to nginx (what wrk
  measures), frontend `slow` :{SLOW_PORT} answering every request with a
  redirect to https, and the stats page :{STATS_PORT} with an `admin` user.
  Timeouts connect 5s, client 50s, server 50s, queue 10s. HAProxy:
  `nbthread 1`, `timeout http-request {HTTP_REQUEST_TIMEOUT}` in `defaults`.
  lbd: one CPU, so one tokio worker (and its blocking pool, where the
  argon2id checks run, shares that CPU); its request-header timeout:{http_request}
- maxconn {maxconn} in `global` for both, split between the frontends:
  `maxconn {web_maxconn}` on `web` and `maxconn {slow_maxconn}` on `slow` (lbd's
  and HAProxy's frontend `maxconn`). The slow-header helper opens
  {slow} connections, as many as the global limit: a proxy that let the
  `slow` frontend take more than its own share would leave `web` none (wrk
  would show errors and no req/s).
- Load: `wrk -t1 -c{WRK_CONNECTIONS} --latency` keep-alive, with a Lua
  `delay()` of {PACE_DELAY_MS} ms before each request on each connection,
  so at most {max_rate} req/s: a moderate load, not the proxy's limit (wrk2's
  fixed rate is not in Debian; this is closed-loop with a pause, so a
  stalled proxy lowers req/s instead of queueing requests).
- Bad logins: a helper in the client namespace sends {rate} requests a
  second (an absolute schedule, each on a new connection, `Connection:
  close`) to the stats page with `Authorization: Basic` for `admin` and a
  wrong password, from 1 s before wrk starts to the end of wrk, then waits
  2 s for the answers still due. HAProxy's `stats auth admin:PASSWORD`
  holds the password in clear text and compares strings: a bad login costs
  it next to nothing. lbd's `[stats.users.admin]` holds an argon2id hash
  (`lbd hash-password`), which lbd verifies (tens of ms of CPU by design)
  off the proxy's worker, one at a time, after a delay that doubles per
  failure from the same address: \"unanswered\" attempts are those still
  waiting when the helper stopped.
- Slow headers: a helper in the client namespace opens {slow} connections
  to `slow` and sends on each a request header one byte every {byte_s} s
  (`GET / HTTP/1.1`, `Host`, then an `X-Slow` header that never ends),
  1 s before wrk starts until wrk ends; it never reconnects. \"still open
  at the end\" counts what the client still holds (a connection waiting in
  the listen backlog counts as open).
",
            maxconn = o.maxconn,
            slow_maxconn = self.params.slow_maxconn,
            web_maxconn = self.params.web_maxconn,
            slow = o.slow_connections,
            max_rate = u64::from(WRK_CONNECTIONS) * 1000 / PACE_DELAY_MS,
            rate = o.login_rate,
            byte_s = BYTE_INTERVAL.as_secs(),
        )
    }
}

/// The table of medians and spreads.
pub fn table(samples: &Samples, o: &Options) -> String {
    side_by_side(samples, &rows(o))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_condition_has_latency_rows_and_its_own_counts() {
        let o = Options::default_for_tests();
        let labels: Vec<String> = rows(&o).into_iter().map(|(_, s)| s.label).collect();
        for want in [
            "no abuse: p99 latency (ms)",
            "50 bad logins/s: p50 latency (ms)",
            "50 bad logins/s: bad logins answered",
            "1000 slow-header conns: req/s",
            "1000 slow-header conns: slow conns still open at the end",
        ] {
            assert!(labels.iter().any(|l| l == want), "{want}: {labels:?}");
        }
        assert!(!labels.iter().any(|l| l == "no abuse: bad logins sent"));
    }

    #[test]
    fn the_section_carries_command_machine_table_and_setup() {
        let machine = Machine {
            date: "Thu Dec  3 08:05:07 UTC 2026".into(),
            nproc: "2".into(),
            cpu: "Xeon".into(),
            kernel: "6.18".into(),
            loadavg: "0.10 0.10 0.10 1/100 1".into(),
            versions: vec![("haproxy", "HAProxy version 2.6.12".into())],
            extra: Vec::new(),
        };
        let mut tallies = Tallies::default();
        tallies.add_logins(
            Proxy::Haproxy,
            &Tally {
                sent: 750,
                answered: BTreeMap::from([(401, 750)]),
                ..Tally::default()
            },
        );
        let o = Options::default_for_tests();
        let how = [(
            Proxy::Lbd,
            super::super::configs::HttpRequestKey::Unsupported.describe(),
        )];
        let doc = Document {
            command: "cargo xtask bench abuse --rounds 3",
            machine: &machine,
            opts: &o,
            params: &Params::new(o.maxconn, String::new()),
            table: "| row |\n",
            tallies: &tallies,
            http_request: &how,
            warnings: &["a note".into()],
        }
        .render();
        for want in [
            "\n    cargo xtask bench abuse --rounds 3\n",
            "Thu Dec  3 08:05:07 UTC 2026",
            "`HAProxy version 2.6.12`",
            "Runs alternate: lbd, HAProxy, lbd, HAProxy, ...",
            "| row |",
            "- HAProxy, bad logins (all rounds, 750 sent): 401 x 750",
            "- a note",
            "  - lbd: no `timeout.http_request`",
            "`timeout http-request 10s`",
            "holds the password in clear text and compares strings",
            "maxconn 1000 in `global`",
            "`maxconn 500` on `web` and `maxconn 500` on `slow`",
            "at most 2000 req/s",
        ] {
            assert!(doc.contains(want), "{want}\n{doc}");
        }
        assert!(!doc.contains("lbd before"));
    }

    #[test]
    fn the_tallies_are_summed_and_said_per_proxy() {
        let mut t = Tallies::default();
        let logins = Tally {
            sent: 250,
            connect_failed: 0,
            unanswered: 200,
            answered: BTreeMap::from([(401, 50)]),
        };
        t.add_logins(Proxy::Lbd, &logins);
        t.add_logins(Proxy::Lbd, &logins);
        t.add_slow(
            Proxy::Haproxy,
            &SlowTally {
                opened: 1000,
                connect_failed: 0,
                open: 500,
                closed: 500,
                answered: BTreeMap::from([(408, 499)]),
            },
        );
        let lines = t.describe().join("\n");
        assert!(
            lines.contains("- lbd, bad logins (all rounds, 500 sent): 401 x 100, unanswered x 400"),
            "{lines}"
        );
        assert!(
            lines.contains("500 still open at the end, 500 closed by the proxy (408 x 499, without an answer x 1)"),
            "{lines}"
        );
    }
}
