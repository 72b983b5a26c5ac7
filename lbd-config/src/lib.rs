//! lbd's configuration as a library without tokio, shared by lbd, init (PID
//! 1), the importer and the API, so all of them speak one typed language.
//!
//! Inputs: lbd's TOML files in command-line order, as paths or texts.
//! Precedence: later files win; tables merge key by key, any other value
//! (including arrays) replaces the earlier one ([`load`]).
//! Outputs:
//! - the effective [`Config`] ([`load_files`], [`load_texts`]): deserialized
//!   into the [`schema`] (unknown keys are errors), validated across keys
//!   ([`validate`], [`vrrp`]), or every error as `file:line: key: message`;
//! - what other programs need to know of it ([`effective`]): the TCP ports
//!   lbd listens on, its control socket, what VRRP adverts reach it;
//! - overlay files built as typed values ([`layer::Layer`]) and serialised
//!   to TOML here, never with `format!`: a renamed schema field breaks the
//!   build of every program that writes one.

pub mod address;
pub mod duration;
pub mod effective;
pub mod layer;
pub mod load;
pub mod name;
pub mod schema;
pub mod validate;
pub mod vrrp;

pub use address::ServerAddr;
pub use duration::Dur;
pub use effective::VrrpAdverts;
pub use layer::{Layer, LayerError};
pub use load::{
    load_files, load_files_checked, load_texts, load_texts_checked, ConfigError, ConfigErrors,
    Location,
};
pub use name::{check_name, MAX_NAME_LEN};
pub use schema::*;
pub use validate::Checks;
