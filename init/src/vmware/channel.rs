//! A guest/host message channel over backdoor command MESSAGE (0x1E), the
//! low-bandwidth way, as open-vm-tools' `message.c` drives it.
//!
//! ```text
//! OPEN        EBX = protocol | 0x80000000 (cookies)  -> channel = EDX>>16, cookies ESI/EDI
//! SENDSIZE    EBX = length                           -> status
//! SENDPAYLOAD EBX = next 4 bytes, little-endian      -> status (CPT: restart at SENDSIZE)
//! RECVSIZE                                           -> status & DORECV, EDX>>16 == 1, EBX = length
//! RECVPAYLOAD EBX = 1 (SUCCESS)                      -> EDX>>16 == 2, EBX = next 4 bytes
//! RECVSTATUS  EBX = 1 (SUCCESS)                      -> status
//! CLOSE                                              -> status
//! ```
//! Every call after OPEN carries the channel in EDX>>16 and the cookies in
//! ESI/EDI. The status is ECX>>16: bit 0x1 SUCCESS, 0x2 DORECV, 0x10 CPT
//! (the VM was checkpointed mid-message: start the message over).

use std::fmt;

use super::backdoor::{
    halves, high16, Backdoor, Registers, BDOOR_CMD_MESSAGE, BDOOR_MAGIC, BDOOR_PORT,
};

/// Protocol of RPCI, the guest-to-host command channel.
pub const PROTO_RPCI: u32 = 0x4943_5052;
/// Protocol of TCLO, the host-to-guest (tools) command channel.
pub const PROTO_TCLO: u32 = 0x4f4c_4354;
/// Asks OPEN for cookies, so no other process can use our channel.
pub const FLAG_COOKIE: u32 = 0x8000_0000;
/// Largest message either way.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// How many checkpoint (CPT) restarts one send or receive accepts; each
/// needs a snapshot or vMotion during the message, so more means trouble.
pub const MAX_CHECKPOINT_RETRIES: usize = 8;

/// Message subtypes (ECX >> 16 on the way in).
pub mod subtype {
    /// Open a channel.
    pub const OPEN: u16 = 0;
    /// Announce the length of a message to the host.
    pub const SENDSIZE: u16 = 1;
    /// Four bytes of the message to the host.
    pub const SENDPAYLOAD: u16 = 2;
    /// Ask the length of the host's reply.
    pub const RECVSIZE: u16 = 3;
    /// Four bytes of the host's reply.
    pub const RECVPAYLOAD: u16 = 4;
    /// Acknowledge the whole reply.
    pub const RECVSTATUS: u16 = 5;
    /// Close the channel.
    pub const CLOSE: u16 = 6;
}

/// Status bits (ECX >> 16 on the way out).
pub mod status {
    /// The call worked.
    pub const SUCCESS: u16 = 0x0001;
    /// RECVSIZE: a reply is waiting.
    pub const DORECV: u16 = 0x0002;
    /// The VM was checkpointed during the message: restart it.
    pub const CPT: u16 = 0x0010;
}

/// EDX >> 16 on the way out of RECVSIZE and RECVPAYLOAD.
const TYPE_SENDSIZE: u16 = 1;
const TYPE_SENDPAYLOAD: u16 = 2;

/// The step of the protocol that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// OPEN.
    Open,
    /// SENDSIZE.
    SendSize,
    /// SENDPAYLOAD.
    SendPayload,
    /// RECVSIZE.
    RecvSize,
    /// RECVPAYLOAD.
    RecvPayload,
    /// RECVSTATUS.
    RecvStatus,
    /// CLOSE.
    Close,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Open => "OPEN",
            Self::SendSize => "SENDSIZE",
            Self::SendPayload => "SENDPAYLOAD",
            Self::RecvSize => "RECVSIZE",
            Self::RecvPayload => "RECVPAYLOAD",
            Self::RecvStatus => "RECVSTATUS",
            Self::Close => "CLOSE",
        })
    }
}

