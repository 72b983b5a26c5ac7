//! `image-builder run`: boot an image in QEMU the way an admin would try
//! the appliance before deploying it.
//!
//! ```text
//! image + --settings FILE + --set k=v
//!   -> settings checked against the table (image's baked ones below)
//!   -> OVF environment over fw_cfg (opt/appliance/ovf-env.xml)
//!   -> user network shaped around a static address, restricted
//!   -> forwards for the stats page and every frontend port
//!   -> KVM if it runs OVMF here, else TCG; tty1 on VNC or a window
//! ```
//!
//! Everything that can be wrong (image, firmware, QEMU, a setting) is an
//! error before QEMU starts.

pub mod accel;
pub mod ports;
pub mod settings;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use ::settings::value::NetworkMode;
use ::settings::Layer;

use crate::inspect;
use crate::qemu::{
    Accel, Display, NetBackend, QemuError, UserSubnet, VmSpec, OVMF_CODE, OVMF_VARS,
};
use ports::GuestPort;

/// The emulator `run` starts.
pub const QEMU: &str = "qemu-system-x86_64";
/// Where init looks for an OVF environment in QEMU's firmware config.
pub const OVF_ENV_FW_CFG: &str = "opt/appliance/ovf-env.xml";

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{} does not exist: build the appliance first (cargo run --release -p image-builder -- build) or name an image: image-builder run path/to/image.img", path.display())]
    NoImage { path: PathBuf },
    #[error("{QEMU} is not on PATH: install it with `apt-get install qemu-system-x86`")]
    NoQemu,
    #[error(transparent)]
    Qemu(#[from] QemuError),
    #[error("reading the image: {0}")]
    Inspect(#[from] inspect::InspectError),
    #[error(transparent)]
    Settings(#[from] settings::RunSettingsError),
    #[error("network.ipv4 {addr}/{prefix}: `run`'s user network needs a /30 or wider network around the address; use a shorter prefix")]
    SubnetTooSmall { addr: Ipv4Addr, prefix: u8 },
    #[error(
        "--console window needs a desktop (DISPLAY or WAYLAND_DISPLAY is unset): use --console vnc"
    )]
    NoDesktop,
    #[error("no free VNC display on 127.0.0.1 (ports 5900-5999 are all taken)")]
    NoVncPort,
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

/// Where tty1 goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Console {
    /// A VNC server on 127.0.0.1 (any VNC viewer).
    Vnc,
    /// A window on this desktop.
    Window,
}

/// Which accelerator to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AccelChoice {
    /// KVM when it runs OVMF on this host, else TCG.
    Auto,
    Kvm,
    Tcg,
}

pub struct RunOptions {
    pub image: PathBuf,
    pub settings_file: Option<PathBuf>,
    pub sets: Vec<String>,
    pub console: Option<Console>,
    pub persist: bool,
    pub memory_mib: u32,
    pub cpus: u32,
    pub outbound: bool,
    pub accel: AccelChoice,
}

/// A VM ready to start, and what to tell the admin about it.
pub struct Plan {
    pub vm: VmSpec,
    /// What forwards where: (guest port, host port).
    pub forwards: Vec<(GuestPort, u16)>,
    pub accel_note: String,
    /// `key = value (source)` for what was delivered, secrets masked.
    pub delivered: Vec<String>,
    pub guest_address: Ipv4Addr,
    /// What the admin should know before the boot (lbd's config errors).
    pub warnings: Vec<String>,
    /// Holds the OVF environment and the UEFI variables while QEMU runs.
    pub workdir: tempfile::TempDir,
}

