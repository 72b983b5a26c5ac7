//! The client stream of an http connection, shared with hyper so that lbd
//! can still answer `408 Request Timeout` when hyper gives up on a request
//! head that did not arrive within `timeout.http_request` (hyper closes
//! without a word; HAProxy answers 408, and admins read 408s in logs).
//! It also fails a write to a client that has read nothing for
//! `timeout.client` ([`WriteStall`]): once a response is queued, nothing
//! else would ever close the connection of a client that stopped reading.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::time::Sleep;

/// What lbd writes when a request head is late.
pub const REQUEST_TIMEOUT_RESPONSE: &[u8] = b"HTTP/1.1 408 Request Timeout\r\n\
Content-Type: text/plain; charset=utf-8\r\nContent-Length: 57\r\nConnection: close\r\n\r\n\
request headers not received within timeout.http_request\n";

#[derive(Debug, Default)]
struct Progress {
    /// A response was written on this connection.
    responded: bool,
    /// Bytes arrived since the last response.
    pending_request: bool,
}

/// A write that stays pending for `idle` fails with `TimedOut`. The timer
/// exists only while a write waits (a client reading along never makes
/// one).
struct WriteStall {
    idle: Duration,
    timer: Option<Pin<Box<Sleep>>>,
}

impl WriteStall {
    fn new(idle: Duration) -> Self {
        Self { idle, timer: None }
    }

    fn check<T>(
        &mut self,
        cx: &mut Context<'_>,
        result: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if result.is_ready() {
            self.timer = None;
            return result;
        }
        let idle = self.idle;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.timer = None;
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("client read nothing for timeout.client ({idle:?})"),
                )))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// One handle per side: hyper's and lbd's.
pub struct ClientIo<S> {
    stream: Arc<Mutex<S>>,
    progress: Arc<Mutex<Progress>>,
    stall: WriteStall,
    /// Set once hyper is done: a tunnel that writes now has its own idle
    /// timeout (`timeout.tunnel`), which may be longer.
    stall_off: Arc<AtomicBool>,
}

impl<S> ClientIo<S> {
    /// The handle for hyper and the one lbd keeps; writes fail after
    /// `write_idle` without progress.
    pub fn pair(stream: S, write_idle: Duration) -> (Self, Self) {
        let a = Self {
            stream: Arc::new(Mutex::new(stream)),
            progress: Arc::default(),
            stall: WriteStall::new(write_idle),
            stall_off: Arc::default(),
        };
        let b = Self {
            stream: a.stream.clone(),
            progress: a.progress.clone(),
            stall: WriteStall::new(write_idle),
            stall_off: a.stall_off.clone(),
        };
        (a, b)
    }

    /// From now on writes wait as long as they need (see `stall_off`).
    pub fn end_write_stall(&self) {
        self.stall_off.store(true, Ordering::Relaxed);
    }

    fn stall_check<T>(
        &mut self,
        cx: &mut Context<'_>,
        result: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if self.stall_off.load(Ordering::Relaxed) {
            return result;
        }
        self.stall.check(cx, result)
    }

    fn lock(&self) -> io::Result<MutexGuard<'_, S>> {
        self.stream
            .lock()
            .map_err(|_| io::Error::other("client stream lock poisoned"))
    }

    fn progress(&self, f: impl FnOnce(&mut Progress)) {
        if let Ok(mut p) = self.progress.lock() {
            f(&mut p);
        }
    }

    /// A response byte went out: the connection has answered.
    fn wrote(&self, result: &Poll<io::Result<usize>>) {
        if matches!(result, Poll::Ready(Ok(n)) if *n > 0) {
            self.progress(|p| {
                p.responded = true;
                p.pending_request = false;
            });
        }
    }
}

impl<S: AsyncWrite + Unpin> ClientIo<S> {
    /// After hyper's header timeout: answers 408 when a request was under
    /// way (or none ever came on this connection), and closes quietly when
    /// an idle keep-alive connection simply expired (as HAProxy does).
    /// Needs hyper's handle dropped first.
    pub async fn answer_request_timeout(self) {
        let late_request = self
            .progress
            .lock()
            .map_or(true, |p| !p.responded || p.pending_request);
        let Ok(stream) = Arc::try_unwrap(self.stream) else {
            return;
        };
        let Ok(mut stream) = stream.into_inner() else {
            return;
        };
        if late_request {
            let _ = stream.write_all(REQUEST_TIMEOUT_RESPONSE).await;
        }
        let _ = stream.shutdown().await;
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ClientIo<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut *self.lock()?).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.progress(|p| p.pending_request = true);
        }
        result
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ClientIo<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut *this.lock()?).poll_write(cx, buf);
        this.wrote(&result);
        this.stall_check(cx, result)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let result = Pin::new(&mut *this.lock()?).poll_flush(cx);
        this.stall_check(cx, result)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.lock()?).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut *this.lock()?).poll_write_vectored(cx, bufs);
        this.wrote(&result);
        this.stall_check(cx, result)
    }

    fn is_write_vectored(&self) -> bool {
        self.lock().is_ok_and(|s| s.is_write_vectored())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_length_matches_its_body() {
        let text = std::str::from_utf8(REQUEST_TIMEOUT_RESPONSE).expect("ascii");
        let (_, body) = text.split_once("\r\n\r\n").expect("head and body");
        assert!(
            text.contains(&format!("Content-Length: {}\r\n", body.len())),
            "{text}"
        );
    }
}
