//! The appliance store on a plain Linux host (support::appliance): init's
//! real store and appliance socket in front of a real lbd, driven with
//! `lbd ctl config` and raw requests as the appliance's editors drive it.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use appliance_api::client::call;
use appliance_api::{Change, Payload, Reply, Request};
use support::appliance::{service, ApplianceStore, BAKED_HOSTNAME};
use support::*;

const TIMEOUT: Duration = Duration::from_secs(30);

struct Setup {
    store: ApplianceStore,
    /// The base config's own frontend `web`, over the backend "web-a".
    web: SocketAddr,
    /// A backend only the store's services layer uses.
    added: EchoBackend,
    _web_a: EchoBackend,
}

async fn setup(tag: &str) -> Setup {
    let web_a = EchoBackend::start("web-a").await;
    let added = EchoBackend::start("added").await;
    let dir = temp_dir(tag);
    let base = console_config(&dir, &[web_a.addr]);
    let store = ApplianceStore::start(&dir, &base.text);
    Setup {
        store,
        web: local(base.frontend),
        added,
        _web_a: web_a,
    }
}

fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A commit of `services` on `base` through the socket, as any editor.
fn commit(store: &ApplianceStore, base: u64, services: toml::Table) -> Reply {
    let request = Request::Commit {
        base,
        change: Change {
            services: Some(services),
            ..Change::default()
        },
        summary: None,
        changed_by: None,
    };
    call(&store.socket(), &request, TIMEOUT).expect("the appliance socket answers")
}

fn committed_revision(reply: Reply) -> u64 {
    match reply {
        Reply::Ok {
            result: Payload::Committed { revision, .. },
        } => revision.revision,
        other => panic!("not committed: {other:?}"),
    }
}

fn history(store: &ApplianceStore) -> Vec<appliance_api::RevisionMeta> {
    match call(&store.socket(), &Request::History { limit: None }, TIMEOUT) {
        Ok(Reply::Ok {
            result: Payload::History(h),
        }) => h,
        other => panic!("no history: {other:?}"),
    }
}

/// Connects until lbd has closed `addr`'s listener: lbd logs the close
/// just before it drops the socket.
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

/// Input: `lbd ctl config get`, then `set hostname=lb-store`.
/// Output: hostname shows the baked layer's value with source
/// appliance.toml; after the commit the store's value with source
/// appliance, revision 1 in the history by "api", lbd untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_are_shown_with_their_source_and_committed() {
    let s = setup("appliance-get").await;
    let (ok, out, err) = s.store.config(&["get"]);
    assert!(ok, "{err}");
    assert!(out.starts_with("revision 0\n"), "{out}");
    assert!(
        out.contains(&format!("hostname = {BAKED_HOSTNAME} (appliance.toml)")),
        "{out}"
    );
    let (ok, out, err) = s.store.config(&["set", "hostname=lb-store"]);
    assert!(ok, "{err}");
    assert!(out.starts_with("revision 1: "), "{out}");
    let (ok, out, err) = s.store.config(&["get", "hostname"]);
    assert!(ok, "{err}");
    assert_eq!(out, "hostname = lb-store (appliance)\n");
    let h = history(&s.store);
    assert_eq!((h[0].revision, h[0].changed_by.as_str()), (1, "api"));
    assert_eq!(which_server(s.web, None).await, "web-a");
}

/// Input: a commit whose services layer adds a frontend on a free port
/// over the echo backend "added".
/// Output: committed as revision 1, written to lbd's services file and
/// reloaded: the new port answers "added", the base frontend still
/// "web-a"; `lbd ctl config history` lists revision 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_committed_service_is_served_by_lbd() {
    let mut s = setup("appliance-commit").await;
    let port = local(free_port());
    let reply = commit(&s.store, 0, service("added", port, &[s.added.addr]));
    assert_eq!(committed_revision(reply), 1);
    s.store.lbd().seen_or_wait(&["reload applied"]);
    assert!(s.store.services_file().contains("[frontends.added]"));
    assert_eq!(which_server(port, None).await, "added");
    assert_eq!(which_server(s.web, None).await, "web-a");
    let (ok, out, err) = s.store.config(&["history"]);
    assert!(ok, "{err}");
    let first = out.lines().next().unwrap_or_default();
    assert!(first.trim_start().starts_with("1 "), "{out}");
    assert!(first.contains("frontend added added"), "{out}");
}

/// Input: a working service (revision 1), then a layer that adds a
/// frontend on a port the test holds a listener on.
/// Output: the store checks it (lbd's loader accepts it), lbd's reload
/// cannot bind: the commit is refused with lbd's error, revision 2 is
/// rolled back by revision 3 (changed by "rollback"), lbd's services
/// file is revision 1's again and the first service still answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_lbd_cannot_bind_is_rolled_back() {
    let s = setup("appliance-rollback").await;
    let good = service("added", local(free_port()), &[s.added.addr]);
    assert_eq!(committed_revision(commit(&s.store, 0, good.clone())), 1);
    let held = std::net::TcpListener::bind("127.0.0.1:0").expect("hold a port");
    let taken = held.local_addr().expect("addr");
    let bad = support::appliance::both(&good, &service("taken", taken, &[s.added.addr]));
    let reply = commit(&s.store, 1, bad);
    let Reply::Refused { error, .. } = reply else {
        panic!("a layer lbd cannot bind was committed: {reply:?}")
    };
    assert!(error.contains("revision 2 could not be applied"), "{error}");
    assert!(error.contains("lbd did not reload"), "{error}");
    assert!(error.contains(&taken.to_string()), "{error}");
    assert!(error.contains("as revision 3"), "{error}");
    let h = history(&s.store);
    assert_eq!((h[0].revision, h[0].changed_by.as_str()), (3, "rollback"));
    assert!(
        h[0].summary.contains("rolled back revision 2"),
        "{:?}",
        h[0]
    );
    assert!(!s.store.services_file().contains("taken"));
    let added = good["frontends"]["added"]["bind"][0]
        .as_str()
        .and_then(|a| a.parse().ok())
        .expect("the first service's address");
    assert_eq!(which_server(added, None).await, "added");
    drop(held);
}

/// Input: a service committed (revision 1), then `lbd ctl config restore 0`.
/// Output: revision 2 is the empty store again: lbd closes the service's
/// listener (connect refused) and keeps its base frontend.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restoring_an_earlier_revision_removes_the_service() {
    let mut s = setup("appliance-restore").await;
    let port = local(free_port());
    let reply = commit(&s.store, 0, service("added", port, &[s.added.addr]));
    assert_eq!(committed_revision(reply), 1);
    assert_eq!(which_server(port, None).await, "added");
    let (ok, out, err) = s.store.config(&["restore", "0"]);
    assert!(ok, "{err}");
    assert!(out.starts_with("revision 2: "), "{out}");
    s.store
        .lbd()
        .wait_for_all(&["listener closed", &port.to_string()]);
    assert!(
        refused(port).await,
        "{port} still accepts after the restore"
    );
    assert_eq!(which_server(s.web, None).await, "web-a");
    assert_eq!(history(&s.store)[0].revision, 2);
}
