//! Gathering the appliance's settings from every source the VM may have,
//! in precedence order (lowest first):
//!
//! ```text
//! baked /etc/appliance/appliance.toml
//!   < OVF environment: guestinfo.ovfEnv (VMware backdoor)
//!                      | "OVF ENV" CD (ovf-env.xml)      first one found
//!                      | QEMU fw_cfg opt/appliance/ovf-env.xml
//!   < guestinfo.appliance.* (VMware backdoor)
//!   < the appliance store on the data partition (crate::store)
//!   < kernel command line appliance.<key>=<value>
//! ```
//! Reading a source never fails the boot: a source that cannot be read is
//! reported (as a [`SourceNote`]) and the others still apply. init never
//! writes guestinfo.

use std::path::Path;
use std::time::{Duration, Instant};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use settings::ovfenv::{FW_CFG_PATH, ISO_FILE_NAME};
use settings::{Layer, Merged, OvfEnvironment};

use crate::vmware::{guestinfo_get, Backdoor, VmwareBackdoor};

/// Where the OVF environment CD is mounted while it is read.
const CDROM_MOUNT: &str = "/run/ovf-env-cd";
/// How long to wait for a CD drive to appear after the IDE driver loads
/// (libata probes asynchronously).
const CDROM_WAIT: Duration = Duration::from_secs(3);

/// A line for the console about one source: found, absent or broken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceNote {
    pub error: bool,
    pub text: String,
}

impl SourceNote {
    pub(crate) fn info(text: String) -> Self {
        Self { error: false, text }
    }
    pub(crate) fn error(text: String) -> Self {
        Self { error: true, text }
    }
}

/// The merged settings with notes on where they came from.
pub struct Gathered {
    pub merged: Merged,
    /// The appliance store (`None` without one).
    pub store: Option<appliance_store::Store>,
    /// Every layer but the store's (baked, vSphere, kernel command line):
    /// what a change through the appliance socket is merged with.
    pub lower: Vec<Layer>,
    pub notes: Vec<SourceNote>,
}

/// Reads every source and merges them. `store_dir` is the appliance
/// store's directory (`None` without a data partition); `now` is seconds
/// since the epoch, for a revision the vSphere rule writes.
pub fn gather(store_dir: Option<&Path>, now: u64) -> Gathered {
    let mut notes = Vec::new();
    let mut layers = Vec::new();

    match settings::baked::load(Path::new(settings::baked::BAKED_PATH)) {
        Ok(layer) => layers.push(layer),
        Err(e) => notes.push(SourceNote::error(format!("baked settings: {e}"))),
    }

    let mut backdoor = VmwareBackdoor::detect();
    if let Some(env) = ovf_environment(backdoor.as_mut(), &mut notes) {
        layers.push(env);
    }
    if let Some(bd) = backdoor.as_mut() {
        layers.push(guestinfo_layer(bd, &mut notes));
    }
    let cmdline = std::fs::read_to_string(settings::cmdline::CMDLINE_PATH).unwrap_or_default();
    layers.push(settings::cmdline::parse(&cmdline));

    let lower = layers.clone();
    let at_boot = crate::store::merge_with_store(layers, store_dir, now);
    notes.extend(at_boot.notes);
    Gathered {
        merged: at_boot.merged,
        store: at_boot.store,
        lower,
        notes,
    }
}

/// The OVF environment from the first transport that has one.
fn ovf_environment(
    backdoor: Option<&mut VmwareBackdoor>,
    notes: &mut Vec<SourceNote>,
) -> Option<Layer> {
    let mut found: Option<(String, Vec<u8>)> = None;
    if let Some(bd) = backdoor {
        match guestinfo_get(bd, "ovfEnv") {
            Ok(Some(xml)) => found = Some(("guestinfo.ovfEnv".into(), xml.into_bytes())),
            Ok(None) => {}
            Err(e) => notes.push(SourceNote::error(format!(
                "OVF environment from guestinfo: {e}"
            ))),
        }
    }
    if found.is_none() {
        if let Ok(xml) = std::fs::read(FW_CFG_PATH) {
            found = Some(("QEMU fw_cfg".into(), xml));
        }
    }
    if found.is_none() {
        match read_cdrom_env() {
            Ok(Some((dev, xml))) => found = Some((format!("CD {dev}"), xml)),
            Ok(None) => {}
            Err(e) => notes.push(SourceNote::error(format!("OVF environment CD: {e}"))),
        }
    }
    let (transport, xml) = found?;
    match OvfEnvironment::parse_bytes(&xml) {
        Ok(env) => {
            let layer = env.layer();
            notes.push(SourceNote::info(format!(
                "OVF environment from {transport}: {} properties",
                layer.pairs.len()
            )));
            Some(layer)
        }
        Err(e) => {
            notes.push(SourceNote::error(format!(
                "OVF environment from {transport} ignored: {e}"
            )));
            None
        }
    }
}

/// `guestinfo.appliance.*` variables, asked for one by one (the backdoor
/// has no listing).
fn guestinfo_layer(bd: &mut impl Backdoor, notes: &mut Vec<SourceNote>) -> Layer {
    let mut found = Vec::new();
    for var in settings::guestinfo::variables() {
        match guestinfo_get(bd, &var) {
            Ok(Some(value)) => found.push((var, value)),
            Ok(None) => {}
            Err(e) => {
                notes.push(SourceNote::error(format!("reading {var}: {e}")));
                // A broken channel fails every key the same way: say it once.
                break;
            }
        }
    }
    settings::guestinfo::parse(found)
}

/// Mounts each CD drive read-only and reads `ovf-env.xml` from the first
/// that has it. Drives without media are skipped.
fn read_cdrom_env() -> Result<Option<(String, Vec<u8>)>, String> {
    let drives = cdrom_drives();
    if drives.is_empty() {
        return Ok(None);
    }
    std::fs::create_dir_all(CDROM_MOUNT).map_err(|e| format!("mkdir {CDROM_MOUNT}: {e}"))?;
    for dev in drives {
        let flags =
            MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
        if mount(
            Some(dev.as_str()),
            CDROM_MOUNT,
            Some("iso9660"),
            flags,
            None::<&str>,
        )
        .is_err()
        {
            // No medium, or not ISO 9660: not an OVF environment CD.
            continue;
        }
        let xml = std::fs::read(Path::new(CDROM_MOUNT).join(ISO_FILE_NAME));
        let _ = umount2(CDROM_MOUNT, MntFlags::MNT_DETACH);
        if let Ok(xml) = xml {
            return Ok(Some((dev, xml)));
        }
    }
    Ok(None)
}

/// `/dev/srN` devices, waiting briefly for them to appear when the machine
/// has an ATA controller (where vSphere and QEMU attach the CD).
fn cdrom_drives() -> Vec<String> {
    let has_ata = std::fs::read_dir("/sys/class/ata_port")
        .map(|mut d| d.next().is_some())
        .unwrap_or(false);
    let deadline = Instant::now() + if has_ata { CDROM_WAIT } else { Duration::ZERO };
    loop {
        let mut drives: Vec<String> = std::fs::read_dir("/sys/block")
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with("sr"))
                    .map(|n| format!("/dev/{n}"))
                    .collect()
            })
            .unwrap_or_default();
        drives.sort();
        if !drives.is_empty() || Instant::now() >= deadline {
            return drives;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
