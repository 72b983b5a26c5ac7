//! The console status screen: what a vSphere admin sees on the VM console
//! once the appliance is up — addresses (the VIPs included), gateway and
//! DNS, where the settings came from, lbd's state, VRRP, frontends,
//! backends, problems and the last log lines — redrawn every second on
//! tty1. The full log is on tty2 (Alt+F2) and on the serial console.
//!
//! ```text
//!   event loop --(lines, lbd state)--> Board (shared, locked briefly)
//!   status thread, every second: Board + kernel state (gather)
//!        + lbd's control socket (lbd_query) --> render --> tty1 (vt)
//! ```
//! A thread, so a slow or hung lbd (each question has a 0.5 s timeout)
//! never delays PID 1's event loop.

pub mod gather;
pub mod lbd_query;
pub mod render;
pub mod vt;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use render::{render, Snapshot};

/// How often the screen is redrawn.
const REFRESH: Duration = Duration::from_secs(1);
/// Log lines kept for the screen.
const RECENT_LINES: usize = 40;
/// Error lines kept for the screen.
const PROBLEM_LINES: usize = 4;

#[derive(Debug, Default)]
struct BoardState {
    service: String,
    settings: String,
    recent: VecDeque<String>,
    problems: VecDeque<String>,
    /// Standing warnings about the config (VRRP without authentication):
    /// shown until the config changes, not pushed out by later lines.
    warnings: Vec<String>,
    console: Option<ConsoleView>,
}

/// The web console as init set it up: where lbd binds it and the
/// certificate it serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleView {
    /// lbd's `console.bind`, e.g. `0.0.0.0:5480`.
    pub bind: String,
    pub fingerprint: crate::console_tls::Fingerprint,
    pub origin: crate::console_tls::Origin,
}

/// What init knows and the screen shows; the event loop writes it.
#[derive(Debug, Default)]
pub struct Board {
    state: Mutex<BoardState>,
}

impl Board {
    /// Where the settings came from (one line).
    pub fn set_settings(&self, summary: String) {
        if let Ok(mut s) = self.state.lock() {
            s.settings = summary;
        }
    }

    /// The standing warnings about the current config, replacing the
    /// previous ones (a fixed config clears them).
    pub fn set_warnings(&self, warnings: Vec<String>) {
        if let Ok(mut s) = self.state.lock() {
            s.warnings = warnings;
        }
    }

    /// The web console's address and certificate, once lbd's files are
    /// written.
    pub fn set_console(&self, console: ConsoleView) {
        if let Ok(mut s) = self.state.lock() {
            s.console = Some(console);
        }
    }

    /// The supervisor's word on lbd.
    pub fn set_service(&self, text: String) {
        if let Ok(mut s) = self.state.lock() {
            s.service = text;
        }
    }

    /// A log line; lines with an error are kept as problems too.
    pub fn push_line(&self, line: &str) {
        let Ok(mut s) = self.state.lock() else {
            return;
        };
        if s.recent.len() == RECENT_LINES {
            s.recent.pop_front();
        }
        s.recent.push_back(line.to_string());
        if line.contains("error:") {
            if s.problems.len() == PROBLEM_LINES {
                s.problems.pop_front();
            }
            s.problems.push_back(line.to_string());
        }
    }

    /// What the screen lists as problems: standing warnings, then the
    /// last error lines.
    pub fn problems(&self) -> Vec<String> {
        self.state
            .lock()
            .map(|s| s.warnings.iter().chain(&s.problems).cloned().collect())
            .unwrap_or_default()
    }

    fn snapshot(&self, lbd_socket: &std::path::Path) -> Snapshot {
        let addresses = gather::addresses();
        let mut lbd = lbd_query::query(lbd_socket);
        if let render::LbdView::Answered {
            stats: Some(stats), ..
        } = &mut lbd
        {
            *stats = gather::reachable_stats(stats, &addresses);
        }
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let problems = self.problems();
        let state = self.state.lock().map(|s| {
            (
                s.service.clone(),
                s.settings.clone(),
                s.recent.iter().cloned().collect::<Vec<_>>(),
                s.console.clone(),
            )
        });
        let (service, settings, recent, console) = state.unwrap_or_default();
        // The address follows a DHCP lease, as the stats page's does.
        let console = console.map(|c| render::ConsoleRow {
            url: format!("https://{}/", gather::reachable_stats(&c.bind, &addresses)),
            origin: c.origin.to_string(),
            fingerprint: c.fingerprint.halves(),
        });
        Snapshot {
            version: crate::boot::VERSION.to_string(),
            hostname: nix::unistd::gethostname()
                .map(|h| h.to_string_lossy().into_owned())
                .unwrap_or_default(),
            uptime_s: gather::uptime_seconds(&read("/proc/uptime")),
            addresses,
            gateway: gather::default_gateway(&read("/proc/net/route")).map(|g| g.to_string()),
            dns: gather::resolvers(&read("/etc/resolv.conf")),
            settings,
            problems,
            service,
            lbd,
            console,
            recent,
        }
    }
}

