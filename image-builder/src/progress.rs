//! Progress for the build steps: a spinner per step on a terminal, one
//! line per finished step either way, all on stderr (stdout is the summary).

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

pub struct Step {
    bar: ProgressBar,
    started: Instant,
    name: String,
}

impl Step {
    pub fn start(name: &str) -> Self {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_message(name.to_string());
        bar.enable_steady_tick(Duration::from_millis(120));
        Self {
            bar,
            started: Instant::now(),
            name: name.to_string(),
        }
    }

    /// Ends the step with a detail such as a size.
    pub fn done(self, detail: &str) {
        self.bar.finish_and_clear();
        eprintln!(
            "  done  {:<28} {:>6.1}s  {detail}",
            self.name,
            self.started.elapsed().as_secs_f64()
        );
    }
}

impl Drop for Step {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}
