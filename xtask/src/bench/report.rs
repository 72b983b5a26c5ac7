//! The results table: per row, the median and the spread (min-max) of each
//! proxy's runs, side by side, and whether lbd is at or above HAProxy (and
//! the older lbd of `--lbd-before`); also BENCHMARKS.md's sections.

use std::collections::BTreeMap;
use std::path::Path;

use super::error::BenchError;

use super::servers::Proxy;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Metric {
    KeepAliveRps,
    P50Ms,
    P99Ms,
    CpuUsPerRequest,
    CloseConnPerS,
    CpuUsPerConnection,
    Iperf1Gbps,
    Iperf8Gbps,
    CpuMsPerGb,
    RssStartMb,
    RssAfterLoadMb,
    RssIdleMb,
}

impl Metric {
    pub const ALL: [Metric; 12] = [
        Metric::KeepAliveRps,
        Metric::P50Ms,
        Metric::P99Ms,
        Metric::CpuUsPerRequest,
        Metric::CloseConnPerS,
        Metric::CpuUsPerConnection,
        Metric::Iperf1Gbps,
        Metric::Iperf8Gbps,
        Metric::CpuMsPerGb,
        Metric::RssStartMb,
        Metric::RssAfterLoadMb,
        Metric::RssIdleMb,
    ];

    pub fn label(self, idle: usize) -> String {
        match self {
            Metric::KeepAliveRps => "keep-alive req/s".into(),
            Metric::P50Ms => "keep-alive p50 latency (ms)".into(),
            Metric::P99Ms => "keep-alive p99 latency (ms)".into(),
            Metric::CpuUsPerRequest => "proxy CPU per keep-alive request (us)".into(),
            Metric::CloseConnPerS => "Connection: close conn/s".into(),
            Metric::CpuUsPerConnection => "proxy CPU per connection (us)".into(),
            Metric::Iperf1Gbps => "iperf3 1 stream (Gbit/s)".into(),
            Metric::Iperf8Gbps => "iperf3 8 streams (Gbit/s)".into(),
            Metric::CpuMsPerGb => "proxy CPU per GB, iperf3 1 stream (ms)".into(),
            Metric::RssStartMb => "RSS after start (MB)".into(),
            Metric::RssAfterLoadMb => "RSS after the loads, no connections (MB)".into(),
            Metric::RssIdleMb => format!("RSS with {idle} idle connections (MB)"),
        }
    }

    pub fn higher_is_better(self) -> bool {
        matches!(
            self,
            Metric::KeepAliveRps | Metric::CloseConnPerS | Metric::Iperf1Gbps | Metric::Iperf8Gbps
        )
    }

    fn decimals(self) -> usize {
        match self {
            Metric::KeepAliveRps | Metric::CloseConnPerS | Metric::CpuMsPerGb => 0,
            Metric::Iperf1Gbps
            | Metric::Iperf8Gbps
            | Metric::RssStartMb
            | Metric::RssAfterLoadMb
            | Metric::RssIdleMb => 2,
            Metric::CpuUsPerRequest | Metric::CpuUsPerConnection => 1,
            Metric::P50Ms | Metric::P99Ms => 3,
        }
    }
}

/// One proxy's values per metric, one per round.
pub type Samples = RowSamples<Metric>;

#[derive(Debug, PartialEq)]
pub struct Summary {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

pub fn summarize(values: &[f64]) -> Option<Summary> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    Some(Summary {
        median,
        min: v[0],
        max: v[n - 1],
    })
}

/// What BENCHMARKS.md starts with when a bench writes it first.
const PREAMBLE: &str = "# Benchmarks

Written by `cargo xtask bench lb`, `cargo xtask bench abuse` and
`cargo xtask bench failover` (xtask/src/bench/); rerun them to reproduce.
Each rewrites only its own section (between `<!-- bench:NAME -->`
markers). Do not edit the numbers by hand.
";

/// `doc` with the section of bench `name` replaced by `body`: the text
/// between `<!-- bench:NAME -->` and `<!-- /bench:NAME -->` (markers kept),
/// appended at the end when the section is missing; other sections and
/// text stay as they are.
pub fn replace_section(doc: &str, name: &str, body: &str) -> String {
    let begin = format!("<!-- bench:{name} -->");
    let end = format!("<!-- /bench:{name} -->");
    let block = format!("{begin}\n{}\n{end}", body.trim_end());
    if let Some(b) = doc.find(&begin) {
        if let Some(e) = doc[b..].find(&end) {
            let after = b + e + end.len();
            return format!("{}{block}{}", &doc[..b], &doc[after..]);
        }
    }
    let mut out = if doc.trim().is_empty() {
        PREAMBLE.to_string()
    } else {
        doc.trim_end().to_string() + "\n"
    };
    out.push('\n');
    out.push_str(&block);
    out.push('\n');
    out
}

