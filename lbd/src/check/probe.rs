//! The I/O of one check: connect, optionally speak TLS or HTTP, judge the
//! answer. Reasons use HAProxy's words (L4OK, L4CON, L4TOUT, L6OK, L6RSP,
//! L7OK, L7STS, L7RSP) so admins recognise them.
//!
//! `tls-hello` differs from HAProxy's `ssl-hello-chk`: lbd sends rustls's
//! real ClientHello (TLS 1.2 and 1.3) and passes only when the first
//! handshake message back is a ServerHello; an alert or anything else fails.
//! HAProxy sends an SSLv3-style hello and also passes on an alert.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::agent::MAX_AGENT_LINE;

/// Longest HTTP status line read.
const MAX_STATUS_LINE: usize = 1024;
/// TLS record content types and handshake message type.
const TLS_HANDSHAKE: u8 = 22;
const TLS_ALERT: u8 = 21;
const TLS_SERVER_HELLO: u8 = 2;

/// What to do after the TCP connect.
#[derive(Debug, Clone)]
pub enum ProbeSpec {
    Tcp,
    TlsHello {
        sni: ServerName<'static>,
    },
    Http {
        tls: Option<ServerName<'static>>,
        /// The full request bytes.
        request: Vec<u8>,
        /// Accepted statuses; empty means 200..=399.
        expect: Vec<u16>,
    },
}

/// Result of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub ok: bool,
    pub reason: String,
}

fn fail(reason: impl Into<String>) -> Outcome {
    Outcome {
        ok: false,
        reason: reason.into(),
    }
}

fn pass(reason: impl Into<String>) -> Outcome {
    Outcome {
        ok: true,
        reason: reason.into(),
    }
}