pub fn plan(opts: &RunOptions) -> Result<Plan, RunError> {
    if !opts.image.is_file() {
        return Err(RunError::NoImage {
            path: opts.image.clone(),
        });
    }
    for path in [OVMF_CODE, OVMF_VARS] {
        if !Path::new(path).exists() {
            return Err(QemuError::NoOvmf { path }.into());
        }
    }
    if !on_path(QEMU) {
        return Err(RunError::NoQemu);
    }
    let io = |what: &str| {
        let what = what.to_string();
        move |source| RunError::Io { what, source }
    };
    let baked = inspect::initramfs_files(
        &opts.image,
        &[rootfs::paths::BAKED_SETTINGS, rootfs::paths::LBD_CONFIG],
    )?;
    let text = |data: &Option<Vec<u8>>| {
        data.as_deref()
            .map(|d| String::from_utf8_lossy(d).into_owned())
    };
    let baked_layer: Option<Layer> = text(&baked[0])
        .and_then(|t| ::settings::baked::parse(&t, Path::new(rootfs::paths::BAKED_SETTINGS)).ok());
    let delivered = settings::collect(opts.settings_file.as_deref(), &opts.sets)?;
    let merged = settings::check(baked_layer, &delivered)?;
    let (config_name, lbd_config) = match &merged.settings.lbd_config {
        Some(text) => ("lbd.config", text.clone()),
        None => (
            rootfs::paths::LBD_CONFIG,
            text(&baked[1]).unwrap_or_default(),
        ),
    };
    let mut warnings = Vec::new();
    // The overlay init will write for the service slots, as init builds it.
    let services = ::settings::service_layer::services_layer(&merged.settings.services)
        .map(|layer| layer.to_toml(""));
    let services = match services {
        Some(Ok(text)) => text,
        Some(Err(e)) => {
            warnings.push(format!("the service slots' overlay: {e}"));
            String::new()
        }
        None => String::new(),
    };
    let mut files = vec![(config_name, lbd_config.as_str())];
    if !services.is_empty() {
        files.push(("the service slots' overlay", services.as_str()));
    }
    let guest_ports = ports::guest_ports(&files).unwrap_or_else(|e| {
        warnings.push(format!(
            "lbd would refuse its config, so nothing listens in the guest:\n{e}"
        ));
        Vec::new()
    });
    let host_ports = ports::host_ports(&guest_ports);
    let forwards: Vec<(GuestPort, u16)> = guest_ports.into_iter().zip(host_ports).collect();

    let subnet = user_subnet(&merged.settings.network)?;
    let guest_address = subnet
        .as_ref()
        .map_or(Ipv4Addr::new(10, 0, 2, 15), |s| s.guest);

    let workdir = tempfile::tempdir().map_err(io("creating a temporary directory"))?;
    let vars = workdir.path().join("OVMF_VARS.fd");
    let mut vm = VmSpec::new(&opts.image, &vars);
    vm.snapshot = !opts.persist;
    vm.memory_mib = opts.memory_mib;
    vm.cpus = opts.cpus;
    vm.nics = vec![(
        NetBackend::User {
            forwards: forwards.iter().map(|(g, h)| (*h, g.port)).collect(),
            subnet,
            outbound: opts.outbound,
        },
        None,
    )];
    if !delivered.is_empty() {
        let env = workdir.path().join("ovf-env.xml");
        std::fs::write(&env, ::settings::environment_xml(&delivered))
            .map_err(io("writing the OVF environment"))?;
        vm.fw_cfg.push((OVF_ENV_FW_CFG.to_string(), env));
    }
    let (accel, why_not_kvm) = match opts.accel {
        AccelChoice::Auto => accel::choose(QEMU),
        AccelChoice::Kvm => (Accel::Kvm, None),
        AccelChoice::Tcg => (Accel::Tcg, Some("--accel tcg".to_string())),
    };
    vm.accel = accel;
    let accel_note = match (accel, why_not_kvm) {
        (Accel::Kvm, _) => "KVM".to_string(),
        (Accel::Tcg, Some(why)) => {
            format!("TCG, software emulation ({why}): slower, allow a minute")
        }
        (Accel::Tcg, None) => "TCG, software emulation".to_string(),
    };
    vm.display = match opts.console {
        None => Display::None,
        Some(Console::Vnc) => Display::Vnc {
            display: free_vnc_display().ok_or(RunError::NoVncPort)?,
        },
        Some(Console::Window) => {
            if std::env::var_os("DISPLAY").is_none()
                && std::env::var_os("WAYLAND_DISPLAY").is_none()
            {
                return Err(RunError::NoDesktop);
            }
            Display::Window
        }
    };
    vm.prepare_vars()?;
    let delivered_keys: Vec<&str> = delivered.iter().map(|(k, _)| k.as_str()).collect();
    let delivered = merged
        .render()
        .into_iter()
        .filter(|line| {
            line.split_once(" = ")
                .is_some_and(|(k, _)| delivered_keys.contains(&k.trim()))
        })
        .collect();
    Ok(Plan {
        vm,
        forwards,
        accel_note,
        delivered,
        guest_address,
        warnings,
        workdir,
    })
}

