//! Test support: small real backends and an lbd process on loopback.
#![allow(dead_code)]

pub mod appliance;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader as TokioBufReader};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::JoinHandle;

/// Upper bound on waiting for lbd to log something (a hang guard, not a
/// timing assertion).
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A free loopback port (bound then released; the race is harmless here).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A TCP backend that greets each connection with `name\n` and then echoes.
pub struct EchoBackend {
    pub name: String,
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl EchoBackend {
    pub async fn start(name: &str) -> Self {
        Self::start_on(name, "127.0.0.1:0".parse().expect("literal")).await
    }

    pub async fn start_on(name: &str, addr: SocketAddr) -> Self {
        let listener = TcpListener::bind(addr).await.expect("bind backend");
        let addr = listener.local_addr().expect("addr");
        let greeting = format!("{name}\n");
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = listener.accept().await else {
                    return;
                };
                let greeting = greeting.clone();
                tokio::spawn(async move {
                    if s.write_all(greeting.as_bytes()).await.is_err() {
                        return;
                    }
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                    let _ = w.shutdown().await;
                });
            }
        });
        Self {
            name: name.to_string(),
            addr,
            task,
        }
    }

    /// Stops accepting: new connections are refused.
    pub fn kill(&self) {
        self.task.abort();
    }
}

impl Drop for EchoBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Connects (optionally from a given loopback source IP) and returns the
/// greeting line, i.e. which server answered.
pub async fn which_server(to: SocketAddr, from: Option<std::net::IpAddr>) -> String {
    let stream = connect_from(to, from).await;
    let mut reader = TokioBufReader::new(stream);
    let mut line = String::new();
    let _ = tokio::time::timeout(PATIENCE, reader.read_line(&mut line)).await;
    line.trim().to_string()
}

pub async fn connect_from(to: SocketAddr, from: Option<std::net::IpAddr>) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    if let Some(ip) = from {
        socket.bind(SocketAddr::new(ip, 0)).expect("bind source");
    }
    socket.connect(to).await.expect("connect to lbd")
}

/// Reads one line (the greeting) from a stream.
pub async fn read_line(stream: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while let Ok(Ok(1)) = tokio::time::timeout(PATIENCE, stream.read(&mut byte)).await {
        if byte[0] == b'\n' {
            break;
        }
        buf.push(byte[0]);
    }
    String::from_utf8_lossy(&buf).to_string()
}

/// A running `lbd run` with its stderr collected.
pub struct Lbd {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    rx: Receiver<String>,
    pub dir: PathBuf,
}

/// A fresh temp directory for one test.
pub fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lbd-test-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

impl Lbd {
    /// Writes `config` to a file in `dir` and starts lbd on it; waits for "ready".
    pub fn start(dir: &std::path::Path, config: &str) -> Self {
        let file = dir.join("lbd.toml");
        std::fs::write(&file, config).expect("write config");
        Self::start_files(dir, &[file])
    }

    pub fn start_files(dir: &std::path::Path, files: &[PathBuf]) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_lbd"));
        cmd.arg("run");
        for f in files {
            cmd.arg("-c").arg(f);
        }
        let mut child = cmd
            .env("LBD_LOG", "info,lbd=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn lbd");
        let stderr = child.stderr.take().expect("stderr");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = channel();
        let keep = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("lbd| {line}");
                keep.lock().expect("lines").push(line.clone());
                let _ = tx.send(line);
            }
        });
        let mut lbd = Self {
            child,
            lines,
            rx,
            dir: dir.to_path_buf(),
        };
        lbd.wait_for("ready");
        lbd
    }

    /// Waits until a stderr line contains every one of `parts`; returns it.
    /// One deadline for the whole wait: a chatty lbd cannot stretch it.
    pub fn wait_for_all(&mut self, parts: &[&str]) -> String {
        let deadline = std::time::Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) if parts.iter().all(|p| line.contains(p)) => return line,
                Ok(_) => {}
                Err(e) => panic!("lbd never logged {parts:?} within {PATIENCE:?}: {e}"),
            }
        }
    }

    pub fn wait_for(&mut self, part: &str) -> String {
        self.wait_for_all(&[part])
    }

    /// Like `wait_for_all`, but also accepts a line logged before now
    /// (e.g. before "ready").
    pub fn seen_or_wait(&mut self, parts: &[&str]) -> String {
        let seen = self
            .log()
            .into_iter()
            .find(|l| parts.iter().all(|p| l.contains(p)));
        match seen {
            Some(line) => line,
            None => self.wait_for_all(parts),
        }
    }

    /// Every line logged so far.
    pub fn log(&self) -> Vec<String> {
        self.lines.lock().expect("lines").clone()
    }

    /// The lines logged so far and from now on, shared (the appliance
    /// harness serves them as the appliance log).
    pub fn log_lines(&self) -> Arc<Mutex<Vec<String>>> {
        self.lines.clone()
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.child.wait().expect("wait lbd")
    }

    pub fn signal(&self, sig: &str) {
        let _ = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status();
    }
}

