//! lbd's configuration: schema ([`schema`]), layered loading with
//! file:line errors ([`load`]), cross-key validation ([`validate`]).

pub mod address;
pub mod duration;
pub mod load;
pub mod schema;
pub mod validate;

pub use address::ServerAddr;
pub use duration::Dur;
pub use load::{load_files, load_texts, ConfigError, ConfigErrors, Location};
pub use schema::*;
