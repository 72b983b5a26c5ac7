//! The stats page from outside: auth groups, CSRF, JSON/CSV, Prometheus
//! text, and a stalled client not blocking others.

mod support;

use std::net::SocketAddr;

use support::*;
use tokio::io::AsyncWriteExt;

struct Setup {
    _lbd: Lbd,
    _a: EchoBackend,
    stats: SocketAddr,
    dir: std::path::PathBuf,
}

async fn setup(tag: &str) -> Setup {
    let a = EchoBackend::start("a").await;
    let port = free_port();
    let stats_port = free_port();
    let dir = temp_dir(tag);
    let viewer = lbd::password::hash_password("view-pw").expect("hash");
    let admin = lbd::password::hash_password("admin-pw").expect("hash");
    let cfg = format!(
        "{}[frontends.f]\nbind = [\"127.0.0.1:{port}\"]\ndefault_backend = \"web\"\n\
         [backends.web.servers.a]\naddress = \"{}\"\n\
         [stats]\nbind = \"127.0.0.1:{stats_port}\"\nrefresh = \"5s\"\n\
         [stats.users.viewer]\ngroup = \"read-only\"\npassword_hash = \"{viewer}\"\n\
         [stats.users.ops]\ngroup = \"admin\"\npassword_hash = \"{admin}\"\n",
        global(&dir),
        a.addr
    );
    let lbd = Lbd::start(&dir, &cfg);
    Setup {
        _lbd: lbd,
        _a: a,
        stats: SocketAddr::from(([127, 0, 0, 1], stats_port)),
        dir,
    }
}

