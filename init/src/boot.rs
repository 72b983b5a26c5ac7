//! The boot sequence, one step per module, then the event loop that runs
//! until a power request.
//!
//! ```text
//! block signals -> mount /proc /sys /dev ... -> consoles -> banner
//!   -> kernel modules -> data partition, log file
//!   -> settings (all sources, the appliance store) -> hostname
//!   -> lbd config (+ the store's services) -> firewall -> sysctls, network, DHCP
//!   -> start lbd once the firewall loaded -> "appliance: ready"
//!   -> loop { firewall retry timer: load it, then start lbd
//!             SIGCHLD: reap, hand lbd's status to its supervisor
//!             lbd output: console + ring | restart timer: start lbd
//!             DHCP socket and timers: renew, rebind
//!             SIGHUP: reload lbd | power signal/button: shutdown }
//! ```

use std::fs::File;
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::reboot::set_cad_enabled;
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use rootfs::paths::{APPLIANCE_CONFIG, DATA_MOUNT, LBD, MODULE_LOAD_ORDER, OS_RELEASE, READY_LINE};

use crate::appliance_socket::store_backend::StoreBackend;
use crate::applog::{self, LogFile};
use crate::console::Consoles;
use crate::data_partition::{self, DataMount};
#[cfg(feature = "debug-port")]
use crate::debug_port::{self, DebugPort};
use crate::live_apply::LiveApply;
use crate::power::{self, PowerAction};
use crate::status::{self, Board};
use crate::supervise::{Credentials, RestartPolicy, Service, ServiceEvent};
use crate::syslog::SyslogSink;
use crate::vmware::{Tools, ToolsAction, VmwareBackdoor};
use crate::{
    appliance_socket, console_tls, evdev, firewall, kmod, last_good, lbd_boot_files, lbd_config,
    lbd_files, lbd_owner, line_relay, mount, network, reap, sources, store, store_services, time,
    vrrp_warning,
};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// How often to look again for the power button while it has not appeared
/// (devtmpfs creates the node asynchronously after the driver loads).
const INPUT_RESCAN: Duration = Duration::from_millis(500);
const INPUT_RESCANS: u32 = 20;
/// How long boot waits for each NTP answer.
const NTP_TIMEOUT: Duration = Duration::from_secs(2);

/// Signals init handles through its signalfd; blocked so none is lost
/// before the loop starts.
fn handled_signals() -> SigSet {
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGCHLD,
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGHUP,
        Signal::SIGPWR,
    ] {
        set.add(s);
    }
    set
}

/// The running appliance: what the event loop watches.
struct Appliance {
    consoles: Consoles,
    signal_fd: Option<SignalFd>,
    inputs: Vec<(String, File)>,
    input_rescans: u32,
    services: Vec<Service>,
    /// Holds lbd back until the boot ruleset is in the kernel.
    firewall_gate: firewall::Gate,
    network: network::Networking,
    /// Test images only, and then only when QEMU asks for it.
    #[cfg(feature = "debug-port")]
    debug: Option<DebugPort>,
    /// The VMware tools loop (TCLO): "Shut Down Guest OS", IPs in vCenter.
    vmware: Option<(VmwareBackdoor, Tools)>,
    /// Lines from init's helper threads (the appliance socket), and the
    /// end those threads (and debug-port commands) write to.
    relay_lines: Option<line_relay::LineReceiver>,
    #[cfg(feature = "debug-port")]
    relay: Option<line_relay::LineSender>,
    /// Settings changed through the appliance socket, for what the loop
    /// owns: DNS and /etc/hosts, the syslog server.
    settings_changes: std::sync::mpsc::Receiver<settings::Settings>,
    /// The syslog server lines go to now.
    syslog: Option<settings::value::SyslogTarget>,
}

