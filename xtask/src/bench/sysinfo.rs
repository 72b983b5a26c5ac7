//! What BENCHMARKS.md says besides the table: the command, the machine, the
//! versions and the date, each read from the system (never typed in).

use std::path::Path;
use std::process::Command;

use super::lb::Options;

pub struct Machine {
    pub date: String,
    pub nproc: String,
    pub cpu: String,
    pub kernel: String,
    pub loadavg: String,
    pub versions: Vec<(&'static str, String)>,
    /// Further lines about what ran (the `--lbd-before` binary's path).
    pub extra: Vec<String>,
}

/// First non-empty line of a command's stdout, else stderr (nginx -v and
/// wrk -v print there), or what went wrong.
fn first_line(program: &str, args: &[&str]) -> String {
    match Command::new(program).args(args).output() {
        Ok(o) => [o.stdout, o.stderr]
            .iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .find_map(|t| t.lines().find(|l| !l.trim().is_empty()).map(str::to_string))
            .unwrap_or_else(|| format!("({program} printed nothing)")),
        Err(e) => format!("({program}: {e})"),
    }
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "(no model name in /proc/cpuinfo)".into())
}

pub fn machine(lbd_bin: &Path) -> Machine {
    machine_with(
        lbd_bin,
        &[
            ("haproxy", "haproxy", &["-v"]),
            ("nginx", "nginx", &["-v"]),
            ("wrk", "wrk", &["-v"]),
            ("iperf3", "iperf3", &["--version"]),
        ],
    )
}

