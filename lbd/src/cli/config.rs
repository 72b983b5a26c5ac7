//! `lbd ctl config ...`: the appliance's desired state, through the
//! appliance socket that init serves (on a plain Linux host there is no
//! store: lbd is configured with its files there).
//!
//! ```text
//! lbd ctl config get [KEY]
//! lbd ctl config set KEY=VALUE... [--summary TEXT]
//! lbd ctl config unset KEY...
//! lbd ctl config history [N]
//! lbd ctl config diff FROM TO
//! lbd ctl config restore REVISION
//! lbd ctl config export [--include-vrrp-key]
//! lbd ctl config import FILE
//! lbd ctl appliance reboot | poweroff
//! ```

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use appliance_api::client::{call, ClientError};
use appliance_api::{Change, Payload, Reply, Request};

/// Applying a change may reload lbd and wait for it: allow for that.
const TIMEOUT: Duration = Duration::from_secs(30);

const USAGE: &str = "usage: lbd ctl config get [KEY] | set KEY=VALUE... [--summary TEXT] | unset KEY... | history [N] | diff FROM TO | restore REVISION | export [--include-vrrp-key] | import FILE | logs [N] [FILTER]";

#[derive(Debug, thiserror::Error)]
pub enum ConfigCliError {
    #[error("{USAGE}")]
    Usage,
    #[error("{0}: {USAGE}")]
    BadArgument(String),
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("the appliance socket answered a {0} where it should not")]
    Unexpected(&'static str),
}

pub fn run(socket: &Path, words: &[String]) -> Result<ExitCode, ConfigCliError> {
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let Some((verb, args)) = words.split_first() else {
        return Err(ConfigCliError::Usage);
    };
    let request = match *verb {
        "get" => Request::Get,
        "set" | "unset" => return change(socket, verb, args),
        "history" => Request::History {
            limit: args
                .first()
                .map(|n| number(n))
                .transpose()?
                .map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
        },
        "diff" => match args {
            [from, to] => Request::Diff {
                from: number(from)?,
                to: number(to)?,
            },
            _ => return Err(ConfigCliError::Usage),
        },
        "restore" => match args {
            [revision] => Request::Restore {
                revision: number(revision)?,
                base: current_revision(socket)?,
                changed_by: None,
            },
            _ => return Err(ConfigCliError::Usage),
        },
        "logs" => match args {
            [] | [_] | [_, _] => Request::Logs {
                lines: args
                    .first()
                    .map(|n| number(n))
                    .transpose()?
                    .map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
                filter: args.get(1).map(|f| (*f).to_owned()),
            },
            _ => return Err(ConfigCliError::Usage),
        },
        "export" => Request::Export {
            include_vrrp_key: args.contains(&"--include-vrrp-key"),
        },
        "import" => match args {
            [path] => Request::Import {
                base: current_revision(socket)?,
                document: std::fs::read_to_string(path).map_err(|source| ConfigCliError::Read {
                    path: (*path).to_string(),
                    source,
                })?,
                changed_by: None,
            },
            _ => return Err(ConfigCliError::Usage),
        },
        other => {
            return Err(ConfigCliError::BadArgument(format!(
                "unknown verb {other:?}"
            )))
        }
    };
    let key = match (*verb, args) {
        ("get", [key]) => Some(*key),
        _ => None,
    };
    Ok(show(call(socket, &request, TIMEOUT)?, key))
}

/// `set` and `unset`: a change based on the revision just read, so a
/// concurrent edit is refused rather than overwritten.
fn change(socket: &Path, verb: &str, args: &[&str]) -> Result<ExitCode, ConfigCliError> {
    let mut change = Change::default();
    let mut summary = None;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        if *arg == "--summary" {
            summary = Some(rest.next().ok_or(ConfigCliError::Usage)?.to_string());
        } else if verb == "set" {
            let (key, value) = arg
                .split_once('=')
                .ok_or_else(|| ConfigCliError::BadArgument(format!("{arg:?} is not KEY=VALUE")))?;
            change.set.insert(key.trim().to_string(), value.to_string());
        } else {
            change.unset.push((*arg).to_string());
        }
    }
    if change.set.is_empty() && change.unset.is_empty() {
        return Err(ConfigCliError::Usage);
    }
    let base = current_revision(socket)?;
    let request = Request::Commit {
        base,
        change,
        summary,
        changed_by: None,
    };
    Ok(show(call(socket, &request, TIMEOUT)?, None))
}

