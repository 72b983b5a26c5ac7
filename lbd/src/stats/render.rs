//! Views of a [`Stat`] snapshot: HTML page, CSV, Prometheus text. Pure
//! functions, so the output is tested without a server.

use std::fmt::Write;

use crate::report::{ServerRow, Stat};
use crate::vrrp::status::VrrpRow;

/// Escapes text for HTML element content and attribute values.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// What the page needs besides the snapshot.
pub struct Page<'a> {
    pub user: Option<&'a str>,
    /// Present for admins: forms are shown with this token.
    pub csrf: Option<&'a str>,
    pub refresh_s: u64,
    pub message: Option<&'a str>,
    /// This node: which of the pair an admin is looking at.
    pub node: &'a Node<'a>,
}

/// The node's name and its VRRP instances, for the page and the metrics.
pub struct Node<'a> {
    pub hostname: &'a str,
    pub vrrp: &'a [VrrpRow],
}

/// The VRRP states an instance can be in, as `show vrrp` names them.
const VRRP_STATES: [&str; 4] = ["MASTER", "BACKUP", "FAULT", "INIT"];

fn vrrp_table(out: &mut String, vrrp: &[VrrpRow]) {
    if vrrp.is_empty() {
        return;
    }
    out.push_str("<h2>VRRP</h2><div class=\"wrap\"><table><tr><th>instance</th><th>state</th><th>priority</th><th>virtual IPs</th><th>since</th><th>last change</th></tr>");
    for v in vrrp {
        let _ = write!(
            out,
            "<tr class=\"{st}\"><td>{}</td><td>{st}</td><td>{}/{}</td><td>{}</td><td>{} s</td><td>{}</td></tr>",
            html_escape(&v.instance),
            v.priority,
            v.configured_priority,
            html_escape(&v.virtual_ips.join(" ")),
            v.for_s,
            html_escape(&v.reason),
            st = html_escape(&v.state),
        );
    }
    out.push_str("</table></div>");
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0.5em}\
table{border-collapse:collapse;width:100%}td,th{padding:4px 6px;border-bottom:1px solid #ddd;text-align:left;white-space:nowrap}\
.wrap{overflow-x:auto}.UP{background:#c8f0c8}.DOWN{background:#f4c0c0}.DRAIN{background:#f7e3a8}.MAINT{background:#c8d4f0}\
form{display:inline}button{margin:1px;padding:4px 8px}input[type=number]{width:4em}";

fn server_row(out: &mut String, s: &ServerRow, page: &Page<'_>) {
    let key = format!("{}/{}", s.backend, s.server);
    let _ = write!(
        out,
        "<tr class=\"{st}\"><td>{key}</td><td>{st}</td>",
        st = html_escape(&s.status),
        key = html_escape(&key),
    );
    // Actions come right after the status so a phone shows them without
    // scrolling sideways.
    if let Some(token) = page.csrf {
        let hidden = format!(
            "<input type=\"hidden\" name=\"server\" value=\"{}\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">",
            html_escape(&key),
            html_escape(token)
        );
        out.push_str("<td>");
        for action in ["ready", "drain", "maint"] {
            let _ = write!(
                out,
                "<form method=\"post\" action=\"/action\">{hidden}<input type=\"hidden\" name=\"action\" value=\"{action}\"><button>{action}</button></form>"
            );
        }
        let _ = write!(
            out,
            "<form method=\"post\" action=\"/action\">{hidden}<input type=\"hidden\" name=\"action\" value=\"weight\">\
             <input type=\"number\" name=\"weight\" min=\"0\" max=\"256\" value=\"{}\"><button>set</button></form></td>",
            s.weight
        );
    }
    let _ = writeln!(
        out,
        "<td>{w}</td><td>{a}/{max}</td><td>{t}</td><td>{addr}</td><td>{bi}/{bo}</td><td>{chk}</td></tr>",
        w = s.weight,
        a = s.active,
        max = s.maxconn.map_or("-".to_string(), |m| m.to_string()),
        t = s.total,
        addr = html_escape(&s.address),
        bi = s.bytes_in,
        bo = s.bytes_out,
        chk = html_escape(&s.last_check),
    );
}

/// The self-refreshing stats page.
pub fn html(stat: &Stat, page: &Page<'_>) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <meta http-equiv=\"refresh\" content=\"{}\"><title>{host}: lbd stats</title><style>{STYLE}</style></head><body>\
         <h1>{host}</h1>",
        page.refresh_s,
        host = html_escape(page.node.hostname),
    );
    if let Some(user) = page.user {
        let role = if page.csrf.is_some() {
            "admin"
        } else {
            "read-only"
        };
        let _ = write!(out, "<p>{} ({role})</p>", html_escape(user));
    }
    if let Some(m) = page.message {
        let _ = write!(out, "<p><b>{}</b></p>", html_escape(m));
    }
    vrrp_table(&mut out, page.node.vrrp);
    out.push_str("<h2>Frontends</h2><div class=\"wrap\"><table><tr><th>frontend</th><th>bind</th><th>mode</th><th>status</th><th>conns</th></tr>");
    for f in &stat.frontends {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}/{}</td></tr>",
            html_escape(&f.frontend),
            html_escape(&f.bind.join(" ")),
            html_escape(&f.mode),
            html_escape(&f.status),
            f.active,
            f.maxconn
        );
    }
    out.push_str("</table></div><h2>Servers</h2><div class=\"wrap\"><table><tr><th>server</th><th>status</th>");
    if page.csrf.is_some() {
        out.push_str("<th>actions</th>");
    }
    out.push_str("<th>weight</th><th>conns</th><th>total</th><th>address</th><th>bytes in/out</th><th>last check</th></tr>\n");
    for s in &stat.servers {
        server_row(&mut out, s, page);
    }
    out.push_str("</table></div><p><a href=\"/stats.json\">JSON</a> <a href=\"/stats.csv\">CSV</a> <a href=\"/metrics\">metrics</a></p></body></html>\n");
    out
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Server rows as CSV with a header line.
pub fn csv(stat: &Stat) -> String {
    let mut out = String::from(
        "backend,server,address,status,admin,weight,backup,active,maxconn,total,bytes_in,bytes_out,connect_errors,last_check\n",
    );
    for s in &stat.servers {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            csv_field(&s.backend),
            csv_field(&s.server),
            csv_field(&s.address),
            s.status,
            s.admin,
            s.weight,
            s.backup,
            s.active,
            s.maxconn.map_or(String::new(), |m| m.to_string()),
            s.total,
            s.bytes_in,
            s.bytes_out,
            s.connect_errors,
            csv_field(&s.last_check)
        );
    }
    out
}

