//! Weighted round robin, smooth (nginx's algorithm) and static.
//!
//! Smooth WRR: each pick adds every eligible server's weight to its
//! `current`, takes the largest, and subtracts the total from the winner.
//! Weights 5,1,1 give a a b a c a a rather than a a a a a b c.

use super::Candidate;

/// Smooth weighted round robin; reads weights at every pick, so runtime
/// weight changes apply at once.
#[derive(Debug, Clone)]
pub struct SmoothWrr {
    current: Vec<i64>,
}

impl SmoothWrr {
    pub fn new(servers: usize) -> Self {
        Self {
            current: vec![0; servers],
        }
    }

    pub fn pick(
        &mut self,
        servers: &[Candidate],
        in_pool: impl Fn(&Candidate) -> bool,
    ) -> Option<usize> {
        if self.current.len() != servers.len() {
            self.current = vec![0; servers.len()];
        }
        let mut total: i64 = 0;
        let mut best: Option<usize> = None;
        for (i, s) in servers.iter().enumerate() {
            if !in_pool(s) {
                // A server leaving the pool starts afresh when it returns.
                self.current[i] = 0;
                continue;
            }
            let w = i64::from(s.weight);
            self.current[i] += w;
            total += w;
            if best.is_none_or(|b| self.current[i] > self.current[b]) {
                best = Some(i);
            }
        }
        let b = best?;
        self.current[b] -= total;
        Some(b)
    }
}

/// Static weighted round robin: the smooth sequence of the load-time weights,
/// cycled; servers not in the pool are skipped.
#[derive(Debug, Clone)]
pub struct StaticRr {
    sequence: Vec<usize>,
    position: usize,
}

impl StaticRr {
    pub fn new(weights: &[u32]) -> Self {
        let all: Vec<Candidate> = weights
            .iter()
            .map(|&weight| Candidate {
                weight,
                eligible: true,
                backup: false,
                active: 0,
            })
            .collect();
        let total: u32 = weights.iter().sum();
        let mut smooth = SmoothWrr::new(weights.len());
        let sequence = (0..total)
            .filter_map(|_| smooth.pick(&all, |s| s.weight > 0))
            .collect();
        Self {
            sequence,
            position: 0,
        }
    }

    pub fn pick(
        &mut self,
        servers: &[Candidate],
        in_pool: impl Fn(&Candidate) -> bool,
    ) -> Option<usize> {
        let n = self.sequence.len();
        for _ in 0..n {
            let i = self.sequence[self.position % n];
            self.position = (self.position + 1) % n;
            if servers.get(i).is_some_and(&in_pool) {
                return Some(i);
            }
        }
        // Servers with load-time weight 0 (e.g. backups set to 0) never enter
        // the sequence: fall back to the first eligible one.
        servers.iter().position(in_pool)
    }
}