/// A backdoor channel operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelError {
    /// The hypervisor refused a call.
    Refused {
        /// The failing step.
        step: Step,
        /// The channel (0 for OPEN).
        channel: u16,
        /// ECX >> 16 as returned.
        status: u16,
    },
    /// The host answered with an unexpected message type in EDX >> 16.
    Protocol {
        /// The failing step.
        step: Step,
        /// The channel.
        channel: u16,
        /// EDX >> 16 as returned.
        found: u16,
    },
    /// The message is over the 64 KiB limit.
    TooLong {
        /// Which way: SENDSIZE (ours) or RECVSIZE (the host's).
        step: Step,
        /// Its length in bytes.
        len: usize,
    },
    /// Checkpoints kept interrupting the message.
    Checkpoints {
        /// The step that saw the last one.
        step: Step,
        /// The channel.
        channel: u16,
    },
}

impl fmt::Display for ChannelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Refused { step, channel, status } => write!(
                f,
                "backdoor message {step} on channel {channel} refused (status {status:#06x}): \
                 the hypervisor does not offer guest RPC here"
            ),
            Self::Protocol { step, channel, found } => write!(
                f,
                "backdoor message {step} on channel {channel}: unexpected message type {found}"
            ),
            Self::TooLong { step, len } => write!(
                f,
                "backdoor message {step}: {len} bytes is over the {MAX_MESSAGE_BYTES}-byte limit"
            ),
            Self::Checkpoints { step, channel } => write!(
                f,
                "backdoor message {step} on channel {channel}: interrupted by {MAX_CHECKPOINT_RETRIES} \
                 checkpoints in a row, giving up"
            ),
        }
    }
}

impl std::error::Error for ChannelError {}

/// An open channel: its id and cookies. Not `Copy`: `close` consumes it.
#[derive(Debug, PartialEq, Eq)]
pub struct Channel {
    id: u16,
    cookie_high: u32,
    cookie_low: u32,
}

/// What a receive attempt ended with.
enum Attempt<T> {
    Done(T),
    Checkpoint(Step),
}

impl Channel {
    /// Opens a channel for `protocol` ([`PROTO_RPCI`], [`PROTO_TCLO`]),
    /// with cookies, falling back to none if the host does not offer them.
    pub fn open(bd: &mut impl Backdoor, protocol: u32) -> Result<Self, ChannelError> {
        let mut last = 0;
        for flags in [FLAG_COOKIE, 0] {
            let out = bd.call(Registers {
                eax: BDOOR_MAGIC,
                ebx: protocol | flags,
                ecx: halves(subtype::OPEN, BDOOR_CMD_MESSAGE),
                edx: u32::from(BDOOR_PORT),
                esi: 0,
                edi: 0,
            });
            last = high16(out.ecx);
            if last & status::SUCCESS != 0 {
                let cookies = flags != 0;
                return Ok(Self {
                    id: high16(out.edx),
                    cookie_high: if cookies { out.esi } else { 0 },
                    cookie_low: if cookies { out.edi } else { 0 },
                });
            }
        }
        Err(ChannelError::Refused {
            step: Step::Open,
            channel: 0,
            status: last,
        })
    }

    /// The channel id the host gave.
    pub fn id(&self) -> u16 {
        self.id
    }

    /// One MESSAGE call on this channel; returns the status and registers.
    fn call(&self, bd: &mut impl Backdoor, subtype: u16, ebx: u32) -> (u16, Registers) {
        let out = bd.call(Registers {
            eax: BDOOR_MAGIC,
            ebx,
            ecx: halves(subtype, BDOOR_CMD_MESSAGE),
            edx: halves(self.id, BDOOR_PORT),
            esi: self.cookie_high,
            edi: self.cookie_low,
        });
        (high16(out.ecx), out)
    }

    fn refused(&self, step: Step, status: u16) -> ChannelError {
        ChannelError::Refused {
            step,
            channel: self.id,
            status,
        }
    }

    /// Sends one message, restarting from SENDSIZE after a checkpoint.
    pub fn send(&self, bd: &mut impl Backdoor, message: &[u8]) -> Result<(), ChannelError> {
        let len = u32::try_from(message.len())
            .ok()
            .filter(|_| message.len() <= MAX_MESSAGE_BYTES)
            .ok_or(ChannelError::TooLong {
                step: Step::SendSize,
                len: message.len(),
            })?;
        for _ in 0..MAX_CHECKPOINT_RETRIES {
            if let Attempt::Done(()) = self.send_once(bd, len, message)? {
                return Ok(());
            }
        }
        Err(ChannelError::Checkpoints {
            step: Step::SendPayload,
            channel: self.id,
        })
    }

