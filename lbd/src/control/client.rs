//! `lbd ctl`: send one command, print the response (or the event stream)
//! on stdout.

use std::io;
use std::path::{Path, PathBuf};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

/// Errors of the client.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("connecting to control socket {}: {source} (is lbd running? is --socket right?)", path.display())]
    Connect { path: PathBuf, source: io::Error },
    #[error("talking to lbd: {0}")]
    Io(#[from] io::Error),
    #[error("lbd closed the connection without answering")]
    NoAnswer,
    #[error("lbd: {0}")]
    Refused(String),
}

/// Sends `command` and returns the `result` of a successful response.
pub async fn request(socket: &Path, command: &str) -> Result<Value, ClientError> {
    let mut lines = send(socket, command).await?;
    let line = lines.next_line().await?.ok_or(ClientError::NoAnswer)?;
    decode(&line)
}

/// `show stat`, typed (for the appliance status screen).
pub async fn show_stat(socket: &Path) -> Result<crate::report::Stat, ClientError> {
    let v = request(socket, "show stat").await?;
    serde_json::from_value(v)
        .map_err(|e| ClientError::Refused(format!("bad show stat answer: {e}")))
}

/// `show info`, typed.
pub async fn show_info(socket: &Path) -> Result<crate::report::Info, ClientError> {
    let v = request(socket, "show info").await?;
    serde_json::from_value(v)
        .map_err(|e| ClientError::Refused(format!("bad show info answer: {e}")))
}

fn decode(line: &str) -> Result<Value, ClientError> {
    let v: Value = serde_json::from_str(line)
        .map_err(|e| ClientError::Refused(format!("bad response: {e}")))?;
    if v.get("ok").and_then(Value::as_bool) == Some(true) {
        Ok(v.get("result").cloned().unwrap_or(Value::Null))
    } else {
        let msg = v
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or("unknown error");
        Err(ClientError::Refused(msg.to_string()))
    }
}

async fn send(
    socket: &Path,
    command: &str,
) -> Result<tokio::io::Lines<BufReader<UnixStream>>, ClientError> {
    let mut stream = UnixStream::connect(socket)
        .await
        .map_err(|source| ClientError::Connect {
            path: socket.to_path_buf(),
            source,
        })?;
    stream.write_all(format!("{command}\n").as_bytes()).await?;
    Ok(BufReader::new(stream).lines())
}

/// Runs `lbd ctl`: prints pretty JSON (or one line per event).
pub async fn run(socket: &Path, command: &str) -> Result<(), ClientError> {
    if command.trim() == "events" {
        let mut lines = send(socket, command).await?;
        let first = lines.next_line().await?.ok_or(ClientError::NoAnswer)?;
        decode(&first)?;
        while let Some(line) = lines.next_line().await? {
            println!("{line}");
        }
        return Ok(());
    }
    let result = request(socket, command).await?;
    match result {
        Value::String(s) => println!("{s}"),
        other => println!(
            "{}",
            serde_json::to_string_pretty(&other).unwrap_or_default()
        ),
    }
    Ok(())
}
