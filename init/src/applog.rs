//! The appliance log on the data partition: every console line of init and
//! lbd, appended to `/var/lib/appliance/log/appliance.log`, rotated by size.
//!
//! Appends only, one `write` per line, and an fsync at most once a second:
//! after a hard power-off ext4's ordered journal keeps every file intact up
//! to some point; only the tail can be missing. [`check_logs`] verifies that
//! at the next boot.

use std::fs::{File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub const LOG_DIR: &str = "/var/lib/appliance/log";
pub const LOG_FILE: &str = "appliance.log";
/// Rotate when the current file passes this size.
pub const MAX_SIZE: u64 = 1 << 20;
/// appliance.log.1 .. appliance.log.N are kept.
pub const KEEP: usize = 4;
const SYNC_EVERY: Duration = Duration::from_secs(1);
/// The log holds what the consoles show, which may name users, addresses
/// and errors quoting configs: root only, like the files lbd runs with.
pub const LOG_MODE: u32 = 0o600;

pub struct LogFile {
    dir: PathBuf,
    file: File,
    size: u64,
    last_sync: Instant,
}

impl LogFile {
    pub fn open(dir: &Path) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let file = open_private(&dir.join(LOG_FILE))?;
        let size = file.metadata()?.len();
        Ok(Self {
            dir: dir.into(),
            file,
            size,
            last_sync: Instant::now(),
        })
    }

    /// Appends one line (a newline is added); rotates first if full.
    pub fn append(&mut self, line: &str) -> io::Result<()> {
        if self.size >= MAX_SIZE {
            self.rotate()?;
        }
        let mut buf = String::with_capacity(line.len() + 1);
        // Control characters other than tab would let a log line forge
        // another or hide text on a terminal; show them escaped.
        for c in line.chars() {
            if c.is_control() && c != '\t' {
                buf.push_str(&c.escape_default().to_string());
            } else {
                buf.push(c);
            }
        }
        buf.push('\n');
        self.file.write_all(buf.as_bytes())?;
        self.size += buf.len() as u64;
        if self.last_sync.elapsed() >= SYNC_EVERY {
            self.sync();
        }
        Ok(())
    }

    pub fn sync(&mut self) {
        let _ = self.file.sync_data();
        self.last_sync = Instant::now();
    }

    /// appliance.log -> .1 -> .2 ... the oldest is dropped.
    fn rotate(&mut self) -> io::Result<()> {
        self.file.sync_all()?;
        let name = |n: usize| self.dir.join(format!("{LOG_FILE}.{n}"));
        let _ = std::fs::remove_file(name(KEEP));
        for n in (1..KEEP).rev() {
            let _ = std::fs::rename(name(n), name(n + 1));
        }
        std::fs::rename(self.dir.join(LOG_FILE), name(1))?;
        self.file = open_private(&self.dir.join(LOG_FILE))?;
        self.size = 0;
        // The renames must reach the disk before new lines do.
        File::open(&self.dir).and_then(|d| d.sync_all())?;
        Ok(())
    }
}

/// Opens `path` for appending, mode [`LOG_MODE`]: created so, and a file
/// an older image left readable by all is narrowed (the mode given at
/// open applies only to a new file).
fn open_private(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(LOG_MODE)
        .open(path)?;
    file.set_permissions(Permissions::from_mode(LOG_MODE))?;
    Ok(file)
}

/// Most lines [`tail`] returns (the web console's log view).
pub const MAX_TAIL: usize = 2000;

/// The newest `lines` lines (at most [`MAX_TAIL`]) of the log in `dir`,
/// oldest first, across rotated files, keeping only those that contain
/// `filter` (ignoring case; empty keeps all). Missing files are no lines;
/// bytes that are not UTF-8 are shown replaced.
pub fn tail(dir: &Path, lines: usize, filter: &str) -> io::Result<Vec<String>> {
    let wanted = lines.min(MAX_TAIL);
    let needle = filter.to_lowercase();
    let mut newest_first: Vec<String> = Vec::new();
    let names =
        std::iter::once(LOG_FILE.to_owned()).chain((1..=KEEP).map(|n| format!("{LOG_FILE}.{n}")));
    for name in names {
        if newest_first.len() >= wanted {
            break;
        }
        let bytes = match std::fs::read(dir.join(&name)) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let text = String::from_utf8_lossy(&bytes);
        let matching = text
            .lines()
            .rev()
            .filter(|l| needle.is_empty() || l.to_lowercase().contains(&needle));
        newest_first.extend(
            matching
                .take(wanted - newest_first.len())
                .map(str::to_owned),
        );
    }
    newest_first.reverse();
    Ok(newest_first)
}

/// What the boot-time check of the previous logs found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct LogCheck {
    pub files: usize,
    pub lines: usize,
    /// The last complete line of the newest file.
    pub last_line: Option<String>,
    pub problems: Vec<String>,
}

