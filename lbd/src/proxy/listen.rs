//! Listening sockets bound with `IP_FREEBIND`, so a frontend on a virtual IP
//! that VRRP has not given this node yet binds anyway (no
//! `net.ipv4.ip_nonlocal_bind` sysctl needed).

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpListener;

/// Listen backlog; the kernel caps it at `net.core.somaxconn`.
const BACKLOG: i32 = 4096;

/// Errors binding a listener.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("binding {addr}: {source} (is another process using it?)")]
    Bind { addr: SocketAddr, source: io::Error },
    #[error("setting up socket for {addr}: {source}")]
    Socket { addr: SocketAddr, source: io::Error },
}

/// Binds and listens on `addr` with SO_REUSEADDR and IP_FREEBIND.
pub fn bind(addr: SocketAddr) -> Result<TcpListener, ListenError> {
    let socket_err = |source| ListenError::Socket { addr, source };
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
        .map_err(socket_err)?;
    socket.set_reuse_address(true).map_err(socket_err)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true).map_err(socket_err)?;
        socket.set_freebind_ipv6(true).map_err(socket_err)?;
    } else {
        socket.set_freebind(true).map_err(socket_err)?;
    }
    socket.set_nonblocking(true).map_err(socket_err)?;
    socket
        .bind(&addr.into())
        .map_err(|source| ListenError::Bind { addr, source })?;
    socket
        .listen(BACKLOG)
        .map_err(|source| ListenError::Bind { addr, source })?;
    TcpListener::from_std(socket.into()).map_err(socket_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn freebind_binds_an_address_this_host_does_not_have() {
        // 192.0.2.0/24 is TEST-NET-1: never configured here. Without
        // IP_FREEBIND (and without ip_nonlocal_bind) this bind fails with
        // EADDRNOTAVAIL. Nothing is sent to it.
        let addr: SocketAddr = "192.0.2.77:0".parse().expect("literal");
        let listener = bind(addr).expect("freebind bind");
        assert_eq!(listener.local_addr().expect("addr").ip(), addr.ip());
    }

    #[tokio::test]
    async fn bind_error_names_the_address() {
        let first = bind("127.0.0.1:0".parse().expect("literal")).expect("bind");
        let taken = first.local_addr().expect("addr");
        let err = bind(taken).expect_err("address in use").to_string();
        assert!(err.contains(&taken.to_string()), "{err}");
    }
}