/// Rewrites the section `name` of the Markdown file at `path` (made when
/// missing), leaving the other benches' sections intact.
pub fn write_section(path: &Path, name: &str, body: &str) -> Result<(), BenchError> {
    let doc = match std::fs::read_to_string(path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(source) => {
            return Err(BenchError::Read {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    std::fs::write(path, replace_section(&doc, name, body)).map_err(|source| BenchError::Write {
        path: path.to_path_buf(),
        source,
    })
}

fn cell(s: Option<&Summary>, decimals: usize) -> (String, String) {
    match s {
        Some(s) => (
            format!("{:.*}", decimals, s.median),
            format!("{:.*}-{:.*}", decimals, s.min, decimals, s.max),
        ),
        None => ("-".into(), "-".into()),
    }
}

/// How a row of a side-by-side table is printed and compared.
pub struct RowSpec {
    pub label: String,
    pub decimals: usize,
    /// Which way is better; None for rows that only count (no verdict).
    pub higher_is_better: Option<bool>,
}

/// Each proxy's values of row `R`, one per round.
pub type RowSamples<R> = BTreeMap<Proxy, BTreeMap<R, Vec<f64>>>;

/// The Markdown table: per row, median and spread of lbd, of the older lbd
/// when it ran, and of HAProxy, then lbd against HAProxy (and against the
/// older lbd). Without an older lbd it is the two-proxy table.
pub fn side_by_side<R: Ord>(samples: &RowSamples<R>, rows: &[(R, RowSpec)]) -> String {
    let with_before = samples.contains_key(&Proxy::LbdBefore);
    let columns = Proxy::lineup(with_before);
    let mut out = String::from("| row |");
    let mut rule = String::from("| --- |");
    for p in &columns {
        out.push_str(&format!(" {0} median | {0} spread |", p.label()));
        rule.push_str(" ---: | ---: |");
    }
    out.push_str(" lbd vs HAProxy |");
    rule.push_str(" --- |");
    if with_before {
        out.push_str(" lbd vs before |");
        rule.push_str(" --- |");
    }
    out.push('\n');
    out.push_str(&rule);
    out.push('\n');
    for (row, spec) in rows {
        let get = |p: Proxy| {
            samples
                .get(&p)
                .and_then(|r| r.get(row))
                .and_then(|v| summarize(v))
        };
        out.push_str(&format!("| {} |", spec.label));
        for p in &columns {
            let (m, s) = cell(get(*p).as_ref(), spec.decimals);
            out.push_str(&format!(" {m} | {s} |"));
        }
        let lbd = get(Proxy::Lbd);
        let vs = |other: Proxy| verdict(spec.higher_is_better, lbd.as_ref(), get(other).as_ref());
        out.push_str(&format!(" {} |", vs(Proxy::Haproxy)));
        if with_before {
            out.push_str(&format!(" {} |", vs(Proxy::LbdBefore)));
        }
        out.push('\n');
    }
    out
}

/// `bench lb`'s table.
pub fn table(samples: &Samples, idle: usize) -> String {
    let rows: Vec<(Metric, RowSpec)> = Metric::ALL
        .iter()
        .map(|&m| {
            (
                m,
                RowSpec {
                    label: m.label(idle),
                    decimals: m.decimals(),
                    higher_is_better: Some(m.higher_is_better()),
                },
            )
        })
        .collect();
    side_by_side(samples, &rows)
}

/// `+12.3 % (better)`: the median difference, signed so that + means lbd
/// has more, and whether that is at or above the other for this row.
fn verdict(
    higher_is_better: Option<bool>,
    lbd: Option<&Summary>,
    other: Option<&Summary>,
) -> String {
    let (Some(l), Some(h)) = (lbd, other) else {
        return "-".into();
    };
    if h.median == 0.0 {
        return "-".into();
    }
    let diff = (l.median - h.median) / h.median * 100.0;
    let Some(higher_is_better) = higher_is_better else {
        return format!("{diff:+.1} %");
    };
    let ok = if higher_is_better {
        l.median >= h.median
    } else {
        l.median <= h.median
    };
    format!(
        "{diff:+.1} % ({})",
        if ok { "at or above" } else { "below" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_spread() {
        let s = summarize(&[3.0, 1.0, 2.0]).expect("values");
        assert_eq!(
            s,
            Summary {
                median: 2.0,
                min: 1.0,
                max: 3.0
            }
        );
        let s = summarize(&[4.0, 1.0, 2.0, 3.0]).expect("values");
        assert_eq!(s.median, 2.5);
        assert_eq!(summarize(&[f64::NAN]), None);
    }

    #[test]
    fn a_section_is_replaced_and_the_others_kept() {
        let doc = "# Benchmarks\n\nintro\n\n<!-- bench:lb -->\nold lb\n<!-- /bench:lb -->\n\n<!-- bench:failover -->\nold fo\n<!-- /bench:failover -->\ntail\n";
        let d = replace_section(doc, "failover", "new fo\n");
        assert_eq!(
            d,
            "# Benchmarks\n\nintro\n\n<!-- bench:lb -->\nold lb\n<!-- /bench:lb -->\n\n<!-- bench:failover -->\nnew fo\n<!-- /bench:failover -->\ntail\n"
        );
        let d = replace_section(&d, "lb", "new lb");
        assert!(d.contains("<!-- bench:lb -->\nnew lb\n<!-- /bench:lb -->"));
        assert!(d.contains("new fo") && !d.contains("old"));
        // Rewriting with the same body changes nothing.
        assert_eq!(replace_section(&d, "lb", "new lb"), d);
    }

    #[test]
    fn a_missing_section_is_appended_and_an_empty_doc_gets_the_preamble() {
        let d = replace_section("", "failover", "fo");
        assert!(d.starts_with("# Benchmarks\n"));
        assert!(d.ends_with("<!-- bench:failover -->\nfo\n<!-- /bench:failover -->\n"));
        let d = replace_section(
            "# B\n\n<!-- bench:lb -->\nlb\n<!-- /bench:lb -->\n",
            "failover",
            "fo",
        );
        assert_eq!(
            d,
            "# B\n\n<!-- bench:lb -->\nlb\n<!-- /bench:lb -->\n\n<!-- bench:failover -->\nfo\n<!-- /bench:failover -->\n"
        );
        // An end marker without its begin marker is not a section.
        let d = replace_section("x <!-- /bench:lb -->\n", "lb", "lb");
        assert!(d.starts_with("x <!-- /bench:lb -->\n\n<!-- bench:lb -->"));
    }

    #[test]
    fn lower_is_better_for_latency_and_cpu() {
        let fast = Summary {
            median: 1.0,
            min: 1.0,
            max: 1.0,
        };
        let slow = Summary {
            median: 2.0,
            min: 2.0,
            max: 2.0,
        };
        let lower = Some(Metric::P99Ms.higher_is_better());
        let higher = Some(Metric::KeepAliveRps.higher_is_better());
        assert!(verdict(lower, Some(&fast), Some(&slow)).contains("at or above"));
        assert!(verdict(higher, Some(&fast), Some(&slow)).contains("below"));
        assert_eq!(verdict(higher, Some(&fast), None), "-");
        assert_eq!(verdict(None, Some(&fast), Some(&slow)), "-50.0 %");
    }

    #[test]
    fn table_has_a_row_per_metric_side_by_side() {
        let mut samples = Samples::new();
        for (p, v) in [(Proxy::Lbd, 110.0), (Proxy::Haproxy, 100.0)] {
            samples
                .entry(p)
                .or_default()
                .insert(Metric::KeepAliveRps, vec![v, v - 10.0, v + 10.0]);
        }
        let t = table(&samples, 10000);
        assert_eq!(t.lines().count(), 2 + Metric::ALL.len());
        assert!(t.contains(
            "| keep-alive req/s | 110 | 100-120 | 100 | 90-110 | +10.0 % (at or above) |"
        ));
        assert!(t.contains("RSS with 10000 idle connections"));
        assert!(t.starts_with(
            "| row | lbd median | lbd spread | HAProxy median | HAProxy spread | lbd vs HAProxy |\n\
             | --- | ---: | ---: | ---: | ---: | --- |\n"
        ));
    }

    #[test]
    fn an_older_lbd_gets_its_columns_and_a_comparison() {
        let mut samples = Samples::new();
        for (p, v) in [
            (Proxy::Lbd, 110.0),
            (Proxy::LbdBefore, 100.0),
            (Proxy::Haproxy, 120.0),
        ] {
            samples
                .entry(p)
                .or_default()
                .insert(Metric::KeepAliveRps, vec![v]);
        }
        let t = table(&samples, 10);
        assert!(t.starts_with(
            "| row | lbd median | lbd spread | lbd before median | lbd before spread | HAProxy median | HAProxy spread | lbd vs HAProxy | lbd vs before |\n\
             | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |\n"
        ), "{t}");
        assert!(t.contains(
            "| keep-alive req/s | 110 | 110-110 | 100 | 100-100 | 120 | 120-120 | -8.3 % (below) | +10.0 % (at or above) |"
        ), "{t}");
        // A row nobody measured keeps every column.
        assert!(t.contains("| keep-alive p50 latency (ms) | - | - | - | - | - | - | - | - |"));
    }
}
