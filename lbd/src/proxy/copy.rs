//! Bidirectional copy between client and server with half-close and an
//! inactivity timeout.
//!
//! ```text
//!   client --read--> [buf] --write--> server     (client_to_server)
//!   client <--write- [buf] <--read--- server     (server_to_client)
//! ```
//! When one side sends FIN, the other side's write half is shut down and the
//! opposite direction keeps flowing (HTTP/1.0 clients, `nc -N`, TLS
//! close_notify then FIN). The connection ends when both directions ended,
//! on an error, or when nothing moved either way for the idle timeout.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

/// Buffer per direction.
const BUF_SIZE: usize = 16 * 1024;

/// How a copy ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyEnd {
    /// Both sides closed.
    Closed,
    /// Nothing moved for the idle timeout.
    Idle,
    /// Reading from or writing to the client failed.
    ClientError,
    /// Reading from or writing to the server failed.
    ServerError,
}

/// Bytes moved and how it ended.
#[derive(Debug, Clone, Copy)]
pub struct CopyResult {
    pub client_to_server: u64,
    pub server_to_client: u64,
    pub end: CopyEnd,
}

/// Which side an I/O error came from.
pub(super) enum Side {
    Reader,
    Writer,
}

/// When a byte last moved either way, shared by both directions.
pub(super) struct Activity {
    origin: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    pub(super) fn new() -> Self {
        Self {
            origin: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    pub(super) fn touch(&self) {
        let now = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(now, Ordering::Relaxed);
    }

    fn idle_deadline(&self, idle: Duration) -> Instant {
        self.origin + Duration::from_millis(self.last_ms.load(Ordering::Relaxed)) + idle
    }
}

async fn pump<R, W>(
    mut reader: R,
    mut writer: W,
    moved: &AtomicU64,
    activity: &Activity,
) -> Result<(), (Side, io::Error)>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; BUF_SIZE];
    loop {
        let n = reader.read(&mut buf).await.map_err(|e| (Side::Reader, e))?;
        if n == 0 {
            // Half-close: pass the FIN on. A peer that already went away
            // is not an error of this direction.
            let _ = writer.shutdown().await;
            return Ok(());
        }
        writer
            .write_all(&buf[..n])
            .await
            .map_err(|e| (Side::Writer, e))?;
        moved.fetch_add(n as u64, Ordering::Relaxed);
        activity.touch();
    }
}

/// Runs both directions until both ended, an error, or `idle` without
/// activity.
pub(super) async fn drive<A, B>(c2s: A, s2c: B, activity: &Activity, idle: Duration) -> CopyEnd
where
    A: std::future::Future<Output = Result<(), (Side, io::Error)>>,
    B: std::future::Future<Output = Result<(), (Side, io::Error)>>,
{
    tokio::pin!(c2s, s2c);
    let mut c2s_done = false;
    let mut s2c_done = false;
    loop {
        if c2s_done && s2c_done {
            return CopyEnd::Closed;
        }
        tokio::select! {
            r = &mut c2s, if !c2s_done => match r {
                Ok(()) => c2s_done = true,
                Err((Side::Reader, _)) => return CopyEnd::ClientError,
                Err((Side::Writer, _)) => return CopyEnd::ServerError,
            },
            r = &mut s2c, if !s2c_done => match r {
                Ok(()) => s2c_done = true,
                Err((Side::Reader, _)) => return CopyEnd::ServerError,
                Err((Side::Writer, _)) => return CopyEnd::ClientError,
            },
            () = tokio::time::sleep_until(activity.idle_deadline(idle)) => {
                // Activity may have moved the deadline while we slept.
                if activity.idle_deadline(idle) <= Instant::now() {
                    return CopyEnd::Idle;
                }
            }
        }
    }
}

/// Copies both ways until both sides closed, an error, or `idle` passes
/// without a byte moving.
pub async fn copy_bidirectional<C, S>(client: C, server: S, idle: Duration) -> CopyResult
where
    C: AsyncRead + AsyncWrite + Unpin,
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (client_r, client_w) = tokio::io::split(client);
    let (server_r, server_w) = tokio::io::split(server);
    let activity = Activity::new();
    let up = AtomicU64::new(0);
    let down = AtomicU64::new(0);
    let end = drive(
        pump(client_r, server_w, &up, &activity),
        pump(server_r, client_w, &down, &activity),
        &activity,
        idle,
    )
    .await;
    CopyResult {
        client_to_server: up.load(Ordering::Relaxed),
        server_to_client: down.load(Ordering::Relaxed),
        end,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::duplex;

    #[tokio::test]
    async fn half_close_keeps_the_other_direction() {
        // Input: client sends "ping" then FIN; server answers "pong" after
        // seeing EOF. Output: the client gets "pong", both counts right.
        let (client, mut client_peer) = duplex(64);
        let (server, mut server_peer) = duplex(64);
        let proxy = tokio::spawn(copy_bidirectional(client, server, Duration::from_secs(60)));
        client_peer.write_all(b"ping").await.unwrap();
        client_peer.shutdown().await.unwrap();
        let mut got = Vec::new();
        server_peer.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"ping");
        server_peer.write_all(b"pong").await.unwrap();
        server_peer.shutdown().await.unwrap();
        let mut back = Vec::new();
        client_peer.read_to_end(&mut back).await.unwrap();
        assert_eq!(back, b"pong");
        let r = proxy.await.unwrap();
        assert_eq!(
            (r.client_to_server, r.server_to_client, r.end),
            (4, 4, CopyEnd::Closed)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn idle_connection_times_out() {
        // Input: nobody sends anything. Output: Idle after the timeout
        // (paused clock: no real waiting).
        let (client, _client_peer) = duplex(64);
        let (server, _server_peer) = duplex(64);
        let r = copy_bidirectional(client, server, Duration::from_secs(30)).await;
        assert_eq!(r.end, CopyEnd::Idle);
    }
}
