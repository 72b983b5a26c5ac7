//! Asks lbd for the status screen over its control socket (JSON lines:
//! a command line in, `{"ok":true,"result":...}` out). Every read and
//! write has a short timeout: a hung lbd leaves the screen saying so, it
//! never stops the status thread for long.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::render::{BackendView, FrontendView, LbdView, VrrpView};

/// Longest wait for each answer.
const TIMEOUT: Duration = Duration::from_millis(500);

#[derive(Deserialize)]
struct Reply<T> {
    ok: bool,
    result: Option<T>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct Info {
    current_connections: u32,
    reloads: u64,
    #[serde(default)]
    stats: Option<String>,
}

#[derive(Deserialize)]
struct Stat {
    frontends: Vec<FrontendView>,
    backends: Vec<BackendView>,
}

struct Conn {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Conn {
    fn open(path: &Path) -> Result<Self, String> {
        let stream = UnixStream::connect(path).map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(TIMEOUT))
            .and_then(|()| stream.set_write_timeout(Some(TIMEOUT)))
            .map_err(|e| e.to_string())?;
        let writer = stream.try_clone().map_err(|e| e.to_string())?;
        Ok(Self {
            reader: BufReader::new(stream),
            writer,
        })
    }

    fn ask<T: DeserializeOwned>(&mut self, command: &str) -> Result<T, String> {
        self.writer
            .write_all(format!("{command}\n").as_bytes())
            .map_err(|e| format!("{command}: {e}"))?;
        let mut line = String::new();
        self.reader
            .read_line(&mut line)
            .map_err(|e| format!("{command}: {e}"))?;
        parse_reply(command, &line)
    }
}

/// Decodes one reply line.
fn parse_reply<T: DeserializeOwned>(command: &str, line: &str) -> Result<T, String> {
    let reply: Reply<T> =
        serde_json::from_str(line).map_err(|e| format!("{command}: unreadable answer ({e})"))?;
    match (reply.ok, reply.result) {
        (true, Some(result)) => Ok(result),
        _ => Err(format!(
            "{command}: {}",
            reply.error.unwrap_or_else(|| "no result".into())
        )),
    }
}

/// lbd's view, or why there is none.
pub fn query(socket: &Path) -> LbdView {
    let answered = (|| {
        let mut conn = Conn::open(socket)?;
        let info: Info = conn.ask("show info")?;
        let stat: Stat = conn.ask("show stat")?;
        let vrrp: Vec<VrrpView> = conn.ask("show vrrp")?;
        Ok::<_, String>(LbdView::Answered {
            connections: info.current_connections,
            reloads: info.reloads,
            stats: info.stats,
            frontends: stat.frontends,
            backends: stat.backends,
            vrrp,
        })
    })();
    answered.unwrap_or_else(LbdView::Unreachable)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_decode_and_errors_say_which_command() {
        let vrrp: Vec<VrrpView> = parse_reply(
            "show vrrp",
            r#"{"ok":true,"result":[{"instance":"appliance","interface":"ens192","vrid":51,
               "state":"MASTER","priority":100,"configured_priority":100,
               "virtual_ips":["192.0.2.100/24"],"reason":"MasterDown","for_s":3}]}"#,
        )
        .expect("decodes, unknown fields ignored");
        assert_eq!(vrrp[0].state, "MASTER");
        let err = parse_reply::<Vec<VrrpView>>(
            "show vrrp",
            r#"{"ok":false,"error":"unknown command `show vrrp`"}"#,
        )
        .expect_err("lbd said no");
        assert_eq!(err, "show vrrp: unknown command `show vrrp`");
        assert!(parse_reply::<Info>("show info", "garbage").is_err());
    }

    #[test]
    fn a_missing_socket_is_unreachable_not_a_hang() {
        let view = query(Path::new("/nonexistent/lbd.sock"));
        assert!(matches!(view, LbdView::Unreachable(_)), "{view:?}");
    }

    #[test]
    fn answers_from_a_socket_in_order() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("lbd.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).expect("bind");
        let server = std::thread::spawn(move || {
            let (stream, _) = listener.accept().expect("accept");
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut writer = stream;
            for answer in [
                r#"{"ok":true,"result":{"current_connections":7,"reloads":1,"stats":"10.0.0.1:8404"}}"#,
                r#"{"ok":true,"result":{"frontends":[{"frontend":"web","status":"OPEN","active":7}],"backends":[{"backend":"web","servers":2,"usable":1}],"servers":[]}}"#,
                r#"{"ok":true,"result":[]}"#,
            ] {
                let mut line = String::new();
                reader.read_line(&mut line).expect("command");
                writeln!(writer, "{answer}").expect("answer");
            }
        });
        let view = query(&path);
        server.join().expect("server");
        let LbdView::Answered {
            connections,
            stats,
            frontends,
            backends,
            ..
        } = view
        else {
            panic!("not answered: {view:?}");
        };
        assert_eq!(connections, 7);
        assert_eq!(stats.as_deref(), Some("10.0.0.1:8404"));
        assert_eq!(frontends[0].status, "OPEN");
        assert_eq!(backends[0].usable, 1);
    }
}