impl Drop for Lbd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A tiny HTTP server answering every request with `status` (changeable),
/// over TLS when `tls` is given.
pub struct HttpBackend {
    pub addr: SocketAddr,
    pub status: Arc<std::sync::atomic::AtomicU16>,
    pub name: String,
    task: JoinHandle<()>,
}

impl HttpBackend {
    pub async fn start(name: &str, tls: Option<Arc<rustls::ServerConfig>>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let status = Arc::new(std::sync::atomic::AtomicU16::new(200));
        let st = status.clone();
        let body = name.to_string();
        let task = tokio::spawn(async move {
            loop {
                let Ok((s, _)) = listener.accept().await else {
                    return;
                };
                let st = st.clone();
                let tls = tls.clone();
                let body = body.clone();
                tokio::spawn(async move {
                    match tls {
                        Some(cfg) => {
                            if let Ok(s) = tokio_rustls::TlsAcceptor::from(cfg).accept(s).await {
                                answer(s, &st, &body).await;
                            }
                        }
                        None => answer(s, &st, &body).await,
                    }
                });
            }
        });
        Self {
            addr,
            status,
            name: name.to_string(),
            task,
        }
    }

    pub fn set_status(&self, s: u16) {
        self.status.store(s, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Drop for HttpBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut s: S,
    status: &std::sync::atomic::AtomicU16,
    body: &str,
) {
    let mut req = Vec::new();
    let mut buf = [0u8; 1024];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => req.extend_from_slice(&buf[..n]),
        }
        if req.len() > 65536 {
            return;
        }
    }
    let code = status.load(std::sync::atomic::Ordering::Relaxed);
    let head = String::from_utf8_lossy(&req).to_string();
    let xff = head
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("x-forwarded-for:"))
        .and_then(|l| l.split_once(':').map(|(_, v)| v.trim().to_string()))
        .unwrap_or_default();
    let body = format!("{body} xff={xff}\n");
    let resp = format!(
        "HTTP/1.1 {code} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = s.write_all(resp.as_bytes()).await;
    let _ = s.shutdown().await;
}

/// A self-signed certificate for `localhost` and 127.0.0.1: (cert PEM, key PEM, server config).
pub fn self_signed() -> (String, String, Arc<rustls::ServerConfig>) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
        .expect("rcgen");
    let cert_pem = cert.cert.pem();
    let key_pem = cert.key_pair.serialize_pem();
    let der = cert.cert.der().clone();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(rustls::pki_types::PrivatePkcs8KeyDer::from(
        cert.key_pair.serialize_der(),
    ));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(vec![der], key)
    .expect("server config");
    (cert_pem, key_pem, Arc::new(config))
}

/// A TCP server that answers every connection with one fixed line (agent).
pub async fn line_server(line: Arc<Mutex<String>>) -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            let text = line.lock().expect("line").clone();
            let _ = s.write_all(format!("{text}\n").as_bytes()).await;
            let _ = s.shutdown().await;
        }
    });
    (addr, task)
}

/// Runs `lbd ctl --socket <dir>/lbd.sock <words>`; returns (success, stdout, stderr).
pub fn ctl(dir: &std::path::Path, words: &str) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_lbd"))
        .arg("ctl")
        .arg("--socket")
        .arg(dir.join("lbd.sock"))
        .args(words.split_whitespace())
        .output()
        .expect("run lbd ctl");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// `[global]` pointing the control socket and state file into `dir`.
pub fn global(dir: &std::path::Path) -> String {
    format!(
        "[global]\ncontrol_socket = \"{}\"\nstate_file = \"{}\"\nreload_deadline = \"1h\"\n",
        dir.join("lbd.sock").display(),
        dir.join("state.json").display()
    )
}

