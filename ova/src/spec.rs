//! What the OVF descriptor says, as plain data. The caller (image-builder)
//! fills it from `appliance.toml` and the `settings` crate's property table;
//! this crate does not depend on `settings`.

use serde::{Deserialize, Serialize};

/// The default virtual hardware version: ESXi 6.5, the first with EFI + NVMe.
pub const DEFAULT_HW_VERSION: &str = "vmx-13";
/// The default guest OS id; other5x needs 7.0.1, other6x 8.0.0.1.
pub const DEFAULT_GUEST_OS: &str = "other4xLinux64Guest";
/// The network name vSphere hosts have out of the box.
pub const DEFAULT_NETWORK: &str = "VM Network";

/// One virtual machine as an OVF descriptor describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OvfSpec {
    /// VirtualSystem id and Name; also the stem of the OVA's member names.
    pub name: String,
    pub product: ProductInfo,
    /// Free text shown in vCenter's VM summary; empty leaves the section out.
    pub annotation: String,
    /// `vmw:osType`, e.g. [`DEFAULT_GUEST_OS`].
    pub guest_os: String,
    pub hardware: Hardware,
    pub transport: Transport,
    /// Properties in wizard order, grouped under `<Category>` headings.
    pub properties: Vec<PropertyGroup>,
}

/// ProductSection header fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductInfo {
    pub product: String,
    pub vendor: String,
    /// Short version, e.g. `0.1.0`; also part of the OVA file name.
    pub version: String,
    pub full_version: String,
    pub product_url: String,
    pub vendor_url: String,
}

/// Virtual hardware of the VirtualHardwareSection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hardware {
    /// `vssd:VirtualSystemType`, `vmx-13` or later.
    pub hw_version: String,
    pub cpus: u32,
    pub memory_mib: u64,
    pub disk_controller: DiskController,
    /// The NIC's network; also the NetworkSection's only network.
    pub network_name: String,
    pub nic: NicType,
    pub cdrom: bool,
    pub video: bool,
    pub firmware: Firmware,
    /// Always stated explicitly in `bootOptions.efiSecureBootEnabled`.
    pub secure_boot: bool,
    /// `powerOpInfo.powerOffType = soft`: "Power off" asks the guest first.
    pub soft_power_off: bool,
}

impl Default for Hardware {
    fn default() -> Self {
        Self {
            hw_version: DEFAULT_HW_VERSION.into(),
            cpus: 2,
            memory_mib: 1024,
            disk_controller: DiskController::Nvme,
            network_name: DEFAULT_NETWORK.into(),
            nic: NicType::Vmxnet3,
            cdrom: true,
            video: true,
            firmware: Firmware::Efi,
            secure_boot: false,
            soft_power_off: true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DiskController {
    /// ResourceType 20, `vmware.nvme.controller` (vmx-13+).
    Nvme,
    /// ResourceType 6, `VirtualSCSI` (paravirtual SCSI).
    Pvscsi,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NicType {
    /// ResourceSubType `VmxNet3`; the only NIC the Debian cloud kernel drives on vSphere.
    Vmxnet3,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Firmware {
    Efi,
    Bios,
}

/// How vSphere hands the OVF environment to the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Transport {
    /// `com.vmware.guestInfo` (guestinfo.ovfEnv).
    GuestInfo,
    /// `iso com.vmware.guestInfo`: also an `OVF ENV` CD; needs the CD-ROM.
    IsoAndGuestInfo,
}

impl Transport {
    /// The `ovf:transport` attribute value.
    pub fn as_ovf(self) -> &'static str {
        match self {
            Self::GuestInfo => "com.vmware.guestInfo",
            Self::IsoAndGuestInfo => "iso com.vmware.guestInfo",
        }
    }
}

/// Properties under one `<Category>` heading (empty: no heading).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PropertyGroup {
    pub category: String,
    pub properties: Vec<Property>,
}

/// One `<Property>` of the ProductSection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Property {
    /// `ovf:key`; the environment key is `class.key` when `class` is set.
    pub key: String,
    pub class: Option<String>,
    #[serde(rename = "type")]
    pub kind: PropertyType,
    /// `ovf:value`, the default.
    pub default: String,
    pub label: String,
    pub description: String,
    /// `ovf:userConfigurable`: false hides it from the deploy wizard.
    pub user_configurable: bool,
    /// `ovf:password`: the wizard masks it and asks twice.
    pub password: bool,
    /// `ovf:qualifiers`, e.g. `MinLen(1),MaxLen(63)` or `ValueMap{"dhcp","static"}`.
    pub qualifiers: Option<String>,
    /// `vmw:qualifiers`, e.g. `Ip`.
    pub vmw_qualifiers: Option<String>,
}

impl Property {
    /// The key the guest sees in the OVF environment.
    pub fn env_key(&self) -> String {
        match &self.class {
            Some(class) => format!("{class}.{}", self.key),
            None => self.key.clone(),
        }
    }
}

/// `ovf:type` values vSphere accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PropertyType {
    String,
    Boolean,
    Int,
    Uint8,
    Sint8,
    Uint16,
    Sint16,
    Uint32,
    Sint32,
    Uint64,
    Sint64,
    Real32,
    Real64,
}

