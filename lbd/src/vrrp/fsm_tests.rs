//! Replay tests: each states its inputs and expected outputs in words,
//! then feeds inputs at exact times and compares the actions.

use super::*;
use Action::*;

fn addr(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

/// v3, priority 100, advert 1 s, preempt, second burst after 5 s.
fn params() -> Params {
    Params {
        version: Version::V3,
        priority: 100,
        advert_int: Duration::from_secs(1),
        preempt: true,
        preempt_delay: Duration::ZERO,
        primary_addr: addr("10.0.0.2"),
        announce_repeat: Some(Duration::from_secs(5)),
        announce_refresh: None,
        sole_peer: false,
    }
}

fn us(n: u64) -> Duration {
    Duration::from_micros(n)
}
fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Feeds inputs at offsets from a fixed start.
struct Replay {
    fsm: Fsm,
    t0: Instant,
}

impl Replay {
    fn new(params: Params) -> Self {
        Self {
            fsm: Fsm::new(params),
            t0: Instant::now(),
        }
    }
    fn at(&mut self, offset: Duration, input: Input) -> Vec<Action> {
        self.fsm.handle(self.t0 + offset, input)
    }
    /// Started and then master through the master-down timer.
    fn master(params: Params) -> Self {
        let mut r = Self::new(params);
        r.at(ms(0), Input::Startup);
        let down = r.fsm.master_down_interval();
        r.at(down, Input::TimerExpired(Timer::MasterDown));
        assert_eq!(r.fsm.state(), State::Master);
        r
    }
}

fn advert(src: &str, priority: u8, advert_int: Duration) -> Input {
    Input::Advert {
        src: addr(src),
        priority,
        advert_int,
    }
}

fn change(from: State, to: State, reason: Reason) -> Action {
    StateChange { from, to, reason }
}

fn set(timer: Timer, after: Duration) -> Action {
    SetTimer { timer, after }
}

#[test]
fn startup_backup_then_master_after_master_down_interval() {
    // Input: Startup at 0 with priority 100, advert 1 s (v3).
    // Output: Backup with the master-down timer at 3 s + 156/256 s =
    // 3.609375 s. When it fires: add VIPs, advertise 100, announce, advert
    // timer 1 s, second announce in 5 s, Master.
    let mut r = Replay::new(params());
    assert_eq!(
        r.at(ms(0), Input::Startup),
        vec![
            set(Timer::MasterDown, us(3_609_375)),
            change(State::Initialize, State::Backup, Reason::Startup)
        ]
    );
    assert_eq!(
        r.at(us(3_609_375), Input::TimerExpired(Timer::MasterDown)),
        vec![
            AddVips,
            SendAdvert { priority: 100 },
            Announce,
            set(Timer::Advert, ms(1000)),
            set(Timer::Announce, ms(5000)),
            change(State::Backup, State::Master, Reason::MasterDown)
        ]
    );
}

#[test]
fn early_or_stale_expiry_is_ignored() {
    // Input: Startup, then a MasterDown expiry 1 us early, then an Advert
    // expiry that was never armed. Output: nothing, still Backup.
    let mut r = Replay::new(params());
    r.at(ms(0), Input::Startup);
    assert_eq!(
        r.at(us(3_609_374), Input::TimerExpired(Timer::MasterDown)),
        vec![]
    );
    assert_eq!(r.at(ms(5000), Input::TimerExpired(Timer::Advert)), vec![]);
    assert_eq!(r.fsm.state(), State::Backup);
}

#[test]
fn owner_becomes_master_at_startup() {
    // Input: Startup with priority 255. Output: Master at once (RFC 5798
    // 6.4.1), no master-down wait.
    let mut r = Replay::new(Params {
        priority: 255,
        ..params()
    });
    assert_eq!(
        r.at(ms(0), Input::Startup),
        vec![
            AddVips,
            SendAdvert { priority: 255 },
            Announce,
            set(Timer::Advert, ms(1000)),
            set(Timer::Announce, ms(5000)),
            change(State::Initialize, State::Master, Reason::PriorityOwner)
        ]
    );
}

#[test]
fn backup_learns_master_interval_from_higher_advert() {
    // Input: Backup (prio 100) hears priority 200 advertising every 0.5 s
    // at t=1 s. Output: master-down timer reset to 1.5 s + 156 x 0.5 / 256 s
    // = 1.8046875 s (v3 learns Master_Adver_Interval).
    let mut r = Replay::new(params());
    r.at(ms(0), Input::Startup);
    assert_eq!(
        r.at(ms(1000), advert("10.0.0.9", 200, ms(500))),
        vec![set(
            Timer::MasterDown,
            us(1_804_687) + Duration::from_nanos(500)
        )]
    );
    // And it fires then, not at the old 3.609375 s deadline.
    assert_eq!(
        r.at(
            ms(1000) + us(1_804_688),
            Input::TimerExpired(Timer::MasterDown)
        )
        .last()
        .cloned(),
        Some(change(State::Backup, State::Master, Reason::MasterDown))
    );
}

#[test]
fn backup_takes_over_after_skew_when_master_stops() {
    // Input: Backup (prio 100) hears priority 0 at t=2 s. Output: the
    // master-down timer is set to skew only, 156/256 s = 0.609375 s.
    let mut r = Replay::new(params());
    r.at(ms(0), Input::Startup);
    assert_eq!(
        r.at(ms(2000), advert("10.0.0.9", 0, ms(1000))),
        vec![set(Timer::MasterDown, us(609_375))]
    );
    let actions = r.at(
        ms(2000) + us(609_375),
        Input::TimerExpired(Timer::MasterDown),
    );
    assert!(actions.contains(&AddVips));
    assert_eq!(r.fsm.state(), State::Master);
}

#[test]
fn preempting_backup_ignores_lower_master() {
    // Input: Backup (prio 100, preempt) hears priority 50 at t=1 s.
    // Output: nothing; its timer runs out at 3.609375 s and it takes over.
    let mut r = Replay::new(params());
    r.at(ms(0), Input::Startup);
    assert_eq!(r.at(ms(1000), advert("10.0.0.9", 50, ms(1000))), vec![]);
    r.at(us(3_609_375), Input::TimerExpired(Timer::MasterDown));
    assert_eq!(r.fsm.state(), State::Master);
}

#[test]
fn master_that_drops_below_the_backup_is_replaced_after_skew() {
    // Input: Backup (prio 100) hears its master at 150 (t=1 s), then the
    // master's tracking lowers it to 50 (t=1.5 s). Output: the backup
    // takes over after its skew, 0.609375 s, not a whole master-down
    // interval; a second lowered advert does not push the deadline out.
    let mut r = Replay::new(params());
    r.at(ms(0), Input::Startup);
    r.at(ms(1000), advert("10.0.0.9", 150, ms(1000)));
    assert_eq!(
        r.at(ms(1500), advert("10.0.0.9", 50, ms(1000))),
        vec![set(Timer::MasterDown, us(609_375))]
    );
    assert_eq!(r.at(ms(1600), advert("10.0.0.9", 50, ms(1000))), vec![]);
    let actions = r.at(
        ms(1500) + us(609_375),
        Input::TimerExpired(Timer::MasterDown),
    );
    assert!(actions.contains(&AddVips));
    assert_eq!(r.fsm.state(), State::Master);
}

#[test]
fn a_sole_peer_takes_over_at_once() {
    // Input: one unicast peer; the master stops (priority 0), and in a
    // second run the master drops below us. Output: the master-down timer
    // is set to fire at once in both cases (no other backup to order).
    let sole = || Params {
        sole_peer: true,
        ..params()
    };
    let mut r = Replay::new(sole());
    r.at(ms(0), Input::Startup);
    assert_eq!(
        r.at(ms(2000), advert("10.0.0.9", 0, ms(1000))),
        vec![set(Timer::MasterDown, Duration::ZERO)]
    );
    r.at(ms(2000), Input::TimerExpired(Timer::MasterDown));
    assert_eq!(r.fsm.state(), State::Master);

    let mut r = Replay::new(sole());
    r.at(ms(0), Input::Startup);
    r.at(ms(1000), advert("10.0.0.9", 150, ms(1000)));
    assert_eq!(
        r.at(ms(1500), advert("10.0.0.9", 50, ms(1000))),
        vec![set(Timer::MasterDown, Duration::ZERO)]
    );
}

#[test]
fn nopreempt_backup_accepts_lower_master() {
    // Input: Backup (prio 100, nopreempt) hears priority 50 at t=1 s.
    // Output: timer reset to 3.609375 s from then; the old deadline passes
    // without a takeover.
    let mut r = Replay::new(Params {
        preempt: false,
        ..params()
    });
    r.at(ms(0), Input::Startup);
    assert_eq!(
        r.at(ms(1000), advert("10.0.0.9", 50, ms(1000))),
        vec![set(Timer::MasterDown, us(3_609_375))]
    );
    assert_eq!(
        r.at(us(3_609_375), Input::TimerExpired(Timer::MasterDown)),
        vec![]
    );
    assert_eq!(r.fsm.state(), State::Backup);
}

#[test]
fn preempt_delay_accepts_lower_master_for_a_while() {
    // Input: Backup (prio 100, preempt_delay 10 s) hears priority 50 at
    // t=1 s and t=10.999 s (accepted: timer reset), then at t=11 s.
    // Output: the last one is ignored, so the timer runs out.
    let mut r = Replay::new(Params {
        preempt_delay: ms(10_000),
        ..params()
    });
    r.at(ms(0), Input::Startup);
    let reset = vec![set(Timer::MasterDown, us(3_609_375))];
    assert_eq!(r.at(ms(1000), advert("10.0.0.9", 50, ms(1000))), reset);
    assert_eq!(r.at(ms(10_999), advert("10.0.0.9", 50, ms(1000))), reset);
    assert_eq!(r.at(ms(11_000), advert("10.0.0.9", 50, ms(1000))), vec![]);
}

#[test]
fn master_yields_to_higher_priority() {
    // Input: Master (prio 100) hears priority 150 every 2 s. Output: cancel
    // its timers, remove VIPs, Backup with the master-down timer of the
    // new master's interval: 6 s + 156 x 2 / 256 s = 7.21875 s.
    let mut r = Replay::master(params());
    assert_eq!(
        r.at(ms(4000), advert("10.0.0.1", 150, ms(2000))),
        vec![
            CancelTimer {
                timer: Timer::Advert
            },
            CancelTimer {
                timer: Timer::Announce
            },
            RemoveVips,
            set(Timer::MasterDown, us(7_218_750)),
            change(
                State::Master,
                State::Backup,
                Reason::HigherPriority {
                    src: addr("10.0.0.1"),
                    priority: 150
                }
            )
        ]
    );
}

#[test]
fn equal_priority_tie_broken_by_higher_address() {
    // Input: Master 10.0.0.2 (prio 100) hears priority 100 from 10.0.0.3.
    // Output: it yields (higher primary address wins).
    let mut r = Replay::master(params());
    r.at(ms(4000), advert("10.0.0.3", 100, ms(1000)));
    assert_eq!(r.fsm.state(), State::Backup);
    // Input: Master 10.0.0.2 hears priority 100 from 10.0.0.1.
    // Output: it stays, advertises at once and announces again.
    let mut r = Replay::master(params());
    assert_eq!(
        r.at(ms(4000), advert("10.0.0.1", 100, ms(1000))),
        vec![
            SendAdvert { priority: 100 },
            set(Timer::Advert, ms(1000)),
            Announce
        ]
    );
    assert_eq!(r.fsm.state(), State::Master);
}

#[test]
fn master_reasserts_on_split_brain_heal() {
    // Input: Master (prio 100) hears another master at priority 90 at 4 s,
    // 4.5 s and 5 s. Output: an advert each time (timer re-armed); the
    // gratuitous ARPs at 4 s and 5 s only (at most one burst per second).
    let mut r = Replay::master(params());
    let reassert = vec![
        SendAdvert { priority: 100 },
        set(Timer::Advert, ms(1000)),
        Announce,
    ];
    assert_eq!(r.at(ms(4000), advert("10.0.0.9", 90, ms(1000))), reassert);
    assert_eq!(
        r.at(ms(4500), advert("10.0.0.9", 90, ms(1000))),
        reassert[..2].to_vec()
    );
    assert_eq!(r.at(ms(5000), advert("10.0.0.9", 90, ms(1000))), reassert);
}

#[test]
fn master_answers_priority_zero_at_once() {
    // Input: Master hears priority 0. Output: advertise now (RFC 5798
    // 6.4.3) so the stopping node's peers do not start an election.
    let mut r = Replay::master(params());
    assert_eq!(
        r.at(ms(4000), advert("10.0.0.9", 0, ms(1000))),
        vec![SendAdvert { priority: 100 }, set(Timer::Advert, ms(1000))]
    );
}

#[test]
fn master_adverts_and_announces_on_its_timers() {
    // Input: Master since 3.609375 s; Advert timer 1 s later; Announce
    // timer 5 s later. Output: an advert and re-arm; one second burst and
    // no more (no refresh configured).
    let mut r = Replay::master(params());
    let t = us(3_609_375);
    assert_eq!(
        r.at(t + ms(1000), Input::TimerExpired(Timer::Advert)),
        vec![SendAdvert { priority: 100 }, set(Timer::Advert, ms(1000))]
    );
    assert_eq!(
        r.at(t + ms(5000), Input::TimerExpired(Timer::Announce)),
        vec![Announce]
    );
}

#[test]
fn announce_refresh_repeats() {
    // Input: Master with refresh 60 s; Announce timer at +5 s and +65 s.
    // Output: a burst each time, re-armed for 60 s.
    let mut r = Replay::master(Params {
        announce_refresh: Some(ms(60_000)),
        ..params()
    });
    let t = us(3_609_375);
    for at in [t + ms(5000), t + ms(65_000)] {
        assert_eq!(
            r.at(at, Input::TimerExpired(Timer::Announce)),
            vec![Announce, set(Timer::Announce, ms(60_000))]
        );
    }
}

#[test]
fn graceful_stop_sends_priority_zero_then_removes_vips() {
    // Input: Shutdown in Master. Output: cancel timers, advertise priority
    // 0, remove VIPs, Initialize.
    let mut r = Replay::master(params());
    assert_eq!(
        r.at(ms(5000), Input::Shutdown),
        vec![
            CancelTimer {
                timer: Timer::Advert
            },
            CancelTimer {
                timer: Timer::Announce
            },
            SendAdvert { priority: 0 },
            RemoveVips,
            change(State::Master, State::Initialize, Reason::Shutdown)
        ]
    );
    // Input: Shutdown in Backup. Output: cancel the master-down timer.
    let mut r = Replay::new(params());
    r.at(ms(0), Input::Startup);
    assert_eq!(
        r.at(ms(1), Input::Shutdown),
        vec![
            CancelTimer {
                timer: Timer::MasterDown
            },
            change(State::Backup, State::Initialize, Reason::Shutdown)
        ]
    );
}

#[test]
fn tracking_weight_lowers_master_priority_at_once() {
    // Input: Master (prio 100) loses a tracked backend of weight 30.
    // Output: advertise 70 now (not at the next interval).
    let mut r = Replay::master(params());
    assert_eq!(
        r.at(
            ms(5000),
            Input::Tracking {
                penalty: 30,
                fault: false
            }
        ),
        vec![SendAdvert { priority: 70 }, set(Timer::Advert, ms(1000))]
    );
    assert_eq!(r.fsm.effective_priority(), 70);
    // The same penalty again changes nothing.
    assert_eq!(
        r.at(
            ms(5001),
            Input::Tracking {
                penalty: 30,
                fault: false
            }
        ),
        vec![]
    );
}

#[test]
fn tracking_weight_changes_backup_skew() {
    // Input: Backup (prio 100) with penalty 50, then priority 0 heard.
    // Output: skew of priority 50: 206/256 s = 0.8046875 s.
    let mut r = Replay::new(params());
    r.at(ms(0), Input::Startup);
    assert_eq!(
        r.at(
            ms(1),
            Input::Tracking {
                penalty: 50,
                fault: false
            }
        ),
        vec![]
    );
    assert_eq!(
        r.at(ms(2), advert("10.0.0.9", 0, ms(1000))),
        vec![set(
            Timer::MasterDown,
            us(804_687) + Duration::from_nanos(500)
        )]
    );
}

#[test]
fn priority_never_reaches_zero_or_leaves_owner() {
    // Input: penalty 500 on priority 100, and on an owner.
    // Output: effective 1 (0 means "stopping"); the owner stays 255.
    let mut fsm = Fsm::new(params());
    fsm.handle(
        Instant::now(),
        Input::Tracking {
            penalty: 500,
            fault: false,
        },
    );
    assert_eq!(fsm.effective_priority(), 1);
    let mut owner = Fsm::new(Params {
        priority: 255,
        ..params()
    });
    owner.handle(
        Instant::now(),
        Input::Tracking {
            penalty: 500,
            fault: false,
        },
    );
    assert_eq!(owner.effective_priority(), 255);
}

#[test]
fn fault_takes_master_out_and_back_to_backup() {
    // Input: Master gets a tracking fault, later cleared.
    // Output: priority 0 advert, VIPs removed, Fault; then Backup with a
    // full master-down timer.
    let mut r = Replay::master(params());
    let fault = |fault| Input::Tracking { penalty: 0, fault };
    assert_eq!(
        r.at(ms(5000), fault(true)),
        vec![
            CancelTimer {
                timer: Timer::Advert
            },
            CancelTimer {
                timer: Timer::Announce
            },
            SendAdvert { priority: 0 },
            RemoveVips,
            change(State::Master, State::Fault, Reason::Fault)
        ]
    );
    // Adverts are not answered in Fault.
    assert_eq!(r.at(ms(5500), advert("10.0.0.9", 50, ms(1000))), vec![]);
    assert_eq!(
        r.at(ms(6000), fault(false)),
        vec![
            set(Timer::MasterDown, us(3_609_375)),
            change(State::Fault, State::Backup, Reason::FaultCleared)
        ]
    );
}

#[test]
fn fault_at_startup() {
    // Input: a fault before Startup. Output: Startup goes to Fault.
    let mut r = Replay::new(params());
    r.at(
        ms(0),
        Input::Tracking {
            penalty: 0,
            fault: true,
        },
    );
    assert_eq!(
        r.at(ms(1), Input::Startup),
        vec![change(State::Initialize, State::Fault, Reason::Fault)]
    );
}

#[test]
fn v2_skew_ignores_interval_and_interval_must_match() {
    // Input: v2, priority 100, advert 3 s. Output: master-down interval
    // 9 s + 156/256 s = 9.609375 s (v2 skew is in whole seconds' share).
    let mut r = Replay::new(Params {
        version: Version::V2,
        advert_int: ms(3000),
        ..params()
    });
    assert_eq!(
        r.at(ms(0), Input::Startup)[0],
        set(Timer::MasterDown, us(9_609_375))
    );
    // Input: a v2 advert with a 1 s interval. Output: discarded
    // (RFC 3768 7.1), even at higher priority.
    assert_eq!(r.at(ms(1000), advert("10.0.0.9", 200, ms(1000))), vec![]);
    // The same advert with 3 s resets the timer, not learning anything.
    assert_eq!(
        r.at(ms(1000), advert("10.0.0.9", 200, ms(3000))),
        vec![set(Timer::MasterDown, us(9_609_375))]
    );
}

#[test]
fn actions_serialize_for_logs_and_replay() {
    let a = change(State::Backup, State::Master, Reason::MasterDown);
    let json = serde_json::to_string(&a).expect("serializable");
    assert_eq!(
        serde_json::from_str::<Action>(&json).expect("round trip"),
        a
    );
}
