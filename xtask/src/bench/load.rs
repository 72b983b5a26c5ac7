//! The load generators and what their output says: wrk (keep-alive and
//! `Connection: close`) and iperf3 (1 and 8 streams).

use super::error::BenchError;

/// What one wrk run reports.
#[derive(Debug, PartialEq)]
pub struct WrkResult {
    pub requests: u64,
    pub requests_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// connect + read + write + timeout socket errors.
    pub socket_errors: u64,
    pub non_2xx: u64,
}

fn parse_err(what: &str, detail: &str, output: &str) -> BenchError {
    BenchError::Parse {
        what: what.into(),
        detail: detail.into(),
        output: output.into(),
    }
}

/// wrk's durations: `512.34us`, `1.10ms`, `2.00s`, `1.00m`.
fn duration_ms(text: &str) -> Option<f64> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (num, unit) = text.split_at(split);
    let v: f64 = num.parse().ok()?;
    let scale = match unit {
        "us" => 0.001,
        "ms" => 1.0,
        "s" => 1000.0,
        "m" => 60_000.0,
        "h" => 3_600_000.0,
        _ => return None,
    };
    Some(v * scale)
}

/// Parses `wrk --latency` output.
pub fn parse_wrk(out: &str) -> Result<WrkResult, BenchError> {
    let err = |d: &str| parse_err("wrk", d, out);
    let percentile = |p: &str| {
        out.lines()
            .map(str::split_whitespace)
            .filter_map(|mut w| Some((w.next()?, w.next()?)))
            .find(|(k, _)| *k == p)
            .and_then(|(_, v)| duration_ms(v))
    };
    let p50_ms = percentile("50%").ok_or_else(|| err("no 50% latency (was --latency given?)"))?;
    let p99_ms = percentile("99%").ok_or_else(|| err("no 99% latency"))?;
    let requests = out
        .lines()
        .find(|l| l.contains(" requests in "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| err("no 'N requests in' line"))?;
    let requests_per_s = out
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| err("no Requests/sec line"))?;
    let socket_errors = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("Socket errors:"))
        .map(|l| {
            l.split(',')
                .filter_map(|part| part.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    let non_2xx = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("Non-2xx or 3xx responses:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    Ok(WrkResult {
        requests,
        requests_per_s,
        p50_ms,
        p99_ms,
        socket_errors,
        non_2xx,
    })
}

/// What one iperf3 run reports (receiver side).
#[derive(Debug, PartialEq)]
pub struct IperfResult {
    pub gbit_per_s: f64,
    pub bytes: f64,
}

/// Parses `iperf3 -J` output: `end.sum_received`.
pub fn parse_iperf3(out: &str) -> Result<IperfResult, BenchError> {
    let json: serde_json::Value =
        serde_json::from_str(out).map_err(|e| parse_err("iperf3 -J", &e.to_string(), out))?;
    if let Some(e) = json.get("error").and_then(|e| e.as_str()) {
        return Err(parse_err("iperf3 -J", e, ""));
    }
    let sum = &json["end"]["sum_received"];
    let bps = sum["bits_per_second"]
        .as_f64()
        .ok_or_else(|| parse_err("iperf3 -J", "no end.sum_received.bits_per_second", ""))?;
    let bytes = sum["bytes"]
        .as_f64()
        .ok_or_else(|| parse_err("iperf3 -J", "no end.sum_received.bytes", ""))?;
    Ok(IperfResult {
        gbit_per_s: bps / 1e9,
        bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const WRK: &str = "Running 10s test @ http://10.77.1.2/index.html
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   512.34us  100.00us   3.00ms   90.00%
    Req/Sec    60.00k     2.00k   65.00k    70.00%
  Latency Distribution
     50%  580.00us
     75%  600.00us
     90%  700.00us
     99%    1.10ms
  600123 requests in 10.00s, 100.00MB read
  Socket errors: connect 0, read 3, write 0, timeout 2
  Non-2xx or 3xx responses: 7
Requests/sec:  60012.30
Transfer/sec:     10.00MB
";

    #[test]
    fn wrk_latency_output_is_read() {
        let r = parse_wrk(WRK).expect("parse");
        assert_eq!(r.requests, 600_123);
        assert!((r.requests_per_s - 60012.3).abs() < 1e-6);
        assert!((r.p50_ms - 0.58).abs() < 1e-9);
        assert!((r.p99_ms - 1.10).abs() < 1e-9);
        assert_eq!(r.socket_errors, 5);
        assert_eq!(r.non_2xx, 7);
    }

    #[test]
    fn wrk_without_latency_is_an_error() {
        let plain: String = WRK
            .lines()
            .filter(|l| !l.contains('%') || l.contains("Stdev") || l.contains("Req/Sec"))
            .map(|l| format!("{l}\n"))
            .collect();
        assert!(parse_wrk(&plain).is_err());
    }

    #[test]
    fn wrk_units() {
        assert_eq!(duration_ms("2.00s"), Some(2000.0));
        assert_eq!(duration_ms("1.00m"), Some(60_000.0));
        assert_eq!(duration_ms("12"), None);
        assert_eq!(duration_ms("3.0xs"), None);
    }

    #[test]
    fn iperf3_receiver_sum_is_read() {
        let out = r#"{"start":{},"intervals":[],"end":{"sum_sent":{"bytes":1,"bits_per_second":1},
            "sum_received":{"bytes":10750000000,"bits_per_second":8600000000.0}}}"#;
        let r = parse_iperf3(out).expect("parse");
        assert!((r.gbit_per_s - 8.6).abs() < 1e-9);
        assert!((r.bytes - 1.075e10).abs() < 1.0);
    }

    #[test]
    fn iperf3_error_is_reported() {
        let out =
            r#"{"start":{},"end":{},"error":"unable to connect to server: Connection refused"}"#;
        let e = parse_iperf3(out).expect_err("error");
        assert!(e.to_string().contains("Connection refused"));
    }
}
