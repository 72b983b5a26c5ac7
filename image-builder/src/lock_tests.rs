use std::cell::RefCell;

use super::*;

/// (requested, package, version, contents of the .deb)
type Served = (&'static str, &'static str, &'static str, &'static [u8]);

/// An archive as a table: what it serves today, the newest first per
/// requested name, and a cache directory like apt's.
struct TableArchive {
    cache: tempfile::TempDir,
    served: RefCell<Vec<Served>>,
    downloads: RefCell<Vec<String>>,
}

impl TableArchive {
    fn new(served: Vec<Served>) -> Self {
        Self {
            cache: tempfile::tempdir().unwrap(),
            served: RefCell::new(served),
            downloads: RefCell::new(Vec::new()),
        }
    }
}

fn sha(data: &[u8]) -> String {
    crate::build::hex(&Sha256::digest(data))
}

impl Archive for TableArchive {
    fn refresh(&self) -> Result<(), AptError> {
        Ok(())
    }

    fn candidate(&self, requested: &str, _follow_kernel: bool) -> Result<Candidate, AptError> {
        self.served
            .borrow()
            .iter()
            .find(|(r, ..)| *r == requested)
            .map(|(_, package, version, data)| Candidate {
                package: (*package).into(),
                version: (*version).into(),
                architecture: "amd64".into(),
                sha256: sha(data),
            })
            .ok_or(AptError::UnknownPackage {
                package: requested.into(),
            })
    }

    fn cached(&self, pin: &Pinned) -> PathBuf {
        self.cache
            .path()
            .join(format!("{}_{}.deb", pin.package, pin.version))
    }

    fn fetch(&self, pin: &Pinned) -> Result<PathBuf, FetchError> {
        let path = self.cached(pin);
        if path.exists() {
            return Ok(path);
        }
        let served = self.served.borrow();
        let Some((.., data)) = served
            .iter()
            .find(|(_, p, v, _)| *p == pin.package && *v == pin.version)
        else {
            return Err(FetchError::NotServed);
        };
        std::fs::write(&path, data).unwrap();
        self.downloads.borrow_mut().push(pin.to_string());
        Ok(path)
    }
}

const META: &str = "linux-image-cloud-amd64";

fn archive_with_56() -> TableArchive {
    TableArchive::new(vec![(
        META,
        "linux-image-6.1.0-56-cloud-amd64",
        "6.1.190-1",
        b"kernel 56",
    )])
}

/// Input: no lock, an archive serving -56.
/// Output: -56 is pinned with its hash, and reported as newly pinned.
#[test]
fn a_first_build_pins_the_newest() {
    let archive = archive_with_56();
    let mut lock = Lock::default();
    let (path, change) = take(&archive, &mut lock, Role::Kernel, META).unwrap();
    assert_eq!(change, Change::Added);
    assert_eq!(std::fs::read(path).unwrap(), b"kernel 56");
    let pin = lock.kernel.as_ref().unwrap();
    assert_eq!(pin.package, "linux-image-6.1.0-56-cloud-amd64");
    assert_eq!(pin.sha256, sha(b"kernel 56"));
}

/// Input: a lock on -56; the archive then serves -57 as well.
/// Output: builds keep taking -56, unchanged; `update` moves to -57 and
/// says from what to what.
#[test]
fn a_newer_kernel_in_the_archive_changes_nothing_until_update() {
    let archive = archive_with_56();
    let mut lock = Lock::default();
    take(&archive, &mut lock, Role::Kernel, META).unwrap();
    let pinned = lock.clone();
    archive.served.borrow_mut().insert(
        0,
        (
            META,
            "linux-image-6.1.0-57-cloud-amd64",
            "6.1.192-3",
            b"kernel 57",
        ),
    );
    let (path, change) = take(&archive, &mut lock, Role::Kernel, META).unwrap();
    assert_eq!(change, Change::Unchanged);
    assert_eq!(std::fs::read(path).unwrap(), b"kernel 56");
    assert_eq!(lock, pinned);

    let change = update(&archive, &mut lock, Role::Kernel, Some(META)).unwrap();
    let Change::Moved { from } = &change else {
        panic!("{change:?}")
    };
    assert_eq!(from.package, "linux-image-6.1.0-56-cloud-amd64");
    assert_eq!(
        describe(Role::Kernel, lock.kernel.as_ref(), &change).unwrap(),
        "kernel linux-image-6.1.0-56-cloud-amd64 6.1.190-1 -> linux-image-6.1.0-57-cloud-amd64 6.1.192-3"
    );
    assert_eq!(
        update(&archive, &mut lock, Role::Kernel, Some(META)).unwrap(),
        Change::Unchanged
    );
}

