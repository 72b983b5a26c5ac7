//! The web console and its API from outside, over real TLS against a real
//! `lbd run`: the plain-HTTP redirect, login, cookie flags, CSRF, roles,
//! server actions, idle expiry, logout, Basic auth, security headers, a
//! bad certificate at start and a new one at reload.

mod support;

use std::net::SocketAddr;
use std::path::PathBuf;

use serde_json::Value;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsConnector;

struct Setup {
    lbd: Lbd,
    _a: EchoBackend,
    _b: EchoBackend,
    console: SocketAddr,
    tls: TlsConnector,
    dir: PathBuf,
    cert_pem: String,
}

fn users() -> String {
    let viewer = lbd::password::hash_password("view-pw").expect("hash");
    let admin = lbd::password::hash_password("admin-pw").expect("hash");
    format!(
        "[stats.users.viewer]\ngroup = \"read-only\"\npassword_hash = \"{viewer}\"\n\
         [stats.users.ops]\ngroup = \"admin\"\npassword_hash = \"{admin}\"\n"
    )
}

/// lbd with one backend of two servers, the stats page and the console
/// (certificate files written into the test's directory).
async fn setup(tag: &str, session_idle: &str) -> Setup {
    let a = EchoBackend::start("a").await;
    let b = EchoBackend::start("b").await;
    let dir = temp_dir(tag);
    let (cert_pem, key_pem, _) = self_signed();
    std::fs::write(dir.join("console.crt"), &cert_pem).expect("cert");
    std::fs::write(dir.join("console.key"), &key_pem).expect("key");
    let console_port = free_port();
    let cfg = format!(
        "{}[frontends.f]\nbind = [\"127.0.0.1:{}\"]\ndefault_backend = \"web\"\n\
         [backends.web.servers.a]\naddress = \"{}\"\n\
         [backends.web.servers.b]\naddress = \"{}\"\n\
         [stats]\nbind = \"127.0.0.1:{}\"\n{}\
         [console]\nbind = \"127.0.0.1:{console_port}\"\ncert = \"{}\"\nkey = \"{}\"\n\
         session_idle = \"{session_idle}\"\nappliance_socket = \"{}\"\n",
        global(&dir),
        free_port(),
        a.addr,
        b.addr,
        free_port(),
        users(),
        dir.join("console.crt").display(),
        dir.join("console.key").display(),
        dir.join("no-appliance.sock").display(),
    );
    let mut lbd = Lbd::start(&dir, &cfg);
    lbd.seen_or_wait(&["console listening"]);
    Setup {
        lbd,
        _a: a,
        _b: b,
        console: SocketAddr::from(([127, 0, 0, 1], console_port)),
        tls: tls_client(&[&cert_pem]),
        dir,
        cert_pem,
    }
}

impl Setup {
    async fn get(&self, path: &str, headers: &[(&str, &str)]) -> (u16, String, String) {
        let (code, head, body, _) = https(&self.tls, self.console, "GET", path, headers, "").await;
        (code, head, body)
    }

