//! Mode http from outside: redirect to https, host/path routing,
//! X-Forwarded-For, TLS termination, PROXY protocol both ways, hostile
//! clients.

mod support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use rustls::pki_types::ServerName;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_redirects_to_https() {
    let port = free_port();
    let dir = temp_dir("redirect");
    let cfg = format!(
        "{}[frontends.http]\nbind = [\"127.0.0.1:{port}\"]\nmode = \"http\"\nredirect_https = true\n",
        global(&dir)
    );
    let _lbd = Lbd::start(&dir, &cfg);
    let (code, head, _) = http(
        local(port),
        "GET",
        "/portal/?x=1",
        &[("Host", "vdi.example.com:80")],
        "",
    )
    .await;
    assert_eq!(code, 302, "{head}");
    assert!(
        head.contains("location: https://vdi.example.com/portal/?x=1"),
        "{head}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_by_host_and_path_and_adds_x_forwarded_for() {
    let api = HttpBackend::start("api", None).await;
    let www = HttpBackend::start("www", None).await;
    let files = HttpBackend::start("files", None).await;
    let port = free_port();
    let dir = temp_dir("route");
    let cfg = format!(
        "{}[frontends.web]\nbind = [\"127.0.0.1:{port}\"]\nmode = \"http\"\ndefault_backend = \"www\"\n\
         routes = [{{ host = \"api.example.com\", backend = \"api\" }}, {{ path_prefix = \"/files/\", backend = \"files\" }}]\n\
         [backends.api]\nmode = \"http\"\n[backends.api.servers.a]\naddress = \"{}\"\n\
         [backends.www]\nmode = \"http\"\n[backends.www.servers.a]\naddress = \"{}\"\n\
         [backends.files]\nmode = \"http\"\n[backends.files.servers.a]\naddress = \"{}\"\n",
        global(&dir),
        api.addr,
        www.addr,
        files.addr
    );
    let mut lbd = Lbd::start(&dir, &cfg);
    let to = local(port);
    let (code, _, body) = http(to, "GET", "/", &[("Host", "API.example.com")], "").await;
    assert_eq!((code, body.as_str()), (200, "api xff=127.0.0.1\n"));
    let (_, _, body) = http(
        to,
        "GET",
        "/files/a.iso",
        &[("Host", "www.example.com")],
        "",
    )
    .await;
    assert!(body.starts_with("files "), "{body}");
    let (_, _, body) = http(
        to,
        "GET",
        "/",
        &[
            ("Host", "www.example.com"),
            ("X-Forwarded-For", "192.0.2.9"),
        ],
        "",
    )
    .await;
    assert_eq!(body, "www xff=192.0.2.9, 127.0.0.1\n");
    let line = lbd.wait_for_all(&["request", "backend=\"files\""]);
    assert!(
        line.contains("status=200") && line.contains("path=/files/a.iso"),
        "{line}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminates_tls_from_pem_files() {
    let (cert_pem, key_pem, _) = self_signed();
    let backend = HttpBackend::start("inside", None).await;
    let port = free_port();
    let dir = temp_dir("tls");
    std::fs::write(dir.join("cert.pem"), &cert_pem).expect("cert");
    std::fs::write(dir.join("key.pem"), &key_pem).expect("key");
    let cfg = format!(
        "{}[frontends.https]\nbind = [\"127.0.0.1:{port}\"]\nmode = \"http\"\ndefault_backend = \"b\"\n\
         tls = {{ cert = \"{}\", key = \"{}\" }}\n\
         [backends.b]\nmode = \"http\"\n[backends.b.servers.a]\naddress = \"{}\"\n",
        global(&dir),
        dir.join("cert.pem").display(),
        dir.join("key.pem").display(),
        backend.addr
    );
    let _lbd = Lbd::start(&dir, &cfg);
    let tcp = tokio::net::TcpStream::connect(local(port))
        .await
        .expect("connect");
    let mut tls = tls_client(&[&cert_pem])
        .connect(ServerName::try_from("localhost").expect("name"), tcp)
        .await
        .expect("TLS handshake with lbd");
    tls.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .expect("send");
    let mut resp = String::new();
    let _ = tls.read_to_string(&mut resp).await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(resp.ends_with("inside xff=127.0.0.1\n"), "{resp}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_pem_is_rejected_by_check() {
    let dir = temp_dir("badpem");
    std::fs::write(dir.join("cert.pem"), "not a certificate").expect("cert");
    std::fs::write(dir.join("key.pem"), "not a key").expect("key");
    let cfg = format!(
        "[frontends.https]\nbind = [\"127.0.0.1:1\"]\nmode = \"http\"\ndefault_backend = \"b\"\n\
         tls = {{ cert = \"{}\", key = \"{}\" }}\n[backends.b]\nmode = \"http\"\n",
        dir.join("cert.pem").display(),
        dir.join("key.pem").display()
    );
    let err = lbd::config::load_texts(vec![("t.toml".into(), cfg)])
        .expect_err("bad PEM")
        .to_string();
    assert!(err.contains("t.toml:5: frontends.https.tls"), "{err}");
    assert!(
        err.contains("no certificate found") || err.contains("BEGIN CERTIFICATE"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_protocol_accepted_from_clients_and_sent_to_servers() {
    // The server decodes the v2 header lbd sends and answers with the
    // client address it names.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let server_addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.expect("accept");
        let h = lbd::proxy::proxy_protocol::read_header(&mut s, std::time::Duration::from_secs(30))
            .await
            .expect("v2 header from lbd");
        let _ = s
            .write_all(format!("{}\n", h.source.expect("source")).as_bytes())
            .await;
    });
    let port = free_port();
    let dir = temp_dir("pp");
    let cfg = format!(
        "{}[frontends.f]\nbind = [\"127.0.0.1:{port}\"]\naccept_proxy = true\ndefault_backend = \"b\"\n\
         [backends.b]\nsend_proxy = \"v2\"\n[backends.b.servers.s]\naddress = \"{server_addr}\"\n",
        global(&dir)
    );
    let _lbd = Lbd::start(&dir, &cfg);
    let mut c = tokio::net::TcpStream::connect(local(port))
        .await
        .expect("connect");
    c.write_all(b"PROXY TCP4 127.0.0.9 127.0.0.1 40000 443\r\n")
        .await
        .expect("header");
    let mut line = String::new();
    let _ = c.read_to_string(&mut line).await;
    assert_eq!(line.trim(), "127.0.0.9:40000");
    server.await.expect("server");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_clients_do_not_stop_others() {
    let www = HttpBackend::start("www", None).await;
    let echo = EchoBackend::start("echo").await;
    let http_port = free_port();
    let tcp_port = free_port();
    let dir = temp_dir("hostile");
    let cfg = format!(
        "{}[frontends.web]\nbind = [\"127.0.0.1:{http_port}\"]\nmode = \"http\"\ndefault_backend = \"www\"\n\
         [frontends.raw]\nbind = [\"127.0.0.1:{tcp_port}\"]\naccept_proxy = true\ndefault_backend = \"echo\"\n\
         [backends.www]\nmode = \"http\"\n[backends.www.servers.a]\naddress = \"{}\"\n\
         [backends.echo.servers.a]\naddress = \"{}\"\n",
        global(&dir),
        www.addr,
        echo.addr
    );
    let _lbd = Lbd::start(&dir, &cfg);
    // Slowloris: a request line that never ends, many times over.
    let mut stalled = Vec::new();
    for _ in 0..20 {
        let mut s = tokio::net::TcpStream::connect(local(http_port))
            .await
            .expect("connect");
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .await
            .expect("write");
        stalled.push(s);
    }
    // Garbage on both frontends; half-open (FIN right away) on the raw one.
    for port in [http_port, tcp_port] {
        let mut g = tokio::net::TcpStream::connect(local(port))
            .await
            .expect("connect");
        g.write_all(&[0u8, 0xff, 0x13, 0x37, b'\r', b'\n', b'\r', b'\n'])
            .await
            .expect("write");
        let mut sink = Vec::new();
        let _ = g.read_to_end(&mut sink).await;
    }
    let mut half = tokio::net::TcpStream::connect(local(tcp_port))
        .await
        .expect("connect");
    half.shutdown().await.expect("fin");
    // Meanwhile a normal client is served.
    let (code, _, body) = http(local(http_port), "GET", "/", &[("Host", "x")], "").await;
    assert_eq!((code, body.as_str()), (200, "www xff=127.0.0.1\n"));
    let client_ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
    let mut ok = connect_from(local(tcp_port), Some(client_ip)).await;
    ok.write_all(b"PROXY UNKNOWN\r\n").await.expect("header");
    assert_eq!(read_line(&mut ok).await, "echo");
    drop(stalled);
}

/// Deterministic pseudo-random bytes (splitmix64), so a failure replays.
fn noise(state: &mut u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|_| {
            let v = lbd::balance::splitmix64(state);
            v.to_le_bytes()[0]
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_bytes_never_panic_the_http_paths() {
    let www = HttpBackend::start("www", None).await;
    let http_port = free_port();
    let stats_port = free_port();
    let dir = temp_dir("fuzz");
    let cfg = format!(
        "{}[frontends.web]\nbind = [\"127.0.0.1:{http_port}\"]\nmode = \"http\"\ndefault_backend = \"www\"\n\
         [frontends.redir]\nbind = [\"127.0.0.1:{}\"]\nmode = \"http\"\nredirect_https = true\n\
         [backends.www]\nmode = \"http\"\n[backends.www.servers.a]\naddress = \"{}\"\n\
         [stats]\nbind = \"127.0.0.1:{stats_port}\"\n",
        global(&dir),
        free_port(),
        www.addr
    );
    let mut lbd = Lbd::start(&dir, &cfg);
    let prefixes: [&[u8]; 4] = [
        b"",
        b"GET / HTTP/1.1\r\n",
        b"POST /action HTTP/1.1\r\nHost: ",
        b"GET /",
    ];
    let mut state = 0x5eed_u64;
    for round in 0..120usize {
        let port = if round % 2 == 0 {
            http_port
        } else {
            stats_port
        };
        let mut blob = prefixes[round % prefixes.len()].to_vec();
        let len = usize::from(noise(&mut state, 1)[0]) * 4;
        blob.extend(noise(&mut state, len));
        if round % 3 == 0 {
            blob.extend_from_slice(b"\r\n\r\n");
        }
        let mut s = tokio::net::TcpStream::connect(local(port))
            .await
            .expect("connect");
        let _ = s.write_all(&blob).await;
        let _ = s.shutdown().await;
        let mut sink = Vec::new();
        let _ = tokio::time::timeout(PATIENCE, s.read_to_end(&mut sink)).await;
    }
    let (code, _, _) = http(local(http_port), "GET", "/", &[("Host", "x")], "").await;
    assert_eq!(code, 200);
    assert_eq!(
        http(local(stats_port), "GET", "/stats.json", &[], "")
            .await
            .0,
        200
    );
    lbd.terminate();
    assert!(
        !lbd.log().iter().any(|l| l.contains("panicked")),
        "a task panicked: {:#?}",
        lbd.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_connections_close_on_reload_and_stop() {
    let www = HttpBackend::start("www", None).await;
    let port = free_port();
    let dir = temp_dir("keepalive");
    let cfg = format!(
        "{}stop_deadline = \"1h\"\n[frontends.web]\nbind = [\"127.0.0.1:{port}\"]\nmode = \"http\"\ndefault_backend = \"www\"\n\
         [backends.www]\nmode = \"http\"\n[backends.www.servers.a]\naddress = \"{}\"\n",
        global(&dir),
        www.addr
    );
    let mut lbd = Lbd::start(&dir, &cfg);
    let mut s = tokio::net::TcpStream::connect(local(port))
        .await
        .expect("connect");
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("send");
    let mut buf = vec![0u8; 4096];
    assert!(read_one_response(&mut s).await.starts_with("HTTP/1.1 200"));
    // The connection is idle and kept alive; a reload closes it.
    lbd.signal("HUP");
    lbd.wait_for("reload applied");
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(PATIENCE, s.read_to_end(&mut rest)).await;
    assert!(
        matches!(closed, Ok(Ok(0))),
        "closed by lbd, not timed out: {closed:?}"
    );
    // Another idle keep-alive connection does not hold up a stop (the stop
    // deadline is an hour).
    let mut t = tokio::net::TcpStream::connect(local(port))
        .await
        .expect("connect");
    t.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("send");
    let _ = t.read(&mut buf).await.expect("response");
    assert!(lbd.terminate().success());
    assert!(lbd
        .log()
        .iter()
        .any(|l| l.contains("all connections closed: stopped")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_requests_become_tunnels() {
    // A server that accepts any Upgrade with 101, then echoes raw bytes.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let server_addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if s.read_exact(&mut byte).await.is_err() {
                        return;
                    }
                    head.push(byte[0]);
                }
                let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
                assert!(text.contains("upgrade: websocket"), "{text}");
                let _ = s
                    .write_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
                    .await;
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    let port = free_port();
    let dir = temp_dir("upgrade");
    let cfg = format!(
        "{}[frontends.web]\nbind = [\"127.0.0.1:{port}\"]\nmode = \"http\"\ndefault_backend = \"ws\"\n\
         [backends.ws]\nmode = \"http\"\n[backends.ws.servers.a]\naddress = \"{server_addr}\"\n",
        global(&dir)
    );
    let _lbd = Lbd::start(&dir, &cfg);
    let mut c = tokio::net::TcpStream::connect(local(port))
        .await
        .expect("connect");
    c.write_all(
        b"GET /chat HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    )
    .await
    .expect("send");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        c.read_exact(&mut byte).await.expect("101 head");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("upgrade: websocket"), "{head}");
    c.write_all(b"frame bytes").await.expect("tunnel write");
    let mut back = [0u8; 11];
    c.read_exact(&mut back).await.expect("tunnel read");
    assert_eq!(&back, b"frame bytes");
}
