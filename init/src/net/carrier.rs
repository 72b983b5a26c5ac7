//! Waiting for carrier: subscribe to link events, then look, then sleep in
//! poll(2) until the link reports carrier or the timeout passes. Never
//! forever: a NIC without link is reported, not waited for.

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use netlink_packet_core::{NetlinkBuffer, NetlinkMessage, NetlinkPayload};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use super::netlink::{aligned, Netlink, NetlinkError, RECV_BUF_LEN};
use super::rtmsg::link_from;

/// Multicast group of link changes (`RTMGRP_LINK`).
const RTMGRP_LINK: u32 = 1;

/// Waits until the link `index` has carrier, or `timeout` passes. Returns
/// whether it got carrier. Listens to link events on its own socket, so it
/// wakes on the change rather than polling.
pub fn wait_for_carrier(index: u32, timeout: Duration) -> Result<bool, NetlinkError> {
    let what = format!("wait for carrier on link {index}");
    let mut events = Socket::new(NETLINK_ROUTE).map_err(|source| NetlinkError::Open { source })?;
    events
        .bind(&SocketAddr::new(0, RTMGRP_LINK))
        .map_err(|source| NetlinkError::Open { source })?;
    // Subscribe first, then look: a change between the two is not lost.
    let mut nl = Netlink::open()?;
    if nl.links()?.iter().any(|l| l.index == index && l.carrier) {
        return Ok(true);
    }
    let deadline = Instant::now() + timeout;
    let mut buf: Vec<u8> = Vec::with_capacity(RECV_BUF_LEN);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(false);
        }
        let ms = u16::try_from(left.as_millis().saturating_add(1)).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(events.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => {
                return Err(NetlinkError::Recv {
                    what,
                    source: e.into(),
                })
            }
        }
        buf.clear();
        events
            .recv(&mut buf, 0)
            .map_err(|source| NetlinkError::Recv {
                what: what.clone(),
                source,
            })?;
        let mut offset = 0;
        while offset < buf.len() {
            let Ok(len) = NetlinkBuffer::new_checked(&buf[offset..]).map(|b| b.length() as usize)
            else {
                break;
            };
            if len == 0 {
                break;
            }
            if let Ok(msg) = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&buf[offset..]) {
                if let NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(l)) = msg.payload {
                    let link = link_from(&l);
                    if link.index == index && link.carrier {
                        return Ok(true);
                    }
                }
            }
            offset += aligned(len);
        }
    }
}