/// Starts drawing on tty1. Fails (and the appliance runs without a
/// screen, the log on the consoles as before) when there is no VT.
pub fn start(board: Arc<Board>, lbd_socket: PathBuf) -> std::io::Result<()> {
    let mut screen = vt::Vt::open(vt::SCREEN_VT)?;
    screen.prepare()?;
    if let Err(e) = screen.redirect_kernel_messages(vt::LOG_VT) {
        board.push_line(&format!(
            "init: warning: kernel messages stay on the screen VT: {e}"
        ));
    }
    std::thread::Builder::new()
        .name("status".into())
        .spawn(move || loop {
            let snapshot = board.snapshot(&lbd_socket);
            let (cols, rows) = screen.size();
            // A VT that stops taking writes is retried at the next tick.
            let _ = screen.draw(&render(&snapshot, cols, rows));
            std::thread::sleep(REFRESH);
        })?;
    Ok(())
}

/// "6 from ovf-env, 1 from guestinfo; the rest defaults".
pub fn settings_summary(merged: &settings::Merged) -> String {
    let mut counts: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    for origin in merged.origins.values() {
        if !origin.raw.trim().is_empty() && origin.source != settings::Source::Default {
            *counts.entry(origin.source.to_string()).or_default() += 1;
        }
    }
    if counts.is_empty() {
        return "all defaults (nothing set in vSphere)".to_string();
    }
    let parts: Vec<String> = counts
        .iter()
        .map(|(source, n)| format!("{n} from {source}"))
        .collect();
    let mut summary = format!("{}; the rest defaults", parts.join(", "));
    // The values an admin changed on this appliance are the ones a
    // redeploy would not bring back: name them.
    let mut changed: Vec<&str> = merged
        .origins
        .iter()
        .filter(|(_, o)| o.source == settings::Source::Appliance && !o.raw.trim().is_empty())
        .map(|(key, _)| &key[..])
        .collect();
    changed.sort_unstable();
    if !changed.is_empty() {
        let more = changed.len().saturating_sub(CHANGED_SHOWN);
        changed.truncate(CHANGED_SHOWN);
        summary.push_str(&format!("; changed here: {}", changed.join(", ")));
        if more > 0 {
            summary.push_str(&format!(" and {more} more (lbd ctl config get)"));
        }
    }
    summary
}

/// Keys changed on the appliance named on the settings line.
const CHANGED_SHOWN: usize = 4;

#[cfg(test)]
mod tests {
    use super::*;

    /// Input: values from the OVF environment and two from the store.
    /// Output: counted by source, the store's named.
    #[test]
    fn the_summary_names_what_was_changed_on_the_appliance() {
        let layer = |source, pairs: &[(&str, &str)]| {
            settings::Layer::new(
                source,
                pairs
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            )
        };
        let merged = settings::merge([
            layer(
                settings::Source::OvfEnv,
                &[("hostname", "lb1"), ("network.mtu", "9000")],
            ),
            layer(
                settings::Source::Appliance,
                &[("network.mtu", "1500"), ("network.dns", "192.0.2.53")],
            ),
        ]);
        assert_eq!(
            settings_summary(&merged),
            "2 from appliance, 1 from ovf-env; the rest defaults; changed here: network.dns, network.mtu"
        );
    }

    #[test]
    fn board_keeps_the_newest_lines_and_the_errors() {
        let board = Board::default();
        for i in 0..100 {
            board.push_line(&format!("line {i}"));
        }
        board.push_line("init: error: setting network.ipv4: bad");
        let s = board.state.lock().expect("lock");
        assert_eq!(s.recent.len(), RECENT_LINES);
        assert_eq!(
            s.recent.back().map(String::as_str),
            Some("init: error: setting network.ipv4: bad")
        );
        assert_eq!(s.problems.len(), 1);
    }
}
