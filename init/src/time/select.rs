//! Which offset to believe, from several unauthenticated answers (pure).
//!
//! ```text
//! server A: 4 samples -> median; samples further than AGREEMENT from it
//!           dropped -> estimate (median of the rest, their least delay)
//!           or discarded (fewer than MIN_AGREEING_SAMPLES agree)
//! server B: ...
//! estimates -> the largest group within AGREEMENT of one of them; only a
//!              strict majority of the servers that answered counts
//!           -> offset: the group's median; the others reported as liars
//! ```
//! One answer, or one server out of two, never moves the clock on its
//! own: a spoofed or broken reply would otherwise step it anywhere, and
//! lbd's VRRP HMAC replay protection trusts the clock.

use std::net::SocketAddr;
use std::time::Duration;

use super::client::SntpError;
use super::packet::Sample;

/// Offsets this close are the same time: a difference below it would be
/// slewed anyway (it equals [`super::STEP_THRESHOLD_NS`]), so a liar
/// within it can skew the clock by at most half a second.
pub const AGREEMENT_NS: i64 = 500_000_000;
/// Samples of one server that must agree for it to count.
pub const MIN_AGREEING_SAMPLES: usize = 2;

/// What one server's samples say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Estimate {
    pub server: SocketAddr,
    /// The median offset of its agreeing samples.
    pub offset_ns: i64,
    /// The least round-trip delay among them.
    pub delay: Duration,
    pub stratum: u8,
    /// Samples that agreed, and answers received.
    pub agreeing: usize,
    pub answered: usize,
}

/// The servers' verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub offset_ns: i64,
    /// The majority, in the order the servers were given.
    pub agreeing: Vec<Estimate>,
    /// The rest: their offsets are not used.
    pub disagreeing: Vec<Estimate>,
}

/// The median; for an even count, the mean of the middle two.
fn median(values: &mut [i64]) -> Option<i64> {
    values.sort_unstable();
    let n = values.len();
    if n == 0 {
        return None;
    }
    if n % 2 == 1 {
        return Some(values[n / 2]);
    }
    let mean = (i128::from(values[n / 2 - 1]) + i128::from(values[n / 2])) / 2;
    // The mean of two i64 lies between them.
    Some(i64::try_from(mean).expect("between two i64"))
}

fn agree(a: i64, b: i64) -> bool {
    (i128::from(a) - i128::from(b)).unsigned_abs() <= AGREEMENT_NS.unsigned_abs().into()
}

/// One server's estimate from its samples, or why it does not count.
pub fn estimate(server: SocketAddr, samples: &[Sample]) -> Result<Estimate, SntpError> {
    let mut offsets: Vec<i64> = samples.iter().map(|s| s.offset_ns).collect();
    let Some(center) = median(&mut offsets) else {
        return Err(SntpError::TooFewAgree {
            server,
            agreeing: 0,
            answered: 0,
        });
    };
    let good: Vec<&Sample> = samples
        .iter()
        .filter(|s| agree(s.offset_ns, center))
        .collect();
    if good.len() < MIN_AGREEING_SAMPLES {
        return Err(SntpError::TooFewAgree {
            server,
            agreeing: good.len(),
            answered: samples.len(),
        });
    }
    let mut offsets: Vec<i64> = good.iter().map(|s| s.offset_ns).collect();
    let best = good
        .iter()
        .min_by_key(|s| s.delay)
        .expect("at least MIN_AGREEING_SAMPLES");
    Ok(Estimate {
        server,
        offset_ns: median(&mut offsets).expect("non-empty"),
        delay: best.delay,
        stratum: best.stratum,
        agreeing: good.len(),
        answered: samples.len(),
    })
}

