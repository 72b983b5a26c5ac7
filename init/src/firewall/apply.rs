//! Sends the batch on a `NETLINK_NETFILTER` socket and matches the kernel's
//! acknowledgements to the messages by sequence number.
//!
//! ```text
//! init --- sendmsg(BEGIN, NEWTABLE, ..., NEWRULE, END) ---> nfnetlink
//!      <-- NLMSG_ERROR(seq, 0) per acked message ---------- (runs the batch
//!      <-- NLMSG_ERROR(seq, -errno) for the one that failed  in sendmsg)
//! ```
//!
//! nfnetlink runs the whole batch inside `sendmsg` (it even loads missing
//! expression modules and replays the batch there), so when `send` returns
//! every answer is already queued: init reads without blocking until the
//! queue is empty and never waits on a clock.

use std::io;
use std::os::fd::AsRawFd;

use netlink_sys::{protocols::NETLINK_NETFILTER, Socket};

use super::batch::{encode, Batch};
use super::model::Ruleset;
use super::wire::{parse_acks, Ack};
use super::FirewallError;

/// What one queued ack costs the receive buffer: the kernel counts each
/// small reply skb's true size (well under this), not its 36 bytes.
const RECV_BYTES_PER_ACK: usize = 2048;
/// Room for the netlink header the kernel reserves on top of a message.
const SEND_BUFFER_SLACK: usize = 4096;
/// One datagram at a time; acks are small, this is generous.
const DATAGRAM_BYTES: usize = 64 * 1024;
/// First sequence number; any value works, the socket is ours alone.
const FIRST_SEQ: u32 = 1;

/// Replaces the `inet` table named in `ruleset` in the current network
/// namespace, atomically: on error the previous table (or none) stays.
pub fn apply(ruleset: &Ruleset) -> Result<(), FirewallError> {
    let batch = encode(ruleset, FIRST_SEQ)?;
    let socket = open_socket(&batch).map_err(|source| FirewallError::Socket { source })?;
    let sent = socket
        .send(&batch.bytes, 0)
        .map_err(|source| FirewallError::Send { source })?;
    if sent != batch.bytes.len() {
        return Err(FirewallError::Send {
            source: io::Error::new(
                io::ErrorKind::WriteZero,
                format!("sent {sent} of {} bytes", batch.bytes.len()),
            ),
        });
    }
    let acks = drain_acks(&socket)?;
    check_acks(&batch, &acks)
}

fn open_socket(batch: &Batch) -> io::Result<Socket> {
    let mut socket = Socket::new(NETLINK_NETFILTER)?;
    socket.bind_auto()?;
    // Errors need only our header back, not the whole rule; the kernel's
    // text (extended ack) helps the admin when it gives one.
    socket.set_cap_ack(true)?;
    socket.set_ext_ack(true)?;
    // The batch goes out in one sendmsg, which the kernel refuses beyond
    // the send buffer (EMSGSIZE); every ack must fit in the receive queue
    // at once, or the kernel drops the rest (ENOBUFS).
    let send = batch.bytes.len().saturating_add(SEND_BUFFER_SLACK);
    let recv = (batch.acked.len() + 1).saturating_mul(RECV_BYTES_PER_ACK);
    grow_buffer(&socket, libc::SO_SNDBUFFORCE, libc::SO_SNDBUF, send)?;
    grow_buffer(&socket, libc::SO_RCVBUFFORCE, libc::SO_RCVBUF, recv)?;
    Ok(socket)
}

/// Raises a socket buffer to `bytes`, beyond the sysctl limit when we have
/// CAP_NET_ADMIN (init does), else as far as the limit allows.
fn grow_buffer(
    socket: &Socket,
    force: libc::c_int,
    plain: libc::c_int,
    bytes: usize,
) -> io::Result<()> {
    let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    if setsockopt_int(socket, force, value).is_ok() {
        return Ok(());
    }
    setsockopt_int(socket, plain, value)
}

