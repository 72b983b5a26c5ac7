//! Mode http under clients that take their time: request-head timeout and
//! size, frontends that cannot take each other's connection slots, body
//! inactivity both ways, and upgraded connections that count as
//! connections.

mod support;

use std::net::SocketAddr;

use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Everything the peer sends until it closes (or PATIENCE runs out).
async fn read_all(s: &mut TcpStream) -> String {
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(PATIENCE, s.read_to_end(&mut raw)).await;
    String::from_utf8_lossy(&raw).to_string()
}

/// Reads one HTTP head from a raw stream.
async fn read_head(s: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).await.ok()?;
        head.push(byte[0]);
    }
    Some(String::from_utf8_lossy(&head).to_ascii_lowercase())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_request_head_gets_408_after_timeout_http_request() {
    // timeout.client is an hour; the default timeout.http_request (10s)
    // must still close a client that never finishes its head.
    let www = HttpBackend::start("www", None).await;
    let port = free_port();
    let dir = temp_dir("slowhead");
    let cfg = format!(
        "{}[defaults.timeout]\nclient = \"1h\"\n\
         [frontends.web]\nbind = [\"127.0.0.1:{port}\"]\nmode = \"http\"\ndefault_backend = \"www\"\n\
         [backends.www]\nmode = \"http\"\n[backends.www.servers.a]\naddress = \"{}\"\n",
        global(&dir),
        www.addr
    );
    let _lbd = Lbd::start(&dir, &cfg);
    let mut s = TcpStream::connect(local(port)).await.expect("connect");
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .expect("write");
    let answer = read_all(&mut s).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_request_head_gets_431() {
    let www = HttpBackend::start("www", None).await;
    let port = free_port();
    let dir = temp_dir("bighead");
    let cfg = format!(
        "{}[defaults.timeout]\nclient = \"1h\"\n\
         [frontends.web]\nbind = [\"127.0.0.1:{port}\"]\nmode = \"http\"\ndefault_backend = \"www\"\n\
         [backends.www]\nmode = \"http\"\n[backends.www.servers.a]\naddress = \"{}\"\n",
        global(&dir),
        www.addr
    );
    let _lbd = Lbd::start(&dir, &cfg);
    let mut s = TcpStream::connect(local(port)).await.expect("connect");
    // 20 KiB of one header, not finished: over the 16 KiB default.
    let mut head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
    head.extend(std::iter::repeat_n(b'a', 20 * 1024));
    let _ = s.write_all(&head).await;
    let answer = read_all(&mut s).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_header_connections_on_one_frontend_do_not_starve_another() {
    // global.maxconn 10, neither frontend sets its own: 60 clients that
    // never finish a head on the redirect frontend must leave the tcp
    // frontend its share.
    let echo = EchoBackend::start("echo").await;
    let http_port = free_port();
    let tcp_port = free_port();
    let dir = temp_dir("starve");
    let cfg = format!(
        "{}maxconn = 10\n[defaults.timeout]\nclient = \"1h\"\n\
         [frontends.redir]\nbind = [\"127.0.0.1:{http_port}\"]\nmode = \"http\"\nredirect_https = true\n\
         [frontends.raw]\nbind = [\"127.0.0.1:{tcp_port}\"]\ndefault_backend = \"echo\"\n\
         [backends.echo.servers.a]\naddress = \"{}\"\n",
        global(&dir),
        echo.addr
    );
    let _lbd = Lbd::start(&dir, &cfg);
    let mut idle = Vec::new();
    for _ in 0..60 {
        let mut s = TcpStream::connect(local(http_port)).await.expect("connect");
        let _ = s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await;
        idle.push(s);
    }
    // Several tcp clients at once: the accept loop's one pre-taken slot
    // is not enough, the frontend needs its own share.
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut s = connect_from(local(tcp_port), None).await;
        assert_eq!(read_line(&mut s).await, "echo");
        held.push(s);
    }
    drop((idle, held));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maxconn_per_source_closes_extra_connections() {
    let echo = EchoBackend::start("echo").await;
    let port = free_port();
    let dir = temp_dir("persource");
    let cfg = format!(
        "{}[frontends.raw]\nbind = [\"127.0.0.1:{port}\"]\ndefault_backend = \"echo\"\nmaxconn_per_source = 2\n\
         [backends.echo.servers.a]\naddress = \"{}\"\n",
        global(&dir),
        echo.addr
    );
    let _lbd = Lbd::start(&dir, &cfg);
    let mut first = TcpStream::connect(local(port)).await.expect("connect");
    let mut second = TcpStream::connect(local(port)).await.expect("connect");
    assert_eq!(read_line(&mut first).await, "echo");
    assert_eq!(read_line(&mut second).await, "echo");
    let mut third = TcpStream::connect(local(port)).await.expect("connect");
    assert_eq!(read_all(&mut third).await, "", "closed without a greeting");
    drop(first);
    // The slot comes back once a connection closes (lbd notices the close
    // when the echo backend's side ends, so retry until it does).
    let mut greeted = String::new();
    for _ in 0..100 {
        let mut again = TcpStream::connect(local(port)).await.expect("connect");
        greeted = read_line(&mut again).await;
        if greeted == "echo" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(greeted, "echo");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_that_stops_reading_a_body_is_cut_after_timeout_client() {
    // A server with an endless body; the client reads nothing. lbd must
    // give up after timeout.client and close the server connection
    // (freeing its slot), which the server sees as a failed write.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let server_addr = listener.local_addr().expect("addr");
    let (cut_tx, cut_rx) = oneshot::channel();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.expect("accept");
        read_head(&mut s).await.expect("request head");
        let _ = s
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100000000000\r\n\r\n")
            .await;
        let chunk = vec![b'x'; 64 * 1024];
        while s.write_all(&chunk).await.is_ok() {}
        let _ = cut_tx.send(());
    });
    let port = free_port();
    let dir = temp_dir("slowreader");
    let cfg = format!(
        "{}[defaults.timeout]\nclient = \"1s\"\nserver = \"1s\"\n\
         [frontends.web]\nbind = [\"127.0.0.1:{port}\"]\nmode = \"http\"\ndefault_backend = \"big\"\n\
         [backends.big]\nmode = \"http\"\n[backends.big.servers.a]\naddress = \"{server_addr}\"\n",
        global(&dir)
    );
    let _lbd = Lbd::start(&dir, &cfg);
    let mut c = TcpStream::connect(local(port)).await.expect("connect");
    c.write_all(b"GET /big.iso HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("send");
    let cut = tokio::time::timeout(PATIENCE, cut_rx).await;
    assert!(
        matches!(cut, Ok(Ok(()))),
        "server connection still open: {cut:?}"
    );
    // The client's own connection (and its maxconn slot) goes too: the
    // response lbd could not write for timeout.client is abandoned.
    let deadline = std::time::Instant::now() + PATIENCE;
    while current_connections(&dir) > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the client that stopped reading still holds its connection"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    drop(c);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_that_stops_sending_a_body_is_cut_after_timeout_client() {
    // The client promises a megabyte and sends ten bytes; the server waits
    // for the rest (timeout.server is an hour). lbd must close the server
    // connection after timeout.client.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let server_addr = listener.local_addr().expect("addr");
    let (cut_tx, cut_rx) = oneshot::channel();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.expect("accept");
        read_head(&mut s).await.expect("request head");
        let mut sink = [0u8; 4096];
        while matches!(s.read(&mut sink).await, Ok(n) if n > 0) {}
        let _ = cut_tx.send(());
    });
    let port = free_port();
    let dir = temp_dir("slowsender");
    let cfg = format!(
        "{}[defaults.timeout]\nclient = \"1s\"\nserver = \"1h\"\n\
         [frontends.web]\nbind = [\"127.0.0.1:{port}\"]\nmode = \"http\"\ndefault_backend = \"up\"\n\
         [backends.up]\nmode = \"http\"\n[backends.up.servers.a]\naddress = \"{server_addr}\"\n",
        global(&dir)
    );
    let _lbd = Lbd::start(&dir, &cfg);
    let mut c = TcpStream::connect(local(port)).await.expect("connect");
    c.write_all(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n0123456789")
        .await
        .expect("send");
    let cut = tokio::time::timeout(PATIENCE, cut_rx).await;
    assert!(
        matches!(cut, Ok(Ok(()))),
        "server connection still open: {cut:?}"
    );
    drop(c);
}

/// A server that answers an Upgrade with 101 and then echoes, and any
/// other request with `200 plain`.
async fn upgrade_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Some(head) = read_head(&mut s).await else {
                    return;
                };
                if head.contains("\r\nupgrade:") {
                    let _ = s
                        .write_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
                        .await;
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                } else {
                    let _ = s
                        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\nplain\n")
                        .await;
                }
            });
        }
    });
    addr
}

