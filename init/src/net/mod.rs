//! Networking over netlink: links, addresses, routes, DHCPv4, resolv.conf.
