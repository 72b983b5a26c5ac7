//! The last lines a service printed, for the console and the status
//! screen; bounded so a chatty service cannot exhaust memory.

use std::collections::VecDeque;

#[derive(Debug, Clone)]
pub struct LogRing {
    lines: VecDeque<String>,
    capacity: usize,
    /// A line not yet ended by '\n'.
    partial: Vec<u8>,
}

/// Longest line kept; longer ones are cut (a binary blob on stderr).
const MAX_LINE: usize = 4096;

impl LogRing {
    pub fn new(capacity: usize) -> Self {
        Self {
            lines: VecDeque::with_capacity(capacity),
            capacity,
            partial: Vec::new(),
        }
    }

    /// Adds raw output; returns the lines it completed.
    pub fn push_bytes(&mut self, bytes: &[u8]) -> Vec<String> {
        let mut done = Vec::new();
        for &b in bytes {
            if b == b'\n' {
                let line = String::from_utf8_lossy(&self.partial)
                    .trim_end_matches('\r')
                    .to_string();
                self.partial.clear();
                self.push_line(line.clone());
                done.push(line);
            } else if self.partial.len() < MAX_LINE {
                self.partial.push(b);
            }
        }
        done
    }

    fn push_line(&mut self, line: String) {
        if self.lines.len() == self.capacity {
            self.lines.pop_front();
        }
        self.lines.push_back(line);
    }

    pub fn lines(&self) -> impl Iterator<Item = &str> {
        self.lines.iter().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_across_reads_and_oldest_dropped() {
        let mut r = LogRing::new(2);
        assert!(r.push_bytes(b"one\ntw").len() == 1);
        assert_eq!(r.push_bytes(b"o\r\nthree\n"), ["two", "three"]);
        assert_eq!(r.lines().collect::<Vec<_>>(), ["two", "three"]);
    }

    #[test]
    fn long_lines_are_cut() {
        let mut r = LogRing::new(4);
        let long = vec![b'x'; MAX_LINE * 2];
        r.push_bytes(&long);
        let out = r.push_bytes(b"\n");
        assert_eq!(out[0].len(), MAX_LINE);
    }
}
