//! The hypervisor's side of backdoor MESSAGE, in process, for tests.
//!
//! It keeps what the VMX keeps: up to 8 channels, each with its protocol,
//! cookies and a state (idle, receiving the guest's message in 4-byte
//! chunks, holding a reply, handing the reply out in 4-byte chunks). Every
//! call is checked (magic, port, command, channel, cookies, state) and a
//! wrong one fails with status 0, as the VMX does. It can inject a
//! checkpoint (CPT) mid-message and answers RPCI `info-get` from a
//! guestinfo store.
//!
//! It also plays the host side of TCLO: every message the guest sends on
//! a TCLO channel is its reply to the previous command; the host answers
//! with the next queued command, or with nothing (no DORECV) when the
//! queue is empty. `host_reset` drops every channel, as the VMX does on
//! vMotion or snapshot restore.

use std::collections::{BTreeMap, VecDeque};

use super::backdoor::{
    halves, high16, Backdoor, Registers, BDOOR_CMD_MESSAGE, BDOOR_MAGIC, BDOOR_PORT,
};
use super::channel::{status, subtype, FLAG_COOKIE, MAX_MESSAGE_BYTES, PROTO_RPCI, PROTO_TCLO};

/// Channels the VMX offers at once.
pub const MAX_CHANNELS: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum State {
    Idle,
    Sending { len: usize, buf: Vec<u8> },
    ReplyReady(Vec<u8>),
    Receiving { reply: Vec<u8>, pos: usize },
}

#[derive(Debug, Clone)]
pub(super) struct HostChannel {
    protocol: u32,
    cookies: Option<(u32, u32)>,
    state: State,
}

/// The double. Fields set up the scenario and record what the guest did.
#[derive(Debug)]
pub struct FakeHypervisor {
    /// Variables by full name (`guestinfo.ovfEnv`).
    pub guestinfo: BTreeMap<String, String>,
    /// Whether OPEN accepts the cookie flag (old hosts did not).
    pub cookies_supported: bool,
    /// Refuse every OPEN, like QEMU's vmport, which lacks command 0x1E.
    pub refuse_open: bool,
    /// Checkpoint at this 0-based SENDPAYLOAD chunk of the next message, once.
    pub cpt_on_send_chunk: Option<usize>,
    /// Checkpoint at this 0-based RECVPAYLOAD chunk of the next reply, once.
    pub cpt_on_recv_chunk: Option<usize>,
    /// Checkpoint on every payload chunk.
    pub cpt_always: bool,
    /// The next RPCI reply, instead of the computed one.
    pub reply_override: Option<Vec<u8>>,
    /// Every call, as (subtype, channel), in order.
    pub calls: Vec<(u16, u16)>,
    /// Every complete message the guest sent.
    pub messages: Vec<Vec<u8>>,
    /// Calls that broke the protocol, described.
    pub violations: Vec<String>,
    /// TCLO commands the host will send, in order.
    pub tclo_commands: VecDeque<Vec<u8>>,
    /// Each TCLO command the host sent with the guest's reply to it.
    pub tclo_exchanges: Vec<(String, String)>,
    /// Every complete RPCI message, in order.
    pub rpci: Vec<Vec<u8>>,
    /// With no TCLO command queued, answer with an empty message (DORECV,
    /// length 0) instead of no message at all; hosts may do either.
    pub tclo_empty_reply: bool,
    /// RPCI commands starting with one of these are answered
    /// `0 Unknown command`, as an older host would.
    pub rpci_unknown: Vec<String>,
    // Host state: `pub(super)` only so tests can build scenarios with
    // struct update syntax; nothing outside the double touches them.
    pub(super) channels: [Option<HostChannel>; MAX_CHANNELS],
    pub(super) cookie_seed: u32,
    /// The TCLO command awaiting the guest's reply.
    pub(super) tclo_pending: Option<Vec<u8>>,
    /// Channels the host dropped; calls on them fail without counting as
    /// a guest violation.
    pub(super) dropped: Vec<u16>,
}

impl Default for FakeHypervisor {
    fn default() -> Self {
        Self {
            guestinfo: BTreeMap::new(),
            cookies_supported: true,
            refuse_open: false,
            cpt_on_send_chunk: None,
            cpt_on_recv_chunk: None,
            cpt_always: false,
            reply_override: None,
            calls: Vec::new(),
            messages: Vec::new(),
            violations: Vec::new(),
            tclo_commands: VecDeque::new(),
            tclo_exchanges: Vec::new(),
            rpci: Vec::new(),
            tclo_empty_reply: false,
            rpci_unknown: Vec::new(),
            channels: Default::default(),
            cookie_seed: 0x1234_5678,
            tclo_pending: None,
            dropped: Vec::new(),
        }
    }
}

impl FakeHypervisor {
    /// A host with these guestinfo variables (full names).
    pub fn with_guestinfo(vars: &[(&str, &str)]) -> Self {
        Self {
            guestinfo: vars
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            ..Self::default()
        }
    }

    /// Queues a TCLO command.
    pub fn queue(&mut self, command: &str) {
        self.tclo_commands.push_back(command.as_bytes().to_vec());
    }