impl PropertyType {
    const ALL: [(Self, &'static str); 13] = [
        (Self::String, "string"),
        (Self::Boolean, "boolean"),
        (Self::Int, "int"),
        (Self::Uint8, "uint8"),
        (Self::Sint8, "sint8"),
        (Self::Uint16, "uint16"),
        (Self::Sint16, "sint16"),
        (Self::Uint32, "uint32"),
        (Self::Sint32, "sint32"),
        (Self::Uint64, "uint64"),
        (Self::Sint64, "sint64"),
        (Self::Real32, "real32"),
        (Self::Real64, "real64"),
    ];

    /// The `ovf:type` attribute value.
    pub fn as_ovf(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(t, _)| *t == self)
            .map_or("string", |(_, s)| s)
    }

    /// Parses an `ovf:type` attribute value.
    pub fn from_ovf(s: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .find(|(_, name)| *name == s)
            .map(|(t, _)| *t)
    }
}

impl OvfSpec {
    /// A small complete spec (the shape of the appliance's) for tests and docs.
    pub fn example() -> Self {
        let prop = |key: &str, kind, default: &str, label: &str| Property {
            key: key.into(),
            class: None,
            kind,
            default: default.into(),
            label: label.into(),
            description: format!("The {label} of this appliance."),
            user_configurable: true,
            password: false,
            qualifiers: None,
            vmw_qualifiers: None,
        };
        Self {
            name: "lb".into(),
            product: ProductInfo {
                product: "LB appliance".into(),
                vendor: "Example".into(),
                version: "0.1.0".into(),
                full_version: "0.1.0".into(),
                product_url: "https://example.com/lb".into(),
                vendor_url: "https://example.com".into(),
            },
            annotation: "Highly available load balancer.".into(),
            guest_os: DEFAULT_GUEST_OS.into(),
            hardware: Hardware::default(),
            transport: Transport::GuestInfo,
            properties: vec![
                PropertyGroup {
                    category: "Network".into(),
                    properties: vec![
                        Property {
                            qualifiers: Some("MinLen(1),MaxLen(63)".into()),
                            ..prop("hostname", PropertyType::String, "lb", "host name")
                        },
                        Property {
                            qualifiers: Some(r#"ValueMap{"dhcp","static"}"#.into()),
                            ..prop("network.mode", PropertyType::String, "dhcp", "network mode")
                        },
                        Property {
                            vmw_qualifiers: Some("Ip".into()),
                            ..prop("network.address", PropertyType::String, "", "IPv4 address")
                        },
                        prop("network.prefix", PropertyType::Uint8, "24", "prefix length"),
                    ],
                },
                PropertyGroup {
                    category: "VRRP".into(),
                    properties: vec![
                        prop("vrrp.priority", PropertyType::Int, "100", "VRRP priority"),
                        prop(
                            "vrrp.enabled",
                            PropertyType::Boolean,
                            "false",
                            "VRRP switch",
                        ),
                    ],
                },
                PropertyGroup {
                    category: "Access".into(),
                    properties: vec![Property {
                        password: true,
                        ..prop("admin.password", PropertyType::String, "", "admin password")
                    }],
                },
            ],
        }
    }
}

impl std::fmt::Display for PropertyType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_ovf())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn property_types_round_trip() {
        for (t, name) in PropertyType::ALL {
            assert_eq!(t.as_ovf(), name);
            assert_eq!(PropertyType::from_ovf(name), Some(t));
        }
        assert_eq!(PropertyType::from_ovf("ip"), None);
    }

    #[test]
    fn env_key_uses_class() {
        let mut p = OvfSpec::example().properties[0].properties[0].clone();
        assert_eq!(p.env_key(), "hostname");
        p.class = Some("appliance".into());
        assert_eq!(p.env_key(), "appliance.hostname");
    }
}
