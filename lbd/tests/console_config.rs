//! The console's configuration API over real TLS against a real `lbd run`
//! whose `[console] appliance_socket` is init's real store and socket
//! (support::appliance): values with sources, preview, commit on a base,
//! history, diff, restore, export, import, logs, power, and the read-only
//! role refused on every change.

mod support;

use std::net::SocketAddr;

use init::appliance_socket::store_backend::Power;
use serde_json::{json, Value};
use support::appliance::{service, ApplianceStore, BAKED_HOSTNAME};
use support::*;
use tokio_rustls::TlsConnector;

const JSON: (&str, &str) = ("Content-Type", "application/json");

struct Setup {
    store: ApplianceStore,
    console: SocketAddr,
    tls: TlsConnector,
    /// The base config's frontend, over "web-a".
    web: SocketAddr,
    added: EchoBackend,
    _web_a: EchoBackend,
}

async fn setup(tag: &str) -> Setup {
    let web_a = EchoBackend::start("web-a").await;
    let added = EchoBackend::start("added").await;
    let dir = temp_dir(tag);
    let base = console_config(&dir, &[web_a.addr]);
    let mut store = ApplianceStore::start(&dir, &base.text);
    store.lbd().seen_or_wait(&["console listening"]);
    let cert = std::fs::read_to_string(dir.join("cert.pem")).expect("console cert");
    Setup {
        store,
        console: local(base.port),
        tls: tls_client(&[&cert]),
        web: local(base.frontend),
        added,
        _web_a: web_a,
    }
}

fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn parse(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

fn admin() -> String {
    basic("admin", "admin-password")
}

fn viewer() -> String {
    basic("viewer", "viewer-password")
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

    /// A GET with Basic auth that must answer 200 with JSON.
    async fn read(&self, path: &str, auth: &str) -> Value {
        let (code, _, body) = self.get(path, &[("Authorization", auth)]).await;
        assert_eq!(code, 200, "{path}: {body}");
        parse(&body)
    }

    /// A JSON POST with Basic auth: (status, body).
    async fn change(&self, path: &str, auth: &str, body: &Value) -> (u16, Value) {
        let (code, _, text) = self
            .post(path, &[("Authorization", auth), JSON], &body.to_string())
            .await;
        (code, parse(&text))
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

    async fn revision(&self) -> u64 {
        self.read("/api/v1/config", &admin()).await["revision"]
            .as_u64()
            .expect("revision")
    }
}

fn value<'a>(config: &'a Value, key: &str) -> &'a Value {
    config["values"]
        .as_array()
        .expect("values")
        .iter()
        .find(|v| v["key"] == key)
        .unwrap_or_else(|| panic!("no {key} in {config}"))
}

/// Connects until lbd has closed `addr`'s listener (lbd logs the close
/// just before it drops the socket).
async fn refused(addr: SocketAddr) -> bool {
    let deadline = std::time::Instant::now() + PATIENCE;
    while std::time::Instant::now() < deadline {
        if tokio::net::TcpStream::connect(addr).await.is_err() {
            return true;
        }
        tokio::task::yield_now().await;
    }
    false
}

/// Input: GET /api/v1/config; a preview of a new hostname; a commit of it
/// on revision 0; the same commit on revision 0 again; a services layer
/// binding a port the test holds.
/// Output: hostname with the baked value and source appliance.toml; the
/// preview's diff from it to the new one with the store unchanged; the
/// commit is revision 1 with the source now appliance; the stale one is
/// 409; lbd's refusal is 400 with its error, rolled back in the history.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_preview_commit_stale_base_and_a_refusal() {
    let s = setup("console-config-values").await;
    let config = s.read("/api/v1/config", &admin()).await;
    assert_eq!(config["revision"], 0, "{config}");
    let hostname = value(&config, "hostname");
    assert_eq!(
        (&hostname["value"], &hostname["source"]),
        (&json!(BAKED_HOSTNAME), &json!("appliance.toml")),
        "{hostname}"
    );
    let change = json!({"set": {"hostname": "lb-new"}});
    let (code, preview) = s.change("/api/v1/config/preview", &admin(), &change).await;
    assert_eq!(code, 200, "{preview}");
    assert_eq!(
        preview["diff"],
        json!([{"key": "hostname", "before": BAKED_HOSTNAME, "after": "lb-new"}]),
        "{preview}"
    );
    assert_eq!(s.revision().await, 0, "a preview stores nothing");
    let commit = json!({"base": 0, "set": {"hostname": "lb-new"}});
    let (code, done) = s.change("/api/v1/config", &admin(), &commit).await;
    assert_eq!(code, 200, "{done}");
    assert_eq!(done["revision"]["revision"], 1, "{done}");
    let config = s.read("/api/v1/config", &admin()).await;
    assert_eq!(value(&config, "hostname")["source"], "appliance");
    let stale = json!({"base": 0, "set": {"hostname": "lb-other"}});
    let (code, body) = s.change("/api/v1/config", &admin(), &stale).await;
    assert_eq!(code, 409, "{body}");
    assert!(body["fix"].is_string(), "{body}");

    let held = std::net::TcpListener::bind("127.0.0.1:0").expect("hold a port");
    let taken = held.local_addr().expect("addr");
    let bad = json!({"base": 1, "services": service("taken", taken, &[s.added.addr])});
    let (code, body) = s.change("/api/v1/config", &admin(), &bad).await;
    assert_eq!(code, 400, "{body}");
    let error = body["error"].as_str().unwrap_or_default();
    assert!(error.contains("lbd did not reload"), "{body}");
    assert!(error.contains(&taken.to_string()), "{body}");
    let history = s.read("/api/v1/config/history", &admin()).await;
    assert_eq!(
        history["revisions"][0]["changed_by"], "rollback",
        "{history}"
    );
    assert_eq!(which_server(s.web, None).await, "web-a");
    drop(held);
}

