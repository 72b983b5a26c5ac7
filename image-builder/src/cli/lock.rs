use std::path::PathBuf;

use image_builder::apt::Apt;
use image_builder::build::APT_CACHE_DIR;
use image_builder::config::{ApplianceConfig, DEFAULT_CONFIG};
use image_builder::lock::{self, Archive, Change, Lock, Role};

use super::CliResult;

#[derive(clap::Args)]
pub struct LockArgs {
    /// The appliance description; its lock is appliance.lock beside it.
    #[arg(long, short, default_value = DEFAULT_CONFIG)]
    config: PathBuf,
    /// Where downloaded packages and apt lists are kept.
    #[arg(long, default_value = super::DEFAULT_CACHE)]
    cache: PathBuf,
    /// Move the pins to the archive's newest packages (the image changes);
    /// without it, show the pins and whether newer packages exist.
    #[arg(long)]
    update: bool,
}

pub fn run(a: LockArgs) -> CliResult {
    let config = ApplianceConfig::load(&a.config)?;
    let path = Lock::path_for(&a.config);
    let mut lock = Lock::load(&path)?;
    let apt = Apt::new(&std::path::absolute(&a.cache)?.join(APT_CACHE_DIR));
    apt.refresh()?;
    let wanted = [
        (
            Role::Kernel,
            config
                .kernel
                .deb
                .is_none()
                .then_some(config.kernel.package.as_deref())
                .flatten(),
        ),
        (
            Role::Stub,
            config
                .uefi
                .stub
                .is_none()
                .then_some(config.uefi.stub_package.as_str()),
        ),
    ];
    if !a.update {
        for (role, requested) in wanted {
            match (lock.get(role), requested) {
                (Some(pin), Some(requested)) => {
                    let newest = apt.candidate(requested, role == Role::Kernel)?;
                    let note = if newest.package == pin.package && newest.version == pin.version {
                        "the archive's newest".to_string()
                    } else {
                        format!(
                            "newer in the archive: {} {} (image-builder lock --update)",
                            newest.package, newest.version
                        )
                    };
                    println!("{:<6} {pin}  {note}", role.name());
                }
                (None, Some(requested)) => println!(
                    "{:<6} {requested} not pinned yet (the next build pins it)",
                    role.name()
                ),
                (_, None) => println!(
                    "{:<6} a local file from appliance.toml, not pinned",
                    role.name()
                ),
            }
        }
        return Ok(());
    }
    let mut changed = false;
    for (role, requested) in wanted {
        let change = lock::update(&apt, &mut lock, role, requested)?;
        changed |= change != Change::Unchanged;
        if let Some(line) = lock::describe(role, lock.get(role), &change) {
            println!("{line}");
        }
    }
    if changed {
        lock.save(&path)?;
        println!(
            "wrote {}: the next build uses these packages (commit it)",
            path.display()
        );
    } else {
        println!("{} is current: nothing changed", path.display());
    }
    Ok(())
}