    /// The RPCI messages as text, trailing NUL shown as `\0`.
    pub fn rpci_texts(&self) -> Vec<String> {
        self.rpci
            .iter()
            .map(|m| String::from_utf8_lossy(m).replace('\0', "\\0"))
            .collect()
    }

    /// Drops every channel, as the VMX does on vMotion or snapshot restore;
    /// a command sent but not yet answered is lost.
    pub fn host_reset(&mut self) {
        for (id, ch) in self.channels.iter_mut().enumerate() {
            if ch.take().is_some() {
                self.dropped
                    .push(u16::try_from(id).expect("slot index below MAX_CHANNELS fits u16"));
            }
        }
        self.tclo_pending = None;
    }

    /// How many channels are open now.
    pub fn open_channels(&self) -> usize {
        self.channels.iter().flatten().count()
    }

    /// How many calls of `subtype` the guest made.
    pub fn count(&self, subtype: u16) -> usize {
        self.calls.iter().filter(|(s, _)| *s == subtype).count()
    }

    /// A deterministic, never-zero cookie (xorshift32).
    fn next_cookie(&mut self) -> u32 {
        let mut x = self.cookie_seed;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.cookie_seed = x;
        x
    }

    fn fail(&mut self, why: String) -> Registers {
        self.violations.push(why);
        Registers::default()
    }

    fn open(&mut self, regs: Registers) -> Registers {
        let want_cookies = regs.ebx & FLAG_COOKIE != 0;
        let protocol = regs.ebx & !FLAG_COOKIE;
        if self.refuse_open || (want_cookies && !self.cookies_supported) {
            // An expected refusal, not a guest bug.
            return Registers::default();
        }
        if protocol != PROTO_RPCI && protocol != PROTO_TCLO {
            return self.fail(format!("OPEN of unknown protocol {protocol:#x}"));
        }
        let Some(slot) = self.channels.iter().position(Option::is_none) else {
            return Registers::default();
        };
        let cookies = want_cookies.then(|| (self.next_cookie(), self.next_cookie()));
        self.channels[slot] = Some(HostChannel {
            protocol,
            cookies,
            state: State::Idle,
        });
        let id = u16::try_from(slot).expect("slot index below MAX_CHANNELS fits u16");
        self.dropped.retain(|d| *d != id);
        let (esi, edi) = cookies.unwrap_or((0, 0));
        Registers {
            ecx: halves(status::SUCCESS, 0),
            edx: halves(id, BDOOR_PORT),
            esi,
            edi,
            ..regs
        }
    }

    /// Handles a complete message on a channel and returns the channel's
    /// next state: the RPCI server's reply, or TCLO's next command.
    fn process(&mut self, protocol: u32, message: Vec<u8>) -> State {
        self.messages.push(message.clone());
        if protocol == PROTO_TCLO {
            return self.tclo(message);
        }
        self.rpci.push(message.clone());
        if let Some(reply) = self.reply_override.take() {
            return State::ReplyReady(reply);
        }
        State::ReplyReady(self.rpci_reply(&message))
    }

    /// The TCLO host: `message` answers the pending command, if any.
    fn tclo(&mut self, message: Vec<u8>) -> State {
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        if let Some(command) = self.tclo_pending.take() {
            self.tclo_exchanges.push((text(&command), text(&message)));
        } else if !message.is_empty() {
            self.violations.push(format!(
                "TCLO reply {:?} with no command pending",
                text(&message)
            ));
        }
        match self.tclo_commands.pop_front() {
            Some(command) => {
                self.tclo_pending = Some(command.clone());
                State::ReplyReady(command)
            }
            None if self.tclo_empty_reply => State::ReplyReady(Vec::new()),
            None => State::Idle,
        }
    }

    /// What the VMX answers to an RPCI command.
    fn rpci_reply(&mut self, message: &[u8]) -> Vec<u8> {
        let text = String::from_utf8_lossy(message);
        let text = text.strip_suffix('\0').unwrap_or(&text);
        if self
            .rpci_unknown
            .iter()
            .any(|p| text.starts_with(p.as_str()))
        {
            return b"0 Unknown command".to_vec();
        }
        if let Some(name) = text.strip_prefix("info-get ") {
            return match self.guestinfo.get(name.trim()) {
                Some(v) => format!("1 {v}").into_bytes(),
                None => b"0 No value found".to_vec(),
            };
        }
        if let Some(value) = text.strip_prefix("info-set guestinfo.ip ") {
            // The tools' own key (broadcastIP); the VMX takes it.
            self.guestinfo
                .insert("guestinfo.ip".to_owned(), value.to_owned());
            return b"1 ".to_vec();
        }
        if text.starts_with("info-set ") {
            return b"0 Guest is not allowed to set this key".to_vec();
        }
        const ACCEPTED: [&str; 6] = [
            "tools.capability.",
            "tools.set.version ",
            "tools.os.statechange.status ",
            "vmx.capability.unified_loop ",
            "SetGuestInfo  ",
            "log ",
        ];
        if ACCEPTED.iter().any(|p| text.starts_with(p)) {
            return b"1 ".to_vec();
        }
        b"0 Unknown command".to_vec()
    }

