//! Control-socket commands: parsing only (pure). A request line is either
//! plain text as in HAProxy's Runtime API (`set server b/s state drain`)
//! or a JSON object `{"command": "set server b/s state drain"}`.

use serde::Deserialize;

use crate::runtime::AdminState;

/// Longest request line accepted.
pub const MAX_LINE: usize = 4096;

/// A parsed command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Help,
    ShowInfo,
    /// `show stat` and `show servers state`.
    ShowStat,
    /// VRRP instances: state, priority, VIPs.
    ShowVrrp,
    SetState {
        server: String,
        state: AdminState,
    },
    SetWeight {
        server: String,
        weight: u32,
    },
    /// `disable frontend NAME` / `enable frontend NAME`.
    SetFrontend {
        frontend: String,
        disabled: bool,
    },
    Reload,
    /// Stream events as JSON lines until the client hangs up.
    Events,
}

/// Text of `help`.
pub const HELP: &str = "show info | show stat | show servers state | show vrrp | \
set server <backend>/<server> state ready|drain|maint | \
set server <backend>/<server> weight <0-256> | set weight <backend>/<server> <0-256> | \
enable server <b>/<s> | disable server <b>/<s> | \
enable frontend <name> | disable frontend <name> | reload | events | help";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonRequest {
    command: String,
}

/// Parses one request line.
pub fn parse(line: &str) -> Result<Command, String> {
    let line = line.trim();
    if line.starts_with('{') {
        let req: JsonRequest = serde_json::from_str(line)
            .map_err(|e| format!("bad JSON request ({e}): send {{\"command\": \"show stat\"}}"))?;
        return parse_words(&req.command);
    }
    parse_words(line)
}

fn weight(text: &str) -> Result<u32, String> {
    let w: u32 = text
        .trim_end_matches('%')
        .parse()
        .map_err(|_| format!("weight `{text}` is not a number 0..=256"))?;
    Ok(w)
}

fn parse_words(text: &str) -> Result<Command, String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    match words.as_slice() {
        ["help"] => Ok(Command::Help),
        ["show", "info"] => Ok(Command::ShowInfo),
        ["show", "stat"] | ["show", "servers", "state"] | ["show", "servers"] => {
            Ok(Command::ShowStat)
        }
        ["show", "vrrp"] => Ok(Command::ShowVrrp),
        ["set", "server", server, "state", state] => {
            let state = AdminState::parse(state)
                .ok_or_else(|| format!("state `{state}`: use ready, drain or maint"))?;
            Ok(Command::SetState {
                server: (*server).to_string(),
                state,
            })
        }
        ["set", "server", server, "weight", w] | ["set", "weight", server, w] => {
            Ok(Command::SetWeight {
                server: (*server).to_string(),
                weight: weight(w)?,
            })
        }
        ["enable", "server", server] => Ok(Command::SetState {
            server: (*server).to_string(),
            state: AdminState::Ready,
        }),
        ["disable", "server", server] => Ok(Command::SetState {
            server: (*server).to_string(),
            state: AdminState::Maint,
        }),
        ["enable", "frontend", name] => Ok(Command::SetFrontend {
            frontend: (*name).to_string(),
            disabled: false,
        }),
        ["disable", "frontend", name] => Ok(Command::SetFrontend {
            frontend: (*name).to_string(),
            disabled: true,
        }),
        ["reload"] => Ok(Command::Reload),
        ["events"] => Ok(Command::Events),
        [] => Err(format!("empty command; commands: {HELP}")),
        _ => Err(format!("unknown command `{text}`; commands: {HELP}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_json_forms() {
        assert_eq!(parse("show stat"), Ok(Command::ShowStat));
        assert_eq!(parse("  show servers state \n"), Ok(Command::ShowStat));
        assert_eq!(parse(r#"{"command": "show info"}"#), Ok(Command::ShowInfo));
        assert_eq!(
            parse("set server web/s1 state drain"),
            Ok(Command::SetState {
                server: "web/s1".into(),
                state: AdminState::Drain
            })
        );
        assert_eq!(
            parse("set weight web/s1 50"),
            Ok(Command::SetWeight {
                server: "web/s1".into(),
                weight: 50
            })
        );
        assert_eq!(
            parse("disable server web/s1"),
            Ok(Command::SetState {
                server: "web/s1".into(),
                state: AdminState::Maint
            })
        );
    }

    #[test]
    fn frontend_enable_disable() {
        assert_eq!(
            parse("disable frontend web"),
            Ok(Command::SetFrontend {
                frontend: "web".into(),
                disabled: true
            })
        );
        assert_eq!(
            parse("enable frontend web"),
            Ok(Command::SetFrontend {
                frontend: "web".into(),
                disabled: false
            })
        );
    }

    #[test]
    fn errors_say_what_to_type() {
        assert!(parse("set server a/b state off")
            .unwrap_err()
            .contains("ready, drain or maint"));
        assert!(parse("set weight a/b heavy")
            .unwrap_err()
            .contains("not a number"));
        assert!(parse("frobnicate").unwrap_err().contains("commands:"));
        assert!(parse("{bad json").unwrap_err().contains("bad JSON"));
        assert!(parse(r#"{"command": "x", "extra": 1}"#).is_err());
    }
}
