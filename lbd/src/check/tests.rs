use super::fsm::*;
use std::time::Duration;
use tokio::time::Instant;

const S: fn(u64) -> Duration = Duration::from_secs;

fn timing() -> Timing {
    Timing {
        inter: S(2),
        fastinter: S(1),
        downinter: S(5),
        rise: 2,
        fall: 3,
        timeout: S(2),
    }
}

fn pass() -> Input {
    Input::Passed {
        reason: "L4OK".into(),
    }
}

fn fail() -> Input {
    Input::Failed {
        reason: "connection refused".into(),
    }
}

fn next(actions: &[Action]) -> Duration {
    match actions.last() {
        Some(Action::NextCheck { after }) => *after,
        other => panic!("no NextCheck: {other:?}"),
    }
}

fn changes(actions: &[Action]) -> Vec<(Health, Health)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::StateChange { from, to, .. } => Some((*from, *to)),
            Action::NextCheck { .. } => None,
        })
        .collect()
}

#[test]
fn first_check_uses_fastinter_and_confirms_up() {
    // Input: fresh FSM, one pass. Output: no change, then inter (fully up).
    let t0 = Instant::now();
    let mut fsm = CheckFsm::new(timing(), t0);
    assert_eq!(fsm.first_delay(), S(1));
    let a = fsm.handle(t0, pass());
    assert!(changes(&a).is_empty());
    assert_eq!(next(&a), S(2));
    assert_eq!(fsm.health(), Health::Up);
}

#[test]
fn first_failure_marks_a_fresh_server_down() {
    // Input: fresh FSM, one failure. Output: Up -> Down at once, then downinter.
    let t0 = Instant::now();
    let mut fsm = CheckFsm::new(timing(), t0);
    let a = fsm.handle(t0, fail());
    assert_eq!(changes(&a), vec![(Health::Up, Health::Down)]);
    assert_eq!(next(&a), S(5));
}

#[test]
fn fall_failures_in_a_row_mark_down_with_fastinter_between() {
    // Input: confirmed up, then fail, fail, fail. Output: fastinter while
    // counting, Down on the third with the time spent up, then downinter.
    let t0 = Instant::now();
    let mut fsm = CheckFsm::new(timing(), t0);
    fsm.handle(t0, pass());
    let a1 = fsm.handle(t0 + S(10), fail());
    assert!(changes(&a1).is_empty());
    assert_eq!(next(&a1), S(1));
    let a2 = fsm.handle(t0 + S(11), fail());
    assert!(changes(&a2).is_empty());
    assert_eq!(next(&a2), S(1));
    let a3 = fsm.handle(t0 + S(12), fail());
    assert_eq!(
        a3[0],
        Action::StateChange {
            from: Health::Up,
            to: Health::Down,
            reason: "connection refused".into(),
            after: S(12),
        }
    );
    assert_eq!(next(&a3), S(5));
}

#[test]
fn a_success_resets_the_fall_count() {
    let t0 = Instant::now();
    let mut fsm = CheckFsm::new(timing(), t0);
    fsm.handle(t0, pass());
    fsm.handle(t0, fail());
    fsm.handle(t0, fail());
    assert_eq!(next(&fsm.handle(t0, pass())), S(2));
    fsm.handle(t0, fail());
    fsm.handle(t0, fail());
    assert_eq!(fsm.health(), Health::Up);
}

#[test]
fn rise_successes_bring_it_back() {
    // Input: down, then pass, fail, pass, pass. Output: the failure resets
    // the count, so Up only after two passes in a row; fastinter between.
    let t0 = Instant::now();
    let mut fsm = CheckFsm::new(timing(), t0);
    fsm.handle(t0, fail());
    let a = fsm.handle(t0 + S(5), pass());
    assert!(changes(&a).is_empty());
    assert_eq!(next(&a), S(1));
    assert_eq!(next(&fsm.handle(t0 + S(6), fail())), S(5));
    fsm.handle(t0 + S(11), pass());
    let up = fsm.handle(t0 + S(12), pass());
    assert_eq!(changes(&up), vec![(Health::Down, Health::Up)]);
    assert_eq!(next(&up), S(2));
}

#[test]
fn forced_states_apply_at_once() {
    // Input: agent says down, then up. Output: each changes state at once.
    let t0 = Instant::now();
    let mut fsm = CheckFsm::new(timing(), t0);
    fsm.handle(t0, pass());
    let down = fsm.handle(
        t0,
        Input::Forced {
            health: Health::Down,
            reason: "agent: stopped".into(),
        },
    );
    assert_eq!(changes(&down), vec![(Health::Up, Health::Down)]);
    let up = fsm.handle(
        t0,
        Input::Forced {
            health: Health::Up,
            reason: "agent: up".into(),
        },
    );
    assert_eq!(changes(&up), vec![(Health::Down, Health::Up)]);
}

#[test]
fn defaults_follow_inter() {
    let c: crate::config::Check = toml::from_str("type = \"tcp\"\ninter = \"3s\"").expect("valid");
    let t = Timing::from_config(&c);
    assert_eq!(
        (t.inter, t.fastinter, t.downinter, t.timeout),
        (S(3), S(3), S(3), S(3))
    );
    assert_eq!((t.rise, t.fall), (2, 3));
}

#[test]
fn first_checks_are_spread() {
    let w = S(2);
    let delays: Vec<Duration> = (0..4).map(|i| spread(i, 4, w)).collect();
    assert_eq!(
        delays,
        vec![
            S(0),
            Duration::from_millis(500),
            S(1),
            Duration::from_millis(1500)
        ]
    );
}