/// Input: a lock on -56, which the archive no longer serves and which is
/// not in the cache. Output: an error naming the pinned package, what the
/// archive has instead, the cache path and both fixes.
#[test]
fn a_pin_the_archive_dropped_names_the_fixes() {
    let archive = archive_with_56();
    let mut lock = Lock::default();
    let (path, _) = take(&archive, &mut lock, Role::Kernel, META).unwrap();
    std::fs::remove_file(path).unwrap();
    *archive.served.borrow_mut() = vec![(
        META,
        "linux-image-6.1.0-57-cloud-amd64",
        "6.1.192-3",
        b"kernel 57",
    )];
    let err = take(&archive, &mut lock, Role::Kernel, META)
        .unwrap_err()
        .to_string();
    for part in [
        "linux-image-6.1.0-56-cloud-amd64 6.1.190-1",
        "no longer serves",
        "it now has linux-image-6.1.0-57-cloud-amd64 6.1.192-3",
        "deb = ",
        "image-builder lock --update",
        &sha(b"kernel 56"),
    ] {
        assert!(err.contains(part), "{part:?} missing from: {err}");
    }
}

/// Input: a pinned package in the cache whose bytes differ from the pin.
/// Output: refused, naming the file and both hashes.
#[test]
fn a_cached_file_with_other_bytes_is_refused() {
    let archive = archive_with_56();
    let mut lock = Lock::default();
    let (path, _) = take(&archive, &mut lock, Role::Kernel, META).unwrap();
    std::fs::write(&path, b"tampered").unwrap();
    let err = take(&archive, &mut lock, Role::Kernel, META)
        .unwrap_err()
        .to_string();
    assert!(err.contains(&sha(b"tampered")), "{err}");
    assert!(err.contains(&sha(b"kernel 56")), "{err}");
    assert!(err.contains("delete it"), "{err}");
}

/// Input: a pinned package already in the cache.
/// Output: nothing is downloaded.
#[test]
fn a_cached_pin_is_not_downloaded_again() {
    let archive = archive_with_56();
    let mut lock = Lock::default();
    take(&archive, &mut lock, Role::Kernel, META).unwrap();
    take(&archive, &mut lock, Role::Kernel, META).unwrap();
    assert_eq!(archive.downloads.borrow().len(), 1);
}

/// Input: appliance.toml asks for another package than the lock pins.
/// Output: the new one is pinned, reported as moved.
#[test]
fn another_requested_package_moves_the_pin() {
    let archive = archive_with_56();
    archive.served.borrow_mut().push((
        "linux-image-amd64",
        "linux-image-6.1.0-56-amd64",
        "6.1.190-1",
        b"generic 56",
    ));
    let mut lock = Lock::default();
    take(&archive, &mut lock, Role::Kernel, META).unwrap();
    let (_, change) = take(&archive, &mut lock, Role::Kernel, "linux-image-amd64").unwrap();
    assert!(matches!(change, Change::Moved { .. }), "{change:?}");
    assert_eq!(lock.kernel.unwrap().requested, "linux-image-amd64");
}

#[test]
fn the_lock_file_round_trips_and_rejects_unknown_keys() {
    let archive = archive_with_56();
    let mut lock = Lock::default();
    take(&archive, &mut lock, Role::Kernel, META).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(LOCK_FILE);
    lock.save(&path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("# The exact packages"), "{text}");
    assert_eq!(Lock::load(&path).unwrap(), lock);
    std::fs::write(&path, text.replace("sha256", "sha265")).unwrap();
    let err = Lock::load(&path).unwrap_err().to_string();
    assert!(
        err.contains("sha265") && err.contains("lock --update"),
        "{err}"
    );
    assert_eq!(
        Lock::load(&dir.path().join("none.lock")).unwrap(),
        Lock::default()
    );
}
