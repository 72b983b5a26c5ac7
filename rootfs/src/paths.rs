//! Fixed paths in the guest, shared by the builder that writes them and
//! init that reads them.

/// PID 1: the kernel runs `/init` from an initramfs.
pub const INIT: &str = "/init";
/// The load balancer and VRRP daemon.
pub const LBD: &str = "/usr/bin/lbd";
/// lbd's base configuration, baked at build time.
pub const LBD_CONFIG: &str = "/etc/lbd/lbd.toml";
/// Baked runtime settings (`[settings]` of appliance.toml), lowest precedence.
pub const BAKED_SETTINGS: &str = "/etc/appliance/appliance.toml";
/// Kernel modules to load, one path per line, dependencies first.
pub const MODULE_LOAD_ORDER: &str = "/etc/appliance/modules.load";
pub const OS_RELEASE: &str = "/etc/os-release";
/// Where the data partition is mounted.
pub const DATA_MOUNT: &str = "/var/lib/appliance";
/// The appliance's store (`appliance-store`: the desired state, its
/// history, what vSphere delivered at the last boot), on the data partition.
pub const APPLIANCE_CONFIG: &str = "/var/lib/appliance/config";
/// The data partition's GPT partition name and ext4 label.
pub const DATA_PARTLABEL: &str = "appliance-data";
/// The line init prints on every console once the appliance is up; tests
/// and tooling wait for it.
pub const READY_LINE: &str = "appliance: ready";
/// The line init prints as its last act before powering off.
pub const POWEROFF_LINE: &str = "appliance: clean shutdown complete, powering off";
pub const REBOOT_LINE: &str = "appliance: clean shutdown complete, rebooting";
