//! lbd proxying TCP on loopback to real backends, checked with real clients.

mod support;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn config(
    dir: &std::path::Path,
    port: u16,
    balance: &str,
    servers: &[(&EchoBackend, &str)],
) -> String {
    let mut c = format!(
        "{}[frontends.f]\nbind = [\"127.0.0.1:{port}\"]\ndefault_backend = \"b\"\n\
         [backends.b]\nbalance = \"{balance}\"\n",
        global(dir)
    );
    for (b, extra) in servers {
        c.push_str(&format!(
            "[backends.b.servers.{}]\naddress = \"{}\"\n{extra}\n",
            b.name, b.addr
        ));
    }
    c
}

async fn distribution(to: SocketAddr, n: usize) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for _ in 0..n {
        *m.entry(which_server(to, None).await).or_default() += 1;
    }
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roundrobin_follows_weights() {
    let a = EchoBackend::start("a").await;
    let b = EchoBackend::start("b").await;
    let port = free_port();
    let dir = temp_dir("rr");
    let _lbd = Lbd::start(
        &dir,
        &config(
            &dir,
            port,
            "roundrobin",
            &[(&a, "weight = 3"), (&b, "weight = 1")],
        ),
    );
    let to = SocketAddr::from(([127, 0, 0, 1], port));
    let got = distribution(to, 40).await;
    assert_eq!(got, BTreeMap::from([("a".into(), 30), ("b".into(), 10)]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_rr_and_first() {
    let a = EchoBackend::start("a").await;
    let b = EchoBackend::start("b").await;
    let dir = temp_dir("srr");
    let port = free_port();
    let to = SocketAddr::from(([127, 0, 0, 1], port));
    {
        let _lbd = Lbd::start(
            &dir,
            &config(
                &dir,
                port,
                "static-rr",
                &[(&a, "weight = 1"), (&b, "weight = 2")],
            ),
        );
        assert_eq!(
            distribution(to, 30).await,
            BTreeMap::from([("a".into(), 10), ("b".into(), 20)])
        );
    }
    let port = free_port();
    let to = SocketAddr::from(([127, 0, 0, 1], port));
    let _lbd = Lbd::start(
        &dir,
        &config(&dir, port, "first", &[(&a, "maxconn = 1"), (&b, "")]),
    );
    // The first connection is held open: a is full, so the next goes to b.
    let mut held = connect_from(to, None).await;
    assert_eq!(read_line(&mut held).await, "a");
    assert_eq!(which_server(to, None).await, "b");
    drop(held);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_hash_is_sticky_per_client_ip() {
    let a = EchoBackend::start("a").await;
    let b = EchoBackend::start("b").await;
    let port = free_port();
    let dir = temp_dir("src");
    let _lbd = Lbd::start(&dir, &config(&dir, port, "source", &[(&a, ""), (&b, "")]));
    let to = SocketAddr::from(([127, 0, 0, 1], port));
    let mut seen = BTreeMap::new();
    for i in 1..=40u8 {
        let ip = IpAddr::V4(Ipv4Addr::new(127, 0, 1, i));
        let first = which_server(to, Some(ip)).await;
        assert_eq!(which_server(to, Some(ip)).await, first, "client {ip} moved");
        *seen.entry(first).or_insert(0) += 1;
    }
    assert_eq!(seen.len(), 2, "both servers get clients: {seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leastconn_and_random_use_every_server() {
    let a = EchoBackend::start("a").await;
    let b = EchoBackend::start("b").await;
    let dir = temp_dir("lc");
    for algo in ["leastconn", "random"] {
        let port = free_port();
        let to = SocketAddr::from(([127, 0, 0, 1], port));
        let _lbd = Lbd::start(&dir, &config(&dir, port, algo, &[(&a, ""), (&b, "")]));
        // Hold connections open: leastconn must alternate.
        let mut held = Vec::new();
        let mut names = BTreeMap::new();
        for _ in 0..10 {
            let mut s = connect_from(to, None).await;
            *names.entry(read_line(&mut s).await).or_insert(0) += 1;
            held.push(s);
        }
        if algo == "leastconn" {
            assert_eq!(names, BTreeMap::from([("a".into(), 5), ("b".into(), 5)]));
        } else {
            assert_eq!(names.len(), 2, "{algo}: {names:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_close_and_echo_through_the_proxy() {
    let a = EchoBackend::start("a").await;
    let port = free_port();
    let dir = temp_dir("half");
    let mut lbd = Lbd::start(&dir, &config(&dir, port, "roundrobin", &[(&a, "")]));
    let mut s = connect_from(SocketAddr::from(([127, 0, 0, 1], port)), None).await;
    s.write_all(b"hello world").await.expect("write");
    s.shutdown().await.expect("half-close");
    let mut all = String::new();
    s.read_to_string(&mut all).await.expect("read to EOF");
    assert_eq!(all, "a\nhello world");
    let line = lbd.wait_for_all(&["connection", "server=\"a\""]);
    assert!(line.contains("bytes_in=11"), "{line}");
    assert!(line.contains("bytes_out=13"), "{line}");
    assert!(line.contains("term=\"--\""), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_server_is_retried_on_another() {
    let a = EchoBackend::start("a").await;
    let dead = EchoBackend::start("dead").await;
    dead.kill();
    let port = free_port();
    let dir = temp_dir("retry");
    let _lbd = Lbd::start(
        &dir,
        &config(&dir, port, "roundrobin", &[(&a, ""), (&dead, "")]),
    );
    let to = SocketAddr::from(([127, 0, 0, 1], port));
    for _ in 0..6 {
        assert_eq!(which_server(to, None).await, "a");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_cleanly() {
    let a = EchoBackend::start("a").await;
    let port = free_port();
    let dir = temp_dir("term");
    let mut lbd = Lbd::start(&dir, &config(&dir, port, "roundrobin", &[(&a, "")]));
    let status = lbd.terminate();
    assert!(status.success(), "{status:?}");
    assert!(lbd.log().iter().any(|l| l.contains("stopped")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frontend_maxconn_holds_new_clients_until_a_slot_frees() {
    let a = EchoBackend::start("a").await;
    let port = free_port();
    let dir = temp_dir("femax");
    let cfg = config(&dir, port, "roundrobin", &[(&a, "")]).replace(
        "default_backend = \"b\"\n",
        "default_backend = \"b\"\nmaxconn = 1\n",
    );
    let _lbd = Lbd::start(&dir, &cfg);
    let to = SocketAddr::from(([127, 0, 0, 1], port));
    let mut first = connect_from(to, None).await;
    assert_eq!(read_line(&mut first).await, "a");
    // The second client completes its TCP handshake in the kernel backlog
    // but is not accepted while the frontend is full.
    let mut second = connect_from(to, None).await;
    let (_, out, _) = ctl(&dir, "show info");
    let info: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(info["current_connections"], 1);
    drop(first);
    assert_eq!(read_line(&mut second).await, "a");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_maxconn_queues_then_times_out() {
    let a = EchoBackend::start("a").await;
    let port = free_port();
    let dir = temp_dir("queue");
    let cfg = config(&dir, port, "roundrobin", &[(&a, "maxconn = 1")]).replace(
        "balance = \"roundrobin\"\n",
        "balance = \"roundrobin\"\ntimeout.queue = \"200ms\"\n",
    );
    let mut lbd = Lbd::start(&dir, &cfg);
    let to = SocketAddr::from(([127, 0, 0, 1], port));
    let mut first = connect_from(to, None).await;
    assert_eq!(read_line(&mut first).await, "a");
    let mut second = connect_from(to, None).await;
    let line = lbd.wait_for_all(&["connection", "term=\"sQ\""]);
    assert!(line.contains("server=\"<NOSRV>\""), "{line}");
    let mut rest = Vec::new();
    let _ = tokio::io::AsyncReadExt::read_to_end(&mut second, &mut rest).await;
    assert!(rest.is_empty(), "queued client closed without data");
    drop(first);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_transfer_through_splice_is_intact() {
    let a = EchoBackend::start("a").await;
    let port = free_port();
    let dir = temp_dir("bulk");
    let _lbd = Lbd::start(&dir, &config(&dir, port, "roundrobin", &[(&a, "")]));
    let s = connect_from(SocketAddr::from(([127, 0, 0, 1], port)), None).await;
    let (mut r, mut w) = s.into_split();
    let data: Vec<u8> = (0..2 * 1024 * 1024u32).map(|i| (i % 253) as u8).collect();
    let sent = data.clone();
    let writer = tokio::spawn(async move {
        w.write_all(&sent).await.expect("write");
        w.shutdown().await.expect("fin");
    });
    let mut back = Vec::new();
    r.read_to_end(&mut back).await.expect("read");
    writer.await.expect("writer");
    assert_eq!(&back[..2], b"a\n");
    assert!(
        back[2..] == data[..],
        "echo differs: {} bytes",
        back.len() - 2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_by_name_resolve_and_unresolvable_names_do_not_stop_startup() {
    let a = EchoBackend::start("a").await;
    let port = free_port();
    let dir = temp_dir("names");
    // Any real DNS query goes to loopback only (nothing answers there).
    std::fs::write(
        dir.join("resolv.conf"),
        "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n",
    )
    .expect("resolv.conf");
    let cfg = format!(
        "{}resolv_conf = \"{}\"\n\
         [frontends.f]\nbind = [\"127.0.0.1:{port}\"]\ndefault_backend = \"b\"\n[backends.b]\n\
         [backends.b.servers.a]\naddress = \"localhost:{}\"\n\
         [backends.b.servers.ghost]\naddress = \"ghost.invalid:80\"\n",
        global(&dir),
        dir.join("resolv.conf").display(),
        a.addr.port()
    );
    let mut lbd = Lbd::start(&dir, &cfg);
    lbd.seen_or_wait(&["server resolved", "b/a"]);
    let to = SocketAddr::from(([127, 0, 0, 1], port));
    for _ in 0..4 {
        assert_eq!(which_server(to, None).await, "a");
    }
    assert_eq!(status(&dir, "b/ghost"), "UNRESOLVED");
    assert_eq!(status(&dir, "b/a"), "UP");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_dead_server_fails_fast_after_retries() {
    let dead = EchoBackend::start("dead").await;
    dead.kill();
    let port = free_port();
    let dir = temp_dir("lonedead");
    // A long queue timeout: the retries must not wait in the queue.
    let cfg = config(&dir, port, "roundrobin", &[(&dead, "")]).replace(
        "balance = \"roundrobin\"\n",
        "balance = \"roundrobin\"\ntimeout.queue = \"1h\"\n",
    );
    let mut lbd = Lbd::start(&dir, &cfg);
    let mut s = connect_from(SocketAddr::from(([127, 0, 0, 1], port)), None).await;
    let line = lbd.wait_for_all(&["connection", "term="]);
    assert!(line.contains("term=\"SC\""), "{line}");
    let mut rest = Vec::new();
    let _ = tokio::io::AsyncReadExt::read_to_end(&mut s, &mut rest).await;
    assert!(rest.is_empty());
    let (_, out, _) = ctl(&dir, "show stat");
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(
        v["servers"][0]["connect_errors"], 3,
        "three attempts: {out}"
    );
}