/// Runs the appliance; never returns.
pub fn run() -> ! {
    let mut consoles = Consoles::early();
    // Filled from the first line on; drawn once the appliance is ready.
    let board = Arc::new(Board::default());
    consoles.attach_board(board.clone());
    let signals = handled_signals();
    let signal_fd = match nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&signals), None)
        // Non-blocking: the loop reads until EAGAIN; a blocking read after
        // the last pending signal would stop PID 1 until the next one.
        .and_then(|()| {
            SignalFd::with_flags(&signals, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
        }) {
        Ok(fd) => Some(fd),
        Err(e) => {
            consoles.line(&format!(
                "init: error: cannot watch signals ({e}); power requests by signal will not work"
            ));
            None
        }
    };

    for (target, reason) in mount::mount_kernel_filesystems() {
        consoles.line(&format!("init: error: mounting {target}: {reason}"));
    }
    consoles.discover();
    banner(&mut consoles);

    // Ctrl-alt-del becomes SIGINT to init instead of an immediate reboot.
    if let Err(e) = set_cad_enabled(false) {
        consoles.line(&format!(
            "init: warning: cannot take over ctrl-alt-del: {e}"
        ));
    }

    load_modules(&mut consoles);

    // The data partition comes before the settings: the appliance store
    // on it is one of their sources.
    let store_dir = mount_data_partition(&mut consoles).then(|| Path::new(APPLIANCE_CONFIG));
    let mut gathered = sources::gather(store_dir, store::unix_time());
    let store = gathered.store.take();
    report_settings(&mut consoles, &gathered);
    board.set_settings(status::settings_summary(&gathered.merged));
    let settings = &gathered.merged.settings;
    if let Err(e) = nix::unistd::sethostname(&settings.hostname) {
        consoles.line(&format!(
            "init: error: setting hostname {}: {e}",
            settings.hostname
        ));
    }

    // lbd's directories first: the console's certificate is copied there.
    for problem in lbd_owner::prepare_dirs() {
        consoles.line(&format!("init: error: {problem}"));
    }
    let console = console_certificate(&mut consoles, settings);
    let overlay = lbd_config::OverlayInputs {
        admin_hash: password_hash(&mut consoles, "admin.password", &settings.admin_password),
        readonly_hash: password_hash(
            &mut consoles,
            "admin.readonly_password",
            &settings.readonly_password,
        ),
        console: console
            .as_ref()
            .map(|_| console_tls::Paths::appliance(Path::new(DATA_MOUNT)).layer()),
    };
    // lbd's files before the store's services: what they must fit on.
    let bare = lbd_files::compose(&lbd_files::Inputs {
        settings,
        overlay: overlay.clone(),
        store_services: &toml::Table::new(),
        primary: None,
    });
    let under_store: Vec<(std::path::PathBuf, String)> = bare.texts.0[..3].to_vec();
    let store_services = store_services::add(&mut consoles, store.as_ref(), &under_store);
    // Before the network comes up, from the files so far; replaced below
    // once the VRRP file (which needs the network) is composed.
    let mut firewall = None;
    let early = lbd_files::compose(&lbd_files::Inputs {
        settings,
        overlay: overlay.clone(),
        store_services: &store_services,
        primary: None,
    });
    apply_firewall(&mut consoles, settings, &early.texts.load(), &mut firewall);
    raise_open_file_limit(&mut consoles);
    let network = network::bring_up(&mut consoles, settings);
    set_clock(&mut consoles, &network.ntp_servers(), settings.ntp_max_step);
    if let Some(target) = settings.syslog {
        match SyslogSink::new(target, &settings.hostname) {
            Ok(sink) => {
                consoles.attach_syslog(sink);
                consoles.line(&format!(
                    "init: logging to syslog server {} too",
                    target.addr
                ));
            }
            Err(e) => consoles.line(&format!("init: error: syslog server {}: {e}", target.addr)),
        }
    }
    let primary = network.primary();
    if primary.is_none() && !settings.vrrp.virtual_ips.is_empty() {
        consoles.line("init: error: vrrp.virtual_ips set but there is no network interface: VRRP not configured");
    }
    let composed = lbd_files::compose(&lbd_files::Inputs {
        settings,
        overlay: overlay.clone(),
        store_services: &store_services,
        primary: primary.as_ref(),
    });
    for problem in &composed.problems {
        consoles.line(&format!("init: error: {problem}"));
    }
    let (texts, effective) = lbd_boot_files::choose(&mut consoles, settings, composed.texts);
    if let Err(e) = texts.write() {
        consoles.line(&format!("init: error: lbd's files: {e}"));
    }
    // lbd starts only once the kernel has this ruleset (now, or when a
    // retry from the loop loads it).
    let ruleset = firewall_ruleset(settings, &effective);
    if firewall.as_ref() != Some(&ruleset) {
        print_ruleset(&mut consoles, &ruleset);
    }
    let mut firewall_gate = firewall::Gate::new(ruleset);
    vrrp_warning::report(&mut consoles, &effective);
    if let Some(in_use) = &console {
        announce_console(
            &mut consoles,
            settings,
            in_use,
            &effective,
            primary.as_ref(),
        );
    }
    // Its own uid with three network capabilities: lbd parses untrusted
    // HTTP, TLS, PROXY and VRRP.
    let mut lbd = Service::new(
        "lbd",
        LBD,
        lbd_files::Texts::args(),
        RestartPolicy::default(),
    )
    .run_as(Credentials::lbd());
    let actions = firewall_gate.poll(Instant::now(), &mut |r| {
        if firewall.as_ref() == Some(r) {
            Ok(())
        } else {
            firewall::apply(r)
        }
    });
    on_firewall_gate(&mut consoles, actions, &mut lbd, Instant::now());
    if firewall_gate.is_loaded() {
        firewall = Some(firewall_gate.ruleset().clone());
    }
    let lbd_socket = lbd_config::control_socket(&effective);
    let (relay, relay_lines) = match line_relay::pair() {
        Ok((tx, rx)) => (Some(tx), Some(rx)),
        Err(e) => {
            consoles.line(&format!(
                "init: error: no pipe for init's helper threads: {e}"
            ));
            (None, None)
        }
    };
    let (to_loop, settings_changes) = std::sync::mpsc::channel();
    if let (Some(store), Some(relay)) = (store, relay.clone()) {
        let apply = LiveApply {
            lower: gathered.lower.clone(),
            primary,
            lbd_socket: lbd_socket.clone(),
            firewall: firewall.clone(),
            last_good: Path::new(last_good::PATH).to_path_buf(),
            report: relay,
            hashes: [
                (
                    "admin.password",
                    &settings.admin_password,
                    &overlay.admin_hash,
                ),
                (
                    "admin.readonly_password",
                    &settings.readonly_password,
                    &overlay.readonly_hash,
                ),
            ]
            .into_iter()
            .filter_map(|(key, password, hash)| {
                Some((key, (password.as_ref()?.expose().to_owned(), hash.clone()?)))
            })
            .collect(),
            console: overlay.console.clone(),
            board: Arc::clone(&board),
            to_loop,
        };
        start_appliance_socket(&mut consoles, store, &gathered, under_store, apply);
    }

    let inputs = evdev::open_event_devices();
    // Opened before "ready": a test sends commands as soon as it sees that
    // line, and a serial port drops what arrives while it is closed.
    #[cfg(feature = "debug-port")]
    let debug = DebugPort::open_if_enabled();
    let uptime = std::fs::read_to_string("/proc/uptime").unwrap_or_default();
    let uptime = uptime.split_whitespace().next().unwrap_or("?");
    consoles.line(&format!("init: up {uptime} s after kernel start"));
    consoles.line(READY_LINE);
    match status::start(board, lbd_socket) {
        Ok(()) => {
            consoles.move_vt_output(&status::vt::tty_path(status::vt::LOG_VT));
            consoles.line(&format!(
                "init: status screen on tty{}; this log on tty{} (Alt+F2) and the serial console",
                status::vt::SCREEN_VT,
                status::vt::LOG_VT
            ));
        }
        Err(e) => consoles.line(&format!(
            "init: no status screen ({e}); the log stays on the console"
        )),
    }

    let mut appliance = Appliance {
        consoles,
        signal_fd,
        input_rescans: if inputs.is_empty() { INPUT_RESCANS } else { 0 },
        inputs,
        services: vec![lbd],
        firewall_gate,
        network,
        #[cfg(feature = "debug-port")]
        debug,
        // vCenter's tools channel: only on VMware, where the backdoor exists.
        vmware: VmwareBackdoor::detect().map(|bd| (bd, Tools::new(Instant::now()))),
        relay_lines,
        #[cfg(feature = "debug-port")]
        relay,
        settings_changes,
        syslog: settings.syslog,
    };
    appliance.event_loop()
}

