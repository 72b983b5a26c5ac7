//! One appliance VM under test: QEMU running the image on a snapshot
//! overlay, its serial console collected line by line.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use image_builder::qemu::{NetBackend, VmSpec};

use crate::qmp::Qmp;

#[derive(Debug)]
pub enum VmError {
    Start(String),
    /// The expected text did not appear; carries the console so far.
    Timeout {
        waiting_for: String,
        console: String,
    },
    Exited {
        status: String,
        console: String,
    },
}

impl std::fmt::Display for VmError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VmError::Start(m) => write!(f, "starting QEMU: {m}"),
            VmError::Timeout {
                waiting_for,
                console,
            } => {
                write!(
                    f,
                    "timed out waiting for {waiting_for:?}; console so far:\n{console}"
                )
            }
            VmError::Exited { status, console } => {
                write!(f, "QEMU exited ({status}); console:\n{console}")
            }
        }
    }
}

#[derive(Default)]
struct Console {
    text: String,
    closed: bool,
}

pub struct Vm {
    child: Child,
    debug_port: Mutex<Option<std::os::unix::net::UnixStream>>,
    console: Arc<(Mutex<Console>, Condvar)>,
    dir: tempfile::TempDir,
    name: String,
}

/// Options beyond the defaults (one user-mode NIC, 1 GiB).
#[derive(Default, Clone)]
pub struct VmOptions {
    pub nics: Vec<(NetBackend, Option<String>)>,
    pub fw_cfg: Vec<(String, PathBuf)>,
    pub cdrom: Option<PathBuf>,
    /// Keep disk writes (on a private copy of the image) instead of a
    /// throwaway overlay.
    pub disk_copy: Option<PathBuf>,
    /// Run inside this network namespace (`ip netns exec`).
    pub netns: Option<String>,
    /// Enable init's debug command port (see [`Vm::debug`]).
    pub debug_port: bool,
}

impl Vm {
    pub fn start(name: &str, image: &Path, opts: VmOptions) -> Result<Self, VmError> {
        let dir = tempfile::tempdir().map_err(|e| VmError::Start(e.to_string()))?;
        let disk = opts
            .disk_copy
            .clone()
            .unwrap_or_else(|| image.to_path_buf());
        let mut spec = VmSpec::new(&disk, &dir.path().join("vars.fd"));
        spec.snapshot = opts.disk_copy.is_none();
        spec.qmp = Some(dir.path().join("qmp.sock"));
        spec.nics = if opts.nics.is_empty() {
            vec![(
                NetBackend::User {
                    forwards: vec![],
                    subnet: None,
                    outbound: false,
                },
                None,
            )]
        } else {
            opts.nics.clone()
        };
        spec.fw_cfg = opts.fw_cfg.clone();
        spec.cdrom = opts.cdrom.clone();
        if opts.debug_port {
            spec.debug_socket = Some(dir.path().join("debug.sock"));
        }
        spec.prepare_vars()
            .map_err(|e| VmError::Start(e.to_string()))?;
        Self::spawn(name, spec, dir, opts.netns.as_deref())
    }

    /// Starts a VM from a spec made elsewhere (e.g. `image-builder run`'s
    /// plan), its UEFI variables already prepared; a QMP socket is added.
    pub fn start_spec(name: &str, mut spec: VmSpec) -> Result<Self, VmError> {
        let dir = tempfile::tempdir().map_err(|e| VmError::Start(e.to_string()))?;
        spec.qmp = Some(dir.path().join("qmp.sock"));
        Self::spawn(name, spec, dir, None)
    }

