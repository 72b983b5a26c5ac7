//! Health checks against real servers: fall/rise, backup failover, HTTP and
//! HTTPS status checks, TLS hello, agent-check.

mod support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use support::*;

const FAST: &str = "inter = \"100ms\"\nfastinter = \"50ms\"\ndowninter = \"100ms\"\nrise = 2\nfall = 3\ntimeout = \"1s\"\n";

fn base(dir: &std::path::Path, port: u16, balance: &str) -> String {
    format!(
        "{}[frontends.f]\nbind = [\"127.0.0.1:{port}\"]\ndefault_backend = \"b\"\n\
         [backends.b]\nbalance = \"{balance}\"\n",
        global(dir)
    )
}

/// Lines between the first containing `from` and the first after it
/// containing `until`.
fn between(log: &[String], from: usize, until: &str) -> Vec<String> {
    log.iter()
        .skip(from)
        .take_while(|l| !l.contains(until))
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_server_goes_down_after_fall_and_back_after_rise() {
    let a = EchoBackend::start("a").await;
    let b = EchoBackend::start("b").await;
    let b_addr = b.addr;
    let port = free_port();
    let dir = temp_dir("fall");
    let to = SocketAddr::from(([127, 0, 0, 1], port));
    let cfg = format!(
        "{}[backends.b.check]\ntype = \"tcp\"\n{FAST}\
         [backends.b.servers.a]\naddress = \"{}\"\n[backends.b.servers.b]\naddress = \"{}\"\n",
        base(&dir, port, "roundrobin"),
        a.addr,
        b.addr
    );
    let mut lbd = Lbd::start(&dir, &cfg);
    // Both confirmed up first.
    lbd.wait_for_all(&["server=b/b", "ok=true"]);
    lbd.wait_for_all(&["server=b/a", "ok=true"]);

    let mark = lbd.log().len();
    b.kill();
    let down = lbd.wait_for_all(&["server is DOWN", "b/b"]);
    assert!(down.contains("L4CON"), "reason logged: {down}");
    assert!(down.contains("after_ms="), "duration logged: {down}");
    let log = lbd.log();
    let failed: Vec<_> = between(&log, mark, "server is DOWN")
        .into_iter()
        .filter(|l| l.contains("server=b/b") && l.contains("ok=false"))
        .collect();
    assert_eq!(failed.len(), 3, "fall = 3 failed checks: {failed:#?}");
    for _ in 0..5 {
        assert_eq!(which_server(to, None).await, "a");
    }

    let mark = lbd.log().len();
    let _b2 = EchoBackend::start_on("b", b_addr).await;
    lbd.wait_for_all(&["server is UP", "b/b"]);
    let log = lbd.log();
    let passed: Vec<_> = between(&log, mark, "server is UP")
        .into_iter()
        .filter(|l| l.contains("server=b/b") && l.contains("ok=true"))
        .collect();
    assert_eq!(passed.len(), 2, "rise = 2 passed checks: {passed:#?}");
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..4 {
        seen.insert(which_server(to, None).await);
    }
    assert_eq!(seen.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_to_backup_and_back() {
    let main = EchoBackend::start("main").await;
    let main_addr = main.addr;
    let spare = EchoBackend::start("spare").await;
    let port = free_port();
    let dir = temp_dir("backup");
    let to = SocketAddr::from(([127, 0, 0, 1], port));
    let cfg = format!(
        "{}[backends.b.check]\ntype = \"tcp\"\n{FAST}\
         [backends.b.servers.main]\naddress = \"{}\"\n\
         [backends.b.servers.spare]\naddress = \"{}\"\nbackup = true\n",
        base(&dir, port, "roundrobin"),
        main.addr,
        spare.addr
    );
    let mut lbd = Lbd::start(&dir, &cfg);
    for _ in 0..3 {
        assert_eq!(which_server(to, None).await, "main");
    }
    main.kill();
    lbd.wait_for_all(&["server is DOWN", "b/main"]);
    for _ in 0..3 {
        assert_eq!(which_server(to, None).await, "spare");
    }
    let _main2 = EchoBackend::start_on("main", main_addr).await;
    lbd.wait_for_all(&["server is UP", "b/main"]);
    for _ in 0..3 {
        assert_eq!(which_server(to, None).await, "main");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_and_https_status_checks() {
    let (_, _, tls) = self_signed();
    let plain = HttpBackend::start("plain", None).await;
    let secure = HttpBackend::start("secure", Some(tls)).await;
    let port = free_port();
    let dir = temp_dir("http");
    let cfg = format!(
        "{}[frontends.f]\nbind = [\"127.0.0.1:{port}\"]\ndefault_backend = \"h\"\n\
         [backends.h.check]\ntype = \"http\"\npath = \"/favicon.ico\"\nexpect_status = [200]\n{FAST}\
         [backends.h.servers.plain]\naddress = \"{}\"\n\
         [backends.s.check]\ntype = \"https\"\npath = \"/favicon.ico\"\nhost = \"localhost\"\nexpect_status = [200]\n{FAST}\
         [backends.s.servers.secure]\naddress = \"{}\"\n",
        global(&dir),
        plain.addr,
        secure.addr
    );
    let mut lbd = Lbd::start(&dir, &cfg);
    lbd.wait_for_all(&["server=h/plain", "L7OK: 200"]);
    lbd.wait_for_all(&["server=s/secure", "L7OK: 200"]);
    // Horizon's disabled connection server answers 503.
    plain.set_status(503);
    secure.set_status(503);
    let d1 = lbd.wait_for_all(&["server is DOWN", "h/plain"]);
    assert!(d1.contains("L7STS: 503"), "{d1}");
    let d2 = lbd.wait_for_all(&["server is DOWN", "s/secure"]);
    assert!(d2.contains("L7STS: 503"), "{d2}");
    secure.set_status(200);
    lbd.wait_for_all(&["server is UP", "s/secure"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_hello_passes_only_on_server_hello() {
    let (_, _, tls) = self_signed();
    let secure = HttpBackend::start("secure", Some(tls)).await;
    let not_tls = EchoBackend::start("plaintext").await;
    let port = free_port();
    let dir = temp_dir("hello");
    let cfg = format!(
        "{}[backends.b.check]\ntype = \"tls-hello\"\n{FAST}\
         [backends.b.servers.secure]\naddress = \"{}\"\n\
         [backends.b.servers.plain]\naddress = \"{}\"\n",
        base(&dir, port, "roundrobin"),
        secure.addr,
        not_tls.addr
    );
    let mut lbd = Lbd::start(&dir, &cfg);
    let down = lbd.wait_for_all(&["server is DOWN", "b/plain"]);
    assert!(down.contains("not a ServerHello"), "{down}");
    lbd.wait_for_all(&["server=b/secure", "L6OK: ServerHello"]);
    assert!(!lbd
        .log()
        .iter()
        .any(|l| l.contains("server is DOWN") && l.contains("b/secure")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_sets_weight_and_state() {
    let a = EchoBackend::start("a").await;
    let reply = Arc::new(Mutex::new("up 50%".to_string()));
    let (agent_addr, _agent) = line_server(reply.clone()).await;
    let port = free_port();
    let dir = temp_dir("agent");
    let cfg = format!(
        "{}[backends.b.agent]\nport = {}\ninter = \"50ms\"\n\
         [backends.b.servers.a]\naddress = \"{}\"\nweight = 10\n",
        base(&dir, port, "roundrobin"),
        agent_addr.port(),
        a.addr
    );
    let mut lbd = Lbd::start(&dir, &cfg);
    lbd.wait_for_all(&["agent set weight", "new=5"]);
    *reply.lock().expect("reply") = "stopped #maintenance".into();
    let down = lbd.wait_for_all(&["server is DOWN", "b/a"]);
    assert!(down.contains("agent: stopped"), "{down}");
    *reply.lock().expect("reply") = "up drain".into();
    // The agent applies its admin word before its health word.
    lbd.wait_for_all(&["agent set admin state", "drain"]);
    lbd.wait_for_all(&["server is UP", "b/a"]);
}
