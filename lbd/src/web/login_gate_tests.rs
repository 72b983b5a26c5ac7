use std::net::Ipv4Addr;

use super::*;

fn addr(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))
}

/// Input: failures from one address, then a success.
/// Output: no delay at first, 250 ms after one failure, doubling, capped
/// at 8 s; another address is not slowed; a success or 15 minutes clear it.
#[test]
fn failures_slow_down_their_own_address_only() {
    let mut s = Slowdown::default();
    let t0 = Instant::now();
    assert_eq!(s.delay(addr(1), t0), Duration::ZERO);
    s.failed(addr(1), t0);
    assert_eq!(s.delay(addr(1), t0), Duration::from_millis(250));
    s.failed(addr(1), t0);
    s.failed(addr(1), t0);
    assert_eq!(s.delay(addr(1), t0), Duration::from_secs(1));
    for _ in 0..20 {
        s.failed(addr(1), t0);
    }
    assert_eq!(s.delay(addr(1), t0), Slowdown::MAX);
    assert_eq!(s.delay(addr(2), t0), Duration::ZERO);
    assert_eq!(
        s.delay(addr(1), t0 + Slowdown::FORGET_AFTER),
        Duration::ZERO
    );
    s.succeeded(addr(1));
    assert_eq!(s.delay(addr(1), t0), Duration::ZERO);
}

/// Input: failures from more addresses than are remembered.
/// Output: the table stays bounded.
#[test]
fn a_spray_from_many_addresses_stays_bounded() {
    let mut s = Slowdown::default();
    let t0 = Instant::now();
    let sources = u32::try_from(Slowdown::MAX_SOURCES).expect("small") + 100;
    for i in 0..sources {
        let a = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i));
        s.failed(a, t0 + Duration::from_millis(u64::from(i)));
    }
    assert!(s.failures.len() <= Slowdown::MAX_SOURCES);
}

/// Input: a user that does not exist.
/// Output: refused after a verification all the same (before, it was
/// refused at once, which told an attacker which names exist).
#[tokio::test]
async fn an_unknown_user_costs_a_verification() {
    let gate = LoginGate::default();
    assert!(!gate.verify(addr(1), "pw".into(), None).await);
    assert_eq!(gate.verifications(), 1);
}

/// Input: a verification on a single-threaded runtime, and a task that
/// ticks meanwhile. Output: the ticker ran while the hash was checked:
/// the check did not hold the runtime's only thread.
#[tokio::test(flavor = "current_thread")]
async fn a_verification_leaves_the_runtime_free() {
    let hash = crate::password::hash_password("pw").expect("hash");
    let gate = Arc::new(LoginGate::default());
    let ticks = Arc::new(AtomicUsize::new(0));
    let ticker = {
        let ticks = ticks.clone();
        tokio::spawn(async move {
            loop {
                ticks.fetch_add(1, Ordering::SeqCst);
                tokio::task::yield_now().await;
            }
        })
    };
    let ok = gate.verify(addr(1), "pw".into(), Some(hash)).await;
    let seen = ticks.load(Ordering::SeqCst);
    ticker.abort();
    assert!(ok);
    assert!(seen > 0, "the runtime was blocked during the verification");
}

/// Input: four wrong logins at once from four addresses.
/// Output: all refused, never more than MAX_CONCURRENT verifications at
/// the same time.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flood_of_logins_is_hashed_one_at_a_time() {
    let hash = crate::password::hash_password("pw").expect("hash");
    let gate = Arc::new(LoginGate::default());
    let attempts: Vec<_> = (1..=4)
        .map(|i| {
            let gate = gate.clone();
            let hash = hash.clone();
            tokio::spawn(async move { gate.verify(addr(i), "wrong".into(), Some(hash)).await })
        })
        .collect();
    for a in attempts {
        assert!(!a.await.expect("task"));
    }
    assert_eq!(gate.verifications(), 4);
    assert_eq!(gate.peak_concurrency(), MAX_CONCURRENT);
}
