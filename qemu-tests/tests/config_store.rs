//! The appliance store in a running VM: a change made with `lbd ctl
//! config` (run in the guest through init's debug port) takes effect at
//! once, is still there after a reboot with source "appliance", and gives
//! way to a value the admin changes in vCenter; a power cut in the middle
//! of commits leaves a store that opens; a broken `lbd.config` from
//! vCenter boots with the services that worked before, and says so.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use image_builder::qemu::NetBackend;
use qemu_tests::image::built_image;
use qemu_tests::netns::{NetNs, TAP};
use qemu_tests::ovf_env::environment;
use qemu_tests::vm::{Vm, VmOptions};
use rootfs::paths::{READY_LINE, REBOOT_LINE};

const BOOT_TIMEOUT: Duration = Duration::from_secs(300);
const STEP_TIMEOUT: Duration = Duration::from_secs(120);
const GUEST_MAC: &str = "00:50:56:99:c2:01";
const VIP: &str = "192.0.2.100";
const BACKEND_PORT: u16 = 8080;
/// The backends on the test's side of the tap, each answering its name.
const BACKENDS: [(&str, &str); 3] = [
    ("192.0.2.21", "s1"),
    ("192.0.2.22", "s2"),
    ("192.0.2.23", "s3"),
];

/// A private, writable copy of the image: the data partition (and the
/// store on it) lives from one boot to the next.
fn disk_copy(dir: &Path) -> PathBuf {
    let copy = dir.join("disk.img");
    let status = Command::new("cp")
        .arg("--sparse=always")
        .arg(built_image())
        .arg(&copy)
        .status()
        .expect("cp");
    assert!(status.success());
    copy
}

