//! The console status screen as text: a [`Snapshot`] in, exactly `rows`
//! lines of at most `cols` characters out. Pure, so every layout is
//! unit-tested; colour is added by [`paint`] when writing to the VT.

use std::fmt::Write;

/// One VRRP instance as lbd's `show vrrp` reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
pub struct VrrpView {
    pub instance: String,
    pub state: String,
    pub priority: u8,
    pub configured_priority: u8,
    pub virtual_ips: Vec<String>,
    pub for_s: u64,
}

/// One frontend as lbd's `show stat` reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
pub struct FrontendView {
    pub frontend: String,
    pub status: String,
    pub active: u32,
}

/// One backend as lbd's `show stat` reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
pub struct BackendView {
    pub backend: String,
    pub servers: usize,
    pub usable: usize,
}

/// What lbd said on its control socket, or why it could not be asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LbdView {
    Answered {
        connections: u32,
        reloads: u64,
        stats: Option<String>,
        frontends: Vec<FrontendView>,
        backends: Vec<BackendView>,
        vrrp: Vec<VrrpView>,
    },
    Unreachable(String),
}

/// The web console row: what to type and what the browser must show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleRow {
    /// `https://192.0.2.10:5480/`.
    pub url: String,
    /// `self-signed` or `console.certificate`.
    pub origin: String,
    /// The SHA-256 fingerprint in two halves: whole it is 95 characters,
    /// more than an 80-column console has after the labels.
    pub fingerprint: (String, String),
}

/// Everything on the screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub version: String,
    pub hostname: String,
    pub uptime_s: u64,
    /// `(interface, "addr/prefix")`, the VIPs lbd holds included.
    pub addresses: Vec<(String, String)>,
    pub gateway: Option<String>,
    pub dns: Vec<String>,
    /// Where the settings came from, e.g. "14 from ovf-env, 6 defaults".
    pub settings: String,
    /// Rejected settings and other boot errors.
    pub problems: Vec<String>,
    /// The supervisor's word on lbd: "running (pid 154)", "restarting...".
    pub service: String,
    pub lbd: LbdView,
    /// The web console, once init set it up.
    pub console: Option<ConsoleRow>,
    /// The last lines of the log.
    pub recent: Vec<String>,
}

/// Shown instead of frontends and backends while lbd has none: what a new
/// appliance says, and where services come from.
const NO_SERVICES: [&str; 3] = [
    "no services configured. Add one in vSphere: the deploy wizard's",
    "Service 1-4 slots (vApp Options, then restart the VM), or a whole",
    "lbd config as lbd.config (base64).",
];

/// Screens smaller than this are drawn at this size and cut by the VT.
pub const MIN_COLS: usize = 60;
pub const MIN_ROWS: usize = 16;

