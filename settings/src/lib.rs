//! The appliance's runtime settings: the property table, a parser for every
//! source, and the merge.
//!
//! # Keys
//! Each setting has one dotted key in the property table ([`properties`]),
//! e.g. `hostname`, `network.mode`, `vrrp.priority`. The same key is spelled
//! in each source as:
//!
//! | source (lowest to highest precedence) | spelling |
//! | --- | --- |
//! | baked `/etc/appliance/appliance.toml` | `[settings]` table: `network.mode = "static"` (or `[settings.network]`) |
//! | OVF environment (vApp properties) | `ovf:class="appliance"` `ovf:key="network.mode"`, so `oe:key="appliance.network.mode"` |
//! | guestinfo | `guestinfo.appliance.network.mode` |
//! | the appliance's store (`appliance-store`, on the data partition) | `[settings]` of `current.toml`: `"network.mode" = "static"` |
//! | kernel command line | `appliance.network.mode=static` |
//!
//! # Flow
//! init reads each source into a [`Layer`] ([`baked::load`],
//! [`OvfEnvironment::parse`] then [`OvfEnvironment::layer`],
//! [`guestinfo::parse`], [`cmdline::parse`]) and calls [`merge`], a pure fold
//! in precedence order on top of the table's defaults. Every value's source
//! is recorded ([`Merged::origins`]); a bad value (unknown key, malformed
//! address, out of range) becomes a [`SettingError`] naming key, value and
//! source, and the lower layer's value stands. [`Merged::render`] gives the
//! console lines `key = value (source)` with secrets masked.
//!
//! Besides the table's `sysctl` list, any source may set one sysctl with a
//! `sysctl.<name>` key (`[settings.sysctl]` in TOML,
//! `appliance.sysctl.net.core.somaxconn=4096` on the command line).
//!
//! # Service slots
//! `service.1.*` to `service.4.*` ([`service`]) describe up to four
//! load-balanced services in the deploy wizard's words. Each field is
//! parsed by its setter; the merge then checks each slot in use as a whole
//! and against the others, and keeps those that pass as
//! [`Settings::services`] (a slot that fails is a [`SettingError`] and is
//! not configured; the others apply). A service's virtual IP joins
//! [`Vrrp::virtual_ips`] by itself.
//!
//! An empty value sets nothing: the OVF environment carries every property,
//! also those left empty in the wizard.

pub mod baked;
pub mod cmdline;
pub mod guestinfo;
mod merge;
mod model;
pub mod ovfenv;
mod ovfenv_write;
pub mod pem;
pub mod service;
mod service_check;
pub mod service_layer;
mod service_table;
mod source;
mod table;
pub mod value;

pub use merge::{merge, Merged, Origin, SettingError, MASK};
pub use model::{
    ConsoleCertificate, Network, PeerSoftware, Settings, Vrrp, DEFAULT_NTP_MAX_STEP_S,
    SECRET_MAX_LEN,
};
pub use ovfenv::{OvfEnvError, OvfEnvironment};
pub use ovfenv_write::environment_xml;
pub use service::{HealthCheck, Listener, ServerItem, Service, ServiceSlot, SERVICE_SLOTS};
pub use source::{Layer, Source};
pub use table::{find, properties, OvfType, Property, Qualifier, OVF_CLASS};
