//! How many of a service's output lines init passes on to its consoles.
//!
//! Every line init passes on is written to the serial console (about 100
//! lines a second at 115200 baud), the screen, the log file and maybe a
//! syslog server, on PID 1's own thread. lbd logs a line per connection:
//! passing all of them on made init fall behind, the pipe fill up, and
//! lbd stop serving. So init always drains the pipe, and passes lines on
//! within a token bucket ([`RATE_PER_S`], bursts of [`BURST`]); the rest
//! are dropped and counted, and the first line passed on after a drop is
//! preceded by a note saying how many; a flood that just stops gets its
//! note on its own, [`QUIET`] after the last line dropped (init's loop
//! wakes for it: [`OutputBudget::note_due`]).
//!
//! Plain data, `now` passed in.

use std::time::{Duration, Instant};

/// Lines passed on per second, sustained.
pub const RATE_PER_S: u32 = 50;
/// Lines passed on at once after a quiet time (lbd's start, a reload).
pub const BURST: u32 = 200;
/// How long after the last dropped line the note comes by itself.
pub const QUIET: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct OutputBudget {
    tokens: f64,
    last: Option<Instant>,
    /// Dropped since the last note.
    dropped: u64,
    /// Dropped since start.
    dropped_total: u64,
    /// When the last line was dropped.
    last_drop: Option<Instant>,
}

impl Default for OutputBudget {
    fn default() -> Self {
        Self {
            tokens: f64::from(BURST),
            last: None,
            dropped: 0,
            dropped_total: 0,
            last_drop: None,
        }
    }
}

impl OutputBudget {
    fn refill(&mut self, now: Instant) {
        if let Some(last) = self.last {
            let elapsed = now.saturating_duration_since(last);
            self.tokens =
                (self.tokens + elapsed.as_secs_f64() * f64::from(RATE_PER_S)).min(f64::from(BURST));
        }
        self.last = Some(now);
    }

    /// Filters `lines` read at `now`: those within the budget, after a
    /// note of how many were dropped before them.
    pub fn pass(&mut self, lines: Vec<String>, now: Instant) -> Vec<String> {
        self.refill(now);
        let mut out = Vec::new();
        for line in lines {
            if self.tokens < 1.0 {
                self.dropped += 1;
                self.dropped_total += 1;
                self.last_drop = Some(now);
                continue;
            }
            if self.dropped > 0 && self.tokens >= 2.0 {
                self.tokens -= 1.0;
                out.push(self.note());
                self.dropped = 0;
            }
            self.tokens -= 1.0;
            out.push(line);
        }
        out
    }

    /// When a note of dropped lines is due without a next line: [`QUIET`]
    /// after the last drop; `None` when nothing waits to be told.
    pub fn note_due(&self) -> Option<Instant> {
        match (self.dropped, self.last_drop) {
            (1.., Some(at)) => Some(at + QUIET),
            _ => None,
        }
    }

    /// The note of lines dropped, once it is due at `now` (then it counts
    /// as a line passed on).
    pub fn take_note(&mut self, now: Instant) -> Option<String> {
        if self.note_due().is_none_or(|due| now < due) {
            return None;
        }
        self.refill(now);
        self.tokens = (self.tokens - 1.0).max(0.0);
        let note = self.note();
        self.dropped = 0;
        Some(note)
    }

    /// Lines dropped since start.
    pub fn dropped_total(&self) -> u64 {
        self.dropped_total
    }

    fn note(&self) -> String {
        format!(
            "({} lines not shown: more output than the console takes; {} since start)",
            self.dropped, self.dropped_total
        )
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn lines(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("line {i}")).collect()
    }

    /// Input: 1000 lines at once.
    /// Output: the first BURST passed on, the rest dropped and counted.
    #[test]
    fn a_flood_is_cut_to_the_burst() {
        let mut b = OutputBudget::default();
        let out = b.pass(lines(1000), Instant::now());
        assert_eq!(out.len(), BURST as usize);
        assert_eq!(out[0], "line 0");
        assert_eq!(b.dropped_total(), 1000 - u64::from(BURST));
    }

    /// Input: a flood, then one line a second later.
    /// Output: a note of how many were dropped, then the line.
    #[test]
    fn the_next_line_after_a_drop_comes_with_a_note() {
        let mut b = OutputBudget::default();
        let t0 = Instant::now();
        b.pass(lines(BURST as usize + 7), t0);
        let out = b.pass(vec!["later".into()], t0 + Duration::from_secs(1));
        assert_eq!(out.len(), 2, "{out:?}");
        assert!(out[0].starts_with("(7 lines not shown"), "{out:?}");
        assert_eq!(out[1], "later");
        let out = b.pass(vec!["quiet".into()], t0 + Duration::from_secs(2));
        assert_eq!(out, ["quiet"], "one note per drop");
    }

    /// Input: a flood, then nothing.
    /// Output: no note before QUIET has passed since the last drop, then
    /// one note by itself, and none after it.
    #[test]
    fn a_flood_that_stops_gets_its_note_by_itself() {
        let mut b = OutputBudget::default();
        let t0 = Instant::now();
        b.pass(lines(BURST as usize + 5), t0);
        assert_eq!(b.note_due(), Some(t0 + QUIET));
        assert_eq!(b.take_note(t0 + QUIET / 2), None);
        let note = b.take_note(t0 + QUIET).expect("a note once quiet");
        assert!(note.starts_with("(5 lines not shown"), "{note}");
        assert_eq!(b.note_due(), None);
        assert_eq!(b.take_note(t0 + QUIET * 2), None);
        // The next line comes without a second note.
        let out = b.pass(vec!["later".into()], t0 + QUIET * 3);
        assert_eq!(out, ["later"]);
    }

    /// Input: a steady RATE_PER_S lines a second for 10 s.
    /// Output: all passed on.
    #[test]
    fn a_steady_trickle_passes_whole() {
        let mut b = OutputBudget::default();
        let t0 = Instant::now();
        for s in 0..10 {
            let out = b.pass(lines(RATE_PER_S as usize), t0 + Duration::from_secs(s));
            assert_eq!(out.len(), RATE_PER_S as usize);
        }
        assert_eq!(b.dropped_total(), 0);
    }
}
