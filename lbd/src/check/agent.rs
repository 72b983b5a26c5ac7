//! HAProxy `agent-check` replies: one ASCII line of words separated by
//! spaces, commas or tabs, e.g. `75% drain`, `weight:10 ready`,
//! `down #disk full`. Text after `#` is a description.

use serde::{Deserialize, Serialize};

use super::fsm::Health;
use crate::runtime::AdminState;

/// Longest agent line read (HAProxy reads one small buffer too).
pub const MAX_AGENT_LINE: usize = 512;

/// Weight the agent asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AgentWeight {
    /// Percent of the configured weight.
    Percent(u32),
    /// Absolute weight.
    Absolute(u32),
}

/// What one reply asks for; every part optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentReply {
    pub weight: Option<AgentWeight>,
    pub admin: Option<AdminState>,
    pub health: Option<Health>,
    pub description: Option<String>,
    /// Words not understood (logged, otherwise ignored).
    pub unknown: Vec<String>,
}

/// Parses one agent line. Never fails: unknown words are listed.
pub fn parse_agent(line: &str) -> AgentReply {
    let mut reply = AgentReply::default();
    let (words, description) = match line.split_once('#') {
        Some((w, d)) => (w, Some(d.trim().to_string())),
        None => (line, None),
    };
    reply.description = description.filter(|d| !d.is_empty());
    for word in words
        .split(|c: char| c == ',' || c.is_ascii_whitespace())
        .filter(|w| !w.is_empty())
    {
        let lower = word.to_ascii_lowercase();
        if let Some(p) = lower.strip_suffix('%') {
            match p.parse::<u32>() {
                Ok(p) => reply.weight = Some(AgentWeight::Percent(p)),
                Err(_) => reply.unknown.push(word.to_string()),
            }
            continue;
        }
        if let Some(n) = lower.strip_prefix("weight:") {
            match n.parse::<u32>() {
                Ok(n) => reply.weight = Some(AgentWeight::Absolute(n)),
                Err(_) => reply.unknown.push(word.to_string()),
            }
            continue;
        }
        match lower.as_str() {
            "ready" => reply.admin = Some(AdminState::Ready),
            "drain" => reply.admin = Some(AdminState::Drain),
            "maint" => reply.admin = Some(AdminState::Maint),
            "up" => reply.health = Some(Health::Up),
            "down" | "fail" | "stopped" => reply.health = Some(Health::Down),
            _ => reply.unknown.push(word.to_string()),
        }
    }
    reply
}

/// The weight to apply for `w` given the configured weight, capped at 256.
pub fn effective_weight(w: AgentWeight, configured: u32) -> u32 {
    let v = match w {
        AgentWeight::Percent(p) => configured.saturating_mul(p) / 100,
        AgentWeight::Absolute(n) => n,
    };
    v.min(crate::config::validate::MAX_WEIGHT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_and_description() {
        let r = parse_agent("75% drain # busy\n");
        assert_eq!(r.weight, Some(AgentWeight::Percent(75)));
        assert_eq!(r.admin, Some(AdminState::Drain));
        assert_eq!(r.health, None);
        assert_eq!(r.description.as_deref(), Some("busy"));
    }

    #[test]
    fn health_words() {
        assert_eq!(parse_agent("up").health, Some(Health::Up));
        for w in ["down", "FAIL", "stopped"] {
            assert_eq!(parse_agent(w).health, Some(Health::Down), "{w}");
        }
    }

    #[test]
    fn absolute_weight_and_unknown_words() {
        let r = parse_agent("weight:10,ready,bogus x%");
        assert_eq!(r.weight, Some(AgentWeight::Absolute(10)));
        assert_eq!(r.admin, Some(AdminState::Ready));
        assert_eq!(r.unknown, vec!["bogus".to_string(), "x%".to_string()]);
    }

    #[test]
    fn effective_weights() {
        assert_eq!(effective_weight(AgentWeight::Percent(50), 10), 5);
        assert_eq!(effective_weight(AgentWeight::Percent(400), 100), 256);
        assert_eq!(effective_weight(AgentWeight::Absolute(7), 100), 7);
    }
}
