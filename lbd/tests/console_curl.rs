//! The web console with curl, the client CONFIG.md's examples use: plain
//! HTTP is redirected without reflecting a hostile Host, every answer
//! carries the security headers, a session's change needs its CSRF token,
//! a read-only user changes nothing, and a script with HTTP Basic drives a
//! server and reads the result back.

mod support;

use std::process::Command;

use support::*;

struct Console {
    _lbd: Lbd,
    _a: EchoBackend,
    base: String,
    plain: String,
    dir: std::path::PathBuf,
}

async fn start(tag: &str) -> Console {
    let a = EchoBackend::start("a").await;
    let dir = temp_dir(tag);
    let cfg = console_config(&dir, &[a.addr]);
    let port = cfg.port;
    let mut lbd = Lbd::start(&dir, &cfg.text);
    lbd.seen_or_wait(&["console listening"]);
    Console {
        _lbd: lbd,
        _a: a,
        base: format!("https://127.0.0.1:{port}"),
        plain: format!("http://127.0.0.1:{port}"),
        dir,
    }
}

/// curl with `args`; returns (status code, headers, body).
fn curl(args: &[&str]) -> (u16, String, String) {
    let out = Command::new("curl")
        .args(["-sk", "--max-time", "20", "-D", "-"])
        .args(args)
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, head.to_ascii_lowercase(), body.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_is_redirected_and_a_hostile_host_is_not_reflected() {
    let c = start("console-redirect").await;
    let (code, head, _) = curl(&[&format!("{}/x", c.plain)]);
    assert_eq!(code, 301, "{head}");
    assert!(head.contains("location: https://127.0.0.1:"), "{head}");
    let (code, head, _) = curl(&["-H", "Host: good@evil.example", &c.plain]);
    assert!(!head.contains("evil"), "hostile Host reflected: {head}");
    assert_ne!(code, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_carry_the_security_headers() {
    let c = start("console-headers").await;
    let (code, head, body) = curl(&[&format!("{}/login", c.base)]);
    assert_eq!(code, 200, "{head}");
    assert!(body.contains("login-user"), "{body}");
    for header in [
        "strict-transport-security: max-age=",
        "content-security-policy: default-src 'none'; script-src 'self'",
        "frame-ancestors 'none'",
        "x-frame-options: deny",
        "x-content-type-options: nosniff",
        "referrer-policy: same-origin",
        "cache-control: no-store",
    ] {
        assert!(head.contains(header), "missing {header:?} in:\n{head}");
    }
    let (code, _, body) = curl(&[&format!("{}/api/v1/status", c.base)]);
    assert_eq!(code, 401, "{body}");
    assert!(body.contains("\"fix\""), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_need_their_csrf_token_and_read_only_changes_nothing() {
    let c = start("console-csrf").await;
    let jar = c.dir.join("cookies");
    let jar = jar.to_str().expect("utf-8 path");
    let (code, head, _) = curl(&[
        "-c",
        jar,
        "-d",
        "user=admin&password=admin-password",
        &format!("{}/login", c.base),
    ]);
    assert_eq!(code, 303, "{head}");
    assert!(
        head.contains("set-cookie: lbd_session=")
            && head.contains("httponly")
            && head.contains("secure")
            && head.contains("samesite=strict"),
        "{head}"
    );
    let action = format!("{}/api/v1/servers/web/a", c.base);
    let json = [
        "-H",
        "Content-Type: application/json",
        "-d",
        "{\"state\":\"maint\"}",
    ];
    let mut no_token = vec!["-b", jar];
    no_token.extend_from_slice(&json);
    no_token.push(&action);
    let (code, _, body) = curl(&no_token);
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("CSRF"), "{body}");
    assert_eq!(
        status(&c.dir, "web/a"),
        "UP",
        "a change without the token applied"
    );

    let (code, _, body) = curl(&[
        "-u",
        "viewer:viewer-password",
        "-H",
        "Content-Type: application/json",
        "-d",
        "{\"state\":\"maint\"}",
        &action,
    ]);
    assert_eq!(code, 403, "{body}");
    assert_eq!(
        status(&c.dir, "web/a"),
        "UP",
        "a read-only user's change applied"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_script_with_basic_auth_drains_a_server_and_reads_it_back() {
    let c = start("console-basic").await;
    let action = format!("{}/api/v1/servers/web/a", c.base);
    let (code, _, body) = curl(&[
        "-u",
        "admin:admin-password",
        "-H",
        "Content-Type: application/json",
        "-d",
        "{\"state\":\"drain\"}",
        &action,
    ]);
    assert_eq!(code, 200, "{body}");
    assert_eq!(status(&c.dir, "web/a"), "DRAIN");
    let (code, _, body) = curl(&[
        "-u",
        "admin:admin-password",
        &format!("{}/api/v1/status", c.base),
    ]);
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("status is JSON");
    let server = &v["backends"][0]["servers"][0];
    assert_eq!(server["status"], "DRAIN", "{body}");
    let (code, _, body) = curl(&[
        "-u",
        "admin:admin-password",
        &format!("{}/api/v1/history?since=x", c.base),
    ]);
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("since"), "{body}");
    let (code, _, body) = curl(&["-u", "admin:wrong", &format!("{}/api/v1/status", c.base)]);
    assert_eq!(code, 401, "{body}");
}