fn duration(s: u64) -> String {
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m {:02}s", s / 60, s % 60),
        3600..=86_399 => format!("{}h {:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {:02}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// Tab stops of the Linux console.
const TAB_WIDTH: usize = 8;

/// Cuts to `cols` characters (not bytes: values may be UTF-8). Tabs become
/// spaces: a tab moves the console's cursor without writing the cells it
/// skips, so the previous frame's text showed through (nft's ruleset in
/// the log is indented with tabs). Other control characters become '?' so
/// a log line cannot move the cursor or send escape sequences.
fn fit(line: &str, cols: usize) -> String {
    let mut out = String::new();
    let mut width = 0;
    for c in line.chars() {
        if width >= cols {
            break;
        }
        match c {
            '\t' => {
                let next = (width / TAB_WIDTH + 1) * TAB_WIDTH;
                while width < next.min(cols) {
                    out.push(' ');
                    width += 1;
                }
            }
            c if c.is_control() => {
                out.push('?');
                width += 1;
            }
            c => {
                out.push(c);
                width += 1;
            }
        }
    }
    out
}

/// `label` padded to the value column, then `value`.
fn field(label: &str, value: &str) -> String {
    format!(" {label:<10}{value}")
}

/// Rows for what lbd reports: state first, then VRRP, frontends, backends.
fn lbd_rows(snapshot: &Snapshot, out: &mut Vec<String>) {
    let LbdView::Answered {
        connections,
        reloads,
        stats,
        frontends,
        backends,
        vrrp,
    } = &snapshot.lbd
    else {
        if let LbdView::Unreachable(why) = &snapshot.lbd {
            out.push(field(
                "lbd",
                &format!("{} - not answering: {why}", snapshot.service),
            ));
        }
        return;
    };
    let mut state = format!("{} - {connections} connections", snapshot.service);
    if *reloads > 0 {
        let _ = write!(state, ", {reloads} reloads");
    }
    out.push(field("lbd", &state));
    if let Some(stats) = stats {
        out.push(field(
            "Admin",
            &format!("stats and admin page http://{stats}/"),
        ));
    }
    if vrrp.is_empty() {
        out.push(field("VRRP", "off (no virtual IP set)"));
    }
    for v in vrrp {
        let mut line = format!(
            "{:<6} {} priority {}",
            v.state,
            v.virtual_ips.join(" "),
            v.priority
        );
        if v.priority != v.configured_priority {
            let _ = write!(line, " (of {})", v.configured_priority);
        }
        let _ = write!(line, ", for {}", duration(v.for_s));
        out.push(field("VRRP", &line));
    }
    if frontends.is_empty() {
        // A new appliance: the image ships no services.
        out.extend(
            NO_SERVICES
                .iter()
                .enumerate()
                .map(|(i, line)| field(if i == 0 { "Services" } else { "" }, line)),
        );
        return;
    }
    let list = |items: Vec<String>| {
        if items.is_empty() {
            "none".to_string()
        } else {
            items.join("  ")
        }
    };
    out.push(field(
        "Frontends",
        &list(
            frontends
                .iter()
                .map(|f| format!("{} {} {}", f.frontend, f.status, f.active))
                .collect(),
        ),
    ));
    out.push(field(
        "Backends",
        &list(
            backends
                .iter()
                .map(|b| {
                    let mark = if b.usable == 0 { " DOWN" } else { "" };
                    format!("{} {}/{} up{mark}", b.backend, b.usable, b.servers)
                })
                .collect(),
        ),
    ));
}

/// The screen, `rows` lines of at most `cols` characters.
pub fn render(snapshot: &Snapshot, cols: usize, rows: usize) -> Vec<String> {
    let cols = cols.max(MIN_COLS);
    let rows = rows.max(MIN_ROWS);
    let rule = "-".repeat(cols);
    let title = format!(
        " Load balancer appliance {}  {}",
        snapshot.version, snapshot.hostname
    );
    let up = format!("up {} ", duration(snapshot.uptime_s));
    let gap = cols.saturating_sub(title.chars().count() + up.len()).max(1);
    let mut top = vec![format!("{title}{}{up}", " ".repeat(gap)), rule.clone()];

    if snapshot.addresses.is_empty() {
        top.push(field(
            "Network",
            "no address (check the NIC and network.* settings)",
        ));
    }
    for (i, (iface, addr)) in snapshot.addresses.iter().enumerate() {
        let label = if i == 0 { "Network" } else { "" };
        top.push(field(label, &format!("{iface} {addr}")));
    }
    let mut route = format!("gateway {}", snapshot.gateway.as_deref().unwrap_or("none"));
    if !snapshot.dns.is_empty() {
        let _ = write!(route, "  dns {}", snapshot.dns.join(" "));
    }
    top.push(field("", &route));
    top.push(field("Settings", &snapshot.settings));
    if let Some(c) = &snapshot.console {
        top.push(field("Console", &format!("{} ({})", c.url, c.origin)));
        top.push(field("", &format!("SHA-256 {}:", c.fingerprint.0)));
        top.push(field("", &format!("        {}", c.fingerprint.1)));
    }
    lbd_rows(snapshot, &mut top);
    let problems = if snapshot.problems.is_empty() {
        vec![field("Problems", "none")]
    } else {
        snapshot
            .problems
            .iter()
            .enumerate()
            .map(|(i, p)| field(if i == 0 { "PROBLEMS" } else { "" }, p))
            .collect()
    };
    top.extend(problems);
    top.push(rule.clone());

    let footer = [
        rule,
        " Alt+F2: full log. Settings: vSphere vApp Options (or guestinfo), then restart the VM."
            .to_string(),
    ];
    // The recent log fills what is left; the top is cut first on a small
    // screen only after the log is gone.
    let room = rows.saturating_sub(top.len() + footer.len());
    let mut screen: Vec<String> = top;
    if room > 1 {
        screen.push(" Recent log".to_string());
        let shown = snapshot.recent.len().min(room - 1);
        let start = snapshot.recent.len() - shown;
        screen.extend(snapshot.recent[start..].iter().map(|l| format!("   {l}")));
    }
    screen.truncate(rows.saturating_sub(footer.len()));
    while screen.len() + footer.len() < rows {
        screen.push(String::new());
    }
    screen.extend(footer);
    screen.iter().map(|l| fit(l, cols)).collect()
}

/// Colour for the words an admin scans for: ANSI sequences the Linux VT
/// understands (green MASTER/OPEN, yellow BACKUP/STOP, red FAULT/DOWN and
/// problems).
pub fn paint(line: &str) -> String {
    const GREEN: &str = "\x1b[1;32m";
    const YELLOW: &str = "\x1b[1;33m";
    const RED: &str = "\x1b[1;31m";
    const RESET: &str = "\x1b[0m";
    let mut out = String::with_capacity(line.len() + 16);
    for (i, word) in line.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let colour = match word {
            "MASTER" | "OPEN" => Some(GREEN),
            "BACKUP" | "STOP" | "INIT" => Some(YELLOW),
            "FAULT" | "DOWN" | "PROBLEMS" => Some(RED),
            _ => None,
        };
        match colour {
            Some(c) => {
                out.push_str(c);
                out.push_str(word);
                out.push_str(RESET);
            }
            None => out.push_str(word),
        }
    }
    out
}

#[cfg(test)]
#[path = "render_tests.rs"]
mod tests;