/// `lbd ctl appliance reboot|poweroff`: init shuts down in order (lbd
/// gives up its virtual IPs first), as for vCenter's guest shutdown.
pub fn run_appliance(socket: &Path, words: &[String]) -> Result<ExitCode, ConfigCliError> {
    let request = match words
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["reboot"] => Request::Reboot,
        ["poweroff"] => Request::PowerOff,
        _ => {
            return Err(ConfigCliError::BadArgument(
                "usage: lbd ctl appliance reboot | poweroff".into(),
            ))
        }
    };
    Ok(show(call(socket, &request, TIMEOUT)?, None))
}

/// Seconds since the epoch as `2026-12-02 21:42:07Z` (UTC, the civil
/// calendar of Howard Hinnant's days_from_civil, inverted).
fn utc(seconds: u64) -> String {
    let days = i64::try_from(seconds / 86_400).unwrap_or(0);
    let rest = seconds % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

fn current_revision(socket: &Path) -> Result<u64, ConfigCliError> {
    match call(socket, &Request::Get, TIMEOUT)? {
        Reply::Ok {
            result: Payload::Config(view),
        } => Ok(view.revision),
        Reply::Ok { .. } => Err(ConfigCliError::Unexpected("reply")),
        Reply::Refused { error, .. } => Err(ConfigCliError::BadArgument(error)),
    }
}

fn number(text: &str) -> Result<u64, ConfigCliError> {
    text.parse()
        .map_err(|_| ConfigCliError::BadArgument(format!("{text:?} is not a number")))
}

/// Prints a reply: data on stdout, a refusal on stderr with exit code 1.
fn show(reply: Reply, key: Option<&str>) -> ExitCode {
    let result = match reply {
        Reply::Refused { error, problems } => {
            eprintln!("refused: {error}");
            for p in problems {
                eprintln!("  {} = {:?}: {}", p.key, p.value, p.message);
            }
            return ExitCode::FAILURE;
        }
        Reply::Ok { result } => result,
    };
    match result {
        Payload::Config(view) => {
            if key.is_none() {
                println!("revision {}", view.revision);
            }
            for v in view
                .values
                .iter()
                .filter(|v| key.is_none_or(|k| v.key == k))
            {
                println!("{} = {} ({})", v.key, v.value, v.source);
            }
            if key.is_none() && !view.services.is_empty() {
                println!(
                    "\n# services\n{}",
                    toml::to_string(&view.services).unwrap_or_default()
                );
            }
        }
        Payload::Valid => println!("valid"),
        Payload::Logs(lines) => {
            for line in lines {
                println!("{line}");
            }
        }
        Payload::Committed {
            revision,
            applied,
            pending,
        } => {
            println!("revision {}: {}", revision.revision, revision.summary);
            for a in applied {
                println!("  applied: {a}");
            }
            for p in pending {
                println!("  takes effect at the next boot: {p}");
            }
        }
        Payload::History(revisions) => {
            for r in revisions {
                println!(
                    "{:>5}  {}  {:<8} {}",
                    r.revision,
                    utc(r.changed_at),
                    r.changed_by,
                    r.summary
                );
            }
        }
        Payload::Diff(lines) => {
            for l in lines {
                match (l.before, l.after) {
                    (None, Some(a)) => println!("+ {} = {a}", l.key),
                    (Some(b), None) => println!("- {} = {b}", l.key),
                    (Some(b), Some(a)) => println!("~ {} = {b} -> {a}", l.key),
                    (None, None) => {}
                }
            }
        }
        Payload::Exported { document } => print!("{document}"),
        Payload::Accepted => println!("accepted"),
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::utc;

    #[test]
    fn history_times_read_as_utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00Z");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00Z");
        assert_eq!(utc(1_796_249_211), "2026-12-02 22:06:51Z");
    }
}
