//! The failover section of BENCHMARKS.md: per setting, a table of the
//! scenarios with lbd's and Keepalived's medians and spreads side by side,
//! and the figure the VRRP timers predict.

use std::collections::BTreeMap;

use super::super::report::summarize;
use super::super::sysinfo::{self, Machine};
use super::daemons::{
    check_script, keepalived_config, lbd_config, spec, Impl, Settings, CHECK_FALL,
    CHECK_INTERVAL_S, CHECK_RISE, PRIO_B, TRACK_WEIGHT,
};
use super::net::Node;
use super::Scenario;

/// One run's figures: the scenario's measure and the probes lost.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    pub seconds: f64,
    pub lost: u32,
}

pub type Samples = BTreeMap<(Settings, Scenario, Impl), Vec<Sample>>;

/// RFC 5798 / 3768 skew for a backup of priority `prio`: v3
/// (256 - prio) x advert_int / 256, v2 (256 - prio) / 256 s.
pub fn skew_s(s: Settings, prio: u8) -> f64 {
    let share = f64::from(256 - u16::from(prio)) / 256.0;
    if s.version == 2 {
        share
    } else {
        share * s.advert_s()
    }
}

/// master_down_interval = 3 x advert_int + skew.
pub fn master_down_s(s: Settings, prio: u8) -> f64 {
    3.0 * s.advert_s() + skew_s(s, prio)
}

/// What the timers predict for B (priority 100) taking over, in seconds;
/// `true` when it is an upper bound. None where no timer bounds it (the
/// returning master preempts at once).
pub fn expected(s: Settings, scenario: Scenario) -> Option<(f64, bool)> {
    match scenario {
        Scenario::Kill | Scenario::LinkDown => Some((master_down_s(s, PRIO_B), false)),
        Scenario::Graceful => Some((skew_s(s, PRIO_B), false)),
        Scenario::Returning => None,
        Scenario::Backend => Some((
            f64::from(CHECK_FALL * CHECK_INTERVAL_S) + master_down_s(s, PRIO_B),
            true,
        )),
    }
}

fn cells(v: Option<&Vec<Sample>>) -> (String, String, String) {
    let secs: Vec<f64> = v
        .map(|v| v.iter().map(|x| x.seconds).collect())
        .unwrap_or_default();
    let lost: Vec<f64> = v
        .map(|v| v.iter().map(|x| f64::from(x.lost)).collect())
        .unwrap_or_default();
    match (summarize(&secs), summarize(&lost)) {
        (Some(s), Some(l)) => (
            format!("{:.2}", s.median),
            format!("{:.2}-{:.2} (n={})", s.min, s.max, secs.len()),
            format!("{:.0}", l.median),
        ),
        _ => ("-".into(), "-".into(), "-".into()),
    }
}

/// The Markdown table of one setting.
pub fn table(samples: &Samples, s: Settings) -> String {
    let mut out = String::from(
        "| scenario | measured | lbd median (s) | lbd spread | Keepalived median (s) | Keepalived spread | probes lost lbd / Keepalived (median) | timers predict (s) |\n\
         | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for sc in Scenario::ALL {
        let (lm, ls, ll) = cells(samples.get(&(s, sc, Impl::Lbd)));
        let (km, ks, kl) = cells(samples.get(&(s, sc, Impl::Keepalived)));
        let exp = match expected(s, sc) {
            Some((v, true)) => format!("<= {v:.2}"),
            Some((v, false)) => format!("{v:.2}"),
            None => "about 0".into(),
        };
        out.push_str(&format!(
            "| {} | {} | {lm} | {ls} | {km} | {ks} | {ll} / {kl} | {exp} |\n",
            sc.label(),
            sc.measure().label()
        ));
    }
    out
}

pub struct Doc<'a> {
    pub command: &'a str,
    pub machine: &'a Machine,
    pub rounds: u32,
    pub samples: &'a Samples,
    pub notes: &'a [String],
}