    fn message(&mut self, sub: u16, regs: Registers) -> Registers {
        let id = high16(regs.edx);
        let idx = usize::from(id);
        if self.dropped.contains(&id) {
            // The host dropped it: fails, as the guest cannot know yet.
            return Registers::default();
        }
        let Some(ch) = self.channels.get_mut(idx).and_then(Option::as_mut) else {
            return self.fail(format!("subtype {sub} on channel {id}, which is not open"));
        };
        if let Some(cookies) = ch.cookies {
            if cookies != (regs.esi, regs.edi) {
                return self.fail(format!("subtype {sub} on channel {id} with wrong cookies"));
            }
        }
        let ok = |ecx_status: u16| Registers {
            ecx: halves(ecx_status, 0),
            ..regs
        };
        let protocol = ch.protocol;
        match (sub, std::mem::replace(&mut ch.state, State::Idle)) {
            (subtype::SENDSIZE, State::Idle) => {
                let len = usize::try_from(regs.ebx).unwrap_or(usize::MAX);
                if len > MAX_MESSAGE_BYTES {
                    return self.fail(format!("SENDSIZE of {len} bytes"));
                }
                if len == 0 {
                    let next = self.process(protocol, Vec::new());
                    self.state(idx, next);
                } else {
                    ch.state = State::Sending {
                        len,
                        buf: Vec::with_capacity(len),
                    };
                }
                ok(status::SUCCESS)
            }
            (subtype::SENDPAYLOAD, State::Sending { len, mut buf }) => {
                let chunk = buf.len() / 4;
                if self.cpt_always || self.cpt_on_send_chunk == Some(chunk) {
                    // Checkpoint: the half-sent message is gone (the state
                    // was reset to Idle above); the guest restarts it.
                    self.cpt_on_send_chunk = None;
                    return ok(status::CPT);
                }
                let take = (len - buf.len()).min(4);
                buf.extend_from_slice(&regs.ebx.to_le_bytes()[..take]);
                if buf.len() == len {
                    let next = self.process(protocol, buf);
                    self.state(idx, next);
                } else {
                    ch.state = State::Sending { len, buf };
                }
                ok(status::SUCCESS)
            }
            (subtype::RECVSIZE, State::Idle) => ok(status::SUCCESS),
            (subtype::RECVSIZE, State::ReplyReady(reply) | State::Receiving { reply, .. }) => {
                let len = u32::try_from(reply.len()).expect("test replies are far below 4 GiB");
                ch.state = State::Receiving { reply, pos: 0 };
                Registers {
                    ebx: len,
                    ecx: halves(status::SUCCESS | status::DORECV, 0),
                    edx: halves(1, BDOOR_PORT),
                    ..regs
                }
            }
            (subtype::RECVPAYLOAD, State::Receiving { reply, pos })
                if regs.ebx == u32::from(status::SUCCESS) =>
            {
                if self.cpt_always || self.cpt_on_recv_chunk == Some(pos / 4) {
                    self.cpt_on_recv_chunk = None;
                    self.state(idx, State::ReplyReady(reply));
                    return ok(status::CPT);
                }
                if pos >= reply.len() {
                    return self.fail(format!("RECVPAYLOAD past the end on channel {id}"));
                }
                let mut word = [0u8; 4];
                let end = (pos + 4).min(reply.len());
                word[..end - pos].copy_from_slice(&reply[pos..end]);
                self.state(idx, State::Receiving { reply, pos: end });
                Registers {
                    ebx: u32::from_le_bytes(word),
                    ecx: halves(status::SUCCESS, 0),
                    edx: halves(2, BDOOR_PORT),
                    ..regs
                }
            }
            (subtype::RECVSTATUS, State::Receiving { reply, pos }) if pos >= reply.len() => {
                ok(status::SUCCESS)
            }
            (subtype::CLOSE, _) => {
                self.channels[idx] = None;
                ok(status::SUCCESS)
            }
            (sub, state) => {
                self.state(idx, state.clone());
                self.fail(format!("subtype {sub} on channel {id} in state {state:?}"))
            }
        }
    }

    fn state(&mut self, idx: usize, state: State) {
        if let Some(ch) = self.channels[idx].as_mut() {
            ch.state = state;
        }
    }
}

impl Backdoor for FakeHypervisor {
    fn call(&mut self, regs: Registers) -> Registers {
        let sub = high16(regs.ecx);
        self.calls.push((sub, high16(regs.edx)));
        if regs.eax != BDOOR_MAGIC || regs.edx & 0xFFFF != u32::from(BDOOR_PORT) {
            return self.fail(format!("bad magic or port: {regs:x?}"));
        }
        if regs.ecx & 0xFFFF != u32::from(BDOOR_CMD_MESSAGE) {
            return self.fail(format!("command {:#x} is not MESSAGE", regs.ecx & 0xFFFF));
        }
        if sub == subtype::OPEN {
            self.open(regs)
        } else {
            self.message(sub, regs)
        }
    }
}