/// Input: an admin logged in commits a service, reads history, diff and
/// export, restores revision 0, imports the export back and reads the log.
/// Output: lbd serves the service; the history names "admin (web
/// console)"; the diff and the export carry the service; the restore
/// closes its listener; the import serves it again; the log has lbd's
/// reloads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_from_the_console_is_served_restored_and_imported() {
    let mut s = setup("console-config-service").await;
    let (cookie, token) = s.login("admin", "admin-password").await;
    let session = [
        ("Cookie", cookie.as_str()),
        JSON,
        ("X-CSRF-Token", token.as_str()),
    ];
    let port = local(free_port());
    let body = json!({"base": 0, "services": service("added", port, &[s.added.addr])});
    let (code, _, text) = s.post("/api/v1/config", &session, &body.to_string()).await;
    assert_eq!(code, 200, "{text}");
    assert_eq!(which_server(port, None).await, "added");

    let history = s.read("/api/v1/config/history", &admin()).await;
    let newest = &history["revisions"][0];
    assert_eq!(newest["revision"], 1, "{history}");
    assert_eq!(newest["changed_by"], "admin (web console)", "{history}");
    let diff = s.read("/api/v1/config/diff?from=0&to=1", &admin()).await;
    assert!(
        diff["diff"]
            .as_array()
            .expect("diff lines")
            .iter()
            .any(|l| l["key"]
                .as_str()
                .is_some_and(|k| k.starts_with("services.frontends"))),
        "{diff}"
    );
    let (code, head, export) = s
        .get("/api/v1/config/export", &[("Authorization", &admin())])
        .await;
    assert_eq!(code, 200, "{export}");
    assert!(
        header(&head, "content-disposition").is_some_and(|d| d.contains("attachment")),
        "{head}"
    );
    assert!(export.contains("frontends.added"), "{export}");
    assert!(export.contains(&port.to_string()), "{export}");

    let restore = json!({"revision": 0, "base": 1});
    let (code, _, text) = s
        .post("/api/v1/config/restore", &session, &restore.to_string())
        .await;
    assert_eq!(code, 200, "{text}");
    s.store
        .lbd()
        .wait_for_all(&["listener closed", &port.to_string()]);
    assert!(
        refused(port).await,
        "{port} still accepts after the restore"
    );

    let import = json!({"base": 2, "document": export});
    let (code, _, text) = s
        .post("/api/v1/config/import", &session, &import.to_string())
        .await;
    assert_eq!(code, 200, "{text}");
    assert_eq!(which_server(port, None).await, "added");
    assert_eq!(s.revision().await, 3);

    let logs = s
        .read("/api/v1/logs?lines=50&filter=reload", &admin())
        .await;
    let lines = logs["lines"].as_array().expect("lines");
    assert!(
        lines
            .iter()
            .any(|l| l.as_str().is_some_and(|l| l.contains("reload applied"))),
        "{logs}"
    );
    assert!(lines.len() <= 50, "{logs}");
}

/// Input: an admin asks for a reboot; the read-only user reads the
/// configuration, then tries every change (commit, preview, restore,
/// import, power).
/// Output: the reboot is 202 and reaches the appliance; the viewer reads
/// (200) but every change is 403, the store stays at revision 0 and no
/// other power request arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn power_for_the_admin_and_no_changes_for_a_read_only_user() {
    let s = setup("console-config-roles").await;
    let (code, body) = s
        .change("/api/v1/power", &admin(), &json!({"action": "reboot"}))
        .await;
    assert_eq!(code, 202, "{body}");
    assert_eq!(s.store.power_requests(), [Power::Reboot]);

    s.read("/api/v1/config", &viewer()).await;
    let services = service("added", local(free_port()), &[s.added.addr]);
    let changes = [
        ("/api/v1/config", json!({"base": 0, "services": services})),
        ("/api/v1/config/preview", json!({"set": {"hostname": "x"}})),
        ("/api/v1/config/restore", json!({"revision": 0, "base": 0})),
        (
            "/api/v1/config/import",
            json!({"base": 0, "document": "[settings]\nhostname = \"x\"\n"}),
        ),
        ("/api/v1/power", json!({"action": "poweroff"})),
    ];
    for (path, body) in changes {
        let (code, answer) = s.change(path, &viewer(), &body).await;
        assert_eq!(code, 403, "{path}: {answer}");
    }
    assert_eq!(s.revision().await, 0);
    assert_eq!(s.store.power_requests(), [Power::Reboot]);
}
