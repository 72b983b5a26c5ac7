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
//! body would never be looked at. What the server connection already holds
//! when the head arrives (a small answer, usually all of it) is taken at
//! once, so hyper writes head and body in one `writev` and the pump runs
//! only for a body still on its way.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll, Waker};
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

/// The client side of a pumped response body: the frames that were ready
/// at once, then what the pump sends (`rx`, none when the body was whole).
pub struct ChannelBody {
    ready: VecDeque<Frame<Bytes>>,
    rx: Option<mpsc::Receiver<Piece>>,
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
        if let Some(frame) = self.ready.pop_front() {
            return Poll::Ready(Some(Ok(frame)));
        }
        if self.done {
            return Poll::Ready(None);
        }
        let Some(rx) = self.rx.as_mut() else {
            self.done = true;
            return Poll::Ready(None);
        };
        match ready!(rx.poll_recv(cx)) {
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
        self.ready.is_empty() && (self.done || self.rx.is_none())
    }

    fn size_hint(&self) -> SizeHint {
        self.hint
    }
}

/// At most this many frames are taken before the pump starts: enough for
/// a small answer, never a large body held in memory here.
const READY_FRAMES: usize = 8;

/// How much of a server's body [`take_ready`] found.
enum Taken {
    /// The whole body: no pump needed.
    Whole,
    /// More is on its way: the pump waits for it.
    More,
    /// The body failed: the client connection is cut after what was taken.
    Failed,
}

/// What the server's `body` has ready without waiting, up to
/// [`READY_FRAMES`].
fn take_ready(body: &mut Incoming, lease: &Lease) -> (VecDeque<Frame<Bytes>>, Taken) {
    let mut ready = VecDeque::new();
    // A pending poll registers this no-op waker; the pump polls again at
    // once with its own.
    let mut cx = Context::from_waker(Waker::noop());
    while ready.len() < READY_FRAMES {
        match Pin::new(&mut *body).poll_frame(&mut cx) {
            Poll::Ready(Some(Ok(frame))) => ready.push_back(frame),
            Poll::Ready(None) => return (ready, Taken::Whole),
            Poll::Ready(Some(Err(e))) => {
                let server = lease.server.key();
                tracing::debug!(%server, error = %e, "response body failed");
                return (ready, Taken::Failed);
            }
            Poll::Pending => break,
        }
    }
    let taken = if body.is_end_stream() {
        Taken::Whole
    } else {
        Taken::More
    };
    (ready, taken)
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
    let (ready, taken) = take_ready(&mut body, &lease);
    let (tx, rx) = mpsc::channel(1);
    match taken {
        Taken::More => {}
        // Nothing left to wait for: the server slot is free now.
        Taken::Whole => {
            return ChannelBody {
                ready,
                rx: None,
                hint,
                done: true,
            }
        }
        // A channel closed without an end: the client is cut once the
        // frames taken are sent.
        Taken::Failed => {
            drop(tx);
            return ChannelBody {
                ready,
                rx: Some(rx),
                hint,
                done: false,
            };
        }
    }
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
        ready,
        rx: Some(rx),
        hint,
        done: false,
    }
}