    fn send_once(
        &self,
        bd: &mut impl Backdoor,
        len: u32,
        message: &[u8],
    ) -> Result<Attempt<()>, ChannelError> {
        let (st, _) = self.call(bd, subtype::SENDSIZE, len);
        if st & status::SUCCESS == 0 {
            return Err(self.refused(Step::SendSize, st));
        }
        // The host ignores the bytes past the length in the last chunk; they
        // are zero so nothing else leaks.
        for chunk in message.chunks(4) {
            let mut word = [0u8; 4];
            word[..chunk.len()].copy_from_slice(chunk);
            let (st, _) = self.call(bd, subtype::SENDPAYLOAD, u32::from_le_bytes(word));
            if st & status::SUCCESS == 0 {
                if st & status::CPT != 0 {
                    return Ok(Attempt::Checkpoint(Step::SendPayload));
                }
                return Err(self.refused(Step::SendPayload, st));
            }
        }
        Ok(Attempt::Done(()))
    }

    /// Receives the host's reply; `None` if none is waiting. Restarts from
    /// RECVSIZE after a checkpoint.
    pub fn receive(&self, bd: &mut impl Backdoor) -> Result<Option<Vec<u8>>, ChannelError> {
        let mut step = Step::RecvPayload;
        for _ in 0..MAX_CHECKPOINT_RETRIES {
            match self.receive_once(bd)? {
                Attempt::Done(reply) => return Ok(reply),
                Attempt::Checkpoint(s) => step = s,
            }
        }
        Err(ChannelError::Checkpoints {
            step,
            channel: self.id,
        })
    }

    fn receive_once(
        &self,
        bd: &mut impl Backdoor,
    ) -> Result<Attempt<Option<Vec<u8>>>, ChannelError> {
        let (st, out) = self.call(bd, subtype::RECVSIZE, 0);
        if st & status::SUCCESS == 0 {
            return Err(self.refused(Step::RecvSize, st));
        }
        if st & status::DORECV == 0 {
            return Ok(Attempt::Done(None));
        }
        if high16(out.edx) != TYPE_SENDSIZE {
            return Err(ChannelError::Protocol {
                step: Step::RecvSize,
                channel: self.id,
                found: high16(out.edx),
            });
        }
        let len = usize::try_from(out.ebx).unwrap_or(usize::MAX);
        if len > MAX_MESSAGE_BYTES {
            return Err(ChannelError::TooLong {
                step: Step::RecvSize,
                len,
            });
        }
        let mut reply = Vec::with_capacity(len);
        while reply.len() < len {
            let (st, out) = self.call(bd, subtype::RECVPAYLOAD, u32::from(status::SUCCESS));
            if st & status::SUCCESS == 0 {
                if st & status::CPT != 0 {
                    return Ok(Attempt::Checkpoint(Step::RecvPayload));
                }
                return Err(self.refused(Step::RecvPayload, st));
            }
            if high16(out.edx) != TYPE_SENDPAYLOAD {
                return Err(ChannelError::Protocol {
                    step: Step::RecvPayload,
                    channel: self.id,
                    found: high16(out.edx),
                });
            }
            let take = (len - reply.len()).min(4);
            reply.extend_from_slice(&out.ebx.to_le_bytes()[..take]);
        }
        let (st, _) = self.call(bd, subtype::RECVSTATUS, u32::from(status::SUCCESS));
        if st & status::SUCCESS == 0 {
            if st & status::CPT != 0 {
                return Ok(Attempt::Checkpoint(Step::RecvStatus));
            }
            return Err(self.refused(Step::RecvStatus, st));
        }
        Ok(Attempt::Done(Some(reply)))
    }

    /// Closes the channel.
    pub fn close(self, bd: &mut impl Backdoor) -> Result<(), ChannelError> {
        let (st, _) = self.call(bd, subtype::CLOSE, 0);
        if st & status::SUCCESS == 0 {
            return Err(self.refused(Step::Close, st));
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "channel_tests.rs"]
mod tests;