fn setsockopt_int(socket: &Socket, option: libc::c_int, value: libc::c_int) -> io::Result<()> {
    let len = libc::socklen_t::try_from(std::mem::size_of::<libc::c_int>())
        .expect("an int's size fits socklen_t");
    // SAFETY: the fd is owned by `socket`, open for this call; `value` is a
    // live c_int and `len` is its exact size, read by the kernel only
    // during the call.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            option,
            std::ptr::from_ref(&value).cast(),
            len,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Reads every queued datagram without blocking.
fn drain_acks(socket: &Socket) -> Result<Vec<Ack>, FirewallError> {
    let mut acks = Vec::new();
    loop {
        let mut buf = Vec::with_capacity(DATAGRAM_BYTES);
        match socket.recv(&mut buf, libc::MSG_DONTWAIT) {
            Ok(0) => return Ok(acks),
            Ok(_) => {
                acks.extend(parse_acks(&buf).map_err(|source| FirewallError::Reply { source })?)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(acks),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(source) => return Err(FirewallError::Receive { source }),
        }
    }
}

/// The first rejected message in batch order wins: later errors are often
/// consequences of it. Every acked message must have been answered.
pub(crate) fn check_acks(batch: &Batch, acks: &[Ack]) -> Result<(), FirewallError> {
    let rejected = |seq: u32| acks.iter().find(|a| a.seq == seq && a.errno != 0);
    if let Some(ack) = rejected(batch.begin_seq) {
        return Err(rejection("the batch", ack));
    }
    for (seq, what) in &batch.acked {
        if let Some(ack) = rejected(*seq) {
            return Err(rejection(what, ack));
        }
    }
    // An error on a sequence number we did not send (none expected).
    if let Some(ack) = acks.iter().find(|a| a.errno != 0) {
        return Err(rejection(&format!("message {}", ack.seq), ack));
    }
    match batch
        .acked
        .iter()
        .find(|(seq, _)| !acks.iter().any(|a| a.seq == *seq))
    {
        Some((_, what)) => Err(FirewallError::NoAck { what: what.clone() }),
        None => Ok(()),
    }
}

fn rejection(what: &str, ack: &Ack) -> FirewallError {
    let errno = ack.errno.saturating_neg();
    let detail = match &ack.message {
        Some(m) => format!(" ({m})"),
        // The kernel answers ENOENT for an expression whose module it
        // could not load; the guest has no modprobe for it to call.
        None if errno == libc::ENOENT && what.contains("ct state") => {
            " (load the nft_ct module first)".to_owned()
        }
        None => String::new(),
    };
    FirewallError::Rejected {
        what: what.to_owned(),
        detail,
        source: io::Error::from_raw_os_error(errno),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch() -> Batch {
        Batch {
            bytes: Vec::new(),
            acked: vec![(2, "creating table".to_owned()), (3, "rule 1".to_owned())],
            begin_seq: 1,
        }
    }

    fn ack(seq: u32, errno: i32) -> Ack {
        Ack {
            seq,
            errno,
            message: None,
        }
    }

    #[test]
    fn all_acked_is_ok() {
        assert!(check_acks(&batch(), &[ack(2, 0), ack(3, 0)]).is_ok());
    }

    #[test]
    fn rejection_names_the_message_and_errno() {
        let err = check_acks(&batch(), &[ack(2, 0), ack(3, -22)]).expect_err("rejected");
        let text = err.to_string();
        assert!(text.contains("rule 1"), "{text}");
        assert!(text.contains("Invalid argument"), "{text}");
        assert!(text.contains("previous ruleset stays"), "{text}");
    }

    #[test]
    fn first_rejection_in_batch_order_wins() {
        let acks = [ack(3, -2), ack(2, -22)];
        let err = check_acks(&batch(), &acks).expect_err("rejected");
        assert!(err.to_string().contains("creating table"), "{err}");
    }

    #[test]
    fn batch_level_error_and_extended_ack_text() {
        let acks = [Ack {
            seq: 1,
            errno: -1,
            message: Some("not allowed".to_owned()),
        }];
        let err = check_acks(&batch(), &acks).expect_err("rejected");
        let text = err.to_string();
        assert!(text.contains("the batch (not allowed)"), "{text}");
    }

    #[test]
    fn missing_ct_module_gets_a_hint() {
        let mut b = batch();
        b.acked[1].1 = "rule 1 of chain input (ct state established,related accept)".to_owned();
        let err = check_acks(&b, &[ack(2, 0), ack(3, -libc::ENOENT)]).expect_err("rejected");
        assert!(err.to_string().contains("load the nft_ct module"), "{err}");
    }

    #[test]
    fn a_missing_ack_is_an_error() {
        let err = check_acks(&batch(), &[ack(2, 0)]).expect_err("no ack for 3");
        assert!(matches!(err, FirewallError::NoAck { ref what } if what == "rule 1"));
    }
}
