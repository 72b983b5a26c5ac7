//! Effective priority from the balancer's own health: each tracked backend
//! with no usable server, and each tracked frontend that is not accepting,
//! lowers the priority by its weight or puts the instance in Fault. Pure:
//! the caller says how many servers are usable and which frontends are up.

use super::config::Instance;

/// Total penalty and fault, as [`super::fsm::Input::Tracking`] wants them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tracking {
    pub penalty: u32,
    pub fault: bool,
}

/// `usable(backend)` is the number of usable servers, `None` for a backend
/// that no longer exists (counted as down); `accepting(frontend)` says
/// whether a frontend is accepting (false for one that no longer exists).
pub fn evaluate(
    instance: &Instance,
    usable: impl Fn(&str) -> Option<usize>,
    accepting: impl Fn(&str) -> bool,
) -> Tracking {
    let backends_down = instance
        .track_backend
        .iter()
        .filter(|(backend, _)| usable(backend).unwrap_or(0) == 0);
    let frontends_down = instance
        .track_frontend
        .iter()
        .filter(|(frontend, _)| !accepting(frontend));
    let mut out = Tracking::default();
    for (_, track) in backends_down.chain(frontends_down) {
        if track.fault {
            out.fault = true;
        }
        out.penalty += u32::from(track.weight.unwrap_or(0));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vrrp::config::Track;

    #[test]
    fn down_backends_add_weights_or_fault() {
        let mut vi: Instance = toml::from_str(
            "interface = \"e\"\nvrid = 1\npriority = 100\nvirtual_ips = [\"10.0.0.1\"]\n",
        )
        .expect("instance");
        let weight = |w| Track {
            weight: Some(w),
            fault: false,
        };
        vi.track_backend.insert("a".into(), weight(10));
        vi.track_backend.insert("b".into(), weight(20));
        vi.track_backend.insert(
            "c".into(),
            Track {
                weight: None,
                fault: true,
            },
        );
        let all_accepting = |_: &str| true;
        // All up: nothing.
        assert_eq!(
            evaluate(&vi, |_| Some(1), all_accepting),
            Tracking::default()
        );
        // a and b down: 30; c missing: fault.
        assert_eq!(
            evaluate(&vi, |b| (b == "c").then_some(0), all_accepting),
            Tracking {
                penalty: 30,
                fault: true
            }
        );
        // Only b down.
        assert_eq!(
            evaluate(&vi, |b| Some(usize::from(b != "b")), all_accepting),
            Tracking {
                penalty: 20,
                fault: false
            }
        );
        // A tracked frontend not accepting adds its weight too.
        vi.track_frontend.insert("web".into(), weight(7));
        assert_eq!(
            evaluate(&vi, |_| Some(1), |f| f != "web"),
            Tracking {
                penalty: 7,
                fault: false
            }
        );
        assert_eq!(
            evaluate(&vi, |_| Some(1), all_accepting),
            Tracking::default()
        );
    }
}
