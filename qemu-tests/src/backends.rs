//! Small HTTPS servers standing in for the admin's backends (Horizon
//! connection servers, App Volumes managers): each answers every GET with
//! its own name, so a test sees which server lbd picked. They run inside
//! the test's network namespace and die with it.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::netns::NetNs;

/// Python's standard library only: Debian's python3 is on every test
/// machine. The TLS handshake happens in the connection's thread
/// (`do_handshake_on_connect=False`), so lbd's plain TCP checks, which
/// connect and close, never hold up the accept loop.
const SERVER: &str = r#"
import http.server, ssl, sys
addr, port, name, cert, key = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = (name + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    def handle_error(self, request, client_address):
        pass
server = Server((addr, port), Handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
server.socket = ctx.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
server.serve_forever()
"#;

/// A self-signed certificate and key for the backends, in `dir`.
pub struct Certificate {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Certificate {
    pub fn make(dir: &Path) -> Self {
        let cert = dir.join("backend.pem");
        let key = dir.join("backend.key");
        let out = Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
            ])
            .args(["-nodes", "-days", "2", "-subj", "/CN=backend.test"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .unwrap_or_else(|e| panic!("openssl: {e} (apt-get install openssl)"));
        assert!(
            out.status.success(),
            "openssl req: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self { cert, key }
    }
}

/// Starts an HTTPS server named `name` on `addr:port` inside `ns`.
pub fn spawn_https(ns: &mut NetNs, addr: &str, port: u16, name: &str, cert: &Certificate) {
    let port = port.to_string();
    let cert_path = cert.cert.display().to_string();
    let key_path = cert.key.display().to_string();
    ns.spawn(
        "python3",
        &["-c", SERVER, addr, &port, name, &cert_path, &key_path],
    );
}

/// One HTTPS GET from `source` inside `ns` (curl, certificate not
/// checked: the backends' is self-signed); the body, or `None` when the
/// request failed within `timeout_s`.
pub fn https_get(ns: &NetNs, source: &str, url: &str, timeout_s: u32) -> Option<String> {
    let timeout = timeout_s.to_string();
    let out = ns.exec(
        "curl",
        &["-sk", "--max-time", &timeout, "--interface", source, url],
    );
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}
