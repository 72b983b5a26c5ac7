//! The client's probe: the prober (pinger.rs, run in the client namespace)
//! sends an ICMP echo to the VIP every 10 ms and prints each reply with its
//! receive time (`[epoch.micros]`) and its TTL, as `ping -D` does. Node A's
//! namespace answers with TTL 61 and B's with 62 (`net.ipv4.ip_default_ttl`),
//! so every reply names the node that answered. From the replies: the
//! longest gap between two consecutive replies after the event, the probes
//! lost, and when the new master first answered.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::super::error::BenchError;
use super::super::procs::Daemon;
use super::net::{FailoverNet, Node, VIP};

/// One echo reply.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Reply {
    pub seq: u32,
    /// Receive time, seconds since the epoch.
    pub at: f64,
    pub ttl: u8,
}

/// Parses ping's reply lines for `vip`:
/// `[1763780000.123456] 64 bytes from 10.78.0.100: icmp_seq=12 ttl=61 time=0.05 ms`
/// (duplicates end in `(DUP!)` and count too). Other lines (`no answer
/// yet`, unreachable, the summary) are skipped.
pub fn parse_ping(text: &str, vip: &str) -> Vec<Reply> {
    let from = format!(" bytes from {vip}:");
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix('[')?;
            let (stamp, rest) = rest.split_once(']')?;
            if !rest.contains(&from) {
                return None;
            }
            let at: f64 = stamp.parse().ok()?;
            let field = |name: &str| {
                rest.split_whitespace()
                    .find_map(|w| w.strip_prefix(name))
                    .map(str::to_string)
            };
            Some(Reply {
                seq: field("icmp_seq=")?.parse().ok()?,
                ttl: field("ttl=")?.parse().ok()?,
                at,
            })
        })
        .collect()
}

/// What one failover looked like from the client.
#[derive(Debug, PartialEq)]
pub struct Outcome {
    /// Longest gap between consecutive replies, from the last reply before
    /// the event on (seconds).
    pub gap_s: f64,
    /// Probes without a reply in that stretch.
    pub lost: u32,
    /// From the event to the first reply from the node with `new_ttl`
    /// (seconds); None if it never answered.
    pub takeover_s: Option<f64>,
}

/// The outcome around `event` (seconds since the epoch). None when no
/// reply came before the event (the pair was not answering: not settled).
pub fn analyse(replies: &[Reply], event: f64, new_ttl: u8) -> Option<Outcome> {
    let mut r: Vec<Reply> = replies.to_vec();
    r.sort_by(|a, b| a.at.total_cmp(&b.at));
    let start = r.iter().rposition(|x| x.at < event)?;
    let window = &r[start..];
    let gap_s = window
        .windows(2)
        .map(|w| w[1].at - w[0].at)
        .fold(0.0, f64::max);
    let mut seqs: Vec<u32> = window.iter().map(|x| x.seq).collect();
    seqs.sort_unstable();
    seqs.dedup();
    let lost = match (seqs.first(), seqs.last()) {
        (Some(lo), Some(hi)) => {
            let span = hi - lo + 1;
            span - u32::try_from(seqs.len()).unwrap_or(span)
        }
        _ => 0,
    };
    let takeover_s = window
        .iter()
        .find(|x| x.at >= event && x.ttl == new_ttl)
        .map(|x| x.at - event);
    Some(Outcome {
        gap_s,
        lost,
        takeover_s,
    })
}

/// Now, in seconds since the epoch (the prober's clock).
pub fn now_epoch() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs_f64()
}

/// The running prober; stopped with SIGINT (its lines are flushed as
/// written).
pub struct Prober {
    ping: Daemon,
    out: PathBuf,
}