fn token(page: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = page.find(marker).expect("csrf field") + marker.len();
    page[start..].split('"').next().expect("token").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_is_required_and_wrong_passwords_fail() {
    let s = setup("stats-auth").await;
    let (code, head, _) = http(s.stats, "GET", "/", &[], "").await;
    assert_eq!(code, 401);
    assert!(
        head.to_ascii_lowercase()
            .contains("www-authenticate: basic"),
        "{head}"
    );
    let bad = basic("ops", "nope");
    assert_eq!(
        http(s.stats, "GET", "/", &[("Authorization", &bad)], "")
            .await
            .0,
        401
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_user_cannot_act_admin_needs_csrf() {
    let s = setup("stats-csrf").await;
    let viewer = basic("viewer", "view-pw");
    let admin = basic("ops", "admin-pw");

    let (code, _, page) = http(s.stats, "GET", "/", &[("Authorization", &viewer)], "").await;
    assert_eq!(code, 200);
    assert!(page.contains("web/a"));
    assert!(!page.contains("<form"), "read-only page has no forms");

    let (code, _, page) = http(s.stats, "GET", "/", &[("Authorization", &admin)], "").await;
    assert_eq!(code, 200);
    assert!(page.contains("http-equiv=\"refresh\" content=\"5\""));
    let t = token(&page);

    // Read-only user, even with an admin's token: refused.
    let form = format!("server=web%2Fa&action=drain&csrf={t}");
    assert_eq!(
        http(
            s.stats,
            "POST",
            "/action",
            &[("Authorization", &viewer)],
            &form
        )
        .await
        .0,
        403
    );
    // Admin without or with a wrong token: refused.
    let (code, _, body) = http(
        s.stats,
        "POST",
        "/action",
        &[("Authorization", &admin)],
        "server=web%2Fa&action=drain",
    )
    .await;
    assert_eq!(code, 403);
    assert!(body.contains("CSRF"), "{body}");
    let wrong = "server=web%2Fa&action=drain&csrf=00ff";
    assert_eq!(
        http(
            s.stats,
            "POST",
            "/action",
            &[("Authorization", &admin)],
            wrong
        )
        .await
        .0,
        403
    );
    assert_eq!(status(&s.dir, "web/a"), "UP");
    // Admin with the token: applied.
    let (code, head, _) = http(
        s.stats,
        "POST",
        "/action",
        &[("Authorization", &admin)],
        &form,
    )
    .await;
    assert_eq!(code, 303, "{head}");
    assert_eq!(status(&s.dir, "web/a"), "DRAIN");
    let weight = format!("server=web%2Fa&action=weight&weight=7&csrf={t}");
    assert_eq!(
        http(
            s.stats,
            "POST",
            "/action",
            &[("Authorization", &admin)],
            &weight
        )
        .await
        .0,
        303
    );
    let (_, _, json) = http(
        s.stats,
        "GET",
        "/stats.json",
        &[("Authorization", &viewer)],
        "",
    )
    .await;
    let v: serde_json::Value = serde_json::from_str(&json).expect("stats.json");
    assert_eq!(v["servers"][0]["weight"], 7);
    assert_eq!(v["servers"][0]["status"], "DRAIN");
}

/// Checks the Prometheus text format line by line: comments are HELP/TYPE,
/// samples are `name{label="v",...} number`.
fn assert_prometheus(text: &str) {
    let mut typed = std::collections::BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split(' ');
            typed.insert(parts.next().expect("name").to_string());
            assert!(matches!(parts.next(), Some("gauge" | "counter")), "{line}");
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("no value: {line}"));
        value
            .parse::<f64>()
            .unwrap_or_else(|_| panic!("bad value: {line}"));
        let name = series.split('{').next().expect("name");
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad name: {line}"
        );
        assert!(typed.contains(name), "sample before its TYPE: {line}");
        if let Some(labels) = series.strip_prefix(name).and_then(|l| l.strip_prefix('{')) {
            let labels = labels
                .strip_suffix('}')
                .unwrap_or_else(|| panic!("unclosed labels: {line}"));
            for pair in labels.split("\",") {
                let (k, v) = pair
                    .split_once("=\"")
                    .unwrap_or_else(|| panic!("bad label: {line}"));
                assert!(
                    k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                    "{line}"
                );
                assert!(
                    !v.trim_end_matches('"').contains('"') || v.contains("\\\""),
                    "{line}"
                );
            }
        }
    }
    assert!(typed.len() >= 5, "{typed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_csv_and_a_stalled_client() {
    let s = setup("stats-metrics").await;
    let viewer = basic("viewer", "view-pw");
    // A slowloris client: half a request line, then nothing.
    let mut stalled = tokio::net::TcpStream::connect(s.stats)
        .await
        .expect("connect");
    stalled.write_all(b"GET / HT").await.expect("partial");
    let (code, head, body) = http(
        s.stats,
        "GET",
        "/metrics",
        &[("Authorization", &viewer)],
        "",
    )
    .await;
    assert_eq!(code, 200);
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    assert_prometheus(&body);
    assert!(
        body.contains("lbd_server_up{backend=\"web\",server=\"a\"} 1"),
        "{body}"
    );
    let (code, _, csv) = http(
        s.stats,
        "GET",
        "/stats.csv",
        &[("Authorization", &viewer)],
        "",
    )
    .await;
    assert_eq!(code, 200);
    assert!(csv.starts_with("backend,server,address,status"));
    // Garbage instead of HTTP: answered with an error, nothing else breaks.
    let mut garbage = tokio::net::TcpStream::connect(s.stats)
        .await
        .expect("connect");
    garbage
        .write_all(b"\x16\x03\x01\x00\x05hello\r\n\r\n")
        .await
        .expect("write");
    assert_eq!(
        http(
            s.stats,
            "GET",
            "/stats.json",
            &[("Authorization", &viewer)],
            ""
        )
        .await
        .0,
        200
    );
    assert_eq!(
        http(s.stats, "GET", "/nope", &[("Authorization", &viewer)], "")
            .await
            .0,
        404
    );
    drop(stalled);
}

/// Input: 80 sockets from five other addresses that connect and send
/// nothing (or half a request line), more than the listener's 64 slots;
/// then an admin's fresh connection.
/// Output: the admin gets the page, within less than the header timeout
/// (10 s; waiting that long would mean the idle sockets had to time out
/// first, and a client that reconnects would lock the admin out again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sockets_do_not_lock_the_admin_out() {
    let s = setup("stats-idle").await;
    let mut idle = Vec::new();
    for i in 0..80u8 {
        let from = std::net::IpAddr::from([127, 0, 0, 2 + i % 5]);
        let mut socket = connect_from(s.stats, Some(from)).await;
        if i % 2 == 0 {
            socket.write_all(b"GET / HT").await.expect("partial");
        }
        idle.push(socket);
    }
    let admin = basic("ops", "admin-pw");
    let answer = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        http(s.stats, "GET", "/", &[("Authorization", &admin)], ""),
    )
    .await;
    let (code, _, body) = answer.expect("the admin's request was never answered");
    assert_eq!(code, 200);
    assert!(body.contains("name=\"csrf\""), "{body}");
    drop(idle);
}

/// Input: the page, a JSON snapshot and a 401.
/// Output: each forbids framing, sniffing, caching and referrers, with a
/// CSP that still lets the page's inline style and forms work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_carries_security_headers() {
    let s = setup("stats-headers").await;
    let admin = basic("ops", "admin-pw");
    let answers = [
        http(s.stats, "GET", "/", &[("Authorization", &admin)], "").await,
        http(
            s.stats,
            "GET",
            "/stats.json",
            &[("Authorization", &admin)],
            "",
        )
        .await,
        http(s.stats, "GET", "/", &[], "").await,
    ];
    for (code, head, _) in &answers {
        assert!(*code == 200 || *code == 401, "{head}");
        let head = head.to_ascii_lowercase();
        for needle in [
            "x-frame-options: deny",
            "x-content-type-options: nosniff",
            "referrer-policy: same-origin",
            "cache-control: no-store",
            "content-security-policy: default-src 'none'; style-src 'unsafe-inline'; \
             form-action 'self'; frame-ancestors 'none'",
        ] {
            assert!(head.contains(needle), "missing {needle:?} in:\n{head}");
        }
    }
    let (_, _, page) = &answers[0];
    assert!(page.contains("<style>"), "the page keeps its inline style");
    assert!(
        page.contains("<form method=\"post\" action=\"/action\">"),
        "{page}"
    );
}
