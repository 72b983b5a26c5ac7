//! The OVF descriptor: generated from an [`OvfSpec`](crate::OvfSpec) with
//! quick-xml's writer (every value escaped, nothing pasted into a template),
//! and parsed back for `inspect` and the tests.

pub mod dom;
mod parse;
mod validate;
mod write;

pub use parse::{parse_descriptor, FileRef, ParsedDescriptor};
pub use validate::validate;
pub use write::write_descriptor;

use std::io;

/// Default and `ovf:` namespace.
pub const NS_OVF: &str = "http://schemas.dmtf.org/ovf/envelope/1";
/// `rasd:` (Item fields).
pub const NS_RASD: &str =
    "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData";
/// `vssd:` (System fields).
pub const NS_VSSD: &str =
    "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData";
/// `vmw:` (VMware extensions).
pub const NS_VMW: &str = "http://www.vmware.com/schema/ovf";
/// The Disk `ovf:format` of a streamOptimized VMDK.
pub const FORMAT_STREAM_OPTIMIZED: &str =
    "http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized";
/// `ovf:id` of "Other Linux 64-bit" in the CIM OS table; vSphere reads `vmw:osType`.
pub const OS_ID_OTHER_LINUX_64: &str = "101";

/// The VMDK the descriptor references.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DiskRef {
    /// The OVA member name (`ovf:href`).
    pub file_name: String,
    /// The VMDK's exact size (`File ovf:size`).
    pub file_size: u64,
    /// The virtual disk's size in bytes (`Disk ovf:capacity`).
    pub capacity_bytes: u64,
}

/// What went wrong writing or reading an OVF descriptor.
#[derive(Debug, thiserror::Error)]
pub enum OvfError {
    #[error("OVF spec {field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("writing OVF descriptor: {source}")]
    Write { source: io::Error },
    #[error("OVF descriptor is not well-formed XML near byte {position}: {source}")]
    Xml {
        position: u64,
        source: quick_xml::Error,
    },
    #[error("OVF descriptor: {reason}")]
    Malformed { reason: String },
}

impl OvfError {
    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn malformed(reason: impl Into<String>) -> Self {
        Self::Malformed {
            reason: reason.into(),
        }
    }
}