/// A user network around a static IPv4 address: QEMU's side takes the
/// gateway when it is in the network, else the first free address.
fn user_subnet(network: &::settings::Network) -> Result<Option<UserSubnet>, RunError> {
    if network.mode != NetworkMode::Static {
        return Ok(None);
    }
    let Some(cidr) = network.ipv4 else {
        return Ok(None);
    };
    let std::net::IpAddr::V4(guest) = cidr.addr else {
        return Ok(None);
    };
    if cidr.prefix > 30 {
        return Err(RunError::SubnetTooSmall {
            addr: guest,
            prefix: cidr.prefix,
        });
    }
    let mask = u32::MAX << (32 - u32::from(cidr.prefix));
    let net = u32::from(guest) & mask;
    let in_net = |a: Ipv4Addr| u32::from(a) & mask == net;
    let host = network
        .gateway
        .filter(|g| in_net(*g) && *g != guest)
        .unwrap_or_else(|| {
            let first = Ipv4Addr::from(net + 1);
            if first == guest {
                Ipv4Addr::from(net + 2)
            } else {
                first
            }
        });
    Ok(Some(UserSubnet {
        network: Ipv4Addr::from(net),
        prefix: cidr.prefix,
        host,
        guest,
    }))
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

fn free_vnc_display() -> Option<u16> {
    (1..100u16).find(|d| std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 5900 + d)).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn network(pairs: &[(&str, &str)]) -> ::settings::Network {
        let layer = Layer::new(
            ::settings::Source::OvfEnv,
            pairs
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
        );
        ::settings::merge([layer]).settings.network
    }

    #[test]
    fn a_static_address_shapes_the_user_network() {
        let s = user_subnet(&network(&[
            ("network.mode", "static"),
            ("network.ipv4", "192.168.50.10/24"),
            ("network.gateway", "192.168.50.1"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(s.network, Ipv4Addr::new(192, 168, 50, 0));
        assert_eq!(s.host, Ipv4Addr::new(192, 168, 50, 1));
        assert_eq!(s.guest, Ipv4Addr::new(192, 168, 50, 10));
        // The guest at .1 and no gateway: QEMU takes .2.
        let s = user_subnet(&network(&[
            ("network.mode", "static"),
            ("network.ipv4", "10.9.0.1/16"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(s.host, Ipv4Addr::new(10, 9, 0, 2));
    }

    #[test]
    fn a_missing_image_is_an_error_before_anything_starts() {
        let err = plan(&RunOptions {
            image: PathBuf::from("/nonexistent/lb.img"),
            settings_file: None,
            sets: vec![],
            console: None,
            persist: false,
            memory_mib: 1024,
            cpus: 1,
            outbound: false,
            accel: AccelChoice::Tcg,
        })
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(err.contains("/nonexistent/lb.img does not exist"), "{err}");
        assert!(err.contains("image-builder -- build"), "{err}");
    }

    #[test]
    fn dhcp_keeps_qemus_network_and_a_tiny_one_is_refused() {
        assert_eq!(user_subnet(&network(&[])).unwrap(), None);
        let err = user_subnet(&network(&[
            ("network.mode", "static"),
            ("network.ipv4", "10.0.0.5/31"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(err.contains("/30 or wider"), "{err}");
    }
}
