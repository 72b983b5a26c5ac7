//! Where a value came from, and one source's raw key/value pairs.

use std::fmt;

/// A settings source, in precedence order: a later variant wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Source {
    /// The property table's default.
    Default,
    /// The baked `/etc/appliance/appliance.toml`.
    Baked,
    /// The OVF environment (vApp properties), from guestinfo `ovfEnv`, the
    /// `OVF ENV` CD or QEMU's fw_cfg.
    OvfEnv,
    /// `guestinfo.appliance.*` variables.
    Guestinfo,
    /// The appliance's own store on the data partition (web console, API,
    /// console setup): above vSphere so a change made on the appliance
    /// holds, below the command line so a boot-time override still works.
    Appliance,
    /// The kernel command line, `appliance.<key>=<value>`.
    Cmdline,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Default => "default",
            Self::Baked => "appliance.toml",
            Self::OvfEnv => "ovf-env",
            Self::Guestinfo => "guestinfo",
            Self::Appliance => "appliance",
            Self::Cmdline => "cmdline",
        })
    }
}

/// The pairs one source gave, keys already in table form (`network.mode`,
/// no `appliance.` or `guestinfo.` prefix), in the order the source had them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    /// Which source this is.
    pub source: Source,
    /// `(key, raw value)` pairs; a later duplicate wins within the layer.
    pub pairs: Vec<(String, String)>,
}

impl Layer {
    /// A layer from any pairs.
    pub fn new(source: Source, pairs: Vec<(String, String)>) -> Self {
        Self { source, pairs }
    }
}
