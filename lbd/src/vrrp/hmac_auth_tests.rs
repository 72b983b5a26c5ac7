use std::net::Ipv4Addr;

use proptest::prelude::*;

use super::*;
use crate::vrrp::packet::{Advert, Auth, Version};

const KEY: &str = "0123456789abcdef-shared";
/// 2026-01-01T00:00:00Z in ns: the clock these tests pass in.
const NOW_NS: u64 = 1_767_225_600_000_000_000;

fn key() -> HmacKey {
    HmacKey::new(KEY)
}
fn src() -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))
}
fn dst() -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2))
}

/// A v3 advert, VRID 42, priority 150, 100 ms, one VIP.
fn message() -> Vec<u8> {
    Advert {
        version: Version::V3,
        vrid: 42,
        priority: 150,
        advert_int_cs: 10,
        auth: Auth::None,
        addrs: vec![IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100))],
    }
    .encode(src(), dst())
    .expect("encode")
}

#[test]
fn seal_appends_counter_and_tag_and_verify_strips_them() {
    let msg = message();
    let sealed = seal(&key(), src(), dst(), &msg, NOW_NS);
    assert_eq!(sealed.len(), msg.len() + TRAILER_LEN);
    assert_eq!(&sealed[..msg.len()], &msg[..]);
    assert_eq!(sealed[msg.len()..msg.len() + 8], NOW_NS.to_be_bytes());
    let v = verify(&key(), src(), dst(), &sealed).expect("valid");
    assert_eq!(v.msg, &msg[..]);
    assert_eq!(v.counter, NOW_NS);
}

/// Known answer: the tag is HMAC-SHA256 over the documented layout,
/// computed independently with Python's hmac module:
/// `hmac.new(key, b"lbd VRRP advert HMAC-SHA256-128 v1" + b"\x04" + src + dst
///  + msg + counter, sha256).digest()[:16]`.
#[test]
fn tag_is_hmac_sha256_of_the_documented_layout() {
    let msg = message();
    let sealed = seal(&key(), src(), dst(), &msg, NOW_NS);
    let tag = &sealed[msg.len() + 8..];
    assert_eq!(
        hex(tag),
        KNOWN_TAG,
        "message {} counter {NOW_NS}",
        hex(&msg)
    );
}

const KNOWN_TAG: &str = "de860d59f41beb3462d2e6a67d95a59e";

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn tampering_any_byte_is_rejected() {
    let sealed = seal(&key(), src(), dst(), &message(), NOW_NS);
    for at in 0..sealed.len() {
        for bit in [0x01, 0x80] {
            let mut t = sealed.clone();
            t[at] ^= bit;
            assert_eq!(
                verify(&key(), src(), dst(), &t),
                Err(HmacError::BadTag { src: src() }),
                "byte {at} bit {bit:#x}"
            );
        }
    }
    // Truncated or extended.
    assert!(verify(&key(), src(), dst(), &sealed[..sealed.len() - 1]).is_err());
    let mut longer = sealed.clone();
    longer.push(0);
    assert!(verify(&key(), src(), dst(), &longer).is_err());
}

#[test]
fn addresses_are_covered() {
    let sealed = seal(&key(), src(), dst(), &message(), NOW_NS);
    let other = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 3));
    assert!(verify(&key(), other, dst(), &sealed).is_err());
    assert!(verify(&key(), src(), other, &sealed).is_err());
}

#[test]
fn wrong_key_is_rejected() {
    let sealed = seal(&key(), src(), dst(), &message(), NOW_NS);
    assert_eq!(
        verify(
            &HmacKey::new("another-shared-secret"),
            src(),
            dst(),
            &sealed
        ),
        Err(HmacError::BadTag { src: src() })
    );
}

#[test]
fn plain_advert_is_rejected() {
    // A v3 advert without trailer: its last 24 bytes are not a tag.
    let mut plain = message();
    plain.extend_from_slice(&[0; 12]);
    assert!(matches!(
        verify(&key(), src(), dst(), &plain),
        Err(HmacError::BadTag { .. })
    ));
    assert_eq!(
        verify(&key(), src(), dst(), &message()),
        Err(HmacError::TooShort {
            src: src(),
            len: 12
        })
    );
}