fn servers(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| {
            let (addr, _) = BACKENDS.iter().find(|(_, b)| b == n).expect("a backend");
            format!("{addr}:{BACKEND_PORT}")
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The deploy wizard's values: one node, one service slot on the VIP.
fn wizard(servers: &str) -> String {
    environment(&[
        ("hostname", "lb-store"),
        ("network.mode", "static"),
        ("network.ipv4", "192.0.2.10/24"),
        ("network.gateway", "192.0.2.1"),
        ("service.1.name", "web"),
        ("service.1.virtual_ip", VIP),
        ("service.1.ports", "80"),
        ("service.1.servers", servers),
    ])
}

fn boot(name: &str, ns: Option<&NetNs>, disk: &Path, env: Option<&str>, dir: &Path) -> Vm {
    let mut opts = VmOptions {
        debug_port: true,
        disk_copy: Some(disk.to_path_buf()),
        ..VmOptions::default()
    };
    if let Some(ns) = ns {
        opts.nics = vec![(
            NetBackend::Tap { ifname: TAP.into() },
            Some(GUEST_MAC.into()),
        )];
        opts.netns = Some(ns.name.clone());
    }
    if let Some(env) = env {
        let path = dir.join(format!("{name}-ovf-env.xml"));
        std::fs::write(&path, env).unwrap();
        opts.fw_cfg = vec![("opt/appliance/ovf-env.xml".into(), path)];
    }
    let vm = Vm::start(name, &built_image(), opts).unwrap_or_else(|e| panic!("{e}"));
    vm.wait_for(READY_LINE, BOOT_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"));
    vm
}

/// Powers the VM off from its ACPI button and waits for the clean end.
fn power_off(vm: Vm) {
    vm.acpi_powerdown().unwrap_or_else(|e| panic!("{e}"));
    vm.wait_for("appliance: clean shutdown complete", BOOT_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"));
}

/// The backends `count` requests to addr:80 reached (waiting up to a
/// minute for the first answer: VRRP takes the VIP a few seconds after
/// boot).
fn reached(ns: &NetNs, addr: &str, count: usize) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut answered = 0;
    for _ in 0..(count + 60) {
        let reply = ns.http_get(addr, 80);
        match reply.strip_prefix("200 ") {
            Some(body) => {
                seen.insert(body.trim().to_string());
                answered += 1;
                if answered == count {
                    break;
                }
            }
            None => std::thread::sleep(Duration::from_secs(1)),
        }
    }
    seen
}

fn backends_ns() -> (NetNs, Vec<tempfile::TempDir>) {
    let mut ns = NetNs::with_tap("192.0.2.1/24");
    let mut sites = Vec::new();
    for (addr, name) in BACKENDS {
        ns.exec_ok("ip", &["addr", "add", &format!("{addr}/24"), "dev", TAP]);
        sites.push(ns.spawn_web_server(addr, BACKEND_PORT, name));
    }
    (ns, sites)
}

fn ctl(vm: &Vm, args: &str) -> String {
    let from = vm.console().len();
    vm.debug(&format!("ctl {args}"))
        .unwrap_or_else(|e| panic!("{e}"));
    let end = vm
        .wait_for_after("init: debug port: ctl exited with ", from, STEP_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"));
    // The line's end: the console may have the words before the code.
    vm.wait_for_after("\n", end, STEP_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"));
    let console = vm.console();
    let said: Vec<&str> = console[from..]
        .lines()
        .filter(|l| l.contains("init: debug port: ctl"))
        .collect();
    let status = console[end..].lines().next().unwrap_or_default().trim();
    assert_eq!(status, "0", "lbd ctl {args} failed:\n{}", said.join("\n"));
    said.join("\n")
}

/// Input: slot 1 with servers s1, s2 from the wizard; `lbd ctl config set
/// service.1.servers=s1,s2,s3`; a reboot; then the wizard's value changed
/// in vCenter to s1, s3.
/// Output: s3 serves right after the set; after the reboot the value is
/// still there with source "appliance" and s3 still serves; after the
/// vCenter change the value comes from the OVF environment and s2 gets
/// no more traffic.
#[test]
fn a_server_added_with_lbd_ctl_serves_survives_a_reboot_and_yields_to_vcenter() {
    let (ns, _sites) = backends_ns();
    let dir = tempfile::tempdir().unwrap();
    let disk = disk_copy(dir.path());
    let first = wizard(&servers(&["s1", "s2"]));

    let vm = boot("store-1", Some(&ns), &disk, Some(&first), dir.path());
    let seen = reached(&ns, VIP, 6);
    assert_eq!(
        seen,
        BTreeSet::from(["s1".into(), "s2".into()]),
        "{}",
        vm.console()
    );

    let said = ctl(
        &vm,
        &format!(
            "config set service.1.servers={}",
            servers(&["s1", "s2", "s3"])
        ),
    );
    eprintln!("lbd ctl config set:\n{said}");
    assert!(said.contains("service.1.servers"), "{said}");
    let seen = reached(&ns, VIP, 9);
    assert!(
        seen.contains("s3"),
        "s3 got no traffic after the set: {seen:?}\n{}",
        vm.console()
    );
    // A password typed in clear is stored and exported as lbd's hash.
    ctl(&vm, "config set admin.password=store-test-password-1");
    let export = ctl(&vm, "config export");
    assert!(
        export.contains("$argon2id$") && !export.contains("store-test-password-1"),
        "{export}"
    );
    // DNS takes effect at once: the status screen reads /etc/resolv.conf.
    let said = ctl(&vm, "config set network.dns=192.0.2.53");
    assert!(said.contains("applied: network.dns"), "{said}");
    std::thread::sleep(Duration::from_secs(3));
    let shown = screen(&vm);
    assert!(
        shown.contains("192.0.2.53"),
        "DNS not on the screen:\n{shown}"
    );
    let history = ctl(&vm, "config history");
    eprintln!("lbd ctl config history:\n{history}");

    // The admin reboots the appliance through the API; QEMU boots it again.
    let from = vm.console().len();
    vm.debug("ctl appliance reboot")
        .unwrap_or_else(|e| panic!("{e}"));
    vm.wait_for_after(REBOOT_LINE, from, BOOT_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"));
    let ready = vm
        .wait_for_after(READY_LINE, from, BOOT_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"));
    let stored = format!(
        "service.1.servers = {} (appliance)",
        servers(&["s1", "s2", "s3"])
    );
    let console = vm.console();
    let second_boot = &console[from..ready];
    assert!(
        second_boot.contains(&stored),
        "no {stored:?}:\n{second_boot}"
    );
    let seen = reached(&ns, VIP, 9);
    assert!(
        seen.contains("s3"),
        "s3 got no traffic after the reboot: {seen:?}"
    );
    power_off(vm);

    let changed = wizard(&servers(&["s1", "s3"]));
    let vm = boot("store-3", Some(&ns), &disk, Some(&changed), dir.path());
    let from_vcenter = format!("service.1.servers = {} (ovf-env)", servers(&["s1", "s3"]));
    let console = vm.console();
    assert!(
        console.contains(&from_vcenter),
        "no {from_vcenter:?}:\n{console}"
    );
    let seen = reached(&ns, VIP, 8);
    assert_eq!(
        seen,
        BTreeSet::from(["s1".into(), "s3".into()]),
        "{console}"
    );
    let said = ctl(&vm, "config get service.1.servers");
    assert!(said.contains("ovf-env"), "{said}");
    power_off(vm);
}

/// Input: commits through the appliance socket in a loop; the power cut
/// after the tenth; the VM booted again.
/// Output: the store opens with no problem at a revision of at least 10
/// and takes the next commit.
#[test]
fn a_power_cut_during_commits_leaves_a_valid_store() {
    let dir = tempfile::tempdir().unwrap();
    let disk = disk_copy(dir.path());
    let mut vm = boot("commits-1", None, &disk, None, dir.path());
    vm.debug("commits 500").unwrap_or_else(|e| panic!("{e}"));
    vm.wait_for("init: debug port: commit 10 of 500", STEP_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"));
    vm.pull_the_plug();
    let before = vm.console();
    let last = before
        .lines()
        .rev()
        .find_map(|l| {
            l.split("commit ")
                .nth(1)?
                .split(" of 500")
                .next()?
                .parse::<u32>()
                .ok()
        })
        .expect("a commit line");
    eprintln!("power cut after commit {last} of 500");
    drop(vm);

    let vm = boot("commits-2", None, &disk, None, dir.path());
    let console = vm.console();
    let store_line = console
        .lines()
        .find(|l| l.starts_with("init: appliance store /var/lib/appliance/config: revision"))
        .unwrap_or_else(|| panic!("the store did not open:\n{console}"));
    eprintln!("after the power cut: {store_line}");
    assert!(
        !console.contains("error: appliance store"),
        "the store reported a problem:\n{console}"
    );
    let revision: u64 = store_line
        .split("revision ")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .and_then(|r| r.trim().parse().ok())
        .expect("a revision number");
    assert!(revision >= 10, "{store_line}");
    let from = console.len();
    vm.debug("commits 1").unwrap_or_else(|e| panic!("{e}"));
    vm.wait_for_after("init: debug port: commits done", from, STEP_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"));
    let next = format!("commit 1 of 1: revision {}", revision + 1);
    assert!(
        vm.console()[from..].contains(&next),
        "{}",
        &vm.console()[from..]
    );
}

/// lbd's whole config as an admin gives it in `lbd.config`: one frontend
/// on the node's address to `backend`.
fn lbd_config(backend: &str) -> String {
    use base64::Engine as _;
    let text = format!(
        "[frontends.web]\nbind = [\"192.0.2.10:80\"]\ndefault_backend = \"{backend}\"\n\n\
         [backends.web.servers.s1]\naddress = \"192.0.2.21:{BACKEND_PORT}\"\n"
    );
    base64::engine::general_purpose::STANDARD.encode(text)
}

fn with_lbd_config(config: &str) -> String {
    environment(&[
        ("hostname", "lb-admin"),
        ("network.mode", "static"),
        ("network.ipv4", "192.0.2.10/24"),
        ("network.gateway", "192.0.2.1"),
        ("lbd.config", config),
    ])
}

/// Input: a boot with a working `lbd.config`, then one whose frontend
/// names a backend that does not exist.
/// Output: the second boot serves as the first did, and the console and
/// the status screen name the problem.
#[test]
fn an_invalid_lbd_config_boots_with_the_previous_services() {
    let (ns, _sites) = backends_ns();
    let dir = tempfile::tempdir().unwrap();
    let disk = disk_copy(dir.path());
    let vm = boot(
        "admin-1",
        Some(&ns),
        &disk,
        Some(&with_lbd_config(&lbd_config("web"))),
        dir.path(),
    );
    assert_eq!(reached(&ns, "192.0.2.10", 3), BTreeSet::from(["s1".into()]));
    power_off(vm);

    let broken = with_lbd_config(&lbd_config("nowhere"));
    let vm = boot("admin-2", Some(&ns), &disk, Some(&broken), dir.path());
    let console = vm.console();
    for needle in [
        "init: error: lbd would refuse its configuration from lbd.config",
        "nowhere",
        "init: error: lbd runs the last configuration that worked",
    ] {
        assert!(console.contains(needle), "no {needle:?}:\n{console}");
    }
    assert_eq!(
        reached(&ns, "192.0.2.10", 3),
        BTreeSet::from(["s1".into()]),
        "{console}"
    );
    // The screen redraws every few seconds: the second read shows lbd's
    // answer to the status thread, not its start.
    std::thread::sleep(Duration::from_secs(5));
    let screen = screen(&vm);
    eprintln!("status screen:\n{screen}");
    assert!(
        screen.contains("lbd would refuse") || screen.contains("last configuration that worked"),
        "the status screen does not show the problem:\n{screen}"
    );
    assert!(
        !screen.contains("not answering"),
        "lbd does not answer the status screen:\n{screen}"
    );
    power_off(vm);
}

/// The status screen's text, through the debug port.
fn screen(vm: &Vm) -> String {
    let from = vm.console().len();
    vm.debug("screen").unwrap_or_else(|e| panic!("{e}"));
    vm.wait_for_after("init: debug port: ok: screen shown", from, STEP_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"));
    vm.console()[from..]
        .lines()
        .filter_map(|l| l.split("screen| ").nth(1).map(str::to_string))
        .collect::<Vec<_>>()
        .join("\n")
}
