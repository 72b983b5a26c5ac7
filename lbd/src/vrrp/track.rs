//! Effective priority from the balancer's own health: each tracked backend
//! with no usable server lowers the priority by its weight, or puts the
//! instance in Fault. Pure: the caller says how many servers are usable.

use super::config::Instance;

/// Total penalty and fault, as [`super::fsm::Input::Tracking`] wants them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tracking {
    pub penalty: u32,
    pub fault: bool,
}

/// `usable(backend)` is the number of usable servers, `None` for a backend
/// that no longer exists (counted as down).
pub fn evaluate(instance: &Instance, usable: impl Fn(&str) -> Option<usize>) -> Tracking {
    let mut out = Tracking::default();
    for (backend, track) in &instance.track_backend {
        if usable(backend).unwrap_or(0) > 0 {
            continue;
        }
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
        // All up: nothing.
        assert_eq!(evaluate(&vi, |_| Some(1)), Tracking::default());
        // a and b down: 30; c missing: fault.
        assert_eq!(
            evaluate(&vi, |b| (b == "c").then_some(0)),
            Tracking {
                penalty: 30,
                fault: true
            }
        );
        // Only b down.
        assert_eq!(
            evaluate(&vi, |b| Some(usize::from(b != "b"))),
            Tracking {
                penalty: 20,
                fault: false
            }
        );
    }
}