/// The machine, lbd's version and those of `tools` (name, program, args).
pub fn machine_with(lbd_bin: &Path, tools: &[(&'static str, &str, &[&str])]) -> Machine {
    let lbd = lbd_bin.to_string_lossy();
    let mut versions = vec![("lbd", first_line(&lbd, &["--version"]))];
    versions.extend(
        tools
            .iter()
            .map(|(name, program, args)| (*name, first_line(program, args))),
    );
    Machine {
        date: first_line("date", &["-u"]),
        nproc: first_line("nproc", &[]),
        cpu: cpu_model(),
        kernel: first_line("uname", &["-r"]),
        loadavg: loadavg(),
        versions,
        extra: Vec::new(),
    }
}

impl Machine {
    /// Adds the version and path of the `--lbd-before` binary, if any.
    pub fn add_lbd_before(&mut self, before: Option<&Path>) {
        if let Some(path) = before {
            let version = first_line(&path.to_string_lossy(), &["--version"]);
            self.versions.insert(1, ("lbd before", version));
            // Both binaries may print the same version: the path and the
            // file's time tell them apart.
            let modified = first_line("date", &["-u", "-r", &path.to_string_lossy()]);
            self.extra.push(format!(
                "- lbd before is the binary `{}` (modified {modified})",
                path.display()
            ));
        }
    }

    pub fn describe(&self) -> Vec<String> {
        let mut v = vec![
            format!("- date (`date -u` at start): {}", self.date),
            format!(
                "- machine: {} CPUs (`nproc`), {} (/proc/cpuinfo), kernel {} (`uname -r`)",
                self.nproc, self.cpu, self.kernel
            ),
            format!("- load average at start (/proc/loadavg): {}", self.loadavg),
        ];
        for (name, ver) in &self.versions {
            v.push(format!("- {name}: `{ver}`"));
        }
        v.extend(self.extra.iter().cloned());
        v
    }
}

/// Load average (1 min) above which the doc warns that other work shared
/// the two cores.
const BUSY_LOAD: f64 = 0.5;

/// The 1-minute load average from /proc/loadavg text.
fn load1(loadavg: &str) -> Option<f64> {
    loadavg.split_whitespace().next()?.parse().ok()
}

/// Whether either load average (start, end) says other work shared the
/// cores.
pub fn busy(start: &str, end: &str) -> bool {
    [start, end]
        .iter()
        .filter_map(|l| load1(l))
        .any(|l| l > BUSY_LOAD)
}

pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// The order of the runs: `lbd, HAProxy, lbd, HAProxy, ...`.
pub fn alternation(with_before: bool) -> String {
    let names: Vec<&str> = super::servers::Proxy::lineup(with_before)
        .iter()
        .map(|p| p.label())
        .collect();
    format!("{0}, {0}, ...", names.join(", "))
}

/// What the `--lbd-before` columns mean.
pub fn before_note() -> &'static str {
    "\n\"lbd before\" is the older lbd binary of `--lbd-before` (path and\n\
     version above) with the same config; \"lbd vs before\" compares lbd\n\
     with it the same way, so a change that made lbd slower shows as\n\
     \"below\" there."
}

pub fn document(
    command: &str,
    machine: &Machine,
    opts: &Options,
    maxconn: u64,
    table: &str,
    warnings: &[String],
) -> String {
    let end_load = loadavg();
    let busy = busy(&machine.loadavg, &end_load);
    let mut doc = format!(
        "## lbd against HAProxy, mode tcp

Command (as root):

    {command}

{}
- load average at the end (/proc/loadavg): {end_load}
{}
### Results

{} round(s), each proxy started fresh per round. Runs alternate:
{}; {} s per load. Median and spread (min-max) over the rounds. \"lbd vs
HAProxy\" is the difference of the medians; \"at or above\" means lbd is
as good or better on that row (higher req/s, conn/s, Gbit/s; lower
latency, CPU and RSS).{}

{table}
",
        machine.describe().join("\n"),
        if busy {
            "\nOther work was running on this machine (load average above 0.5): the\n\
             throughput and latency rows are noisy (see the spreads); CPU per request,\n\
             per connection and per GB, and RSS, depend less on it.\n"
        } else {
            ""
        },
        opts.rounds,
        alternation(opts.lbd_before.is_some()),
        opts.duration_s,
        if opts.lbd_before.is_some() {
            before_note()
        } else {
            ""
        },
    );
    if !warnings.is_empty() {
        doc.push_str("Notes from the run:\n\n");
        for w in warnings {
            doc.push_str(&format!("- {w}\n"));
        }
        doc.push('\n');
    }
    let [(_, _, http_max), (_, _, iperf_max)] = super::servers::frontends(maxconn);
    doc.push_str(&format!(
        "### Setup

- Three network namespaces (client, proxy, backend) made by the bench,
  joined by veth pairs at MTU 1500 (client 10.77.1.1 - 10.77.1.2 proxy
  10.77.2.1 - 10.77.2.2 backend), removed at the end, also on error or
  Ctrl-C.
- Backend: nginx (one process, keep-alive without a request limit, access
  log off) serving a {}-byte static file, and an iperf3 server, on CPU 0.
- Proxy on CPU 1 (`taskset -c 1`), mode tcp, one frontend to nginx (:80)
  and one to iperf3 (:5201); timeouts connect 5s, client 50s, server 50s,
  queue 10s; maxconn {maxconn} in `global`, split by each frontend's own
  `maxconn`: {http_max} for nginx's, {iperf_max} for iperf3's (lbd does not let
  one frontend take another's share); logs off (HAProxy: no `log` line; lbd:
  `LBD_LOG=error`). HAProxy: `nbthread 1`. lbd: one CPU, so one tokio
  worker; its defaults otherwise{}.
- Load on CPU 0: `wrk -t1 -c32 --latency` keep-alive and with
  `-H 'Connection: close'`; `iperf3 -c` through the proxy with `-P 1` and
  `-P 8`. The load and nginx share CPU 0, so keep-alive req/s is bounded by
  the client core: compare proxies on CPU per request there.
- Proxy CPU: utime+stime delta from /proc/PID/stat over each load, divided
  by the requests wrk completed (or by the GB iperf3 received).
- RSS: VmRSS from /proc/PID/status right after start, after the loads
  (no connection open), and once the proxy holds {} idle TCP connections
  opened from the client namespace (both sides: two descriptors each).
",
        super::servers::FILE_BODY.len(),
        match opts.lbd_splice {
            None => " (splice(2) after 128 KiB per direction)",
            Some(true) => ", `splice = true` (`--lbd-splice on`)",
            Some(false) => ", `splice = false` (`--lbd-splice off`)",
        },
        opts.idle,
    ));
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine(loadavg: &str) -> Machine {
        Machine {
            date: "Sun Nov 22 01:25:08 UTC 2026".into(),
            nproc: "2".into(),
            cpu: "AMD EPYC".into(),
            kernel: "6.1.0".into(),
            loadavg: loadavg.into(),
            versions: vec![("haproxy", "HAProxy version 2.6.12".into())],
            extra: Vec::new(),
        }
    }

    fn opts() -> Options {
        Options {
            rounds: 3,
            duration_s: 10,
            idle: 10_000,
            output: "BENCHMARKS.md".into(),
            lbd_splice: None,
            lbd_before: None,
        }
    }

    #[test]
    fn document_carries_command_machine_and_table() {
        let doc = document(
            "cargo xtask bench lb --rounds 3",
            &machine("0.00 0.00 0.00 1/100 1"),
            &opts(),
            9936,
            "| row |\n",
            &["a note".into()],
        );
        for want in [
            "    cargo xtask bench lb --rounds 3\n",
            "Sun Nov 22 01:25:08 UTC 2026",
            "2 CPUs",
            "`HAProxy version 2.6.12`",
            "| row |",
            "- a note",
            "maxconn 9936",
            "`maxconn`: 9924 for nginx's, 12 for iperf3's",
            "10000 idle TCP connections",
            "a 58-byte static file",
        ] {
            assert!(doc.contains(want), "{want}");
        }
    }

    #[test]
    fn an_older_lbd_is_named_in_the_alternation_and_the_versions() {
        assert_eq!(alternation(false), "lbd, HAProxy, lbd, HAProxy, ...");
        let o = Options {
            lbd_before: Some("/tmp/lbd-before".into()),
            ..opts()
        };
        let doc = document("c", &machine("0.0"), &o, 1, "", &[]);
        assert!(
            doc.contains(
                "Runs alternate:\nlbd, lbd before, HAProxy, lbd, lbd before, HAProxy, ...;"
            ),
            "{doc}"
        );
        assert!(doc.contains("\"lbd vs before\""));
        let plain = document("c", &machine("0.0"), &opts(), 1, "", &[]);
        assert!(!plain.contains("lbd before"));
        let mut m = machine("0.0");
        m.add_lbd_before(Some(Path::new("/nonexistent/lbd-before")));
        let lines = m.describe().join("\n");
        assert!(lines.contains("- lbd before: `"), "{lines}");
        assert!(
            lines.contains("\n- lbd before is the binary `/nonexistent/lbd-before`"),
            "{lines}"
        );
    }

    #[test]
    fn a_busy_machine_is_said() {
        let doc = document("c", &machine("3.65 3.9 3.6 3/121 1"), &opts(), 1, "", &[]);
        assert!(doc.contains("Other work was running"));
        assert_eq!(load1("0.25 0.1 0.1 1/1 1"), Some(0.25));
        assert_eq!(load1(""), None);
    }
}
