//! Logging to the local syslog socket (`/dev/log`, RFC 3164 framing) as an
//! alternative to stderr: each tracing event becomes one datagram
//! `<PRI>lbd[PID]: message`, facility daemon.

use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::sync::Arc;

use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

/// Default syslog socket.
pub use lbd_config::DEFAULT_SYSLOG_SOCKET;
/// Facility `daemon` (3).
const FACILITY_DAEMON: u8 = 3;

/// Makes one [`SyslogLine`] per event.
#[derive(Clone)]
pub struct Syslog {
    socket: Arc<UnixDatagram>,
    pid: u32,
}

impl Syslog {
    /// Connects to the syslog socket at `path`.
    pub fn connect(path: &Path) -> io::Result<Self> {
        let socket = UnixDatagram::unbound()?;
        socket.connect(path)?;
        Ok(Self {
            socket: Arc::new(socket),
            pid: std::process::id(),
        })
    }
}

/// Severity per RFC 5424 for a tracing level.
fn severity(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        Level::DEBUG | Level::TRACE => 7,
    }
}

/// Collects one event's text and sends it as one datagram on drop.
pub struct SyslogLine {
    socket: Arc<UnixDatagram>,
    buf: Vec<u8>,
}

impl io::Write for SyslogLine {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for SyslogLine {
    fn drop(&mut self) {
        while self.buf.last().is_some_and(|b| *b == b'\n') {
            self.buf.pop();
        }
        // An absent syslog must not crash the balancer. A full one blocks
        // the sender: lbd sends from its log-writer thread only
        // ([`crate::log_queue`]), never from a serving thread.
        let _ = self.socket.send(&self.buf);
    }
}

impl Syslog {
    /// Sends `text` (one formatted event) as one datagram at `level`.
    pub fn send(&self, level: &Level, text: &[u8]) {
        let mut line = self.line(level);
        line.buf.extend_from_slice(text);
    }
}

impl<'a> MakeWriter<'a> for Syslog {
    type Writer = SyslogLine;

    fn make_writer(&'a self) -> Self::Writer {
        self.line(&Level::INFO)
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Self::Writer {
        self.line(meta.level())
    }
}

impl Syslog {
    fn line(&self, level: &Level) -> SyslogLine {
        let pri = FACILITY_DAEMON * 8 + severity(level);
        SyslogLine {
            socket: self.socket.clone(),
            buf: format!("<{pri}>lbd[{}]: ", self.pid).into_bytes(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn one_datagram_per_event_with_priority() {
        let dir = std::env::temp_dir().join(format!("lbd-syslog-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("log.sock");
        let server = UnixDatagram::bind(&path).unwrap();
        let syslog = Syslog::connect(&path).unwrap();
        {
            let mut w = syslog.line(&Level::WARN);
            w.write_all(b"server is DOWN ").unwrap();
            w.write_all(b"server=b/s\n").unwrap();
        }
        let mut buf = [0u8; 256];
        let n = server.recv(&mut buf).unwrap();
        let text = String::from_utf8_lossy(&buf[..n]);
        assert_eq!(
            text,
            format!("<28>lbd[{}]: server is DOWN server=b/s", std::process::id())
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
