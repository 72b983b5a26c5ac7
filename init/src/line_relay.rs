//! Console lines from init's helper threads (the appliance socket, a
//! debug-port command) to the event loop, which owns the consoles.
//!
//! A non-blocking pipe: a thread writes whole lines, the loop polls the
//! read end with everything else and prints what it reads. A full pipe
//! drops the line and counts it: a helper thread never waits for PID 1,
//! and PID 1 never waits for a helper.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use nix::fcntl::OFlag;

/// The write end, cloned into each thread that reports.
#[derive(Clone)]
pub struct LineSender {
    pipe: Arc<File>,
    dropped: Arc<AtomicU64>,
}

/// The read end, polled by the event loop.
pub struct LineReceiver {
    pipe: File,
    partial: Vec<u8>,
    dropped: Arc<AtomicU64>,
}

pub fn pair() -> std::io::Result<(LineSender, LineReceiver)> {
    let (read, write) = nix::unistd::pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC)?;
    let dropped = Arc::new(AtomicU64::new(0));
    Ok((
        LineSender {
            pipe: Arc::new(File::from(write)),
            dropped: Arc::clone(&dropped),
        },
        LineReceiver {
            pipe: File::from(read),
            partial: Vec::new(),
            dropped,
        },
    ))
}

/// Longest line kept whole; the pipe writes up to PIPE_BUF atomically, so
/// lines from two threads never interleave.
const MAX_LINE: usize = 4000;

/// How long a paced sender waits for room in a full pipe.
const PACE: Duration = Duration::from_millis(1);

impl LineSender {
    pub fn line(&self, text: &str) {
        if (&*self.pipe)
            .write_all(whole_line(text).as_bytes())
            .is_err()
        {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Like [`LineSender::line`], for a helper thread that may wait (a
    /// burst of many lines): on a full pipe it retries instead of
    /// dropping, so the burst arrives whole at the pace the loop prints.
    /// PID 1 itself still never waits.
    pub fn line_paced(&self, text: &str) {
        let line = whole_line(text);
        loop {
            // Up to PIPE_BUF bytes a write is all or nothing: no partial
            // line to finish.
            match (&*self.pipe).write(line.as_bytes()) {
                Ok(_) => return,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(PACE),
                Err(_) => {
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
        }
    }
}

/// `text` as one line of at most [`MAX_LINE`] bytes, newline-terminated.
fn whole_line(text: &str) -> String {
    let mut line: String = text.chars().filter(|c| *c != '\n').collect();
    if line.len() > MAX_LINE {
        let mut cut = MAX_LINE;
        while !line.is_char_boundary(cut) {
            cut -= 1;
        }
        line.truncate(cut);
    }
    line.push('\n');
    line
}

impl LineReceiver {
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.pipe.as_fd()
    }

    /// Every complete line received so far, then a note of dropped ones.
    pub fn read_lines(&mut self) -> Vec<String> {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = self.pipe.read(&mut buf) {
            self.partial.extend_from_slice(&buf[..n]);
        }
        let mut lines = Vec::new();
        while let Some(end) = self.partial.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            lines.push(String::from_utf8_lossy(&line[..end]).into_owned());
        }
        let dropped = self.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            lines.push(format!(
                "init: warning: {dropped} lines from init's helper threads were dropped (the console was behind)"
            ));
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Input: lines from two threads, then more than the pipe holds.
    /// Output: every line whole; the overflow dropped and counted, the
    /// writer never blocked.
    #[test]
    fn lines_arrive_whole_and_overflow_is_counted() {
        let (tx, mut rx) = pair().unwrap();
        let other = tx.clone();
        std::thread::spawn(move || other.line("from a thread"))
            .join()
            .unwrap();
        tx.line("two\nparts");
        let lines = rx.read_lines();
        assert_eq!(lines, vec!["from a thread", "twoparts"]);
        let long = "x".repeat(3000);
        for _ in 0..100 {
            tx.line(&long);
        }
        let lines = rx.read_lines();
        assert!(lines.len() < 100, "a pipe holds less than 300 KB");
        assert!(lines.iter().take(lines.len() - 1).all(|l| l == &long));
        assert!(lines
            .last()
            .unwrap()
            .contains("lines from init's helper threads were dropped"));
    }

    /// Input: a thread sends 300 KB of paced lines, five times what the
    /// pipe holds, while this side reads. Output: every line arrives, in
    /// order, none dropped.
    #[test]
    fn paced_lines_wait_for_room_instead_of_dropping() {
        let (tx, mut rx) = pair().unwrap();
        let long = "y".repeat(3000);
        let writer = {
            let long = long.clone();
            std::thread::spawn(move || {
                for _ in 0..100 {
                    tx.line_paced(&long);
                }
                tx.line_paced("end");
            })
        };
        let mut got = Vec::new();
        // Until the writer is done (a dead writer ends the loop too), then
        // what it left in the pipe.
        while !writer.is_finished() {
            got.extend(rx.read_lines());
            std::thread::yield_now();
        }
        writer.join().unwrap();
        got.extend(rx.read_lines());
        assert_eq!(got.len(), 101);
        assert!(got[..100].iter().all(|l| l == &long));
    }
}
