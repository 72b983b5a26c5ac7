//! Health checks: the pure state machine ([`fsm`]), agent replies
//! ([`agent`]), the probes ([`probe`], [`tls`]) and the tasks ([`driver`]).

pub mod agent;
pub mod driver;
pub mod fsm;
pub mod probe;
pub mod tls;

#[cfg(test)]
mod tests;