    async fn post(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (u16, String, String) {
        let (code, head, body, _) =
            https(&self.tls, self.console, "POST", path, headers, body).await;
        (code, head, body)
    }

    /// Logs in; returns the `Cookie` header value and the CSRF token.
    async fn login(&self, user: &str, password: &str) -> (String, String) {
        let (code, head, _) = self
            .post("/login", &[], &format!("user={user}&password={password}"))
            .await;
        assert_eq!(code, 303, "{head}");
        let set = header(&head, "set-cookie").expect("a session cookie");
        let cookie = set.split(';').next().expect("name=value").to_string();
        let (code, _, page) = self.get("/", &[("Cookie", &cookie)]).await;
        assert_eq!(code, 200);
        let marker = "name=\"lbd-csrf\" content=\"";
        let start = page.find(marker).expect("csrf meta") + marker.len();
        let token = page[start..].split('"').next().expect("token").to_string();
        (cookie, token)
    }

    async fn status(&self, auth: &str) -> Value {
        let (code, _, body) = self.get("/api/v1/status", &[("Authorization", auth)]).await;
        assert_eq!(code, 200, "{body}");
        serde_json::from_str(&body).expect("status is JSON")
    }
}

fn server<'a>(status: &'a Value, backend: &str, name: &str) -> &'a Value {
    status["backends"]
        .as_array()
        .expect("backends")
        .iter()
        .find(|b| b["backend"] == backend)
        .and_then(|b| b["servers"].as_array())
        .and_then(|s| s.iter().find(|s| s["server"] == name))
        .expect("server in status")
}

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// Raw plain-text HTTP to the console's port; returns the response head.
async fn plain(to: SocketAddr, host: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(to).await.expect("connect");
    let req = format!("GET /x HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.expect("send");
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(PATIENCE, s.read_to_end(&mut raw)).await;
    String::from_utf8_lossy(&raw).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_is_redirected_without_reflecting_a_hostile_host() {
    let s = setup("console-redirect", "30m").await;
    let port = s.console.port();
    let head = plain(s.console, "lb1.example.com:5480").await;
    assert!(head.starts_with("HTTP/1.1 301"), "{head}");
    assert_eq!(
        header(&head, "location").as_deref(),
        Some(format!("https://lb1.example.com:{port}/").as_str())
    );
    for hostile in ["a@evil", "evil.com/x", "evil.com:1:2"] {
        let head = plain(s.console, hostile).await;
        assert!(head.starts_with("HTTP/1.1 301"), "{head}");
        let location = header(&head, "location").expect("location");
        assert_eq!(location, format!("https://127.0.0.1:{port}/"), "{hostile}");
        assert!(!head.contains("evil"), "{head}");
    }
    // The same port still speaks TLS.
    let (code, _, _) = s.get("/login", &[]).await;
    assert_eq!(code, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_sets_a_strict_cookie_and_a_wrong_password_is_refused() {
    let mut s = setup("console-login", "30m").await;
    let (code, head, page) = s.get("/login", &[]).await;
    assert_eq!(code, 200);
    for id in ["login-user", "login-password", "login-submit"] {
        assert!(page.contains(&format!("id=\"{id}\"")), "{id}");
    }
    assert!(!page.contains("login-error"));
    assert!(header(&head, "set-cookie").is_none());

    // Not logged in: the dashboard sends to the login form, the API says 401.
    let (code, head, _) = s.get("/", &[]).await;
    assert_eq!(
        (code, header(&head, "location").as_deref()),
        (303, Some("/login"))
    );
    let (code, head, body) = s.get("/api/v1/status", &[]).await;
    assert_eq!(code, 401);
    assert!(json(&body)["fix"].is_string(), "{body}");
    assert!(
        header(&head, "www-authenticate").is_none(),
        "never a Basic prompt"
    );

    for (user, pw) in [("ops", "wrong"), ("nobody", "admin-pw")] {
        let (code, head, page) = s
            .post("/login", &[], &format!("user={user}&password={pw}"))
            .await;
        assert_eq!(code, 401, "{head}");
        assert!(page.contains("id=\"login-error\""), "{page}");
        assert!(header(&head, "set-cookie").is_none());
    }
    s.lbd.seen_or_wait(&["console login failed", "nobody"]);

    let (code, head, _) = s.post("/login", &[], "user=ops&password=admin-pw").await;
    assert_eq!(code, 303, "{head}");
    assert_eq!(header(&head, "location").as_deref(), Some("/"));
    let cookie = header(&head, "set-cookie").expect("cookie");
    for flag in [
        "lbd_session=",
        "HttpOnly",
        "Secure",
        "SameSite=Strict",
        "Path=/",
    ] {
        assert!(cookie.contains(flag), "{flag} in {cookie}");
    }
    let id = cookie.split(';').next().expect("pair");
    assert_eq!(id.len(), "lbd_session=".len() + 64, "{id}");
    let (code, _, page) = s.get("/", &[("Cookie", id)]).await;
    assert_eq!(code, 200);
    assert!(page.contains("ops (admin)"), "{page}");
    // A login form posted from another site is refused.
    let (code, _, _) = s
        .post(
            "/login",
            &[("Origin", "https://evil.example")],
            "user=ops&password=admin-pw",
        )
        .await;
    assert_eq!(code, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_has_the_security_headers() {
    let s = setup("console-headers", "30m").await;
    let (cookie, _) = s.login("ops", "admin-pw").await;
    let answers = [
        s.get("/login", &[]).await,
        s.get("/", &[("Cookie", &cookie)]).await,
        s.get("/api/v1/status", &[("Cookie", &cookie)]).await,
        s.get("/console.js", &[]).await,
        s.get("/api/v1/nothing", &[("Cookie", &cookie)]).await,
        s.post("/api/v1/servers/web/a", &[("Cookie", &cookie)], "{}")
            .await,
    ];
    for (code, head, _) in &answers {
        let csp = header(head, "content-security-policy").expect("CSP");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(csp.contains("script-src 'self'"), "{csp}");
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        for (name, value) in [
            ("x-frame-options", "DENY"),
            ("x-content-type-options", "nosniff"),
            ("referrer-policy", "same-origin"),
            ("cache-control", "no-store"),
        ] {
            assert_eq!(header(head, name).as_deref(), Some(value), "{code}: {head}");
        }
        assert!(
            header(head, "strict-transport-security").is_some_and(|v| v.starts_with("max-age=")),
            "{head}"
        );
    }
    let (_, head, js) = &answers[3];
    assert!(header(head, "content-type").is_some_and(|t| t.starts_with("text/javascript")));
    assert!(js.contains("/api/v1/status"));
    let (code, _, doc) = s.get("/api/v1/openapi.json", &[]).await;
    assert_eq!(code, 200);
    let doc = json(&doc);
    assert_eq!(doc["openapi"], "3.0.3");
    assert!(doc["paths"]["/servers/{backend}/{server}"]["post"].is_object());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_need_the_csrf_token_and_the_admin_role() {
    let s = setup("console-csrf", "30m").await;
    let basic_ops = basic("ops", "admin-pw");
    let (cookie, token) = s.login("ops", "admin-pw").await;
    let json_type = ("Content-Type", "application/json");
    let drain = r#"{"state":"drain"}"#;

    // No token, a wrong one, or another session's: refused, nothing changed.
    let (code, _, body) = s
        .post(
            "/api/v1/servers/web/a",
            &[("Cookie", &cookie), json_type],
            drain,
        )
        .await;
    assert_eq!(code, 403, "{body}");
    assert!(json(&body)["error"]
        .as_str()
        .is_some_and(|e| e.contains("CSRF")));
    let (code, _, _) = s
        .post(
            "/api/v1/servers/web/a",
            &[("Cookie", &cookie), json_type, ("X-CSRF-Token", "00ff")],
            drain,
        )
        .await;
    assert_eq!(code, 403);
    let (viewer_cookie, viewer_token) = s.login("viewer", "view-pw").await;
    let (code, _, _) = s
        .post(
            "/api/v1/servers/web/a",
            &[
                ("Cookie", &cookie),
                json_type,
                ("X-CSRF-Token", &viewer_token),
            ],
            drain,
        )
        .await;
    assert_eq!(code, 403);
    // PUT and DELETE are changes too.
    let (code, _, _, _) = https(
        &s.tls,
        s.console,
        "DELETE",
        "/api/v1/servers/web/a",
        &[("Cookie", &cookie)],
        "",
    )
    .await;
    assert_eq!(code, 403);
    assert_eq!(
        server(&s.status(&basic_ops).await, "web", "a")["status"],
        "UP"
    );

    // A read-only user with its own token: refused with a message.
    let (code, _, body) = s
        .post(
            "/api/v1/servers/web/a",
            &[
                ("Cookie", &viewer_cookie),
                json_type,
                ("X-CSRF-Token", &viewer_token),
            ],
            drain,
        )
        .await;
    assert_eq!(code, 403, "{body}");
    assert!(
        json(&body)["error"]
            .as_str()
            .is_some_and(|e| e.contains("read-only")),
        "{body}"
    );
    let (code, _, page) = s.get("/", &[("Cookie", &viewer_cookie)]).await;
    assert_eq!(code, 200);
    assert!(page.contains("viewer (read-only)"));
    assert!(page.contains("name=\"lbd-role\" content=\"read-only\""));

    // The admin with its token: applied, and the status shows it.
    let with_token = [
        ("Cookie", cookie.as_str()),
        json_type,
        ("X-CSRF-Token", token.as_str()),
    ];
    let (code, _, body) = s.post("/api/v1/servers/web/a", &with_token, drain).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(json(&body)["servers"][0]["status"], "DRAIN");
    let st = s.status(&basic_ops).await;
    assert_eq!(server(&st, "web", "a")["status"], "DRAIN");
    assert_eq!(server(&st, "web", "a")["admin"], "drain");
    assert_eq!(
        status(&s.dir, "web/a"),
        "DRAIN",
        "the control socket agrees"
    );

    // Several at once; all checked before any is applied.
    let batch = r#"{"changes":[{"server":"web/a","state":"ready"},{"server":"web/b","state":"maint","weight":3}]}"#;
    let (code, _, body) = s.post("/api/v1/servers", &with_token, batch).await;
    assert_eq!(code, 200, "{body}");
    let st = s.status(&basic_ops).await;
    assert_eq!(server(&st, "web", "a")["status"], "UP");
    assert_eq!(server(&st, "web", "b")["status"], "MAINT");
    assert_eq!(server(&st, "web", "b")["weight"], 3);
    let half_bad =
        r#"{"changes":[{"server":"web/a","state":"maint"},{"server":"web/zz","state":"maint"}]}"#;
    let (code, _, body) = s.post("/api/v1/servers", &with_token, half_bad).await;
    assert_eq!(code, 404, "{body}");
    assert_eq!(
        server(&s.status(&basic_ops).await, "web", "a")["status"],
        "UP"
    );

    // Bad input: the error and the fix.
    for (path, body, want) in [
        ("/api/v1/servers/web/a", r#"{"state":"sleep"}"#, 400),
        ("/api/v1/servers/web/a", r#"{"weight":999}"#, 400),
        ("/api/v1/servers/web/a", "{}", 400),
        ("/api/v1/servers/web/a", "not json", 400),
        ("/api/v1/servers/web/nope", drain, 404),
    ] {
        let (code, _, answer) = s.post(path, &with_token, body).await;
        assert_eq!(code, want, "{body}: {answer}");
        let v = json(&answer);
        assert!(v["error"].is_string() && v["fix"].is_string(), "{answer}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_names_the_node_and_each_server() {
    let s = setup("console-status", "30m").await;
    let st = s.status(&basic("viewer", "view-pw")).await;
    assert!(st["node"]["hostname"]
        .as_str()
        .is_some_and(|h| !h.is_empty()));
    assert_eq!(st["node"]["vrrp"], serde_json::json!([]));
    assert_eq!(st["frontends"][0]["frontend"], "f");
    assert_eq!(st["frontends"][0]["backends"], serde_json::json!(["web"]));
    let a = server(&st, "web", "a");
    for key in [
        "status",
        "admin",
        "weight",
        "active",
        "total",
        "last_check",
        "for_s",
    ] {
        assert!(!a[key].is_null(), "{key} in {a}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_works_for_scripts_without_csrf_but_only_as_json() {
    let s = setup("console-basic", "30m").await;
    let ops = basic("ops", "admin-pw");
    let (code, head, _) = s
        .get("/api/v1/status", &[("Authorization", &basic("ops", "bad"))])
        .await;
    assert_eq!(code, 401);
    assert!(header(&head, "www-authenticate").is_none());
    let json_type = ("Content-Type", "application/json");
    let (code, _, body) = s
        .post(
            "/api/v1/servers/web/b",
            &[("Authorization", &ops), json_type],
            r#"{"state":"maint"}"#,
        )
        .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(server(&s.status(&ops).await, "web", "b")["status"], "MAINT");
    // A form (what another site could make a browser send) is refused.
    let (code, _, body) = s
        .post(
            "/api/v1/servers/web/b",
            &[("Authorization", &ops)],
            r#"{"state":"ready"}"#,
        )
        .await;
    assert_eq!(code, 415, "{body}");
    let (code, _, body) = s
        .post(
            "/api/v1/servers/web/b",
            &[("Authorization", &basic("viewer", "view-pw")), json_type],
            r#"{"state":"ready"}"#,
        )
        .await;
    assert_eq!(code, 403, "{body}");
    assert_eq!(server(&s.status(&ops).await, "web", "b")["status"], "MAINT");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_ends_the_session() {
    let s = setup("console-logout", "30m").await;
    let (cookie, token) = s.login("ops", "admin-pw").await;
    // Logout is a change: it needs the token.
    let (code, _, _) = s.post("/logout", &[("Cookie", &cookie)], "").await;
    assert_eq!(code, 403);
    let (code, head, _) = s
        .post("/logout", &[("Cookie", &cookie)], &format!("csrf={token}"))
        .await;
    assert_eq!(code, 303, "{head}");
    assert_eq!(header(&head, "location").as_deref(), Some("/login"));
    assert!(header(&head, "set-cookie").is_some_and(|c| c.contains("Max-Age=0")));
    let (code, _, _) = s.get("/api/v1/status", &[("Cookie", &cookie)]).await;
    assert_eq!(code, 401);
    let (code, head, _) = s.get("/", &[("Cookie", &cookie)]).await;
    assert_eq!(
        (code, header(&head, "location").as_deref()),
        (303, Some("/login"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_session_expires() {
    let s = setup("console-idle", "1s").await;
    let (cookie, _) = s.login("ops", "admin-pw").await;
    let (code, _, _) = s.get("/api/v1/status", &[("Cookie", &cookie)]).await;
    assert_eq!(code, 200);
    // Longer than session_idle without a request.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let (code, _, _) = s.get("/api/v1/status", &[("Cookie", &cookie)]).await;
    assert_eq!(code, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_takes_a_new_certificate_and_a_bad_one_is_refused() {
    let mut s = setup("console-reload", "30m").await;
    let (_, _, _, before) = https(&s.tls, s.console, "GET", "/login", &[], "").await;
    let (new_cert, new_key, _) = self_signed();
    std::fs::write(s.dir.join("console.crt"), &new_cert).expect("cert");
    std::fs::write(s.dir.join("console.key"), &new_key).expect("key");
    let (ok, _, err) = ctl(&s.dir, "reload");
    assert!(ok, "{err}");
    s.lbd.seen_or_wait(&["console certificate reloaded"]);
    let both = tls_client(&[&s.cert_pem, &new_cert]);
    let (code, _, _, after) = https(&both, s.console, "GET", "/login", &[], "").await;
    assert_eq!(code, 200);
    assert_ne!(before, after, "new connections get the new certificate");

    std::fs::write(s.dir.join("console.key"), "not a key").expect("key");
    let (ok, out, err) = ctl(&s.dir, "reload");
    assert!(
        !ok || out.contains("console.key") || err.contains("console.key"),
        "{out} {err}"
    );
    s.lbd
        .seen_or_wait(&["reload rejected", "console.cert / console.key"]);
    let (code, _, _, still) = https(&both, s.console, "GET", "/login", &[], "").await;
    assert_eq!((code, still), (200, after), "the running certificate stays");
}

#[test]
fn a_missing_certificate_stops_lbd_with_the_fix() {
    let dir = temp_dir("console-badcert");
    let cfg = format!(
        "{}[console]\nbind = \"127.0.0.1:{}\"\ncert = \"{}\"\nkey = \"{}\"\n",
        global(&dir),
        free_port(),
        dir.join("missing.crt").display(),
        dir.join("missing.key").display(),
    );
    std::fs::write(dir.join("lbd.toml"), cfg).expect("config");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lbd"))
        .args(["run", "-c"])
        .arg(dir.join("lbd.toml"))
        .output()
        .expect("run lbd");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("console.cert"), "{err}");
    assert!(err.contains("missing.crt"), "{err}");
    assert!(err.contains("fix:"), "{err}");
}

/// Input: the configuration calls on a host without init's appliance
/// socket, from an admin (Basic, JSON) and a read-only user.
/// Output: 501 with an error saying the configuration is in lbd's files
/// for the admin; the read-only user's change is 403 before any of it;
/// a bad body is 400 naming the field; the status still answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_appliance_store_the_configuration_calls_say_where_it_is() {
    let s = setup("console-nostore", "30m").await;
    let admin = basic("ops", "admin-pw");
    let json_type = ("Content-Type", "application/json");
    for path in [
        "/api/v1/config",
        "/api/v1/config/history",
        "/api/v1/config/export",
        "/api/v1/logs?lines=5",
    ] {
        let (code, _, body) = s.get(path, &[("Authorization", &admin)]).await;
        assert_eq!(code, 501, "{path}: {body}");
        let v = json(&body);
        assert!(
            v["error"]
                .as_str()
                .is_some_and(|e| e.contains("lbd ctl reload")),
            "{path}: {body}"
        );
    }
    let (code, _, body) = s
        .post(
            "/api/v1/config",
            &[("Authorization", &admin), json_type],
            r#"{"base": 1, "set": {"network.dns": "10.0.0.2"}}"#,
        )
        .await;
    assert_eq!(code, 501, "{body}");
    let (code, _, body) = s
        .post(
            "/api/v1/config",
            &[("Authorization", &admin), json_type],
            r#"{"bsae": 1}"#,
        )
        .await;
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("bsae"), "{body}");
    let (code, _, body) = s
        .get("/api/v1/logs?level=debug", &[("Authorization", &admin)])
        .await;
    assert_eq!(code, 400, "{body}");
    let viewer = basic("viewer", "view-pw");
    let (code, _, body) = s
        .post(
            "/api/v1/power",
            &[("Authorization", &viewer), json_type],
            r#"{"action": "reboot"}"#,
        )
        .await;
    assert_eq!(code, 403, "{body}");
    assert_eq!(s.status(&admin).await["backends"][0]["backend"], "web");
}

/// Input: a server whose health check fails (nothing listens on its
/// port); an admin turns its checks off, then on again, with Basic.
/// Output: DOWN with a check history of failures and their reasons; with
/// checks off it counts as UP (HAProxy's `disable health`) and says
/// "checks off"; on again it goes DOWN; a server without a check refuses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_checks_turn_off_and_on_and_keep_their_history() {
    let dir = temp_dir("console-checks");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
    let dead = closed.local_addr().expect("addr");
    drop(closed);
    let cfg = console_config(&dir, &[dead]);
    let text = format!(
        "{}[backends.web.check]\ntype = \"tcp\"\ninter = \"200ms\"\nrise = 1\nfall = 1\n\
         [frontends.plain]\nbind = [\"127.0.0.1:{}\"]\ndefault_backend = \"plain\"\n\
         [backends.plain.servers.p]\naddress = \"{dead}\"\n",
        cfg.text,
        free_port()
    );
    let mut lbd = Lbd::start(&dir, &text);
    lbd.seen_or_wait(&["console listening"]);
    lbd.wait_for("server is DOWN");
    let cert = std::fs::read_to_string(dir.join("cert.pem")).expect("cert");
    let tls = tls_client(&[&cert]);
    let to = SocketAddr::from(([127, 0, 0, 1], cfg.port));
    let admin = basic("admin", "admin-password");
    let server_a = |status: &str| -> Value {
        let v = json(status);
        server(&v, "web", "a").clone()
    };
    let (_, _, body, _) = https(
        &tls,
        to,
        "GET",
        "/api/v1/status",
        &[("Authorization", &admin)],
        "",
    )
    .await;
    let a = server_a(&body);
    assert_eq!(a["status"], "DOWN", "{body}");
    assert_eq!(a["checks"], "on");
    let log = a["check_log"].as_array().expect("check history");
    assert!(
        !log.is_empty() && log.iter().all(|r| r["ok"] == false),
        "{body}"
    );
    assert!(
        log[0]["reason"].as_str().is_some_and(|r| !r.is_empty()),
        "{body}"
    );
    assert!(
        log[0]["at"].as_u64().is_some_and(|t| t > 1_700_000_000),
        "{body}"
    );

    let change = |on: bool| format!(r#"{{"check": {on}}}"#);
    let json_type = ("Content-Type", "application/json");
    let post = |path: &'static str, on: bool| {
        let (tls, admin) = (&tls, &admin);
        async move {
            let (code, _, body, _) = https(
                tls,
                to,
                "POST",
                path,
                &[("Authorization", admin), json_type],
                &change(on),
            )
            .await;
            (code, body)
        }
    };
    let until = |wanted: fn(&Value) -> bool| {
        let (tls, admin) = (&tls, &admin);
        async move {
            let mut seen = String::new();
            for _ in 0..50 {
                let (_, _, body, _) = https(
                    tls,
                    to,
                    "GET",
                    "/api/v1/status",
                    &[("Authorization", admin)],
                    "",
                )
                .await;
                if wanted(&server_a(&body)) {
                    return (true, body);
                }
                seen = body;
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            (false, seen)
        }
    };
    let (code, body) = post("/api/v1/servers/web/a", false).await;
    assert_eq!(code, 200, "{body}");
    let (up, seen) = until(|a| {
        a["status"] == "UP" && a["checks"] == "off" && a["last_check"] == "not checked: checks off"
    })
    .await;
    assert!(up, "checks off: {seen}");

    let (code, body) = post("/api/v1/servers/web/a", true).await;
    assert_eq!(code, 200, "{body}");
    let (down, seen) = until(|a| a["status"] == "DOWN").await;
    assert!(down, "checks on again: {seen}");

    let (code, body) = post("/api/v1/servers/plain/p", false).await;
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("no health check"), "{body}");
}