/// Status of `backend/server` from `show stat`.
pub fn status(dir: &std::path::Path, key: &str) -> String {
    let (ok, out, err) = ctl(dir, "show stat");
    assert!(ok, "show stat failed: {err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("show stat is JSON");
    let (b, s) = key.split_once('/').expect("b/s");
    v["servers"]
        .as_array()
        .expect("servers")
        .iter()
        .find(|r| r["backend"] == b && r["server"] == s)
        .map(|r| r["status"].as_str().unwrap_or("").to_string())
        .expect("server in show stat")
}

/// A raw HTTP/1.1 request with `Connection: close`; returns (status, head, body).
pub async fn http(
    to: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, String) {
    let mut s = TcpStream::connect(to).await.expect("connect http");
    let mut req = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req.push_str(&format!("Host: {to}\r\n"));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        req.push_str(&format!(
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).await.expect("send");
    read_response(&mut s).await
}

/// Reads a whole `Connection: close` response: (status, head, body).
pub async fn read_response<S: tokio::io::AsyncRead + Unpin>(s: &mut S) -> (u16, String, String) {
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(PATIENCE, s.read_to_end(&mut raw)).await;
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, head.to_string(), body.to_string())
}

/// `Authorization: Basic ...` for user:password.
/// One whole response with a `Content-Length` body read from a kept-alive
/// `stream`: however lbd splits its writes, nothing of it is left unread.
pub async fn read_one_response(stream: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .expect("a content-length");
            if got.len() >= end + 4 + length {
                return String::from_utf8_lossy(&got).into_owned();
            }
        }
        let n = stream.read(&mut buf).await.expect("response");
        assert!(
            n > 0,
            "closed mid-response: {:?}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
    }
}

pub fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// A console setup for the page and API tests: `lbd.toml` text with a
/// frontend `web` on its own port over `servers` (named a, b, ...), users
/// `admin` (admin-password) and `viewer` (viewer-password, read-only), and
/// `[console]` on a free port with a self-signed pair written into `dir`.
pub struct ConsoleConfig {
    pub text: String,
    pub port: u16,
    pub frontend: u16,
}

pub fn console_config(dir: &std::path::Path, servers: &[SocketAddr]) -> ConsoleConfig {
    let (cert, key, _) = self_signed();
    std::fs::write(dir.join("cert.pem"), cert).expect("write cert");
    std::fs::write(dir.join("key.pem"), key).expect("write key");
    let admin = lbd::password::hash_password("admin-password").expect("hash");
    let viewer = lbd::password::hash_password("viewer-password").expect("hash");
    let (port, frontend) = (free_port(), free_port());
    let mut text = format!(
        "{}[frontends.web]\nbind = [\"127.0.0.1:{frontend}\"]\ndefault_backend = \"web\"\n",
        global(dir)
    );
    for (name, addr) in ('a'..).zip(servers) {
        text += &format!("[backends.web.servers.{name}]\naddress = \"{addr}\"\n");
    }
    text += &format!(
        "[stats]\nbind = \"127.0.0.1:{}\"\n\
         [stats.users.admin]\ngroup = \"admin\"\npassword_hash = \"{admin}\"\n\
         [stats.users.viewer]\ngroup = \"read-only\"\npassword_hash = \"{viewer}\"\n\
         [console]\nbind = \"127.0.0.1:{port}\"\ncert = \"{}\"\nkey = \"{}\"\n",
        free_port(),
        dir.join("cert.pem").display(),
        dir.join("key.pem").display(),
    );
    ConsoleConfig {
        text,
        port,
        frontend,
    }
}

/// A TLS client that trusts only the PEM certificates in `certs`.
pub fn tls_client(certs: &[&str]) -> tokio_rustls::TlsConnector {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for pem in certs {
        let der = rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
            .expect("certificate PEM");
        roots.add(der).expect("trust anchor");
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// One HTTPS/1.1 exchange with `Connection: close` through `tls`, to
/// `localhost` at `to`; returns (status, head, body, the server's leaf
/// certificate in DER).
pub async fn https(
    tls: &tokio_rustls::TlsConnector,
    to: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, String, Vec<u8>) {
    let tcp = TcpStream::connect(to).await.expect("connect https");
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let mut s = tokio::time::timeout(PATIENCE, tls.connect(name, tcp))
        .await
        .expect("handshake in time")
        .expect("TLS handshake");
    let leaf = s
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.to_vec())
        .unwrap_or_default();
    let mut req = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req.push_str(&format!("Host: localhost:{}\r\n", to.port()));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method != "GET" {
        if !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        {
            req.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
        }
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).await.expect("send");
    let (status, head, body) = read_response(&mut s).await;
    (status, head, body, leaf)
}

/// The value of header `name` in a response head (first match).
pub fn header(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_string())
    })
}