impl Prober {
    pub fn start(net: &FailoverNet, dir: &Path) -> Result<Self, BenchError> {
        let out = dir.join("ping.out");
        let exe = std::env::current_exe().map_err(|source| BenchError::Io {
            what: "finding this xtask binary".into(),
            source,
        })?;
        let mut cmd: Command = net.exec(Node::Client);
        cmd.arg(exe).args(["bench", super::pinger::SUBCOMMAND, VIP]);
        let ping = Daemon::spawn("prober", cmd, &out)?;
        Ok(Self { ping, out })
    }

    /// Stops the prober and returns the replies it saw.
    pub fn stop(mut self) -> Result<Vec<Reply>, BenchError> {
        self.ping.signal("INT")?;
        self.ping.wait_exit(Duration::from_secs(5))?;
        let text = std::fs::read_to_string(&self.out).map_err(|source| BenchError::Read {
            path: self.out.clone(),
            source,
        })?;
        Ok(parse_ping(&text, VIP))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(seq: u32, at: f64, ttl: u8) -> Reply {
        Reply { seq, at, ttl }
    }

    #[test]
    fn replies_are_parsed_and_other_lines_skipped() {
        let text = "PING 10.78.0.100 (10.78.0.100) 56(84) bytes of data.\n\
            [1763780000.123456] 64 bytes from 10.78.0.100: icmp_seq=1 ttl=61 time=0.050 ms\n\
            [1763780000.133456] no answer yet for icmp_seq=2\n\
            [1763780000.140000] From 10.78.0.3 icmp_seq=3 Destination Host Unreachable\n\
            [1763780000.150000] 64 bytes from 10.78.0.100: icmp_seq=4 ttl=62 time=0.1 ms (DUP!)\n\
            [1763780000.160000] 64 bytes from 10.78.0.9: icmp_seq=5 ttl=62 time=0.1 ms\n\
            --- 10.78.0.100 ping statistics ---\n";
        let r = parse_ping(text, "10.78.0.100");
        assert_eq!(
            r,
            vec![
                reply(1, 1_763_780_000.123_456, 61),
                reply(4, 1_763_780_000.15, 62)
            ]
        );
    }

    #[test]
    fn outage_is_the_longest_gap_after_the_event() {
        // A answers every 10 ms until 100.50, nothing until B at 103.60.
        let mut r: Vec<Reply> = (0..=50)
            .map(|i| reply(i, 100.0 + f64::from(i) * 0.01, 61))
            .collect();
        r.extend((0..20).map(|i| reply(360 + i, 103.6 + f64::from(i) * 0.01, 62)));
        // A longer gap before the event does not count.
        r[5].at = 99.0;
        let o = analyse(&r, 100.455, 62).expect("settled");
        assert!((o.gap_s - 3.1).abs() < 1e-6, "{o:?}");
        assert_eq!(o.lost, 360 - 50 - 1);
        let t = o.takeover_s.expect("B answered");
        assert!((t - 3.145).abs() < 1e-6, "{t}");
    }

    #[test]
    fn takeover_counts_only_the_new_node_and_duplicates_are_not_lost() {
        // A's kernel keeps answering (kill -9 leaves the VIP), B from 2.0 on,
        // some probes answered by both.
        let r = vec![
            reply(1, 0.9, 61),
            reply(2, 1.5, 61),
            reply(3, 2.0, 61),
            reply(3, 2.001, 62),
            reply(4, 2.1, 62),
        ];
        let o = analyse(&r, 1.0, 62).expect("settled");
        assert_eq!(o.lost, 0);
        assert!((o.takeover_s.expect("B") - 1.001).abs() < 1e-6);
        assert!((o.gap_s - 0.6).abs() < 1e-6);
        assert_eq!(analyse(&r, 1.0, 99).map(|o| o.takeover_s), Some(None));
    }

    #[test]
    fn no_reply_before_the_event_means_not_settled() {
        assert_eq!(analyse(&[reply(1, 5.0, 62)], 1.0, 62), None);
        assert_eq!(analyse(&[], 1.0, 62), None);
    }
}