#[test]
fn sealed_advert_is_not_a_plain_one() {
    // Without hmac the trailer makes the advert's length wrong.
    let sealed = seal(&key(), src(), dst(), &message(), NOW_NS);
    assert!(Advert::decode(&sealed, src(), dst()).is_err());
}

#[test]
fn counter_strictly_increases() {
    let mut s = Sequencer::default();
    assert_eq!(s.next(NOW_NS), NOW_NS);
    // Same instant, or the clock stepped back: still above the last.
    assert_eq!(s.next(NOW_NS), NOW_NS + 1);
    assert_eq!(s.next(NOW_NS - 5_000_000_000), NOW_NS + 2);
    // The clock moves on: the counter follows it.
    assert_eq!(s.next(NOW_NS + 100_000_000), NOW_NS + 100_000_000);
}

#[test]
fn replay_is_rejected() {
    let mut g = ReplayGuard::default();
    assert_eq!(g.check(src(), 42, NOW_NS, NOW_NS), Ok(()));
    assert_eq!(g.check(src(), 42, NOW_NS + 100, NOW_NS), Ok(()));
    // The same advert again, or an older one: dropped.
    assert_eq!(
        g.check(src(), 42, NOW_NS + 100, NOW_NS),
        Err(HmacError::Replayed {
            src: src(),
            vrid: 42,
            counter: NOW_NS + 100,
            highest: NOW_NS + 100,
            behind_ms: 0
        })
    );
    assert!(g.check(src(), 42, NOW_NS, NOW_NS).is_err());
    // Another VRID or sender has its own highest.
    assert_eq!(g.check(src(), 43, NOW_NS, NOW_NS), Ok(()));
    assert_eq!(g.check(dst(), 42, NOW_NS, NOW_NS), Ok(()));
}

#[test]
fn restarted_peer_with_clock_set_back_is_named() {
    let mut g = ReplayGuard::default();
    assert_eq!(g.check(src(), 42, NOW_NS, NOW_NS), Ok(()));
    let err = g
        .check(src(), 42, NOW_NS - 3_000_000_000, NOW_NS)
        .expect_err("behind");
    let text = err.to_string();
    assert!(
        text.contains("10.0.0.1") && text.contains("3000 ms behind"),
        "{text}"
    );
    assert!(text.contains("NTP"), "{text}");
}

#[test]
fn first_contact_must_be_recent() {
    let mut g = ReplayGuard::default();
    let old = NOW_NS - nanos(FIRST_CONTACT_MAX_AGE) - 1;
    assert_eq!(
        g.check(src(), 42, old, NOW_NS),
        Err(HmacError::TooOld {
            src: src(),
            vrid: 42,
            age_s: 600,
            max_s: 600
        })
    );
    // Not remembered: a fresh advert is still accepted.
    assert_eq!(g.check(src(), 42, NOW_NS - 1_000, NOW_NS), Ok(()));
    // A sender ahead of our clock is fine.
    assert_eq!(g.check(dst(), 42, NOW_NS + 60_000_000_000, NOW_NS), Ok(()));
}

proptest! {
    #[test]
    fn verify_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = verify(&key(), src(), dst(), &bytes);
    }

    #[test]
    fn guard_arbitrary_counters_never_panic(counters in proptest::collection::vec(any::<u64>(), 0..20), now: u64) {
        let mut g = ReplayGuard::default();
        let mut highest: Option<u64> = None;
        for c in counters {
            let accepted = g.check(src(), 1, c, now).is_ok();
            // Accepted counters are strictly increasing.
            if accepted {
                prop_assert!(highest.is_none_or(|h| c > h));
                highest = Some(c);
            }
        }
    }

    #[test]
    fn sequencer_never_repeats(steps in proptest::collection::vec(any::<u64>(), 1..50)) {
        let mut s = Sequencer::default();
        let mut last = None;
        for now in steps {
            let n = s.next(now);
            prop_assert!(last.is_none_or(|l| n > l) || n == u64::MAX);
            last = Some(n);
        }
    }
}
