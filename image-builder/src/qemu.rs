//! The QEMU command line for the hardware the OVA declares for vSphere: an
//! NVMe disk, a vmxnet3 NIC and UEFI (OVMF), on the i440fx machine whose
//! PIIX IDE controller carries the OVF environment CD as on vSphere (the
//! Debian cloud kernel has no AHCI driver for q35's controller).
//!
//! Shared by `image-builder run` and the QEMU tests so both boot the same VM.

use std::ffi::OsString;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// Debian's `ovmf` package.
pub const OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";
pub const OVMF_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";

#[derive(Debug, thiserror::Error)]
pub enum QemuError {
    #[error("{path} is missing: install the UEFI firmware with `apt-get install ovmf`")]
    NoOvmf { path: &'static str },
    #[error("copying the UEFI variable store to {}: {source}", path.display())]
    Vars {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn user_netdev(
    index: usize,
    forwards: &[(u16, u16)],
    subnet: Option<&UserSubnet>,
    outbound: bool,
) -> String {
    let mut s = format!("user,id=net{index}");
    if !outbound {
        s.push_str(",restrict=on");
    }
    let mut guest = String::new();
    if let Some(n) = subnet {
        s.push_str(&format!(
            ",net={}/{},host={},dhcpstart={}",
            n.network, n.prefix, n.host, n.guest
        ));
        guest = n.guest.to_string();
    }
    for (host, port) in forwards {
        s.push_str(&format!(",hostfwd=tcp:127.0.0.1:{host}-{guest}:{port}"));
    }
    s
}

/// How a NIC reaches the host.
#[derive(Debug, Clone)]
pub enum NetBackend {
    /// QEMU's user-mode network, with `host:guest` TCP forwards from
    /// 127.0.0.1. Restricted (`restrict=on`: the guest reaches only the
    /// forwards' peers, never real addresses) unless `outbound`.
    User {
        forwards: Vec<(u16, u16)>,
        /// The user network's addresses when not QEMU's 10.0.2.0/24.
        subnet: Option<UserSubnet>,
        outbound: bool,
    },
    /// An existing tap device (made by a test in its network namespace).
    Tap {
        ifname: String,
    },
    None,
}

/// A user network shaped around a static guest address, so forwards reach
/// it: QEMU's own network is 10.0.2.0/24 with the guest at .15.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSubnet {
    /// The network address and prefix, e.g. 192.168.50.0/24.
    pub network: Ipv4Addr,
    pub prefix: u8,
    /// QEMU's side (gateway, DNS and DHCP server).
    pub host: Ipv4Addr,
    /// Where forwards go.
    pub guest: Ipv4Addr,
}

/// How QEMU runs the guest's CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    Kvm,
    /// Software emulation: works everywhere, several times slower.
    Tcg,
}

impl Accel {
    pub fn name(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }
}

/// Where the VM's screen (tty1, the status screen) goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Display {
    None,
    /// A VNC server on 127.0.0.1, port 5900 + `display`.
    Vnc {
        display: u16,
    },
    /// A window on this desktop (GTK).
    Window,
}

#[derive(Debug, Clone)]
pub struct VmSpec {
    pub image: PathBuf,
    /// Per-VM copy of the UEFI variable store.
    pub vars: PathBuf,
    pub memory_mib: u32,
    pub cpus: u32,
    /// Writes go to a temporary overlay, so several VMs can share one image.
    pub snapshot: bool,
    pub nics: Vec<(NetBackend, Option<String>)>,
    /// QMP control socket (for `system_powerdown`).
    pub qmp: Option<PathBuf>,
    /// Extra `-fw_cfg` files: (name, host path).
    pub fw_cfg: Vec<(String, PathBuf)>,
    /// An ISO attached as an IDE CD-ROM.
    pub cdrom: Option<PathBuf>,
    /// Tests only: a second serial port on this Unix socket, and the fw_cfg
    /// switch that makes init listen there for debug commands.
    pub debug_socket: Option<PathBuf>,
    pub accel: Accel,
    pub display: Display,
}

