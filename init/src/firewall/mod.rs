//! The nftables firewall over netlink, applied in one atomic batch.
