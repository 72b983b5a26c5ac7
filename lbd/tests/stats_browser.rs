//! The :8404 stats page in a real browser (headless Chromium over
//! WebDriver, see `browser`): it names the node, lists the servers with
//! their state, and refreshes itself. Screenshot:
//! `out/test/screenshots/stats-page.png`.

mod browser;
mod support;

use browser::Browser;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_page_names_the_node_and_shows_its_servers() {
    let a = EchoBackend::start("a").await;
    let port = free_port();
    let stats_port = free_port();
    let dir = temp_dir("stats-browser");
    let cfg = format!(
        "{}[frontends.f]\nbind = [\"127.0.0.1:{port}\"]\ndefault_backend = \"web\"\n\
         [backends.web.servers.a]\naddress = \"{}\"\n\
         [stats]\nbind = \"127.0.0.1:{stats_port}\"\nrefresh = \"2s\"\n",
        global(&dir),
        a.addr
    );
    let _lbd = Lbd::start(&dir, &cfg);
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .expect("hostname")
        .trim()
        .to_string();

    let browser = Browser::start("stats").await;
    browser
        .goto(&format!("http://127.0.0.1:{stats_port}/"))
        .await;
    let h1 = browser.text_of("h1").await;
    assert_eq!(h1, hostname, "the page's heading names the node");
    let title = browser.client.title().await.expect("title");
    assert_eq!(title, format!("{hostname}: lbd stats"));
    browser
        .wait_text("body", "the server row", |t| t.contains("web/a"))
        .await;
    let shot = browser.screenshot("stats-page").await;
    assert!(std::fs::metadata(&shot).expect("screenshot").len() > 1000);
    browser.close().await;
}