impl VmSpec {
    pub fn new(image: &Path, vars: &Path) -> Self {
        Self {
            image: image.into(),
            vars: vars.into(),
            memory_mib: 1024,
            cpus: 1,
            snapshot: true,
            nics: vec![],
            qmp: None,
            fw_cfg: vec![],
            cdrom: None,
            debug_socket: None,
            accel: Accel::Tcg,
            display: Display::None,
        }
    }

    /// Copies the pristine UEFI variable store to `self.vars`.
    pub fn prepare_vars(&self) -> Result<(), QemuError> {
        for path in [OVMF_CODE, OVMF_VARS] {
            if !Path::new(path).exists() {
                return Err(QemuError::NoOvmf { path });
            }
        }
        std::fs::copy(OVMF_VARS, &self.vars).map_err(|source| QemuError::Vars {
            path: self.vars.clone(),
            source,
        })?;
        Ok(())
    }

    /// Arguments for `qemu-system-x86_64`; the serial console goes to stdout.
    pub fn args(&self) -> Vec<OsString> {
        let mut a: Vec<OsString> = Vec::new();
        let mut push = |s: &str| a.push(s.into());
        for s in ["-machine", "pc", "-accel", self.accel.name()] {
            push(s);
        }
        for s in ["-nodefaults", "-no-user-config", "-display"] {
            push(s);
        }
        push(&match self.display {
            Display::None => "none".to_string(),
            Display::Vnc { display } => format!("vnc=127.0.0.1:{display}"),
            Display::Window => "gtk".to_string(),
        });
        push("-m");
        push(&self.memory_mib.to_string());
        push("-smp");
        push(&self.cpus.to_string());
        push("-drive");
        push(&format!(
            "if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}"
        ));
        push("-drive");
        push(&format!(
            "if=pflash,format=raw,unit=1,file={}",
            self.vars.display()
        ));
        push("-drive");
        push(&format!(
            "if=none,id=disk0,format=raw,file={}{}",
            self.image.display(),
            if self.snapshot { ",snapshot=on" } else { "" }
        ));
        push("-device");
        push("nvme,drive=disk0,serial=appliance0");
        for (i, (backend, mac)) in self.nics.iter().enumerate() {
            let netdev = match backend {
                NetBackend::User {
                    forwards,
                    subnet,
                    outbound,
                } => user_netdev(i, forwards, subnet.as_ref(), *outbound),
                NetBackend::Tap { ifname } => {
                    format!("tap,id=net{i},ifname={ifname},script=no,downscript=no")
                }
                NetBackend::None => continue,
            };
            push("-netdev");
            push(&netdev);
            push("-device");
            // romfile= : no PXE option ROM, so OVMF does not try network boot.
            let mut dev = format!("vmxnet3,netdev=net{i},romfile=");
            if let Some(mac) = mac {
                dev.push_str(&format!(",mac={mac}"));
            }
            push(&dev);
        }
        if let Some(iso) = &self.cdrom {
            push("-drive");
            push(&format!(
                "if=ide,media=cdrom,readonly=on,file={}",
                iso.display()
            ));
        }
        for (name, path) in &self.fw_cfg {
            push("-fw_cfg");
            push(&format!("name={name},file={}", path.display()));
        }
        push("-vga");
        push("std");
        push("-serial");
        push("stdio");
        if let Some(sock) = &self.debug_socket {
            push("-chardev");
            push(&format!(
                "socket,id=debug,path={},server=on,wait=off",
                sock.display()
            ));
            push("-device");
            push("isa-serial,chardev=debug");
            push("-fw_cfg");
            push(&format!("name={},string=1", crate::debug_port::FW_CFG_NAME));
        }
        if let Some(qmp) = &self.qmp {
            push("-qmp");
            push(&format!("unix:{},server=on,wait=off", qmp.display()));
        }
        a
    }
}
