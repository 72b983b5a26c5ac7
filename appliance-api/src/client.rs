//! The client side: one request, one reply, over a blocking Unix socket
//! with a deadline (the caller may be a CLI or a console screen, neither
//! of which may hang on a stuck server).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::wire::{Reply, Request};
use crate::MAX_REQUEST_BYTES;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("connecting to the appliance socket {}: {source} (is this the appliance, and is init up? on another host there is no store: configure lbd with its files)", path.display())]
    Connect { path: PathBuf, source: io::Error },
    #[error("talking to the appliance socket: {0}")]
    Io(#[from] io::Error),
    #[error("the appliance socket closed without answering")]
    NoAnswer,
    #[error("the appliance socket answered something unreadable: {0}")]
    BadReply(serde_json::Error),
}

/// Sends `request` to the socket at `path` and waits up to `timeout` for
/// each read and write.
pub fn call(path: &Path, request: &Request, timeout: Duration) -> Result<Reply, ClientError> {
    let stream = UnixStream::connect(path).map_err(|source| ClientError::Connect {
        path: path.into(),
        source,
    })?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    exchange(stream, request)
}

/// One exchange on an open stream (also for tests over a socket pair).
pub fn exchange(stream: UnixStream, request: &Request) -> Result<Reply, ClientError> {
    let mut line = serde_json::to_string(request).map_err(ClientError::BadReply)?;
    line.push('\n');
    (&stream).write_all(line.as_bytes())?;
    let mut reader = BufReader::new(stream).take(MAX_REQUEST_BYTES as u64 * 4);
    let mut answer = String::new();
    if reader.read_line(&mut answer)? == 0 {
        return Err(ClientError::NoAnswer);
    }
    serde_json::from_str(answer.trim_end()).map_err(ClientError::BadReply)
}

/// The server side of one connection: reads request lines (each at most
/// [`MAX_REQUEST_BYTES`]) and writes `handle`'s reply to each, until the
/// client closes. A line that is too long or not a request gets a refusal
/// naming the problem, never a dropped connection without a word.
pub fn serve(stream: UnixStream, handle: &mut dyn FnMut(Request) -> Reply) -> io::Result<()> {
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = Vec::new();
        let n = (&mut reader)
            .take(MAX_REQUEST_BYTES as u64 + 1)
            .read_until(b'\n', &mut line)?;
        if n == 0 {
            return Ok(());
        }
        let reply = if line.len() > MAX_REQUEST_BYTES {
            let reply = Reply::refused(format!(
                "request longer than {MAX_REQUEST_BYTES} bytes: send one JSON request per line"
            ));
            write_reply(&mut writer, &reply)?;
            return Ok(());
        } else {
            match serde_json::from_slice::<Request>(&line) {
                Ok(request) => handle(request),
                Err(e) => Reply::refused(format!(
                    "not a request: {e}; send one JSON object per line with \"op\" one of get, validate, commit, history, diff, restore, export, import, reboot, power_off"
                )),
            }
        };
        write_reply(&mut writer, &reply)?;
    }
}

fn write_reply(writer: &mut UnixStream, reply: &Reply) -> io::Result<()> {
    let mut line = serde_json::to_string(reply).map_err(io::Error::other)?;
    line.push('\n');
    writer.write_all(line.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Payload;

    /// Input: a get, then garbage, then an over-long line, on one
    /// connection. Output: the handler's answer, a refusal naming the
    /// operations, a refusal naming the limit; no panic, no hang.
    #[test]
    fn the_server_answers_every_line_or_says_why_not() {
        let (client, server) = UnixStream::pair().unwrap();
        let worker = std::thread::spawn(move || {
            serve(server, &mut |req| match req {
                Request::Get => Reply::Ok {
                    result: Payload::Valid,
                },
                _ => Reply::refused("only get here"),
            })
        });
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut reader = BufReader::new(client.try_clone().unwrap());
        let mut ask = |bytes: &[u8]| {
            (&client).write_all(bytes).unwrap();
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            serde_json::from_str::<Reply>(&line).unwrap()
        };
        assert_eq!(
            ask(b"{\"op\":\"get\"}\n"),
            Reply::Ok {
                result: Payload::Valid
            }
        );
        let Reply::Refused { error, .. } = ask(b"hello\n") else {
            panic!("garbage accepted")
        };
        assert!(error.contains("\"op\" one of get"), "{error}");
        let mut long = vec![b'x'; MAX_REQUEST_BYTES + 10];
        long.push(b'\n');
        let Reply::Refused { error, .. } = ask(&long) else {
            panic!("long line accepted")
        };
        assert!(error.contains("longer than"), "{error}");
        drop(client);
        worker.join().unwrap().unwrap();
    }

    #[test]
    fn a_missing_socket_says_where_and_why() {
        let dir = tempfile::tempdir().unwrap();
        let err = call(
            &dir.path().join("none.sock"),
            &Request::Get,
            Duration::from_secs(1),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("none.sock"), "{err}");
    }
}