/// lbd's hash of the login password `key` holds (hashed by lbd itself);
/// `None` without one, or with a problem on the console.
fn password_hash(
    consoles: &mut Consoles,
    key: &str,
    password: &Option<settings::value::Secret>,
) -> Option<String> {
    let password = password.as_ref()?;
    if password.is_hash() {
        return Some(password.expose().to_owned());
    }
    match lbd_config::hash_password(password.expose()) {
        Ok(hash) => Some(hash),
        Err(e) => {
            consoles.line(&format!("init: error: {key} not applied: {e}"));
            None
        }
    }
}

/// The web console's certificate for this boot, copied for lbd; `None`
/// (said on the console) when none could be made.
fn console_certificate(
    consoles: &mut Consoles,
    settings: &settings::Settings,
) -> Option<console_tls::InUse> {
    let paths = console_tls::Paths::appliance(Path::new(DATA_MOUNT));
    let now = i64::try_from(store::unix_time()).unwrap_or(i64::MAX);
    let (in_use, lines) = console_tls::prepare(settings, &paths, now);
    for line in lines {
        consoles.line(&line);
    }
    in_use
}

/// The URL and fingerprint to check at the first connection, on the
/// console and the status screen. The port is lbd's (an admin's
/// `lbd.config` may move it); the address this node's own once known.
fn announce_console(
    consoles: &mut Consoles,
    settings: &settings::Settings,
    in_use: &console_tls::InUse,
    effective: &lbd_config::Effective,
    primary: Option<&lbd_files::Primary>,
) {
    let Some(bind) = effective
        .as_ref()
        .ok()
        .and_then(|c| c.console.as_ref())
        .map(|c| c.bind)
    else {
        return;
    };
    let host = match (bind.ip().is_unspecified(), primary.and_then(|(_, ip)| *ip)) {
        (true, Some(ip)) => ip.to_string(),
        (true, None) => settings.hostname.clone(),
        (false, _) => bind.ip().to_string(),
    };
    consoles.line(&console_tls::announce(in_use, &host, bind.port()));
    if let Some(board) = consoles.board() {
        board.set_console(status::ConsoleView {
            bind: bind.to_string(),
            fingerprint: in_use.fingerprint,
            origin: in_use.origin,
        });
    }
}

