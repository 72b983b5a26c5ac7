//! `image-builder build`: appliance.toml in, a GPT disk image (and an OVA) out.
//!
//! ```text
//! appliance.toml -> kernel + stub (apt) -> init, lbd (static) -> initramfs
//!   -> UKI -> ESP (FAT32) + data (ext4) -> GPT .img -> .ova
//! ```

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::apt::Apt;
use crate::config::{ApplianceConfig, ConfigError, Format};
use crate::deb::{self, DebError};
use crate::debug_port::{self, DebugPortError, Flavour};
use crate::disk::{self, DiskError, DiskIds, Layout};
use crate::epoch::{self, EpochError, EpochSource};
use crate::esp::{self, EspError};
use crate::ext4::{self, Ext4Error};
use crate::guest_tree::{guest_tree, GuestParts};
use crate::kernel::KernelError;
use crate::kernel_cache;
use crate::lock::{self, Lock, LockError, Role};
use crate::progress::{human_size, Step};
use crate::static_bins::{self, StaticError};
use crate::uki::{self, UkiError};

const STUB_PATH: &str = "usr/lib/systemd/boot/efi/linuxx64.efi.stub";
/// apt's private lists and packages, under the build's cache directory.
pub const APT_CACHE_DIR: &str = "apt";

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Epoch(#[from] EpochError),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Kernel(#[from] KernelError),
    #[error(transparent)]
    Deb(#[from] DebError),
    #[error("{} holds no {STUB_PATH}: point [uefi] stub at systemd-boot-efi's linuxx64.efi.stub", path.display())]
    NoStub { path: PathBuf },
    #[error(transparent)]
    Static(#[from] StaticError),
    #[error(transparent)]
    DebugPort(#[from] DebugPortError),
    #[error("assembling the guest tree: {0}")]
    Tree(#[from] rootfs::TreeError),
    #[error("writing the initramfs: {0}")]
    Initramfs(#[from] rootfs::InitramfsError),
    #[error("assembling the unified kernel image: {0}")]
    Uki(#[from] UkiError),
    #[error(transparent)]
    Esp(#[from] EspError),
    #[error(transparent)]
    Ext4(#[from] Ext4Error),
    #[error(transparent)]
    Disk(#[from] DiskError),
    #[error(transparent)]
    Spec(#[from] crate::ovf_spec::SpecError),
    #[error("writing the OVA: {0}")]
    Ova(#[from] ova::PackageError),
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// How to build.
pub struct BuildOptions {
    pub config: PathBuf,
    pub out_dir: PathBuf,
    /// apt's lists and packages (`apt/`) and extracted kernels (`kernel/`).
    pub cache_dir: PathBuf,
    /// Production, or a test image with init's debug port.
    pub flavour: Flavour,
}

/// One produced file, for the summary.
pub struct Artifact {
    pub kind: &'static str,
    pub path: PathBuf,
    pub size: u64,
    pub sha256: String,
}

pub struct BuildReport {
    pub artifacts: Vec<Artifact>,
    pub kernel_version: String,
    pub modules: usize,
    pub epoch: u64,
    pub epoch_source: EpochSource,
    /// The lock's pins, one line each.
    pub pins: Vec<String>,
}

pub fn build(opts: &BuildOptions) -> Result<BuildReport, BuildError> {
    let config = ApplianceConfig::load(&opts.config)?;
    let config_dir = opts
        .config
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let workspace = std::fs::canonicalize(&config_dir).map_err(|source| BuildError::Io {
        what: "finding the workspace of",
        path: config_dir.clone(),
        source,
    })?;
    let (epoch, epoch_source) = epoch::source_date_epoch(&workspace)?;
    let io = |what: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| BuildError::Io { what, path, source }
    };
    std::fs::create_dir_all(&opts.out_dir).map_err(io("creating", &opts.out_dir))?;
    // Checked first: a typo in a baked setting should not wait for a build.
    let baked = crate::ovf_spec::baked_settings(&config, &opts.config)?;

    let step = Step::start("kernel and UEFI stub");
    let apt = Apt::new(&opts.cache_dir.join(APT_CACHE_DIR));
    let lock_path = Lock::path_for(&opts.config);
    let mut lock = Lock::load(&lock_path)?;
    let before = lock.clone();
    let mut pins = Vec::new();
    let (kernel_deb, kernel_sha) = match (&config.kernel.deb, &config.kernel.package) {
        (Some(path), _) => {
            lock.set(Role::Kernel, None);
            let path = config_dir.join(path);
            let sha = lock::sha256_file(&path)?;
            (path, sha)
        }
        (None, Some(pkg)) => {
            let (path, change) = lock::take(&apt, &mut lock, Role::Kernel, pkg)?;
            pins.extend(lock::describe(Role::Kernel, lock.kernel.as_ref(), &change));
            let sha = lock
                .kernel
                .as_ref()
                .map(|p| p.sha256.clone())
                .unwrap_or_default();
            (path, sha)
        }
        (None, None) => unreachable!("validated: [kernel] has package or deb"),
    };
    let (kernel, kernel_origin) = kernel_cache::load(&kernel_deb, &kernel_sha, &opts.cache_dir)?;
    let modules = kernel.select(&config.kernel.modules)?;
    let stub = read_stub(&config, &config_dir, &apt, &mut lock, &mut pins)?;
    if lock != before {
        lock.save(&lock_path)?;
        eprintln!(
            "image-builder: wrote {}: commit it, so every build of this commit uses these packages",
            lock_path.display()
        );
        for line in &pins {
            eprintln!("  {line}");
        }
    }
    step.done(&format!(
        "linux {} ({} modules), kernel files {}",
        kernel.version,
        modules.len(),
        match kernel_origin {
            kernel_cache::Origin::Cached => "from the cache",
            kernel_cache::Origin::Extracted => "extracted and cached",
        }
    ));

    let step = Step::start("static init and lbd");
    let bins = static_bins::build(&workspace, &["init", "lbd"], opts.flavour.init_features())?;
    let (init, lbd) = (&bins[0].data, &bins[1].data);
    debug_port::check(init, opts.flavour)?;
    // The same static lbd, for `lbd check` and `lbd hash-password` on an
    // admin's workstation.
    let lbd_out = opts.out_dir.join("lbd");
    write_executable(&lbd_out, lbd).map_err(io("writing", &lbd_out))?;
    step.done(&format!(
        "init {} {}{}, lbd {} {}",
        static_bins::describe(init),
        human_size(init.len() as u64),
        match opts.flavour {
            Flavour::Production => "",
            Flavour::Test => " with the debug port (a test image)",
        },
        static_bins::describe(lbd),
        human_size(lbd.len() as u64)
    ));

    let step = Step::start("initramfs");
    let lbd_config = match &config.lbd.config {
        Some(p) => {
            let path = config_dir.join(p);
            Some(std::fs::read(&path).map_err(io("reading lbd config", &path))?)
        }
        None => None,
    };
    let tree = guest_tree(&GuestParts {
        config: &config,
        kernel_version: &kernel.version,
        modules: &modules,
        init,
        lbd,
        lbd_config: lbd_config.as_deref(),
    })?;
    let initramfs = rootfs::write_initramfs(&tree, epoch, Vec::new())?;
    std::fs::write(opts.out_dir.join("initramfs.cpio.gz"), &initramfs)
        .map_err(io("writing", &opts.out_dir.join("initramfs.cpio.gz")))?;
    step.done(&format!(
        "{} entries, {}",
        tree.len(),
        human_size(initramfs.len() as u64)
    ));

    let step = Step::start("unified kernel image");
    let osrel = match tree.get(rootfs::paths::OS_RELEASE).map(|e| &e.kind) {
        Some(rootfs::EntryKind::File(d)) => d.clone(),
        _ => Vec::new(),
    };
    let uki = uki::assemble(
        &stub,
        &osrel,
        config.kernel.cmdline.as_bytes(),
        &initramfs,
        &kernel.vmlinuz,
    )?;
    step.done(&human_size(uki.len() as u64));

    let ids = crate::ids::IdSeed::from_parts(&[&uki, config.appliance.name.as_bytes()]);
    let step = Step::start("ESP (FAT32)");
    let esp_image = esp::build_esp(config.disk.esp_mib, ids.u32("esp-serial"), epoch, &uki)?;
    step.done(&format!("{} MiB", config.disk.esp_mib));

    let step = Step::start("data partition (ext4)");
    let work = opts.out_dir.join(".work");
    std::fs::create_dir_all(&work).map_err(io("creating", &work))?;
    let data_fs = work.join("data.ext4");
    ext4::make_ext4(
        &data_fs,
        config.disk.data_mib,
        ids.uuid("ext4-uuid"),
        ids.uuid("ext4-hash-seed"),
        epoch,
    )?;
    step.done(&format!("{} MiB", config.disk.data_mib));

    let step = Step::start("GPT disk image");
    let image = opts.out_dir.join(config.image_file_name());
    let layout = Layout::new(config.disk.esp_mib, config.disk.data_mib);
    disk::write_disk(
        &image,
        &layout,
        &esp_image,
        &data_fs,
        &DiskIds {
            disk: ids.uuid("gpt-disk"),
            esp: ids.uuid("gpt-esp"),
            data: ids.uuid("gpt-data"),
        },
    )?;
    let _ = std::fs::remove_dir_all(&work);
    step.done(&human_size(layout.total));

    let mut artifacts = Vec::new();
    if config.appliance.formats.contains(&Format::Ova) {
        let step = Step::start("OVA (streamOptimized VMDK)");
        let spec = crate::ovf_spec::ovf_spec(&config, &baked);
        let summary = ova::write_ova(&image, &spec, &opts.out_dir, epoch)?;
        step.done(&human_size(summary.ova_size));
        artifacts.push(artifact("ova", &summary.ova_path)?);
    }
    artifacts.push(artifact("lbd", &lbd_out)?);
    if config.appliance.formats.contains(&Format::Img) {
        artifacts.insert(0, artifact("disk image", &image)?);
    } else {
        let _ = std::fs::remove_file(&image);
    }
    Ok(BuildReport {
        artifacts,
        kernel_version: kernel.version.clone(),
        modules: modules.len(),
        epoch,
        epoch_source,
        pins: describe_lock(&lock),
    })
}

/// The lock's pins, one line each, for the summary.
fn describe_lock(lock: &Lock) -> Vec<String> {
    [Role::Kernel, Role::Stub]
        .into_iter()
        .filter_map(|role| {
            lock.get(role)
                .map(|p| format!("{} {p} sha256 {}", role.name(), p.sha256))
        })
        .collect()
}

fn write_executable(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, data)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
}

fn read_stub(
    config: &ApplianceConfig,
    config_dir: &Path,
    apt: &Apt,
    lock: &mut Lock,
    pins: &mut Vec<String>,
) -> Result<Vec<u8>, BuildError> {
    let deb_path = match &config.uefi.stub {
        Some(p) => {
            lock.set(Role::Stub, None);
            let path = config_dir.join(p);
            if path.extension().is_some_and(|e| e != "deb") {
                return std::fs::read(&path).map_err(|source| BuildError::Io {
                    what: "reading UEFI stub",
                    path,
                    source,
                });
            }
            path
        }
        None => {
            let (path, change) = lock::take(apt, lock, Role::Stub, &config.uefi.stub_package)?;
            pins.extend(lock::describe(Role::Stub, lock.stub.as_ref(), &change));
            path
        }
    };
    deb::read_data_files(&deb_path, &|p| p == STUB_PATH)?
        .pop()
        .map(|f| f.data)
        .ok_or(BuildError::NoStub { path: deb_path })
}

/// Size and SHA-256 of a written file.
pub fn artifact(kind: &'static str, path: &Path) -> Result<Artifact, BuildError> {
    let io = |source| BuildError::Io {
        what: "hashing",
        path: path.into(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut hasher = Sha256::new();
    let size = std::io::copy(&mut file, &mut hasher).map_err(io)?;
    Ok(Artifact {
        kind,
        path: path.into(),
        size,
        sha256: hex(&hasher.finalize()),
    })
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
