//! The web console (:5480) in a real browser (headless Chromium over
//! WebDriver, see `browser`), as an admin uses it: plain HTTP is sent to
//! HTTPS, a wrong password is refused on the form, the dashboard names the
//! node and shows the servers live, an admin puts a server in maintenance
//! with a click and sees it change without reloading, logout ends the
//! session, and a read-only user gets no buttons. Screenshots in
//! `out/test/screenshots/console-*.png`.

mod browser;
mod support;

use browser::Browser;
use support::*;

struct Console {
    _lbd: Lbd,
    _a: EchoBackend,
    _b: EchoBackend,
    port: u16,
    frontend: u16,
    dir: std::path::PathBuf,
}

async fn start(tag: &str) -> Console {
    let a = EchoBackend::start("a").await;
    let b = EchoBackend::start("b").await;
    let dir = temp_dir(tag);
    let cfg = console_config(&dir, &[a.addr, b.addr]);
    let (port, frontend) = (cfg.port, cfg.frontend);
    let lbd = Lbd::start(&dir, &cfg.text);
    Console {
        _lbd: lbd,
        _a: a,
        _b: b,
        port,
        frontend,
        dir,
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .expect("hostname")
        .trim()
        .to_string()
}

async fn log_in(browser: &Browser, user: &str, password: &str) {
    browser.type_into("#login-user", user).await;
    browser.type_into("#login-password", password).await;
    browser.click("#login-submit").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_logs_in_sees_the_node_and_puts_a_server_in_maintenance() {
    let c = start("console-admin").await;
    let browser = Browser::start("console-admin").await;

    // Typed without https://, as people do: the console answers with HTTPS.
    browser.goto(&format!("http://127.0.0.1:{}/", c.port)).await;
    browser.find("#login-user").await;
    let url = browser.client.current_url().await.expect("url");
    assert_eq!(url.scheme(), "https", "{url}");
    assert_eq!(url.path(), "/login", "{url}");
    browser.screenshot("console-login").await;

    log_in(&browser, "admin", "not-the-password").await;
    let error = browser
        .wait_text("#login-error", "the login error", |t| !t.is_empty())
        .await;
    // The browser's own form post must pass the console's origin check
    // (it once said "sent from another site" to every real browser).
    assert_eq!(error, "Wrong user name or password.");
    browser.screenshot("console-login-refused").await;

    log_in(&browser, "admin", "admin-password").await;
    let node = browser
        .wait_text("#node-name", "the node name", |t| !t.is_empty())
        .await;
    assert_eq!(node, hostname());
    assert_eq!(browser.text_of("#vrrp-state").await, "no VRRP");
    assert!(browser.text_of("#user").await.contains("admin"));
    let a_state = "tr[data-server=\"web/a\"] .state";
    browser
        .wait_text(a_state, "web/a shown UP", |t| t.contains("UP"))
        .await;
    browser.screenshot("console-dashboard").await;

    browser
        .click("tr[data-server=\"web/a\"] button[data-action=\"maint\"]")
        .await;
    browser
        .wait_text(a_state, "web/a shown MAINT without a reload", |t| {
            t.contains("MAINT")
        })
        .await;
    assert!(
        status(&c.dir, "web/a").contains("MAINT"),
        "lbd itself has web/a in maintenance"
    );
    let b_state = browser.text_of("tr[data-server=\"web/b\"] .state").await;
    assert!(b_state.contains("UP"), "web/b untouched: {b_state}");
    browser.screenshot("console-server-in-maintenance").await;

    // The charts: lbd samples every 10 s, so the first point of the
    // backend's line comes within two steps of the start.
    for _ in 0..5 {
        let _ = tokio::net::TcpStream::connect(("127.0.0.1", c.frontend)).await;
    }
    let chart = "section.chart-card[data-backend=\"web\"] svg.chart path.series";
    let start = std::time::Instant::now();
    while !browser.has(chart).await {
        if start.elapsed() > std::time::Duration::from_secs(40) {
            browser.screenshot("timeout-console-charts").await;
            let charts = browser.text_of("#charts").await;
            panic!("no chart line for backend web; the charts show {charts:?}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    assert!(
        browser
            .has("section.chart-card[data-backend=\"web\"] svg.timeline rect.band.maint")
            .await
            || browser
                .has("section.chart-card[data-backend=\"web\"] svg.timeline rect.band.up")
                .await
    );
    let _ = browser
        .client
        .execute("document.getElementById('charts').scrollIntoView()", vec![])
        .await;
    browser.screenshot("console-charts").await;

    browser.click("#logout").await;
    browser.find("#login-user").await;
    // The old session is gone: the dashboard asks for a login again.
    browser
        .goto(&format!("https://127.0.0.1:{}/", c.port))
        .await;
    browser.find("#login-user").await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_user_sees_the_servers_without_buttons() {
    let c = start("console-viewer").await;
    let browser = Browser::start("console-viewer").await;
    browser
        .goto(&format!("https://127.0.0.1:{}/", c.port))
        .await;
    log_in(&browser, "viewer", "viewer-password").await;
    browser
        .wait_text("tr[data-server=\"web/b\"] .state", "web/b shown UP", |t| {
            t.contains("UP")
        })
        .await;
    assert!(browser.text_of("#user").await.contains("read-only"));
    assert!(
        !browser.has("button[data-action]").await,
        "a read-only user is offered server actions"
    );
    browser.screenshot("console-read-only").await;
    browser.close().await;
}