/// The section's body (between the `bench:failover` markers).
pub fn document(d: &Doc) -> String {
    let end_load = sysinfo::loadavg();
    let mut doc = format!(
        "## lbd against Keepalived, VRRP failover

Command (as root):

    {}

{}
- load average at the end (/proc/loadavg): {end_load}
{}
### Results

{} rounds; per round and scenario a fresh pair (new namespaces, daemons
started anew), lbd and Keepalived alternating (lbd, Keepalived, lbd, ...)
with the same settings. Median and spread (min-max, n = runs that gave a
figure) in seconds. \"timers predict\": master_down_interval = 3 x
advert_int + skew for a backup of priority {PRIO_B} (v3 skew = (256 -
priority) x advert_int / 256, v2 skew = (256 - priority) / 256 s); after a
priority-0 advert the skew alone; for the backend failure at most fall x
interval of the check plus master_down_interval. B's timer runs from A's
last advert, so the bench fails A right after B has received one (a
watcher with a raw socket in B's namespace): B's timer then runs its
full length in every run, for both daemons alike. The predictions are
RFC 5798's, which Keepalived follows; lbd with one unicast peer takes
over at once after a priority-0 advert or when its master advertises a
priority below it (a tracked backend failed), since the skew only orders
several backups (lbd/CONFIG.md), so its graceful-stop and
backend-failure figures fall below them.

",
        d.command,
        d.machine.describe().join("\n"),
        if sysinfo::busy(&d.machine.loadavg, &end_load) {
            "\nOther work was running on this machine (load average above 0.5): the\n\
             daemons' timers may fire late; compare lbd and Keepalived within a run.\n"
        } else {
            ""
        },
        d.rounds,
    );
    for s in Settings::ALL {
        doc.push_str(&format!("#### {}\n\n{}\n", s.label(), table(d.samples, s)));
    }
    if !d.notes.is_empty() {
        doc.push_str("Runs without a figure, and other notes from the run:\n\n");
        for n in d.notes {
            doc.push_str(&format!("- {n}\n"));
        }
        doc.push('\n');
    }
    doc.push_str(&setup());
    doc
}

fn setup() -> String {
    let s = Settings::ALL[0];
    let dir = std::path::Path::new("/tmp/RUN/a");
    format!(
        "### Setup

- Namespaces per run: nodes A (10.78.0.1) and B (10.78.0.2) and a client
  C (10.78.0.3) on a bridge in a fourth namespace; VIP 10.78.0.100/24.
  Unicast peers (what works on vSphere), VRID 42, A priority 150, B
  {PRIO_B}, preempt on. A answers with IP TTL 61 and B with 62
  (`net.ipv4.ip_default_ttl` per namespace; VRRP adverts keep TTL 255),
  so each reply names the node that answered.
- Probe: this xtask's prober in C (`cargo xtask bench failover-probe
  10.78.0.100`): an ICMP echo every 10 ms on absolute deadlines over a raw
  socket (iputils `ping -i 0.01` paced itself at about 16 ms here), each
  reply stamped with its receive time and TTL. Measuring starts once the
  pair is settled (A holds the VIP, B does not, a `ping -c 1` answers,
  then 1 s more) with 1 s of replies before the event.
- Every event but the returning master's comes right after B received an
  advert from A (`cargo xtask bench failover-advert 10.78.0.1` in B).
- \"gap\": the longest time between two consecutive replies from the last
  reply before the event on. \"takeover\": from the event to the first
  reply from the new master (TTL 62 for B). Probes lost: sequence numbers
  without any reply in the same stretch.
- Scenarios, all on A, the master:
  - master killed: SIGKILL (Keepalived: its parent stopped, the VRRP child
    killed, then the parent). Both leave the VIP on A's interface, so A's
    kernel keeps answering pings while nothing serves: measured is the
    takeover (B answering), not the gap.
  - link down: `ip link set veth0 down` in A's namespace; the gap.
  - graceful stop: SIGTERM (both send priority 0 and remove the VIP); the
    gap.
  - master returning: A stopped with SIGTERM, B master and answering,
    then A started again and preempts; the gap of the switch back.
  - backend failure: A tracks a backend whose one server (a TCP listener
    on 127.0.0.1:8081 in A) the bench kills; the takeover (B answering).
    Both check it the same way: every {CHECK_INTERVAL_S} s, down after {CHECK_FALL} failures, up
    after {CHECK_RISE}, A's priority - {TRACK_WEIGHT} (150 -> 50) when down.
- Settings: advert_int 1 s VRRP v2, 1 s v3, 0.1 s v3 (Keepalived takes
  sub-second intervals only with v3). No authentication.
- lbd: `lbd run -c lbd.toml`, `LBD_LOG=info`; A's config (backend
  scenario, advert_int 1 s v2; B has priority {PRIO_B}, its own addresses and no
  tracking):

```toml
{}```

- Keepalived: `keepalived -n -l -D -P -f keepalived.conf -p keepalived.pid
  -r vrrp.pid -c checkers.pid` per node; A's config (same case; A is
  `state MASTER` and B `state BACKUP`, as admins set them up):

```
{}```

  with the check script (`check_backend.sh`, a TCP connect as admins write
  it without extra tools):

```sh
{}```
",
        lbd_config(dir, s, &spec(Node::A, true)),
        keepalived_config(s, &spec(Node::A, true), &dir.join("check_backend.sh")),
        check_script(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timer_figures_follow_rfc_5798_and_3768() {
        let [v2, v3, fast] = Settings::ALL;
        // Priority 100: skew 156/256 = 0.609375 s at 1 s, either version.
        assert!((skew_s(v2, 100) - 0.609_375).abs() < 1e-9);
        assert!((skew_s(v3, 100) - 0.609_375).abs() < 1e-9);
        assert!((master_down_s(v2, 100) - 3.609_375).abs() < 1e-9);
        // v3 at 0.1 s scales the skew; v2 would not.
        assert!((skew_s(fast, 100) - 0.060_937_5).abs() < 1e-9);
        assert!((master_down_s(fast, 100) - 0.360_937_5).abs() < 1e-9);
        let v2_fast = Settings {
            version: 2,
            advert_cs: 10,
        };
        assert!((skew_s(v2_fast, 100) - 0.609_375).abs() < 1e-9);
        assert_eq!(
            expected(fast, Scenario::Graceful),
            Some((skew_s(fast, 100), false))
        );
        assert_eq!(expected(v2, Scenario::Returning), None);
        let (b, bound) = expected(v2, Scenario::Backend).expect("bound");
        assert!(bound && (b - 5.609_375).abs() < 1e-9);
    }

    #[test]
    fn table_puts_both_side_by_side_with_the_prediction() {
        let mut samples = Samples::new();
        let s = Settings::ALL[0];
        samples.insert(
            (s, Scenario::LinkDown, Impl::Lbd),
            vec![
                Sample {
                    seconds: 3.7,
                    lost: 370,
                },
                Sample {
                    seconds: 3.6,
                    lost: 360,
                },
                Sample {
                    seconds: 3.8,
                    lost: 380,
                },
            ],
        );
        let t = table(&samples, s);
        assert_eq!(t.lines().count(), 2 + Scenario::ALL.len());
        assert!(
            t.contains("| link down | gap | 3.70 | 3.60-3.80 (n=3) | - | - | 370 / - | 3.61 |"),
            "{t}"
        );
        assert!(t.contains("| master returning | gap | - | - | - | - | - / - | about 0 |"));
        assert!(t.contains("<= 5.61"));
    }
}