/// Serves the store on the appliance socket: `lbd ctl config`, later the
/// web console. `under_store` is lbd's files below the store's services,
/// which a stored change must fit on.
fn start_appliance_socket(
    consoles: &mut Consoles,
    store: appliance_store::Store,
    gathered: &sources::Gathered,
    under_store: Vec<(std::path::PathBuf, String)>,
    apply: LiveApply,
) {
    let rules = appliance_store::Rules {
        lower: gathered.lower.clone(),
        lbd_base: under_store,
    };
    let backend = StoreBackend::new(
        store,
        gathered.lower.clone(),
        rules,
        gathered.merged.settings.hostname.clone(),
        Box::new(apply),
        store::unix_time,
    );
    let path = Path::new(appliance_api::SOCKET);
    match appliance_socket::start(path, Box::new(backend), crate::supervise::LBD_GID) {
        Ok(()) => consoles.line(&format!(
            "init: appliance socket {} (lbd ctl config)",
            path.display()
        )),
        Err(e) => consoles.line(&format!(
            "init: error: appliance socket {}: {e}; configuration changes need a redeploy",
            path.display()
        )),
    }
}

/// Mounts the data partition and opens the log file on it; true when it
/// is the disk (not the tmpfs fallback, where a store would be forgotten).
fn mount_data_partition(consoles: &mut Consoles) -> bool {
    let on_disk = match data_partition::mount_data() {
        DataMount::Disk { device } => {
            consoles.line(&format!(
                "init: data partition {device} mounted at {DATA_MOUNT}"
            ));
            report_previous_logs(consoles);
            true
        }
        DataMount::Ram { reason } => {
            consoles.line(&format!(
                "init: error: {reason}; running with state in RAM ({DATA_MOUNT} is a tmpfs, \
                 lost at reboot); no appliance store: settings from vSphere and the kernel \
                 command line only"
            ));
            false
        }
    };
    for problem in data_partition::make_private_dirs(Path::new(DATA_MOUNT)) {
        consoles.line(&format!(
            "init: warning: {problem} (it holds secrets and should be root only)"
        ));
    }
    match LogFile::open(Path::new(applog::LOG_DIR)) {
        Ok(log) => consoles.attach_log(log),
        Err(e) => consoles.line(&format!(
            "init: error: log file in {}: {e}",
            applog::LOG_DIR
        )),
    }
    on_disk
}

/// Inbound traffic: lbd's listeners and its VRRP instances' adverts (from
/// its effective config; none when that does not load, as lbd then does
/// not run), the admin's extra ports; everything else dropped. Applied
/// before lbd starts, atomically: on failure the previous ruleset (none at
/// boot) stays and the console says why. `applied` is what the kernel has;
/// the same ruleset again is not re-applied or printed.
fn apply_firewall(
    consoles: &mut Consoles,
    settings: &settings::Settings,
    lbd: &lbd_config::Effective,
    applied: &mut Option<firewall::Ruleset>,
) {
    let ruleset = firewall_ruleset(settings, lbd);
    if applied.as_ref() == Some(&ruleset) {
        return;
    }
    print_ruleset(consoles, &ruleset);
    match firewall::apply(&ruleset) {
        Ok(()) => {
            consoles.line("init: firewall applied");
            *applied = Some(ruleset);
        }
        Err(e) => consoles.line(&format!("init: error: firewall not applied: {e}")),
    }
}

/// The ruleset for the settings and lbd's effective config.
fn firewall_ruleset(
    settings: &settings::Settings,
    lbd: &lbd_config::Effective,
) -> firewall::Ruleset {
    let mut input = firewall::FirewallInput::from_settings(settings);
    if let Ok(config) = lbd {
        input.add_lbd(config);
    }
    firewall::build_ruleset(&input)
}

