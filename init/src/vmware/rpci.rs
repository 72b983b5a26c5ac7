//! RPCI: one command to the host and its reply, `1 <result>` or
//! `0 <error>`, on a channel opened for the call and closed after it.

use std::fmt;

use super::backdoor::Backdoor;
use super::channel::{Channel, ChannelError, PROTO_RPCI};

/// How much of a command an error message quotes.
const QUOTE_MAX: usize = 64;

/// The host's answer to an RPCI command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpciReply {
    /// `1 ...` (true) or `0 ...` (false).
    pub ok: bool,
    /// The text after the two-byte prefix: the result, or the host's error.
    pub body: Vec<u8>,
}

/// An RPCI command could not be carried out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RpciError {
    /// The channel failed.
    Channel {
        /// The command (its start).
        command: String,
        /// What failed.
        source: ChannelError,
    },
    /// The host sent no reply.
    NoReply {
        /// The command (its start).
        command: String,
    },
    /// The reply does not start with `1 ` or `0 `.
    Malformed {
        /// The command (its start).
        command: String,
        /// The reply (its start).
        reply: String,
    },
}

impl fmt::Display for RpciError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Channel { command, source } => write!(f, "RPCI command {command:?}: {source}"),
            Self::NoReply { command } => {
                write!(f, "RPCI command {command:?}: the host sent no reply")
            }
            Self::Malformed { command, reply } => {
                write!(
                    f,
                    "RPCI command {command:?}: reply {reply:?} is not `1 <result>` or `0 <error>`"
                )
            }
        }
    }
}

impl std::error::Error for RpciError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Channel { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The start of `bytes` as text, for error messages.
pub(crate) fn quote(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(QUOTE_MAX)]).into_owned();
    if bytes.len() > QUOTE_MAX {
        format!("{text}...")
    } else {
        text
    }
}

/// Sends one RPCI command and returns the host's reply. The channel is
/// closed whatever happens; the first error wins.
pub fn rpci_call(bd: &mut impl Backdoor, command: &[u8]) -> Result<RpciReply, RpciError> {
    let channel_err = |source| RpciError::Channel {
        command: quote(command),
        source,
    };
    let channel = Channel::open(bd, PROTO_RPCI).map_err(channel_err)?;
    let exchanged = channel
        .send(bd, command)
        .and_then(|()| channel.receive(bd))
        .map_err(channel_err);
    let closed = channel.close(bd).map_err(channel_err);
    let reply = exchanged?.ok_or_else(|| RpciError::NoReply {
        command: quote(command),
    })?;
    closed?;
    parse_reply(command, reply)
}

fn parse_reply(command: &[u8], mut reply: Vec<u8>) -> Result<RpciReply, RpciError> {
    let ok = match reply.get(..2) {
        Some(b"1 ") => true,
        Some(b"0 ") => false,
        _ => {
            return Err(RpciError::Malformed {
                command: quote(command),
                reply: quote(&reply),
            })
        }
    };
    reply.drain(..2);
    Ok(RpciReply { ok, body: reply })
}
