//! Log lines off the serving threads: a bounded, lossy queue drained by
//! one thread that writes to stderr (or the syslog socket).
//!
//! ```text
//!  tracing event (any worker) --format--> QueuedLine --try_send--> queue (QUEUE_LINES)
//!       full: dropped += 1, nothing waits                           |
//!                                                   log-writer thread: write_all to the sink
//!                                                   then, if lines were dropped since the last
//!                                                   note: "N log lines dropped" (WARN)
//! ```
//! lbd used to write each line to the pipe init reads, on the thread that
//! logged it. When init fell behind, the pipe filled, every worker blocked
//! in write(2) and lbd stopped serving (after 383 connections in the
//! issue's test) and took about 20 s to stop. Now only the writer thread
//! waits; a full queue drops lines and counts them (`show info`'s
//! `log_lines_dropped`). Per-connection lines (`lbd::log`) are shed first,
//! once the queue is half full, so state changes and errors keep their room.
//!
//! The counter is process-wide, as the tracing subscriber it belongs to is.

use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

use crate::syslog::Syslog;

/// Lines held while the sink is slow (a few hundred KiB at most).
pub const QUEUE_LINES: usize = 4096;
/// The per-connection log's target (`proxy::tcp`, `proxy::http`).
pub const CONNECTION_LOG_TARGET: &str = "lbd::log";

/// Lines dropped since start, in every queue of the process.
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// Log lines dropped since start because the log's reader fell behind.
pub fn dropped() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// Where the writer thread puts the lines.
pub enum Sink {
    /// Any byte stream: stderr in lbd, a pipe in tests.
    Stream(Box<dyn Write + Send>),
    /// One datagram per line.
    Syslog(Syslog),
}

impl Sink {
    fn write(&mut self, level: Level, text: &[u8]) {
        // Nothing to do about a failing sink but go on: the balancer
        // must not stop because its log is gone.
        match self {
            Sink::Stream(w) => {
                let _ = w.write_all(text);
                let _ = w.flush();
            }
            Sink::Syslog(s) => s.send(&level, text),
        }
    }
}

struct Line {
    level: Level,
    text: Vec<u8>,
}

/// The writing side, given to `tracing_subscriber::fmt().with_writer`.
#[derive(Clone)]
pub struct LogQueue {
    tx: SyncSender<Line>,
    /// Lines queued and not yet written (for shedding and [`Self::flush`]).
    pending: Arc<AtomicUsize>,
    capacity: usize,
}