fn print_ruleset(consoles: &mut Consoles, ruleset: &firewall::Ruleset) {
    consoles.line("init: firewall ruleset:");
    for line in firewall::render_nft(ruleset).lines() {
        consoles.line(&format!("init:   {line}"));
    }
}

/// Carries out the firewall gate's word: lbd starts once the ruleset is
/// in the kernel; until then the console and the status screen say why
/// it is down.
fn on_firewall_gate(
    consoles: &mut Consoles,
    actions: Vec<firewall::GateAction>,
    lbd: &mut Service,
    now: Instant,
) {
    for action in actions {
        match action {
            firewall::GateAction::Loaded { attempts: 1 } => consoles.line("init: firewall applied"),
            firewall::GateAction::Loaded { attempts } => consoles.line(&format!(
                "init: firewall applied at attempt {attempts}; starting lbd"
            )),
            firewall::GateAction::StartLbd => {
                let started = lbd.start(now);
                report_service(consoles, &lbd.name.clone(), &started);
            }
            firewall::GateAction::Problem {
                error,
                attempts,
                retry_in,
            } => {
                consoles.line(&format!(
                    "init: error: firewall not applied (attempt {attempts}): {error}; \
                     lbd stays stopped so its listeners are not exposed unfiltered; \
                     retrying in {} s",
                    retry_in.as_secs()
                ));
                if let Some(board) = consoles.board() {
                    board.set_service(format!(
                        "NOT STARTED: waiting for the firewall (attempt {attempts}: {error})"
                    ));
                }
            }
        }
    }
}

/// Steps the clock to what most NTP servers agree on (the VM's clock may
/// be off at boot), within `ntp.max_step`; slews it when already close.
/// Every server not believed, and a refused step, is on the console.
fn set_clock(consoles: &mut Consoles, servers: &[String], max_step: settings::value::MaxStep) {
    if servers.is_empty() {
        consoles.line(
            "init: time: no NTP server set (network.ntp or DHCP); keeping the hypervisor's clock",
        );
        return;
    }
    let policy = time::SyncPolicy {
        timeout_per_query: NTP_TIMEOUT,
        samples_per_server: time::SAMPLES_PER_SERVER,
        max_step,
    };
    match time::sync_at_boot(servers, &policy) {
        Ok(report) => {
            for warning in report.warnings() {
                consoles.line(&format!("init: {warning}"));
            }
            consoles.line(&format!("init: {report}"));
        }
        Err(e) => consoles.line(&format!("init: error: time: {e}")),
    }
}

/// lbd holds two descriptors per proxied connection; the kernel's default
/// limit of 1024 (4096 hard) would cap it far below its maxconn.
fn raise_open_file_limit(consoles: &mut Consoles) {
    use nix::sys::resource::{setrlimit, Resource};
    const OPEN_FILES: u64 = 1 << 20;
    if let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, OPEN_FILES, OPEN_FILES) {
        consoles.line(&format!("init: warning: raising the open-file limit: {e}"));
    }
}

/// What the last boot left in the log: proof after a power cut that the
/// files are intact, and the last thing the appliance said.
fn report_previous_logs(consoles: &mut Consoles) {
    let check = applog::check_logs(Path::new(applog::LOG_DIR));
    if check.files == 0 {
        consoles.line("init: no logs from a previous boot");
        return;
    }
    let verdict = if check.problems.is_empty() {
        "intact"
    } else {
        "DAMAGED"
    };
    consoles.line(&format!(
        "init: previous logs {verdict}: {} files, {} lines; last: {}",
        check.files,
        check.lines,
        check.last_line.as_deref().unwrap_or("(none)")
    ));
    for p in &check.problems {
        consoles.line(&format!("init: error: log {p}"));
    }
}

fn load_modules(consoles: &mut Consoles) {
    let modules = kmod::load_modules(MODULE_LOAD_ORDER);
    consoles.line(&format!("init: loaded {} kernel modules", modules.loaded));
    if !modules.no_hardware.is_empty() {
        consoles.line(&format!(
            "init: no hardware for: {} (not needed on this hypervisor)",
            modules.no_hardware.join(", ")
        ));
    }
    for (path, reason) in &modules.failed {
        consoles.line(&format!("init: error: loading module {path}: {reason}"));
    }
}

/// Every setting with its source, then every problem: the admin sees on the
/// VM console exactly what the appliance took from vSphere.
fn report_settings(consoles: &mut Consoles, gathered: &sources::Gathered) {
    for note in &gathered.notes {
        let level = if note.error { "error: " } else { "" };
        consoles.line(&format!("init: {level}{}", note.text));
    }
    consoles.line("init: settings:");
    for line in gathered.merged.render() {
        consoles.line(&format!("init:   {line}"));
    }
    for e in &gathered.merged.errors {
        consoles.line(&format!("init: error: setting {e}"));
    }
}

