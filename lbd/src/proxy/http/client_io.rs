//! The client stream of an http connection, shared with hyper so that lbd
//! can still answer `408 Request Timeout` when hyper gives up on a request
//! head that did not arrive within `timeout.http_request` (hyper closes
//! without a word; HAProxy answers 408, and admins read 408s in logs).

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};

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

/// One handle per side: hyper's and lbd's.
pub struct ClientIo<S> {
    stream: Arc<Mutex<S>>,
    progress: Arc<Mutex<Progress>>,
}

impl<S> ClientIo<S> {
    /// The handle for hyper and the one lbd keeps.
    pub fn pair(stream: S) -> (Self, Self) {
        let a = Self {
            stream: Arc::new(Mutex::new(stream)),
            progress: Arc::default(),
        };
        let b = Self {
            stream: a.stream.clone(),
            progress: a.progress.clone(),
        };
        (a, b)
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
        let result = Pin::new(&mut *self.lock()?).poll_write(cx, buf);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.progress(|p| {
                p.responded = true;
                p.pending_request = false;
            });
        }
        result
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.lock()?).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.lock()?).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut *self.lock()?).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.progress(|p| {
                p.responded = true;
                p.pending_request = false;
            });
        }
        result
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