impl LogQueue {
    /// Starts the writer thread for `sink` with room for `capacity` lines.
    pub fn start(sink: Sink, capacity: usize) -> io::Result<Self> {
        let (tx, rx) = sync_channel(capacity);
        let pending = Arc::new(AtomicUsize::new(0));
        let drained = pending.clone();
        // Read here, not in the thread: lines dropped before it runs count.
        let reported = dropped();
        std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || drain(&rx, sink, &drained, reported))?;
        Ok(Self {
            tx,
            pending,
            capacity,
        })
    }

    fn push(&self, line: Line, shed_first: bool) {
        if shed_first && self.pending.load(Ordering::Relaxed) >= self.capacity / 2 {
            DROPPED.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.pending.fetch_add(1, Ordering::Relaxed);
        match self.tx.try_send(line) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.pending.fetch_sub(1, Ordering::Relaxed);
                DROPPED.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Waits up to `deadline` for the queued lines to be written (at exit:
    /// the last lines say why lbd stopped), never longer: a reader that
    /// has stopped reading must not hold lbd's exit.
    pub fn flush(&self, deadline: Duration) {
        let until = Instant::now() + deadline;
        while self.pending.load(Ordering::Relaxed) > 0 && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// The writer thread: one line at a time, then a note of what was lost.
fn drain(rx: &Receiver<Line>, mut sink: Sink, pending: &AtomicUsize, mut reported: u64) {
    while let Ok(line) = rx.recv() {
        sink.write(line.level, &line.text);
        pending.fetch_sub(1, Ordering::Relaxed);
        let now = dropped();
        if now > reported {
            let note = format!(
                "WARN lbd: {} log lines dropped: the log's reader fell behind \
                 (log_lines_dropped={now})\n",
                now - reported
            );
            sink.write(Level::WARN, note.as_bytes());
            reported = now;
        }
    }
}

/// One event's text, queued whole on drop.
pub struct QueuedLine<'a> {
    queue: &'a LogQueue,
    level: Level,
    shed_first: bool,
    text: Vec<u8>,
}

impl Write for QueuedLine<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.text.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for QueuedLine<'_> {
    fn drop(&mut self) {
        if self.text.is_empty() {
            return;
        }
        let line = Line {
            level: self.level,
            text: std::mem::take(&mut self.text),
        };
        self.queue.push(line, self.shed_first);
    }
}

impl<'a> MakeWriter<'a> for LogQueue {
    type Writer = QueuedLine<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        QueuedLine {
            queue: self,
            level: Level::INFO,
            shed_first: false,
            text: Vec::new(),
        }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Self::Writer {
        QueuedLine {
            queue: self,
            level: *meta.level(),
            shed_first: meta.target() == CONNECTION_LOG_TARGET,
            text: Vec::with_capacity(256),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// A sink that blocks until `open` is set, then records what it gets.
    #[derive(Clone, Default)]
    struct Gate {
        open: Arc<(Mutex<bool>, std::sync::Condvar)>,
        seen: Arc<Mutex<Vec<u8>>>,
    }

    impl Write for Gate {
        fn write(&mut self, data: &[u8]) -> io::Result<usize> {
            let (lock, cvar) = &*self.open;
            let mut open = lock.lock().expect("gate");
            while !*open {
                open = cvar.wait(open).expect("gate");
            }
            self.seen.lock().expect("seen").extend_from_slice(data);
            Ok(data.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Gate {
        fn open(&self) {
            let (lock, cvar) = &*self.open;
            *lock.lock().expect("gate") = true;
            cvar.notify_all();
        }

        fn text(&self) -> String {
            String::from_utf8_lossy(&self.seen.lock().expect("seen")).to_string()
        }
    }

    fn line(queue: &LogQueue, text: &str) {
        let mut w = queue.make_writer();
        w.write_all(text.as_bytes()).expect("buffer");
    }

    /// Input: a sink that does not take anything, and 100 lines logged
    /// into a queue of 8; then the sink opens and one more line comes.
    /// Output: logging never waited; lines beyond the queue were dropped
    /// and counted; once writing resumes the sink gets the queued lines
    /// and a note of how many were dropped.
    #[test]
    fn a_stuck_sink_drops_and_counts_instead_of_blocking() {
        let gate = Gate::default();
        let queue = LogQueue::start(Sink::Stream(Box::new(gate.clone())), 8).expect("start");
        let before = dropped();
        // The writer thread takes one line and blocks in write: at most
        // 1 + 8 are held, the rest dropped.
        for i in 0..100 {
            line(&queue, &format!("line {i}\n"));
        }
        let lost = dropped() - before;
        assert!(lost >= 100 - 9, "{lost} dropped");
        gate.open();
        queue.flush(Duration::from_secs(5));
        line(&queue, "after\n");
        queue.flush(Duration::from_secs(5));
        let text = gate.text();
        assert!(text.contains("line 0\n"), "{text}");
        assert!(text.contains("after\n"), "{text}");
        assert!(text.contains("log lines dropped"), "{text}");
        assert!(!text.contains("line 99\n"), "{text}");
    }

    /// Input: a queue half full of lines, then a per-connection line and
    /// an ordinary one.
    /// Output: the per-connection line is shed, the other queued.
    #[test]
    fn connection_lines_are_shed_first() {
        let gate = Gate::default();
        let queue = LogQueue::start(Sink::Stream(Box::new(gate.clone())), 8).expect("start");
        for i in 0..6 {
            line(&queue, &format!("line {i}\n"));
        }
        let mut conn = QueuedLine {
            queue: &queue,
            level: Level::INFO,
            shed_first: true,
            text: Vec::new(),
        };
        conn.write_all(b"connection client=x\n").expect("buffer");
        drop(conn);
        line(&queue, "state change\n");
        gate.open();
        queue.flush(Duration::from_secs(5));
        let text = gate.text();
        assert!(!text.contains("connection client=x"), "{text}");
        assert!(text.contains("state change"), "{text}");
    }
}