fn report_service(consoles: &mut Consoles, name: &str, event: &ServiceEvent) {
    let line = match event {
        ServiceEvent::Started { pid, start } => {
            let who = crate::supervise::privileges::running_as(*pid)
                .map(|w| format!(", {w}"))
                .unwrap_or_default();
            format!("init: {name} started (pid {pid}, start {start}{who})")
        }
        ServiceEvent::StartFailed { reason, restart_in } => format!(
            "init: error: {name} could not start: {reason}; retrying in {} ms",
            restart_in.as_millis()
        ),
        ServiceEvent::Exited {
            status,
            restart_in,
            attempt,
            crash_loop,
        } => {
            let mut l = format!(
                "init: {name} exited ({status}); restarting in {} ms (attempt {attempt})",
                restart_in.as_millis()
            );
            if *crash_loop {
                l = format!("init: error: {name} is crash-looping: {l}; see its last lines above");
            }
            l
        }
    };
    consoles.line(&line);
    if let Some(board) = consoles.board() {
        board.set_service(service_state(event));
    }
}

/// The supervisor's word on a service, for the status screen.
fn service_state(event: &ServiceEvent) -> String {
    match event {
        ServiceEvent::Started { pid, start } => format!("running (pid {pid}, start {start})"),
        ServiceEvent::StartFailed { reason, restart_in } => format!(
            "could not start: {reason}; retrying in {} ms",
            restart_in.as_millis()
        ),
        ServiceEvent::Exited {
            status,
            restart_in,
            crash_loop,
            ..
        } => {
            let state = if *crash_loop { "CRASH LOOP" } else { "exited" };
            format!(
                "{state} ({status}); restarting in {} ms",
                restart_in.as_millis()
            )
        }
    }
}