/// The majority's offset, or [`SntpError::NoAgreement`] when no group of
/// servers is more than half of those that answered.
pub fn choose(estimates: Vec<Estimate>) -> Result<Choice, SntpError> {
    let group_of = |center: &Estimate| -> Vec<usize> {
        (0..estimates.len())
            .filter(|j| agree(estimates[*j].offset_ns, center.offset_ns))
            .collect()
    };
    // The first largest group, in the servers' order.
    let best = estimates.iter().map(group_of).fold(Vec::new(), |best, g| {
        if g.len() > best.len() {
            g
        } else {
            best
        }
    });
    if best.is_empty() || best.len() * 2 <= estimates.len() {
        return Err(SntpError::NoAgreement { estimates });
    }
    let mut offsets: Vec<i64> = best.iter().map(|i| estimates[*i].offset_ns).collect();
    let offset_ns = median(&mut offsets).expect("non-empty");
    let (agreeing, disagreeing) = estimates
        .into_iter()
        .enumerate()
        .partition::<Vec<_>, _>(|(i, _)| best.contains(i));
    Ok(Choice {
        offset_ns,
        agreeing: agreeing.into_iter().map(|(_, e)| e).collect(),
        disagreeing: disagreeing.into_iter().map(|(_, e)| e).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    fn addr(last: u8) -> SocketAddr {
        SocketAddr::from(([192, 0, 2, last], 123))
    }

    fn sample(offset_ns: i64, delay_ms: u64) -> Sample {
        Sample {
            offset_ns,
            delay: Duration::from_millis(delay_ms),
            stratum: 2,
        }
    }

    fn est(last: u8, offset_ns: i64) -> Estimate {
        estimate(addr(last), &[sample(offset_ns, 1), sample(offset_ns, 2)]).expect("agrees")
    }

    /// Input: four samples, one an hour off. Output: it is dropped; the
    /// estimate is the others' median with their least delay.
    #[test]
    fn an_outlier_sample_is_dropped() {
        let samples = [
            sample(10_000_000, 3),
            sample(3600 * S, 1),
            sample(12_000_000, 2),
            sample(11_000_000, 4),
        ];
        let e = estimate(addr(1), &samples).expect("three agree");
        assert_eq!(e.offset_ns, 11_000_000);
        assert_eq!(e.delay, Duration::from_millis(2));
        assert_eq!((e.agreeing, e.answered), (3, 4));
    }

    /// Input: one answer (the other queries were lost), an hour off.
    /// Output: the server does not count: one answer is never enough.
    #[test]
    fn a_single_sample_is_not_enough() {
        let err = estimate(addr(1), &[sample(3600 * S, 1)]).expect_err("one sample");
        assert!(
            matches!(
                err,
                SntpError::TooFewAgree {
                    agreeing: 1,
                    answered: 1,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("192.0.2.1"), "{err}");
    }

    /// Input: samples all over the place. Output: discarded.
    #[test]
    fn samples_that_disagree_are_not_trusted() {
        let samples = [sample(0, 1), sample(10 * S, 1), sample(-10 * S, 1)];
        assert!(matches!(
            estimate(addr(1), &samples),
            Err(SntpError::TooFewAgree { agreeing: 1, .. })
        ));
    }

    /// Input: three servers, the second an hour ahead. Output: the other
    /// two agree and win; the liar is reported.
    #[test]
    fn one_liar_among_three_is_outvoted() {
        let choice = choose(vec![est(1, S / 10), est(2, 3600 * S), est(3, S / 5)]).expect("2 of 3");
        let used: Vec<SocketAddr> = choice.agreeing.iter().map(|e| e.server).collect();
        assert_eq!(used, [addr(1), addr(3)]);
        assert_eq!(choice.offset_ns, (S / 10 + S / 5) / 2);
        assert_eq!(choice.disagreeing.len(), 1);
        assert_eq!(choice.disagreeing[0].server, addr(2));
    }

    /// Input: two servers an hour apart. Output: no majority, no offset.
    #[test]
    fn two_servers_that_disagree_move_nothing() {
        let err = choose(vec![est(1, 0), est(2, 3600 * S)]).expect_err("1 of 2 is no majority");
        assert!(matches!(err, SntpError::NoAgreement { .. }), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains("192.0.2.1") && text.contains("192.0.2.2"),
            "{text}"
        );
    }

    /// Input: one server. Output: its estimate is the offset.
    #[test]
    fn one_server_is_its_own_majority() {
        let choice = choose(vec![est(1, 42 * S)]).expect("1 of 1");
        assert_eq!(choice.offset_ns, 42 * S);
    }

    #[test]
    fn median_of_extremes_does_not_overflow() {
        assert_eq!(median(&mut [i64::MAX, i64::MAX]), Some(i64::MAX));
        assert_eq!(median(&mut [i64::MIN, i64::MAX]), Some(0));
        assert_eq!(median(&mut []), None);
        assert!(!agree(i64::MIN, i64::MAX));
    }
}
