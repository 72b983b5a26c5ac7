//! Proxying: listeners ([`listen`]), the byte pump ([`copy`]), mode tcp
//! ([`tcp`]) and the accept loops that tie them to the runtime ([`accept`]).

pub mod accept;
pub mod copy;
pub mod http;
pub mod listen;
pub mod proxy_protocol;
pub mod route;
pub mod splice;
pub mod tcp;
pub mod tls_server;
