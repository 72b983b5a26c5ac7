//! Bodies with inactivity timeouts, both ways (HAProxy's `timeout client`
//! and `timeout server` apply to bodies, not only to heads).
//!
//! ```text
//!  request:  client --Incoming--> IdleBody (timeout.client while the
//!            server side waits for the next bytes) --> server
//!  response: server --Incoming--> pump task --mpsc(1)--> ChannelBody --> client
//!            the pump waits timeout.server for the server's next frame and
//!            timeout.client for the client to take the last one; either
//!            expiring ends the pump, which frees the server slot (Lease)
//!            and closes the server connection, and the client connection
//!            is cut (an error, never a clean but short body).
//! ```
//! The response side runs in its own task because a client that stops
//! reading stops hyper from polling the body at all: a timer inside the
//! body would never be looked at.

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use tokio::sync::mpsc;
use tokio::time::Sleep;

use crate::runtime::Lease;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A body side went quiet for its timeout.
#[derive(Debug, thiserror::Error)]
pub enum BodyTimeout {
    #[error("client sent no body bytes for timeout.client ({0:?})")]
    ClientSend(Duration),
    #[error("client read no body bytes for timeout.client ({0:?})")]
    ClientRead(Duration),
    #[error("server sent no body bytes for timeout.server ({0:?})")]
    ServerSend(Duration),
    #[error("response body ended early")]
    Cut,
}

/// A request body that fails when the client sends nothing for `idle`
/// while the server side waits for it.
pub struct IdleBody {
    inner: Incoming,
    idle: Duration,
    timer: Pin<Box<Sleep>>,
}

impl IdleBody {
    pub fn new(inner: Incoming, idle: Duration) -> Self {
        Self {
            inner,
            idle,
            timer: Box::pin(tokio::time::sleep(idle)),
        }
    }
}

impl Body for IdleBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                let next = tokio::time::Instant::now() + this.idle;
                this.timer.as_mut().reset(next);
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => {
                ready!(this.timer.as_mut().poll(cx));
                Poll::Ready(Some(Err(BodyTimeout::ClientSend(this.idle).into())))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

enum Piece {
    Frame(Frame<Bytes>),
    End,
}

/// The client side of a pumped response body.
pub struct ChannelBody {
    rx: mpsc::Receiver<Piece>,
    hint: SizeHint,
    done: bool,
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.done {
            return Poll::Ready(None);
        }
        match ready!(self.rx.poll_recv(cx)) {
            Some(Piece::Frame(f)) => Poll::Ready(Some(Ok(f))),
            Some(Piece::End) => {
                self.done = true;
                Poll::Ready(None)
            }
            // The pump stopped without an end: cut the client connection.
            None => {
                self.done = true;
                Poll::Ready(Some(Err(BodyTimeout::Cut.into())))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }

    fn size_hint(&self) -> SizeHint {
        self.hint
    }
}

/// Streams `body` to the client through a task that holds `lease` (the
/// server slot) until the body ends or a side stays quiet too long.
pub fn pump_response(
    mut body: Incoming,
    lease: Lease,
    server_idle: Duration,
    client_idle: Duration,
) -> ChannelBody {
    let hint = body.size_hint();
    let (tx, rx) = mpsc::channel(1);
    tokio::spawn(async move {
        let server = lease.server.key();
        let end = loop {
            let frame = match tokio::time::timeout(server_idle, body.frame()).await {
                Ok(Some(Ok(f))) => Piece::Frame(f),
                Ok(None) => Piece::End,
                Ok(Some(Err(e))) => {
                    tracing::debug!(%server, error = %e, "response body failed");
                    break None;
                }
                Err(_) => break Some(BodyTimeout::ServerSend(server_idle)),
            };
            let last = matches!(frame, Piece::End);
            match tokio::time::timeout(client_idle, tx.send(frame)).await {
                Ok(Ok(())) if last => return,
                Ok(Ok(())) => {}
                // The client connection is gone.
                Ok(Err(_)) => return,
                Err(_) => break Some(BodyTimeout::ClientRead(client_idle)),
            }
        };
        if let Some(e) = end {
            tracing::debug!(%server, error = %e, "response cut");
        }
        // `lease` and the server body drop here: slot freed, server
        // connection closed.
    });
    ChannelBody {
        rx,
        hint,
        done: false,
    }
}
