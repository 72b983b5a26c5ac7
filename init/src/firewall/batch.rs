//! The ruleset as one nfnetlink batch that replaces the table atomically.
//!
//! ```text
//! BATCH_BEGIN                         (res_id = NFNL_SUBSYS_NFTABLES)
//! NEWTABLE  inet appliance            create if missing, so the delete
//! DELTABLE  inet appliance            below never fails on a first boot
//! NEWTABLE  inet appliance
//! NEWCHAIN  input / forward / output  hook, priority, policy, type filter
//! NEWRULE   ... one per rule          appended in order
//! BATCH_END
//! ```
//!
//! The kernel applies the messages between BEGIN and END as one
//! transaction: if any fails, it aborts them all and the table that was
//! there stays as it was. Every message but BEGIN/END asks for an ack, so
//! the error names the message (by sequence number) that failed.

use super::expr::{verdict_code, write_rule};
use super::model::{Chain, Hook, Rule, Ruleset};
use super::render::render_rule;
use super::wire::{
    nft_type, MsgWriter, NFNL_MSG_BATCH_BEGIN, NFNL_MSG_BATCH_END, NLM_F_ACK, NLM_F_APPEND,
    NLM_F_CREATE, NLM_F_REQUEST,
};
use super::FirewallError;

// enum nf_tables_msg_types.
const NFT_MSG_NEWTABLE: u16 = 0;
const NFT_MSG_DELTABLE: u16 = 2;
const NFT_MSG_NEWCHAIN: u16 = 3;
const NFT_MSG_NEWRULE: u16 = 6;
// enum nft_table_attributes, nft_chain_attributes, nft_hook_attributes,
// nft_rule_attributes.
const NFTA_TABLE_NAME: u16 = 1;
const NFTA_CHAIN_TABLE: u16 = 1;
const NFTA_CHAIN_NAME: u16 = 3;
const NFTA_CHAIN_HOOK: u16 = 4;
const NFTA_CHAIN_POLICY: u16 = 5;
const NFTA_CHAIN_TYPE: u16 = 7;
const NFTA_HOOK_HOOKNUM: u16 = 1;
const NFTA_HOOK_PRIORITY: u16 = 2;
const NFTA_RULE_TABLE: u16 = 1;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_EXPRESSIONS: u16 = 4;
/// `NFPROTO_INET`: one table for IPv4 and IPv6.
const NFPROTO_INET: u8 = 1;
const NFPROTO_UNSPEC: u8 = 0;
/// `NFNL_SUBSYS_NFTABLES`, the batch's `res_id`.
const NFNL_SUBSYS_NFTABLES: u16 = 10;
// enum nf_inet_hooks.
const NF_INET_LOCAL_IN: u32 = 1;
const NF_INET_FORWARD: u32 = 2;
const NF_INET_LOCAL_OUT: u32 = 3;

/// The encoded batch and, for each message that asked for an ack, its
/// sequence number and what it does (for error messages).
#[derive(Debug)]
pub(crate) struct Batch {
    pub bytes: Vec<u8>,
    pub acked: Vec<(u32, String)>,
    /// Sequence number of BATCH_BEGIN: errors about the batch itself.
    pub begin_seq: u32,
}

/// Encodes `ruleset` with sequence numbers starting at `first_seq`.
pub(crate) fn encode(ruleset: &Ruleset, first_seq: u32) -> Result<Batch, FirewallError> {
    let mut out = Encoder {
        batch: Batch {
            bytes: Vec::new(),
            acked: Vec::new(),
            begin_seq: first_seq,
        },
        seq: first_seq,
    };
    let table = ruleset.table.as_str();
    out.push(batch_marker(NFNL_MSG_BATCH_BEGIN, first_seq), None)?;
    let what = |verb: &str| format!("{verb} table inet {table}");
    out.msg(
        |seq| table_msg(NFT_MSG_NEWTABLE, table, seq),
        what("adding"),
    )?;
    out.msg(
        |seq| table_msg(NFT_MSG_DELTABLE, table, seq),
        what("deleting the previous"),
    )?;
    out.msg(
        |seq| table_msg(NFT_MSG_NEWTABLE, table, seq),
        what("creating"),
    )?;
    for chain in &ruleset.chains {
        let what = format!("chain {} (hook {})", chain.name, chain.hook.name());
        out.msg(|seq| chain_msg(table, chain, seq), what)?;
    }
    for chain in &ruleset.chains {
        for (i, rule) in chain.rules.iter().enumerate() {
            let what = format!(
                "rule {} of chain {} ({})",
                i + 1,
                chain.name,
                render_rule(rule)
            );
            out.msg(|seq| rule_msg(table, &chain.name, rule, seq), what)?;
        }
    }
    let end = batch_marker(NFNL_MSG_BATCH_END, out.next_seq());
    out.push(end, None)?;
    Ok(out.batch)
}