fn banner(consoles: &mut Consoles) {
    let os = std::fs::read_to_string(OS_RELEASE).unwrap_or_default();
    let pretty = os
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_else(|| "appliance".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    consoles.line("");
    consoles.line(&format!(
        "=== {pretty} === init {VERSION}, linux {}",
        kernel.trim()
    ));
}

/// A power request (signal or button) arriving while shutting down: the
/// admin insists, so the remaining waits are cut short. Never blocks.
fn second_power_request(signal_fd: Option<&SignalFd>, inputs: &mut [(String, File)]) -> bool {
    let mut asked = false;
    if let Some(sfd) = signal_fd {
        while let Ok(Some(info)) = sfd.read_signal() {
            let sig = Signal::try_from(i32::try_from(info.ssi_signo).unwrap_or(0));
            if let Ok(sig) = sig {
                asked |= sig == Signal::SIGPWR || power::action_for_signal(sig).is_some();
            }
        }
    }
    let mut fds: Vec<PollFd<'_>> = inputs
        .iter()
        .map(|(_, f)| PollFd::new(f.as_fd(), PollFlags::POLLIN))
        .collect();
    let ready: Vec<bool> = match poll(&mut fds, PollTimeout::ZERO) {
        Ok(n) if n > 0 => fds
            .iter()
            .map(|fd| fd.revents().is_some_and(|r| !r.is_empty()))
            .collect(),
        _ => Vec::new(),
    };
    drop(fds);
    for ((_, dev), is_ready) in inputs.iter_mut().zip(ready) {
        asked |= is_ready && evdev::read_power_press(dev);
    }
    asked
}

/// Which fd a poll slot belongs to.
#[derive(Clone, Copy)]
enum Slot {
    Signals,
    Input(usize),
    ServiceOutput,
    Dhcp,
    #[cfg(feature = "debug-port")]
    Debug,
    Relay,
}

impl Appliance {
    /// Waits for signals, button presses, service output and timers until a
    /// power request.
    fn event_loop(&mut self) -> ! {
        loop {
            let ready = self.wait();
            let now = Instant::now();
            let mut power: Option<(PowerAction, String)> = None;
            let mut output_ready = false;
            for slot in ready {
                match slot {
                    Slot::Signals => power = power.or(self.handle_signals(now)),
                    Slot::Input(i) => {
                        if let Some((path, dev)) = self.inputs.get_mut(i) {
                            if evdev::read_power_press(dev) {
                                power = Some((
                                    PowerAction::PowerOff,
                                    format!("power button pressed ({path})"),
                                ));
                            }
                        }
                    }
                    Slot::ServiceOutput => output_ready = true,
                    Slot::Dhcp => self.network.on_readable(&mut self.consoles, now),
                    #[cfg(feature = "debug-port")]
                    Slot::Debug => self.debug_commands(),
                    Slot::Relay => self.echo_relayed_lines(),
                }
            }
            if output_ready {
                self.echo_service_output();
            }
            self.echo_output_notes(now);
            if let Some((action, reason)) = power.take() {
                self.shutdown(action, &reason);
            }
            if let Some(lbd) = self.services.first_mut() {
                let actions = self.firewall_gate.poll(now, &mut firewall::apply);
                on_firewall_gate(&mut self.consoles, actions, lbd, now);
            }
            for i in 0..self.services.len() {
                if let Some(event) = self.services[i].on_timer(now) {
                    let name = self.services[i].name.clone();
                    report_service(&mut self.consoles, &name, &event);
                }
            }
            self.network.on_timer(&mut self.consoles, now);
            if let Some(request) = self.vmware_tools(now) {
                power = Some(request);
            }
            if let Some((action, reason)) = power.take() {
                self.shutdown(action, &reason);
            }
            self.rescan_inputs();
            // A SIGCHLD merged with another or lost while the fd was not
            // readable: reaping here too keeps zombies from piling up.
            self.reap(now);
        }
    }

    /// Polls every fd until one is ready or the next timer is due.
    fn wait(&mut self) -> Vec<Slot> {
        let now = Instant::now();
        // Every timer: service restarts, DHCP renew/rebind, the VMware
        // tools poll.
        let mut deadline = self
            .services
            .iter()
            .filter_map(Service::next_deadline)
            .chain(self.services.iter().filter_map(Service::output_note_due))
            .chain(self.firewall_gate.next_deadline())
            .chain(self.network.next_deadline())
            .chain(self.vmware.as_ref().map(|(_, tools)| tools.next_deadline()))
            .min();
        if self.input_rescans > 0 {
            let rescan = now + INPUT_RESCAN;
            deadline = Some(deadline.map_or(rescan, |d| d.min(rescan)));
        }
        let timeout = match deadline {
            Some(d) => {
                PollTimeout::try_from(d.saturating_duration_since(now)).unwrap_or(PollTimeout::MAX)
            }
            None => PollTimeout::NONE,
        };
        let mut slots = Vec::new();
        let mut fds: Vec<PollFd<'_>> = Vec::new();
        if let Some(sfd) = &self.signal_fd {
            slots.push(Slot::Signals);
            fds.push(PollFd::new(sfd.as_fd(), PollFlags::POLLIN));
        }
        for (i, (_, f)) in self.inputs.iter().enumerate() {
            slots.push(Slot::Input(i));
            fds.push(PollFd::new(f.as_fd(), PollFlags::POLLIN));
        }
        #[cfg(feature = "debug-port")]
        if let Some(port) = &self.debug {
            slots.push(Slot::Debug);
            fds.push(PollFd::new(port.fd(), PollFlags::POLLIN));
        }
        if let Some(relay) = &self.relay_lines {
            slots.push(Slot::Relay);
            fds.push(PollFd::new(relay.fd(), PollFlags::POLLIN));
        }
        if let Some(fd) = self.network.fd() {
            slots.push(Slot::Dhcp);
            fds.push(PollFd::new(fd, PollFlags::POLLIN));
        }
        for s in &self.services {
            for fd in s.fds() {
                slots.push(Slot::ServiceOutput);
                fds.push(PollFd::new(fd, PollFlags::POLLIN));
            }
        }
        if fds.is_empty() {
            std::thread::sleep(INPUT_RESCAN);
            return Vec::new();
        }
        if let Err(e) = poll(&mut fds, timeout) {
            if e != nix::errno::Errno::EINTR {
                self.consoles.line(&format!("init: warning: poll: {e}"));
                std::thread::sleep(Duration::from_millis(100));
            }
            return Vec::new();
        }
        fds.iter()
            .zip(slots)
            .filter(|(fd, _)| fd.revents().is_some_and(|r| !r.is_empty()))
            .map(|(_, slot)| slot)
            .collect()
    }

    /// Reads every pending signal; returns a power request if one came.
    fn handle_signals(&mut self, now: Instant) -> Option<(PowerAction, String)> {
        let mut power = None;
        let mut infos = Vec::new();
        if let Some(sfd) = &self.signal_fd {
            while let Ok(Some(info)) = sfd.read_signal() {
                infos.push(info);
            }
        }
        for info in infos {
            let Ok(sig) = Signal::try_from(i32::try_from(info.ssi_signo).unwrap_or(0)) else {
                continue;
            };
            match sig {
                Signal::SIGCHLD => self.reap(now),
                Signal::SIGHUP => {
                    for s in &self.services {
                        match s.signal(Signal::SIGHUP) {
                            Ok(()) => self
                                .consoles
                                .line(&format!("init: SIGHUP: asked {} to reload", s.name)),
                            Err(e) => self
                                .consoles
                                .line(&format!("init: SIGHUP: {} not reloaded: {e}", s.name)),
                        }
                    }
                }
                Signal::SIGPWR => {
                    power = Some((PowerAction::PowerOff, "received SIGPWR".to_string()))
                }
                other => {
                    if let Some(action) = power::action_for_signal(other) {
                        power = Some((action, format!("received {other}")));
                    }
                }
            }
        }
        power
    }

    fn reap(&mut self, now: Instant) {
        for status in reap::reap_zombies() {
            for i in 0..self.services.len() {
                if let Some(event) = self.services[i].on_exit(status, now) {
                    let lines = self.services[i].read_output();
                    let name = self.services[i].name.clone();
                    for line in lines {
                        self.consoles.line(&format!("{name}: {line}"));
                    }
                    report_service(&mut self.consoles, &name, &event);
                }
            }
        }
    }

    /// Runs the VMware tools loop when due; returns a power request from
    /// vCenter ("Shut Down Guest OS", "Restart Guest OS").
    fn vmware_tools(&mut self, now: Instant) -> Option<(PowerAction, String)> {
        let (bd, tools) = self.vmware.as_mut()?;
        let info = self.network.guest_info();
        let mut request = None;
        for action in tools.on_timer(bd, now, &info) {
            match action {
                ToolsAction::PowerOff => {
                    request = Some((
                        PowerAction::PowerOff,
                        "vCenter: shut down guest".to_string(),
                    ))
                }
                ToolsAction::Reboot => {
                    request = Some((PowerAction::Reboot, "vCenter: restart guest".to_string()))
                }
                ToolsAction::Log(line) => {
                    self.consoles.line(&format!("init: vmware tools: {line}"))
                }
            }
        }
        request
    }

    fn shutdown(&mut self, action: PowerAction, reason: &str) -> ! {
        self.echo_service_output();
        let network = &mut self.network;
        let signal_fd = self.signal_fd.as_ref();
        let inputs = &mut self.inputs;
        power::shutdown(
            &mut self.consoles,
            &mut self.services,
            &mut |consoles| network.release(consoles),
            &mut || second_power_request(signal_fd, inputs),
            action,
            reason,
        )
    }

    #[cfg(feature = "debug-port")]
    fn debug_commands(&mut self) {
        let Some(port) = self.debug.as_mut() else {
            return;
        };
        port.serve(&mut debug_port::Context {
            services: &self.services,
            consoles: &mut self.consoles,
            relay: self.relay.as_ref(),
        });
    }

    fn echo_relayed_lines(&mut self) {
        let Some(relay) = self.relay_lines.as_mut() else {
            return;
        };
        for line in relay.read_lines() {
            self.consoles.line(&line);
        }
        while let Ok(settings) = self.settings_changes.try_recv() {
            self.network.update_names(&mut self.consoles, &settings);
            if settings.syslog != self.syslog {
                self.switch_syslog(&settings);
            }
        }
    }

    fn switch_syslog(&mut self, settings: &settings::Settings) {
        self.syslog = settings.syslog;
        self.consoles.detach_syslog();
        let Some(target) = settings.syslog else {
            self.consoles
                .line("init: no longer logging to a syslog server");
            return;
        };
        match SyslogSink::new(target, &settings.hostname) {
            Ok(sink) => {
                self.consoles.attach_syslog(sink);
                self.consoles.line(&format!(
                    "init: logging to syslog server {} too",
                    target.addr
                ));
            }
            Err(e) => self
                .consoles
                .line(&format!("init: error: syslog server {}: {e}", target.addr)),
        }
    }

    fn echo_service_output(&mut self) {
        for s in &mut self.services {
            for line in s.read_output() {
                self.consoles.line(&format!("{}: {line}", s.name));
            }
        }
    }

    /// A flood of output that stopped: say how much was not shown.
    fn echo_output_notes(&mut self, now: Instant) {
        for s in &mut self.services {
            if let Some(note) = s.take_output_note(now) {
                self.consoles.line(&format!("{}: {note}", s.name));
            }
        }
    }

    fn rescan_inputs(&mut self) {
        if self.input_rescans == 0 {
            return;
        }
        self.input_rescans -= 1;
        let found = evdev::open_event_devices();
        if !found.is_empty() {
            self.inputs = found;
            self.input_rescans = 0;
        }
    }
}