    fn spawn(
        name: &str,
        spec: VmSpec,
        dir: tempfile::TempDir,
        netns: Option<&str>,
    ) -> Result<Self, VmError> {
        let mut cmd = match netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, "qemu-system-x86_64"]);
                c
            }
            None => Command::new("qemu-system-x86_64"),
        };
        cmd.args(spec.args())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .map_err(|e| VmError::Start(format!("{e} (apt-get install qemu-system-x86)")))?;
        let console = Arc::new((Mutex::new(Console::default()), Condvar::new()));
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let console = Arc::clone(&console);
            std::thread::spawn(move || collect(stream, &console));
        }
        Ok(Self {
            child,
            debug_port: Mutex::new(None),
            console,
            dir,
            name: name.to_string(),
        })
    }

    /// Console output so far, with carriage returns removed.
    pub fn console(&self) -> String {
        self.console
            .0
            .lock()
            .map(|c| c.text.clone())
            .unwrap_or_default()
    }

    /// Waits until the console contains `needle`, after `from` bytes.
    pub fn wait_for_after(
        &self,
        needle: &str,
        from: usize,
        timeout: Duration,
    ) -> Result<usize, VmError> {
        let deadline = Instant::now() + timeout;
        let (lock, cvar) = &*self.console;
        let mut c = lock
            .lock()
            .map_err(|_| VmError::Start("console lock poisoned".into()))?;
        loop {
            if let Some(pos) = c.text.get(from..).and_then(|t| t.find(needle)) {
                return Ok(from + pos + needle.len());
            }
            let now = Instant::now();
            if now >= deadline || c.closed {
                return Err(VmError::Timeout {
                    waiting_for: format!("{needle} (on {})", self.name),
                    console: c.text.clone(),
                });
            }
            c = cvar
                .wait_timeout(c, deadline - now)
                .map_err(|_| VmError::Start("console lock poisoned".into()))?
                .0;
        }
    }

    pub fn wait_for(&self, needle: &str, timeout: Duration) -> Result<usize, VmError> {
        self.wait_for_after(needle, 0, timeout)
    }

    /// Presses the ACPI power button through QMP (`system_powerdown`).
    pub fn acpi_powerdown(&self) -> Result<(), VmError> {
        let mut qmp = Qmp::connect(&self.dir.path().join("qmp.sock"), Duration::from_secs(30))
            .map_err(|e| VmError::Start(format!("QMP: {e}")))?;
        qmp.execute("system_powerdown")
            .map_err(|e| VmError::Start(format!("QMP: {e}")))?;
        Ok(())
    }

    /// Sends one command to init's debug port (`kill lbd`, `log N`); init
    /// answers on the console as `init: debug port: ...`.
    pub fn debug(&self, command: &str) -> Result<(), VmError> {
        use std::io::Write;
        let mut port = self
            .debug_port
            .lock()
            .map_err(|_| VmError::Start("debug port lock poisoned".into()))?;
        if port.is_none() {
            let path = self.dir.path().join("debug.sock");
            let stream = std::os::unix::net::UnixStream::connect(&path).map_err(|e| {
                VmError::Start(format!(
                    "debug port {}: {e} (start the VM with debug_port)",
                    path.display()
                ))
            })?;
            *port = Some(stream);
        }
        // Kept open: QEMU reads the socket asynchronously.
        port.as_mut()
            .map(|s| s.write_all(format!("{command}\n").as_bytes()))
            .transpose()
            .map_err(|e| VmError::Start(format!("debug port: {e}")))?;
        Ok(())
    }

    /// Kills QEMU at once: a power cut.
    pub fn pull_the_plug(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The UEFI variable store, to boot the same disk again.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Waits for QEMU to exit by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus, VmError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self
                .child
                .try_wait()
                .map_err(|e| VmError::Start(e.to_string()))?
            {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                return Err(VmError::Timeout {
                    waiting_for: format!("QEMU of {} to exit", self.name),
                    console: self.console(),
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn collect(mut stream: Box<dyn std::io::Read + Send>, console: &(Mutex<Console>, Condvar)) {
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).unwrap_or(0);
        let (lock, cvar) = console;
        let Ok(mut c) = lock.lock() else { return };
        if n == 0 {
            c.closed = true;
            cvar.notify_all();
            return;
        }
        let text = String::from_utf8_lossy(&buf[..n]).replace('\r', "");
        c.text.push_str(&text);
        cvar.notify_all();
    }
}