struct Encoder {
    batch: Batch,
    seq: u32,
}

impl Encoder {
    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// Adds the message `build` makes with the next sequence number.
    fn msg(
        &mut self,
        build: impl FnOnce(u32) -> MsgWriter,
        what: String,
    ) -> Result<(), FirewallError> {
        let w = build(self.next_seq());
        self.push(w, Some(what))
    }

    fn push(&mut self, w: MsgWriter, what: Option<String>) -> Result<(), FirewallError> {
        let bytes = w.finish().ok_or_else(|| FirewallError::TooLarge {
            what: what.clone().unwrap_or_else(|| "the batch".to_owned()),
        })?;
        self.batch.bytes.extend_from_slice(&bytes);
        if let Some(what) = what {
            self.batch.acked.push((self.seq, what));
        }
        Ok(())
    }
}

fn batch_marker(msg_type: u16, seq: u32) -> MsgWriter {
    MsgWriter::new(
        msg_type,
        NLM_F_REQUEST,
        seq,
        NFPROTO_UNSPEC,
        NFNL_SUBSYS_NFTABLES,
    )
}

fn table_msg(msg: u16, table: &str, seq: u32) -> MsgWriter {
    let create = if msg == NFT_MSG_NEWTABLE {
        NLM_F_CREATE
    } else {
        0
    };
    let mut w = MsgWriter::new(
        nft_type(msg),
        NLM_F_REQUEST | NLM_F_ACK | create,
        seq,
        NFPROTO_INET,
        0,
    );
    w.str(NFTA_TABLE_NAME, table);
    w
}

fn chain_msg(table: &str, chain: &Chain, seq: u32) -> MsgWriter {
    let hooknum = match chain.hook {
        Hook::Input => NF_INET_LOCAL_IN,
        Hook::Forward => NF_INET_FORWARD,
        Hook::Output => NF_INET_LOCAL_OUT,
    };
    let flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE;
    let mut w = MsgWriter::new(nft_type(NFT_MSG_NEWCHAIN), flags, seq, NFPROTO_INET, 0);
    w.str(NFTA_CHAIN_TABLE, table);
    w.str(NFTA_CHAIN_NAME, &chain.name);
    w.nest(NFTA_CHAIN_HOOK, |w| {
        w.be32(NFTA_HOOK_HOOKNUM, hooknum);
        // The kernel reads the priority as a signed 32-bit number.
        w.bytes(NFTA_HOOK_PRIORITY, &chain.priority.to_be_bytes());
    });
    w.be32(NFTA_CHAIN_POLICY, verdict_code(chain.policy));
    w.str(NFTA_CHAIN_TYPE, "filter");
    w
}

fn rule_msg(table: &str, chain: &str, rule: &Rule, seq: u32) -> MsgWriter {
    let flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_APPEND;
    let mut w = MsgWriter::new(nft_type(NFT_MSG_NEWRULE), flags, seq, NFPROTO_INET, 0);
    w.str(NFTA_RULE_TABLE, table);
    w.str(NFTA_RULE_CHAIN, chain);
    w.nest(NFTA_RULE_EXPRESSIONS, |w| write_rule(w, rule));
    w
}

#[cfg(test)]
#[path = "batch_tests.rs"]
mod tests;
