//! The debug port's command language, parsed with its bounds: every
//! command a test may send, and a clear error line for anything else, so
//! a typo or a huge count never keeps PID 1 busy.

/// Most lines one `log N` writes.
pub const MAX_LOG_LINES: u32 = 100_000;
/// Most commits one `commits N` makes.
pub const MAX_COMMITS: u32 = 1000;
/// Most arguments `ctl ARGS` passes to `lbd ctl`.
pub const MAX_CTL_ARGS: usize = 32;
/// Longest command line read; a longer one is dropped whole.
pub const MAX_LINE: usize = 4096;

/// A command read from the port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    KillLbd,
    Status,
    /// N numbered log lines (a test pulls the plug while they are written).
    Log(u32),
    /// The status screen's text (tty1), read back from /dev/vcsa1.
    Screen,
    /// `lbd ctl ARGS` run in the guest (its output on the console).
    Ctl(Vec<String>),
    /// N commits through the appliance socket, one after the other (a
    /// test pulls the plug while they run).
    Commits(u32),
}

/// A line that is not a command the port runs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error(
        "unknown command {line:?} (kill lbd | status | log N | screen | ctl ARGS | commits N)"
    )]
    Unknown { line: String },
    #[error("{command} {value:?}: give a whole number from 1 to {max}")]
    OutOfRange {
        command: &'static str,
        value: String,
        max: u32,
    },
    #[error("ctl with {count} arguments: at most {MAX_CTL_ARGS}")]
    TooManyArgs { count: usize },
    #[error("a line of more than {MAX_LINE} bytes was dropped")]
    TooLong,
}

pub fn parse(line: &str) -> Result<Command, CommandError> {
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        ["kill", "lbd"] => Ok(Command::KillLbd),
        ["status"] => Ok(Command::Status),
        ["screen"] => Ok(Command::Screen),
        ["ctl", rest @ ..] if rest.len() > MAX_CTL_ARGS => {
            Err(CommandError::TooManyArgs { count: rest.len() })
        }
        ["ctl", rest @ ..] if !rest.is_empty() => {
            Ok(Command::Ctl(rest.iter().map(|w| (*w).to_owned()).collect()))
        }
        ["commits", n] => count("commits", n, MAX_COMMITS).map(Command::Commits),
        ["log", n] => count("log", n, MAX_LOG_LINES).map(Command::Log),
        _ => Err(CommandError::Unknown {
            line: line.trim().into(),
        }),
    }
}

fn count(command: &'static str, word: &str, max: u32) -> Result<u32, CommandError> {
    word.parse()
        .ok()
        .filter(|n| (1..=max).contains(n))
        .ok_or_else(|| CommandError::OutOfRange {
            command,
            value: word.to_owned(),
            max,
        })
}

/// Bytes from the port cut into command lines of at most [`MAX_LINE`].
#[derive(Debug, Default)]
pub struct LineBuffer {
    partial: Vec<u8>,
    /// The current line is too long: drop up to its end.
    skipping: bool,
}

impl LineBuffer {
    /// The commands (or errors) completed by `bytes`.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Result<Command, CommandError>> {
        let mut out = Vec::new();
        for &b in bytes {
            if b == b'\n' || b == b'\r' {
                let line = std::mem::take(&mut self.partial);
                if std::mem::take(&mut self.skipping) {
                    out.push(Err(CommandError::TooLong));
                    continue;
                }
                let line = String::from_utf8_lossy(&line);
                if !line.trim().is_empty() {
                    out.push(parse(&line));
                }
            } else if self.skipping {
                continue;
            } else if self.partial.len() >= MAX_LINE {
                self.partial.clear();
                self.skipping = true;
            } else {
                self.partial.push(b);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse() {
        assert_eq!(parse("kill lbd"), Ok(Command::KillLbd));
        assert_eq!(parse(" log 500 "), Ok(Command::Log(500)));
        assert_eq!(
            parse("ctl status --json"),
            Ok(Command::Ctl(vec!["status".into(), "--json".into()]))
        );
        assert_eq!(
            parse("rm -rf /"),
            Err(CommandError::Unknown {
                line: "rm -rf /".into()
            })
        );
    }

    /// Input: counts at, below and above each bound. Output: the bounds
    /// pass, the rest are errors that say the range, never a command.
    #[test]
    fn counts_and_arguments_are_bounded() {
        assert_eq!(parse("log 100000"), Ok(Command::Log(MAX_LOG_LINES)));
        for bad in ["log 0", "log 100001", "log 4294967295", "log many"] {
            let err = parse(bad).expect_err(bad);
            assert!(err.to_string().contains("from 1 to 100000"), "{bad}: {err}");
        }
        assert_eq!(parse("commits 1000"), Ok(Command::Commits(MAX_COMMITS)));
        assert!(matches!(
            parse("commits 1001"),
            Err(CommandError::OutOfRange { max: 1000, .. })
        ));
        let args = |n: usize| format!("ctl {}", vec!["x"; n].join(" "));
        assert!(matches!(parse(&args(32)), Ok(Command::Ctl(a)) if a.len() == 32));
        assert_eq!(
            parse(&args(33)),
            Err(CommandError::TooManyArgs { count: 33 })
        );
    }

    /// Input: a command split over two reads, a 5000-byte line, then a
    /// command. Output: the first command, one "too long" error, the
    /// last command: the long line is dropped whole, not cut into parts.
    #[test]
    fn long_lines_are_dropped_whole() {
        let mut buf = LineBuffer::default();
        assert_eq!(buf.push(b"kill "), Vec::new());
        assert_eq!(buf.push(b"lbd\r\n"), vec![Ok(Command::KillLbd)]);
        let mut long = b"log 5 ".repeat(1000);
        long.extend_from_slice(b"\nstatus\n");
        assert_eq!(
            buf.push(&long),
            vec![Err(CommandError::TooLong), Ok(Command::Status)]
        );
    }
}