/// Builds an HTTP/1.1 check request.
pub fn http_request(method: &str, path: &str, host: &str) -> Vec<u8> {
    format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: lbd-check\r\n\
         Accept: */*\r\nConnection: close\r\n\r\n"
    )
    .into_bytes()
}

/// Runs one check against `addr` within `timeout`.
pub async fn probe(
    spec: &ProbeSpec,
    addr: SocketAddr,
    timeout: Duration,
    tls: &Arc<ClientConfig>,
) -> Outcome {
    match tokio::time::timeout(timeout, run(spec, addr, tls)).await {
        Ok(outcome) => outcome,
        Err(_) => fail(format!(
            "L4TOUT: no answer within {}ms",
            timeout.as_millis()
        )),
    }
}

async fn run(spec: &ProbeSpec, addr: SocketAddr, tls: &Arc<ClientConfig>) -> Outcome {
    let stream = match TcpStream::connect(addr).await {
        Ok(s) => s,
        Err(e) => return fail(format!("L4CON: {e}")),
    };
    let _ = stream.set_nodelay(true);
    match spec {
        ProbeSpec::Tcp => pass("L4OK"),
        ProbeSpec::TlsHello { sni } => tls_hello(stream, sni.clone(), tls).await,
        ProbeSpec::Http {
            tls: None,
            request,
            expect,
        } => http(stream, request, expect).await,
        ProbeSpec::Http {
            tls: Some(sni),
            request,
            expect,
        } => match TlsConnector::from(tls.clone())
            .connect(sni.clone(), stream)
            .await
        {
            Ok(s) => http(s, request, expect).await,
            Err(e) => fail(format!("L6RSP: TLS handshake: {e}")),
        },
    }
}

async fn tls_hello(
    mut stream: TcpStream,
    sni: ServerName<'static>,
    tls: &Arc<ClientConfig>,
) -> Outcome {
    let mut hello = Vec::new();
    let written = rustls::ClientConnection::new(tls.clone(), sni)
        .map_err(|e| e.to_string())
        .and_then(|mut c| c.write_tls(&mut hello).map_err(|e| e.to_string()));
    if let Err(e) = written {
        return fail(format!("L6RSP: building ClientHello: {e}"));
    }
    if let Err(e) = stream.write_all(&hello).await {
        return fail(format!("L4CON: sending ClientHello: {e}"));
    }
    // Record header (type, version, length) and the first payload byte.
    let mut head = [0u8; 6];
    if let Err(e) = stream.read_exact(&mut head).await {
        return fail(format!("L6RSP: no TLS answer: {e}"));
    }
    match (head[0], head[5]) {
        (TLS_HANDSHAKE, TLS_SERVER_HELLO) => pass("L6OK: ServerHello"),
        (TLS_ALERT, _) => {
            let mut desc = [0u8; 1];
            let d = stream.read_exact(&mut desc).await.map_or(0, |_| desc[0]);
            fail(format!("L6RSP: TLS alert {d}"))
        }
        (t, _) => fail(format!("L6RSP: not a ServerHello (record type {t})")),
    }
}

async fn http<S>(mut stream: S, request: &[u8], expect: &[u16]) -> Outcome
where
    S: AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    if let Err(e) = stream.write_all(request).await {
        return fail(format!("L4CON: sending request: {e}"));
    }
    let line = match read_line(&mut stream, MAX_STATUS_LINE).await {
        Ok(l) => l,
        Err(e) => return fail(format!("L7RSP: {e}")),
    };
    let Some(status) = parse_status_line(&line) else {
        return fail(format!(
            "L7RSP: not an HTTP status line: {:?}",
            truncate(&line)
        ));
    };
    let ok = if expect.is_empty() {
        (200..400).contains(&status)
    } else {
        expect.contains(&status)
    };
    if ok {
        pass(format!("L7OK: {status}"))
    } else {
        fail(format!("L7STS: {status}"))
    }
}

fn truncate(s: &str) -> &str {
    s.get(..64).unwrap_or(s)
}

/// `HTTP/1.x NNN ...` -> NNN.
pub fn parse_status_line(line: &str) -> Option<u16> {
    let mut parts = line.split(' ');
    let version = parts.next()?;
    if !version.starts_with("HTTP/") {
        return None;
    }
    let code = parts.next()?;
    if code.len() != 3 {
        return None;
    }
    code.parse().ok()
}

/// Reads bytes up to `\n` (or EOF), at most `max`.
async fn read_line<S: AsyncRead + Unpin>(stream: &mut S, max: usize) -> Result<String, String> {
    let mut buf = Vec::with_capacity(128);
    let mut chunk = [0u8; 256];
    loop {
        let n = stream.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            if buf.is_empty() {
                return Err("connection closed without an answer".into());
            }
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(pos) = buf.iter().position(|b| *b == b'\n') {
            buf.truncate(pos);
            break;
        }
        if buf.len() > max {
            buf.truncate(max);
            break;
        }
    }
    Ok(String::from_utf8_lossy(&buf)
        .trim_end_matches('\r')
        .to_string())
}

/// Connects to an agent and reads its one line.
pub async fn agent(addr: SocketAddr, timeout: Duration) -> Result<String, String> {
    let read = async {
        let mut s = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        read_line(&mut s, MAX_AGENT_LINE).await
    };
    tokio::time::timeout(timeout, read)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {}ms", timeout.as_millis())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        assert_eq!(parse_status_line("HTTP/1.1 200 OK"), Some(200));
        assert_eq!(
            parse_status_line("HTTP/1.0 503 Service Unavailable"),
            Some(503)
        );
        assert_eq!(parse_status_line("HTTP/1.1 2000 OK"), None);
        assert_eq!(parse_status_line("SSH-2.0-OpenSSH"), None);
        assert_eq!(parse_status_line(""), None);
    }

    #[test]
    fn request_bytes() {
        let r = http_request("GET", "/favicon.ico", "cs1.example.com");
        assert!(r.starts_with(b"GET /favicon.ico HTTP/1.1\r\nHost: cs1.example.com\r\n"));
        assert!(r.ends_with(b"\r\n\r\n"));
    }
}
