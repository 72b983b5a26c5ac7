//! Mode http request edge cases (RFC 9112 section 3.2 and friends): Host
//! headers, absolute-form targets, `Connection` naming end-to-end headers,
//! redirects built from Host, CONNECT, and the forwarding headers.

mod support;

use std::net::SocketAddr;

use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A server that answers every request with `name` and the request head it
/// received (lower-cased), so tests see exactly what lbd forwarded.
async fn head_echo(name: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
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
                let body = format!(
                    "{name}\n{}",
                    String::from_utf8_lossy(&head).to_ascii_lowercase()
                );
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
            });
        }
    });
    addr
}

/// Sends `raw` as is and returns (status, everything lbd answered).
async fn raw(to: SocketAddr, raw: &str) -> (u16, String) {
    let mut s = TcpStream::connect(to).await.expect("connect");
    s.write_all(raw.as_bytes()).await.expect("send");
    let mut out = Vec::new();
    let _ = tokio::time::timeout(PATIENCE, s.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, text)
}

/// lbd with frontend `web` routing host api.example.com to `api` and the
/// rest to `www`, both head-echo servers; `extra` goes into the frontend.
async fn start(tag: &str, extra: &str) -> (Lbd, SocketAddr) {
    let api = head_echo("api").await;
    let www = head_echo("www").await;
    let port = free_port();
    let dir = temp_dir(tag);
    let cfg = format!(
        "{}[frontends.web]\nbind = [\"127.0.0.1:{port}\"]\nmode = \"http\"\ndefault_backend = \"www\"\n\
         routes = [{{ host = \"api.example.com\", backend = \"api\" }}]\n{extra}\
         [backends.api]\nmode = \"http\"\n[backends.api.servers.a]\naddress = \"{api}\"\n\
         [backends.www]\nmode = \"http\"\n[backends.www.servers.a]\naddress = \"{www}\"\n",
        global(&dir)
    );
    (Lbd::start(&dir, &cfg), local(port))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_host_headers_get_400() {
    let (_lbd, to) = start("twohosts", "").await;
    let (code, text) = raw(
        to,
        "GET / HTTP/1.1\r\nHost: www.example.com\r\nHost: api.example.com\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(code, 400, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absolute_form_target_is_routed_and_forwarded_by_its_authority() {
    let (_lbd, to) = start("absform", "").await;
    let (code, text) = raw(
        to,
        "GET http://api.example.com/x?y=1 HTTP/1.1\r\nHost: www.example.com\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(code, 200, "{text}");
    let (_, body) = text.split_once("\r\n\r\n").expect("head and body");
    assert!(body.starts_with("api\nget /x?y=1 http/1.1\r\n"), "{body}");
    assert!(body.contains("\r\nhost: api.example.com\r\n"), "{body}");
    assert!(!body.contains("www.example.com"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_header_cannot_strip_host() {
    let (_lbd, to) = start("connhost", "").await;
    let (code, text) = raw(
        to,
        "GET / HTTP/1.1\r\nHost: api.example.com\r\nConnection: close, host\r\n\r\n",
    )
    .await;
    assert_eq!(code, 200, "{text}");
    let (_, body) = text.split_once("\r\n\r\n").expect("head and body");
    assert!(body.starts_with("api\n"), "{body}");
    assert!(body.contains("\r\nhost: api.example.com\r\n"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_never_reflects_a_bad_host() {
    let port = free_port();
    let dir = temp_dir("redirhost");
    let cfg = format!(
        "{}[frontends.http]\nbind = [\"127.0.0.1:{port}\"]\nmode = \"http\"\nredirect_https = true\n",
        global(&dir)
    );
    let _lbd = Lbd::start(&dir, &cfg);
    for host in ["good@evil.example", "evil.example/x", "a\\b"] {
        let (code, head, _) = http(local(port), "GET", "/portal", &[("Host", host)], "").await;
        assert_eq!(code, 400, "Host {host}: {head}");
        assert!(!head.to_ascii_lowercase().contains("location"), "{head}");
    }
    let (code, head, _) = http(
        local(port),
        "GET",
        "/portal",
        &[("Host", "vdi.example.com")],
        "",
    )
    .await;
    assert_eq!(code, 302, "{head}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_gets_405() {
    let (_lbd, to) = start("connect", "").await;
    let (code, text) = raw(
        to,
        "CONNECT api.example.com:443 HTTP/1.1\r\nHost: api.example.com:443\r\n\r\n",
    )
    .await;
    assert_eq!(code, 405, "{text:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_for_replace_drops_client_claims() {
    let (_lbd, to) = start("xffreplace", "forwarded_for_replace = true\n").await;
    let (code, _, body) = http(
        to,
        "GET",
        "/",
        &[
            ("Host", "api.example.com"),
            ("X-Forwarded-For", "192.0.2.9"),
            ("Forwarded", "for=192.0.2.9"),
            ("X-Real-IP", "192.0.2.9"),
        ],
        "",
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert!(
        body.contains("\r\nx-forwarded-for: 127.0.0.1\r\n"),
        "{body}"
    );
    assert!(!body.contains("192.0.2.9"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_for_appends_by_default() {
    // HAProxy's `option forwardfor`: the client's list is kept.
    let (_lbd, to) = start("xffappend", "").await;
    let (_, _, body) = http(
        to,
        "GET",
        "/",
        &[
            ("Host", "api.example.com"),
            ("X-Forwarded-For", "192.0.2.9"),
        ],
        "",
    )
    .await;
    assert!(
        body.contains("\r\nx-forwarded-for: 192.0.2.9, 127.0.0.1\r\n"),
        "{body}"
    );
}