/// Reads every log file: all text, no NUL bytes (the mark of blocks a crash
/// allocated but never wrote), and only the newest file's last line may be
/// cut short.
pub fn check_logs(dir: &Path) -> LogCheck {
    let mut check = LogCheck::default();
    let mut names: Vec<String> = match std::fs::read_dir(dir) {
        Ok(d) => d
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(LOG_FILE))
            .collect(),
        Err(_) => return check,
    };
    // Oldest first: appliance.log.4 ... appliance.log.1, appliance.log.
    names.sort_by_key(|n| {
        std::cmp::Reverse(
            n.rsplit('.')
                .next()
                .and_then(|s| s.parse::<usize>().ok())
                .unwrap_or(0),
        )
    });
    for name in &names {
        let newest = name == LOG_FILE;
        let bytes = match std::fs::read(dir.join(name)) {
            Ok(b) => b,
            Err(e) => {
                check.problems.push(format!("{name}: {e}"));
                continue;
            }
        };
        check.files += 1;
        if bytes.contains(&0) {
            check.problems.push(format!("{name}: contains NUL bytes"));
        }
        if std::str::from_utf8(&bytes).is_err() {
            check.problems.push(format!("{name}: not valid UTF-8"));
        }
        if !newest && !bytes.is_empty() && !bytes.ends_with(b"\n") {
            check
                .problems
                .push(format!("{name}: rotated file ends mid-line"));
        }
        let text = String::from_utf8_lossy(&bytes);
        let complete: Vec<&str> = text
            .split_inclusive('\n')
            .filter(|l| l.ends_with('\n'))
            .collect();
        check.lines += complete.len();
        if newest {
            check.last_line = complete.last().map(|l| l.trim_end().to_string());
        }
    }
    check
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_rotates_and_checks_clean() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = LogFile::open(dir.path()).unwrap();
        let line = "x".repeat(1000);
        for _ in 0..(MAX_SIZE / 1000) * 2 + 10 {
            log.append(&line).unwrap();
        }
        log.append("last\u{1b}[2J").unwrap();
        log.sync();
        let check = check_logs(dir.path());
        assert_eq!(check.files, 3, "{check:?}");
        assert!(check.problems.is_empty(), "{check:?}");
        assert_eq!(check.last_line.as_deref(), Some("last\\u{1b}[2J"));
    }

    /// Input: a rotated file with lines 1-3 and the current one with 4-6
    /// ("lbd" on the even ones). Output: the last four lines across both
    /// files, oldest first; a filter that ignores case; no log is no lines.
    #[test]
    fn tail_reads_across_rotation_newest_last() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(format!("{LOG_FILE}.1")),
            "1 init\n2 lbd\n3 init\n",
        )
        .unwrap();
        std::fs::write(dir.path().join(LOG_FILE), "4 LBD\n5 init\n6 lbd\n").unwrap();
        assert_eq!(
            tail(dir.path(), 4, "").unwrap(),
            ["3 init", "4 LBD", "5 init", "6 lbd"]
        );
        assert_eq!(
            tail(dir.path(), 10, "lbd").unwrap(),
            ["2 lbd", "4 LBD", "6 lbd"]
        );
        assert_eq!(tail(dir.path(), usize::MAX, "").unwrap().len(), 6);
        let empty = tempfile::tempdir().unwrap();
        assert!(tail(empty.path(), 10, "").unwrap().is_empty());
    }

    /// Input: a log left mode 0644 by an older image, then enough lines
    /// to rotate. Output: the current and the rotated file are 0600.
    #[test]
    fn log_files_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOG_FILE);
        std::fs::write(&path, "old line\n").unwrap();
        std::fs::set_permissions(&path, Permissions::from_mode(0o644)).unwrap();
        let mut log = LogFile::open(dir.path()).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600, "an existing log is narrowed");
        let line = "x".repeat(1000);
        for _ in 0..MAX_SIZE / 1000 + 10 {
            log.append(&line).unwrap();
        }
        assert_eq!(mode(&dir.path().join(format!("{LOG_FILE}.1"))), 0o600);
        assert_eq!(mode(&path), 0o600, "the new log after rotation");
    }

    #[test]
    fn a_torn_tail_is_fine_but_nul_blocks_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(LOG_FILE), b"one\ntwo\nthr").unwrap();
        let check = check_logs(dir.path());
        assert!(check.problems.is_empty(), "{check:?}");
        assert_eq!(check.lines, 2);
        assert_eq!(check.last_line.as_deref(), Some("two"));

        std::fs::write(dir.path().join(format!("{LOG_FILE}.1")), b"a\n\0\0\0\0").unwrap();
        let check = check_logs(dir.path());
        assert_eq!(check.problems.len(), 2, "{check:?}");
    }
}