fn label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// The VRRP families: one series per state (1 for the current one, as
/// Prometheus state sets do), the effective priority and the changes.
fn vrrp_metrics(out: &mut String, vrrp: &[VrrpRow]) {
    family(
        out,
        "lbd_vrrp_state",
        "gauge",
        "1 for the VRRP instance's current state (MASTER, BACKUP, FAULT, INIT), 0 for the others.",
    );
    for v in vrrp {
        for state in VRRP_STATES {
            let _ = writeln!(
                out,
                "lbd_vrrp_state{{instance=\"{}\",state=\"{state}\"}} {}",
                label(&v.instance),
                u8::from(v.state == state)
            );
        }
    }
    per_instance(
        out,
        vrrp,
        ("lbd_vrrp_priority", "gauge"),
        "Effective VRRP priority (after tracking) at the last state change.",
        |v| u64::from(v.priority),
    );
    per_instance(
        out,
        vrrp,
        ("lbd_vrrp_transitions_total", "counter"),
        "VRRP state changes since the instance started.",
        |v| v.transitions,
    );
}

/// One family with a sample per VRRP instance.
fn per_instance(
    out: &mut String,
    vrrp: &[VrrpRow],
    (name, kind): (&str, &str),
    help: &str,
    value: impl Fn(&VrrpRow) -> u64,
) {
    family(out, name, kind, help);
    for v in vrrp {
        let _ = writeln!(
            out,
            "{name}{{instance=\"{}\"}} {}",
            label(&v.instance),
            value(v)
        );
    }
}