async fn open_tunnel(to: SocketAddr) -> TcpStream {
    let mut c = TcpStream::connect(to).await.expect("connect");
    c.write_all(
        b"GET /chat HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    )
    .await
    .expect("send");
    let head = read_head(&mut c).await.expect("101 head");
    assert!(head.starts_with("http/1.1 101"), "{head}");
    c.write_all(b"ping").await.expect("tunnel write");
    let mut back = [0u8; 4];
    c.read_exact(&mut back).await.expect("tunnel read");
    assert_eq!(&back, b"ping");
    c
}

fn current_connections(dir: &std::path::Path) -> u64 {
    let (ok, out, err) = ctl(dir, "show info");
    assert!(ok, "show info failed: {err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("show info is JSON");
    v["current_connections"]
        .as_u64()
        .expect("current_connections")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgraded_tunnels_count_as_connections_and_hold_a_stop() {
    let server = upgrade_server().await;
    let port = free_port();
    let dir = temp_dir("tunnelcount");
    let cfg = format!(
        "{}stop_deadline = \"1s\"\n[defaults.timeout]\nclient = \"1h\"\nserver = \"1h\"\n\
         [frontends.web]\nbind = [\"127.0.0.1:{port}\"]\nmode = \"http\"\ndefault_backend = \"ws\"\n\
         [backends.ws]\nmode = \"http\"\n[backends.ws.servers.a]\naddress = \"{server}\"\n",
        global(&dir)
    );
    let mut lbd = Lbd::start(&dir, &cfg);
    let first = open_tunnel(local(port)).await;
    let second = open_tunnel(local(port)).await;
    assert_eq!(
        current_connections(&dir),
        2,
        "both tunnels are open connections"
    );
    // A stop waits for the tunnels (up to stop_deadline) instead of
    // saying all connections closed.
    assert!(lbd.terminate().success());
    let log = lbd.log();
    assert!(
        !log.iter().any(|l| l.contains("all connections closed")),
        "{log:#?}"
    );
    assert!(
        log.iter()
            .any(|l| l.contains("stop deadline reached") && l.contains("open=2")),
        "{log:#?}"
    );
    drop((first, second));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgraded_tunnels_take_frontend_maxconn_slots() {
    // maxconn 1: while a tunnel is open, the next client waits in the
    // backlog; once the tunnel closes it is served.
    let server = upgrade_server().await;
    let port = free_port();
    let dir = temp_dir("tunnelmaxconn");
    let cfg = format!(
        "{}[defaults.timeout]\nclient = \"1h\"\nserver = \"1h\"\n\
         [frontends.web]\nbind = [\"127.0.0.1:{port}\"]\nmode = \"http\"\ndefault_backend = \"ws\"\nmaxconn = 1\n\
         [backends.ws]\nmode = \"http\"\n[backends.ws.servers.a]\naddress = \"{server}\"\n",
        global(&dir)
    );
    let _lbd = Lbd::start(&dir, &cfg);
    let tunnel = open_tunnel(local(port)).await;
    let mut waiting = TcpStream::connect(local(port)).await.expect("connect");
    waiting
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("send");
    let mut byte = [0u8; 1];
    let early = tokio::time::timeout(
        std::time::Duration::from_millis(500),
        waiting.read(&mut byte),
    )
    .await;
    assert!(
        early.is_err(),
        "served past maxconn while a tunnel was open: {early:?}"
    );
    drop(tunnel);
    let rest = read_all(&mut waiting).await;
    assert!(rest.starts_with("HTTP/1.1 200"), "{rest:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_to_a_protocol_not_configured_is_a_plain_request() {
    let server = upgrade_server().await;
    let port = free_port();
    let dir = temp_dir("h2c");
    let cfg = format!(
        "{}[frontends.web]\nbind = [\"127.0.0.1:{port}\"]\nmode = \"http\"\ndefault_backend = \"ws\"\n\
         [backends.ws]\nmode = \"http\"\n[backends.ws.servers.a]\naddress = \"{server}\"\n",
        global(&dir)
    );
    let _lbd = Lbd::start(&dir, &cfg);
    let (code, head, body) = http(
        local(port),
        "GET",
        "/",
        &[
            ("Host", "x"),
            ("Connection", "Upgrade, HTTP2-Settings"),
            ("Upgrade", "h2c"),
            ("HTTP2-Settings", "AAMAAABkAARAAAAAAAIAAAAA"),
        ],
        "",
    )
    .await;
    assert_eq!((code, body.as_str()), (200, "plain\n"), "{head}");
    // WebSocket (the default list) still becomes a tunnel.
    drop(open_tunnel(local(port)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgraded_tunnels_close_at_the_reload_deadline() {
    let server = upgrade_server().await;
    let port = free_port();
    let dir = temp_dir("tunnelreload");
    let cfg = format!(
        "[global]\ncontrol_socket = \"{}\"\nstate_file = \"{}\"\nreload_deadline = \"1s\"\n\
         [defaults.timeout]\nclient = \"1h\"\nserver = \"1h\"\n\
         [frontends.web]\nbind = [\"127.0.0.1:{port}\"]\nmode = \"http\"\ndefault_backend = \"ws\"\n\
         [backends.ws]\nmode = \"http\"\n[backends.ws.servers.a]\naddress = \"{server}\"\n",
        dir.join("lbd.sock").display(),
        dir.join("state.json").display()
    );
    let mut lbd = Lbd::start(&dir, &cfg);
    let mut tunnel = open_tunnel(local(port)).await;
    lbd.signal("HUP");
    lbd.wait_for("reload applied");
    // The old generation's tunnel is closed by lbd once reload_deadline
    // passed (the tunnel's own timeouts are an hour).
    assert_eq!(read_all(&mut tunnel).await, "", "closed, not timed out");
    let closed = tunnel.write_all(b"x").await.and(tunnel.flush().await);
    let _ = closed;
    lbd.wait_for("tunnel closed: deadline passed");
    assert_eq!(current_connections(&dir), 0);
}
