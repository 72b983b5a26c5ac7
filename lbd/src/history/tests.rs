use super::*;
use crate::report::{BackendRow, ServerRow};

fn server(backend: &str, name: &str, status: &str, total: u64, bytes: u64) -> ServerRow {
    ServerRow {
        status: status.into(),
        health_up: status != "DOWN",
        active: 2,
        total,
        bytes_in: bytes,
        bytes_out: 2 * bytes,
        connect_errors: total / 10,
        ..ServerRow::example(backend, name)
    }
}

fn stat(servers: Vec<ServerRow>) -> Stat {
    let mut backends: Vec<String> = servers.iter().map(|s| s.backend.clone()).collect();
    backends.dedup();
    Stat {
        frontends: vec![],
        backends: backends
            .into_iter()
            .map(|backend| BackendRow {
                backend,
                balance: "roundrobin".into(),
                servers: 0,
                usable: 0,
            })
            .collect(),
        servers,
    }
}

fn vrrp(state: &str, transitions: u64) -> VrrpRow {
    VrrpRow {
        instance: "vi".into(),
        interface: "eth0".into(),
        vrid: 51,
        state: state.into(),
        priority: 100,
        configured_priority: 100,
        virtual_ips: vec!["10.0.0.100/24".into()],
        reason: "MasterDown".into(),
        for_s: 0,
        transitions,
    }
}

/// Input: two samples 10 s apart, the second with 100 more connections
/// and 1,000 more bytes over two servers. Output: one point with the
/// rates per second, open connections and servers up; the first sample
/// alone gives no point.
#[test]
fn rates_are_per_second_over_the_step() {
    let mut h = History::default();
    h.record(1000, &stat(vec![server("web", "a", "UP", 0, 0)]), &[]);
    assert!(h.view(0).backends["web"].is_empty());
    h.record(
        1010,
        &stat(vec![
            server("web", "a", "UP", 60, 600),
            server("web", "b", "DOWN", 40, 400),
        ]),
        &[],
    );
    let points = &h.view(0).backends["web"];
    assert_eq!(points.len(), 1);
    let p = points[0];
    assert_eq!(p.t, 1010);
    assert_eq!(p.connections_per_s, 10.0);
    assert_eq!(p.bytes_in_per_s, 100.0);
    assert_eq!(p.bytes_out_per_s, 200.0);
    assert_eq!(p.connect_errors_per_s, 1.0);
    assert_eq!((p.active, p.servers_up, p.servers), (4, 1, 2));
}

/// Input: a counter that goes down (a reload rebuilt the server), and a
/// sample with a clock stepped back. Output: the reset counts its whole
/// new value, never a huge wrapped number; the backwards sample is ignored.
#[test]
fn a_reset_counter_and_a_clock_stepped_back_do_not_spike() {
    let mut h = History::default();
    h.record(1000, &stat(vec![server("web", "a", "UP", 500, 0)]), &[]);
    h.record(1010, &stat(vec![server("web", "a", "UP", 20, 0)]), &[]);
    h.record(1005, &stat(vec![server("web", "a", "UP", 90, 0)]), &[]);
    let points = &h.view(0).backends["web"];
    assert_eq!(points.len(), 1);
    assert_eq!(points[0].connections_per_s, 2.0);
}

/// Input: more samples than six hours hold. Output: the newest KEEP
/// points, oldest first; `since` leaves out the older ones.
#[test]
fn history_keeps_six_hours() {
    let mut h = History::default();
    for i in 0..(KEEP as u64 + 50) {
        h.record(i * 10, &stat(vec![server("web", "a", "UP", i, 0)]), &[]);
    }
    let points = &h.view(0).backends["web"];
    assert_eq!(points.len(), KEEP);
    // Samples 0..KEEP+50 give points from the second on: 1..KEEP+50, of
    // which the last KEEP start at sample 50.
    assert_eq!(points[0].t, 500);
    let last = points.last().expect("points").t;
    assert_eq!(h.view(last - 20).backends["web"].len(), 2);
}

/// Input: a server UP, UP, DOWN, UP over four samples. Output: three
/// changes; a view from after the DOWN still starts with the state in
/// force then.
#[test]
fn server_changes_are_recorded_once_each() {
    let mut h = History::default();
    for (t, status) in [(10, "UP"), (20, "UP"), (30, "DOWN"), (40, "UP")] {
        h.record(t, &stat(vec![server("web", "a", status, 0, 0)]), &[]);
    }
    let all = &h.view(0).servers["web/a"];
    let seen: Vec<(u64, &str)> = all.iter().map(|c| (c.t, c.status.as_str())).collect();
    assert_eq!(seen, [(10, "UP"), (30, "DOWN"), (40, "UP")]);
    let later = &h.view(35).servers["web/a"];
    assert_eq!(later[0].status, "DOWN", "{later:?}");
}

/// Input: VRRP rows BACKUP (0 transitions), BACKUP, MASTER (1), and a
/// BACKUP-MASTER round trip between two samples (state same, count +2).
/// Output: a mark for each change, none for the unchanged sample.
#[test]
fn vrrp_changes_become_marks() {
    let s = stat(vec![]);
    let mut h = History::default();
    h.record(10, &s, &[vrrp("BACKUP", 0)]);
    h.record(20, &s, &[vrrp("BACKUP", 0)]);
    h.record(30, &s, &[vrrp("MASTER", 1)]);
    h.record(40, &s, &[vrrp("MASTER", 3)]);
    let marks: Vec<(u64, String)> = h.view(0).vrrp.into_iter().map(|m| (m.t, m.state)).collect();
    assert_eq!(marks, [(30, "MASTER".into()), (40, "MASTER".into())]);
}

/// Input: a backend removed by a reload. Output: its points stay until
/// they leave the window, then the backend goes from the view.
#[test]
fn a_removed_backend_ages_out() {
    let mut h = History::default();
    h.record(10, &stat(vec![server("old", "a", "UP", 0, 0)]), &[]);
    h.record(20, &stat(vec![server("old", "a", "UP", 5, 0)]), &[]);
    h.record(30, &stat(vec![server("web", "a", "UP", 0, 0)]), &[]);
    assert!(h.view(0).backends.contains_key("old"));
    assert!(h.view(0).servers.contains_key("old/a"));
    let later = 30 + STEP.as_secs() * KEEP as u64;
    h.record(later, &stat(vec![server("web", "a", "UP", 0, 0)]), &[]);
    assert!(!h.view(0).backends.contains_key("old"));
    assert!(!h.view(0).servers.contains_key("old/a"));
    assert!(h.view(0).backends.contains_key("web"));
}