/// Prometheus text exposition format (version 0.0.4).
pub fn prometheus(
    stat: &Stat,
    node: &Node<'_>,
    reloads: u64,
    current_connections: u32,
    log_lines_dropped: u64,
) -> String {
    let mut out = String::new();
    family(
        &mut out,
        "lbd_node_info",
        "gauge",
        "Always 1; the node's host name as a label, to tell the two nodes of a pair apart.",
    );
    let _ = writeln!(
        out,
        "lbd_node_info{{hostname=\"{}\"}} 1",
        label(node.hostname)
    );
    vrrp_metrics(&mut out, node.vrrp);
    family(
        &mut out,
        "lbd_log_lines_dropped_total",
        "counter",
        "Log lines dropped because the log's reader fell behind (lbd never waits for it).",
    );
    let _ = writeln!(out, "lbd_log_lines_dropped_total {log_lines_dropped}");
    family(
        &mut out,
        "lbd_reloads_total",
        "counter",
        "Successful config reloads.",
    );
    let _ = writeln!(out, "lbd_reloads_total {reloads}");
    family(
        &mut out,
        "lbd_current_connections",
        "gauge",
        "Open client connections.",
    );
    let _ = writeln!(out, "lbd_current_connections {current_connections}");
    family(
        &mut out,
        "lbd_frontend_current_connections",
        "gauge",
        "Open connections per frontend.",
    );
    for f in &stat.frontends {
        let _ = writeln!(
            out,
            "lbd_frontend_current_connections{{frontend=\"{}\"}} {}",
            label(&f.frontend),
            f.active
        );
    }
    family(
        &mut out,
        "lbd_frontend_up",
        "gauge",
        "1 while a frontend accepts connections (0: disabled or a listener failing).",
    );
    for f in &stat.frontends {
        let _ = writeln!(
            out,
            "lbd_frontend_up{{frontend=\"{}\"}} {}",
            label(&f.frontend),
            u8::from(f.status == "OPEN")
        );
    }
    family(
        &mut out,
        "lbd_backend_usable_servers",
        "gauge",
        "Servers up and ready per backend.",
    );
    for b in &stat.backends {
        let _ = writeln!(
            out,
            "lbd_backend_usable_servers{{backend=\"{}\"}} {}",
            label(&b.backend),
            b.usable
        );
    }
    type Get = fn(&ServerRow) -> String;
    let server_metrics: [(&str, &str, &str, Get); 7] = [
        ("lbd_server_up", "gauge", "1 if health checks pass.", |s| {
            u8::from(s.health_up).to_string()
        }),
        ("lbd_server_weight", "gauge", "Current weight.", |s| {
            s.weight.to_string()
        }),
        (
            "lbd_server_current_connections",
            "gauge",
            "Open connections.",
            |s| s.active.to_string(),
        ),
        (
            "lbd_server_connections_total",
            "counter",
            "Connections since start.",
            |s| s.total.to_string(),
        ),
        (
            "lbd_server_bytes_in_total",
            "counter",
            "Bytes from clients to the server.",
            |s| s.bytes_in.to_string(),
        ),
        (
            "lbd_server_bytes_out_total",
            "counter",
            "Bytes from the server to clients.",
            |s| s.bytes_out.to_string(),
        ),
        (
            "lbd_server_connect_errors_total",
            "counter",
            "Failed connects.",
            |s| s.connect_errors.to_string(),
        ),
    ];
    for (name, kind, help, get) in server_metrics {
        family(&mut out, name, kind, help);
        for s in &stat.servers {
            let _ = writeln!(
                out,
                "{name}{{backend=\"{}\",server=\"{}\"}} {}",
                label(&s.backend),
                label(&s.server),
                get(s)
            );
        }
    }
    family(
        &mut out,
        "lbd_server_admin_state",
        "gauge",
        "1 for the server's current admin state.",
    );
    for s in &stat.servers {
        for state in ["ready", "drain", "maint"] {
            let _ = writeln!(
                out,
                "lbd_server_admin_state{{backend=\"{}\",server=\"{}\",state=\"{state}\"}} {}",
                label(&s.backend),
                label(&s.server),
                u8::from(s.admin == state)
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{BackendRow, FrontendRow};

    fn sample() -> Stat {
        Stat {
            frontends: vec![FrontendRow {
                frontend: "web".into(),
                bind: vec!["0.0.0.0:443".into()],
                mode: "tcp".into(),
                status: "OPEN".into(),
                active: 3,
                maxconn: 100,
            }],
            backends: vec![BackendRow {
                backend: "b".into(),
                balance: "source".into(),
                servers: 1,
                usable: 1,
            }],
            servers: vec![ServerRow {
                active: 2,
                total: 9,
                bytes_in: 10,
                bytes_out: 20,
                last_check: "L7STS: 503, \"x\"".into(),
                ..ServerRow::example("b", "s<1>")
            }],
        }
    }

    fn vrrp_row(state: &str) -> VrrpRow {
        VrrpRow {
            instance: "vi".into(),
            interface: "eth0".into(),
            vrid: 51,
            state: state.into(),
            priority: 101,
            configured_priority: 101,
            virtual_ips: vec!["10.0.0.100/24".into()],
            reason: "MasterDown".into(),
            for_s: 12,
            transitions: 3,
        }
    }

    const NO_NODE: Node<'static> = Node {
        hostname: "lb-a",
        vrrp: &[],
    };

    #[test]
    fn html_escapes_and_shows_forms_only_to_admins() {
        let page = Page {
            user: Some("viewer"),
            csrf: None,
            refresh_s: 10,
            message: None,
            node: &NO_NODE,
        };
        let ro = html(&sample(), &page);
        assert!(ro.contains("s&lt;1&gt;"));
        assert!(!ro.contains("s<1>"));
        assert!(ro.contains("http-equiv=\"refresh\" content=\"10\""));
        assert!(!ro.contains("<form"));
        let admin = html(
            &sample(),
            &Page {
                csrf: Some("abc"),
                ..page
            },
        );
        assert!(admin.contains("name=\"csrf\" value=\"abc\""));
        assert!(!admin.contains("<h2>VRRP</h2>"), "no instance, no table");
    }

    /// Input: node lb-a<1> holding an instance as MASTER.
    /// Output: the name heads the page (escaped) and the instance's state,
    /// priority and virtual IPs are in a VRRP table.
    #[test]
    fn html_names_the_node_and_its_vrrp_state() {
        let rows = [vrrp_row("MASTER")];
        let node = Node {
            hostname: "lb-a<1>",
            vrrp: &rows,
        };
        let page = Page {
            user: None,
            csrf: None,
            refresh_s: 10,
            message: None,
            node: &node,
        };
        let h = html(&sample(), &page);
        assert!(h.contains("<h1>lb-a&lt;1&gt;</h1>"), "{h}");
        assert!(h.contains("<title>lb-a&lt;1&gt;: lbd stats</title>"), "{h}");
        assert!(h.contains("<h2>VRRP</h2>"), "{h}");
        assert!(
            h.contains("<td>vi</td><td>MASTER</td><td>101/101</td><td>10.0.0.100/24</td><td>12 s</td><td>MasterDown</td>"),
            "{h}"
        );
    }

    /// Input: one BACKUP instance with 3 transitions on node lb-b.
    /// Output: a state set with BACKUP at 1 and the others at 0, the
    /// priority, the transitions counter and the node's name.
    #[test]
    fn prometheus_has_the_node_and_vrrp_families() {
        let rows = [vrrp_row("BACKUP")];
        let node = Node {
            hostname: "lb-b",
            vrrp: &rows,
        };
        let p = prometheus(&sample(), &node, 0, 0, 0);
        assert!(p.contains("lbd_node_info{hostname=\"lb-b\"} 1\n"), "{p}");
        assert!(
            p.contains("lbd_vrrp_state{instance=\"vi\",state=\"BACKUP\"} 1\n"),
            "{p}"
        );
        for other in ["MASTER", "FAULT", "INIT"] {
            assert!(
                p.contains(&format!(
                    "lbd_vrrp_state{{instance=\"vi\",state=\"{other}\"}} 0\n"
                )),
                "{p}"
            );
        }
        assert!(
            p.contains("lbd_vrrp_priority{instance=\"vi\"} 101\n"),
            "{p}"
        );
        assert!(
            p.contains("# TYPE lbd_vrrp_transitions_total counter\n"),
            "{p}"
        );
        assert!(
            p.contains("lbd_vrrp_transitions_total{instance=\"vi\"} 3\n"),
            "{p}"
        );
    }

    #[test]
    fn csv_quotes_fields() {
        let c = csv(&sample());
        assert!(c
            .lines()
            .nth(1)
            .expect("row")
            .ends_with("\"L7STS: 503, \"\"x\"\"\""));
    }

    #[test]
    fn prometheus_lines_have_help_type_and_samples() {
        let p = prometheus(&sample(), &NO_NODE, 2, 3, 5);
        assert!(p.contains("\nlbd_log_lines_dropped_total 5\n"), "{p}");
        assert!(p.contains("lbd_reloads_total 2\n"));
        assert!(p.contains("lbd_server_up{backend=\"b\",server=\"s<1>\"} 1\n"));
        assert!(
            p.contains("lbd_server_admin_state{backend=\"b\",server=\"s<1>\",state=\"ready\"} 1\n")
        );
        assert!(p.contains("# TYPE lbd_server_connections_total counter\n"));
    }
}
