//! Two appliance VMs deployed as a pair, the way a vSphere admin fills in
//! the wizard: static addresses, each other as unicast VRRP peer, a shared
//! secret (HMAC between appliances), priorities 150 and 100, and one
//! service in slot 1 whose virtual IP is the pair's only VIP (typed once,
//! in the slot: it joins VRRP by itself; no lbd.config). They sit on one
//! bridge in a namespace the test creates; the test is the client on that
//! bridge and runs the service's backend there too.
//!
//! The higher-priority node holds the VIP and carries the client's
//! requests to the backend; shutting it down from vSphere (ACPI power
//! button) moves the VIP to the other node, whose gratuitous ARPs repoint
//! the client, and the requests go on through it. Nothing here asserts on
//! timing.

use std::time::Duration;

use image_builder::qemu::NetBackend;
use qemu_tests::image::built_image;
use qemu_tests::netns::NetNs;
use qemu_tests::ovf_env::environment;
use qemu_tests::vm::{Vm, VmOptions};
use rootfs::paths::READY_LINE;

const BOOT_TIMEOUT: Duration = Duration::from_secs(300);
const VIP: &str = "192.0.2.100";
const SECRET: &str = "pair-secret-0123456789";
/// The service's backend, on the test's side of the bridge.
const BACKEND: &str = "192.0.2.1";
const BACKEND_PORT: u16 = 8080;
const BACKEND_BODY: &str = "backend reached";

struct Node {
    name: &'static str,
    tap: &'static str,
    mac: &'static str,
    ip: &'static str,
    peer: &'static str,
    priority: &'static str,
}

const A: Node = Node {
    name: "lb-a",
    tap: "tap0",
    mac: "00:50:56:99:c0:0a",
    ip: "192.0.2.11",
    peer: "192.0.2.12",
    priority: "150",
};
const B: Node = Node {
    name: "lb-b",
    tap: "tap1",
    mac: "00:50:56:99:c0:0b",
    ip: "192.0.2.12",
    peer: "192.0.2.11",
    priority: "100",
};

fn start(node: &Node, ns: &NetNs) -> (Vm, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let env = dir.path().join("ovf-env.xml");
    let ipv4 = format!("{}/24", node.ip);
    std::fs::write(
        &env,
        environment(&[
            ("hostname", node.name),
            ("network.mode", "static"),
            ("network.ipv4", &ipv4),
            ("network.gateway", "192.0.2.1"),
            ("vrrp.priority", node.priority),
            ("vrrp.peers", node.peer),
            ("vrrp.auth", SECRET),
            ("service.1.name", "web"),
            ("service.1.virtual_ip", &format!("{VIP}/24")),
            ("service.1.ports", "443"),
            ("service.1.servers", &format!("{BACKEND}:{BACKEND_PORT}")),
            ("service.1.check", "http"),
        ]),
    )
    .unwrap();
    let opts = VmOptions {
        nics: vec![(
            NetBackend::Tap {
                ifname: node.tap.into(),
            },
            Some(node.mac.into()),
        )],
        netns: Some(ns.name.clone()),
        fw_cfg: vec![("opt/appliance/ovf-env.xml".into(), env)],
        ..VmOptions::default()
    };
    let vm = Vm::start(node.name, &built_image(), opts).unwrap_or_else(|e| panic!("{e}"));
    (vm, dir)
}

/// Polls until the client's neighbour entry for the VIP is `node`'s MAC
/// and the VIP answers a ping.
fn vip_on(ns: &NetNs, node: &Node, attempts: u32) -> bool {
    (0..attempts).any(|_| {
        let answers = ns.ping_until(VIP, 1);
        let here = ns.neighbour_mac(VIP).as_deref() == Some(node.mac);
        if !(answers && here) {
            std::thread::sleep(Duration::from_millis(500));
        }
        answers && here
    })
}

/// The state of lbd's last VRRP change on a console (`... to=Backup ...`).
fn last_state(console: &str) -> Option<String> {
    console
        .lines()
        .rev()
        .filter(|l| l.contains("vrrp state change"))
        .find_map(|l| l.split_whitespace().find_map(|w| w.strip_prefix("to=")))
        .map(str::to_string)
}

/// Polls until a request to VIP:443 comes back from the backend (lbd's
/// check marks the server up after `rise` checks); the last answer if not.
fn service_answers(ns: &NetNs, attempts: u32) -> Result<(), String> {
    let mut answer = String::new();
    for _ in 0..attempts {
        answer = ns.http_get(VIP, 443);
        if answer == format!("200  {BACKEND_BODY}") {
            return Ok(());
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    Err(answer)
}

#[test]
fn a_pair_holds_the_vip_and_hands_it_over_on_shutdown() {
    let mut ns = NetNs::with_bridge("192.0.2.1/24", &[A.tap, B.tap]);
    let _site = ns.spawn_web_server(BACKEND, BACKEND_PORT, BACKEND_BODY);
    let (vm_a, _dir_a) = start(&A, &ns);
    let (vm_b, _dir_b) = start(&B, &ns);
    for vm in [&vm_a, &vm_b] {
        vm.wait_for(READY_LINE, BOOT_TIMEOUT)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    assert!(
        vip_on(&ns, &A, 120),
        "the VIP never answered from lb-a (priority 150):\n--- lb-a\n{}\n--- lb-b\n{}",
        vm_a.console(),
        vm_b.console()
    );

    if let Err(answer) = service_answers(&ns, 60) {
        panic!(
            "VIP:443 did not reach the backend through lb-a (last answer {answer:?}):\n{}",
            vm_a.console()
        );
    }

    // One master: lb-b heard lb-a's authenticated adverts and is backup
    // now (it may have been master while lb-a was still booting; were the
    // HMAC wrong, it would have stayed master).
    let b_is_backup = (0..60).any(|_| {
        let last = last_state(&vm_b.console());
        if last.as_deref() != Some("Backup") {
            std::thread::sleep(Duration::from_millis(500));
        }
        last.as_deref() == Some("Backup")
    });
    assert!(
        b_is_backup,
        "lb-b is not backup while lb-a holds the VIP:\n{}",
        vm_b.console()
    );

    // The admin shuts lb-a down from vSphere: init stops lbd first, which
    // sends priority 0, so lb-b takes over after its skew time.
    vm_a.acpi_powerdown().unwrap_or_else(|e| panic!("{e}"));
    assert!(
        vip_on(&ns, &B, 120),
        "the VIP never moved to lb-b:\n--- lb-a\n{}\n--- lb-b\n{}",
        vm_a.console(),
        vm_b.console()
    );
    assert_eq!(
        last_state(&vm_b.console()).as_deref(),
        Some("Master"),
        "{}",
        vm_b.console()
    );
    // The client's requests go on through lb-b.
    if let Err(answer) = service_answers(&ns, 60) {
        panic!(
            "VIP:443 did not reach the backend through lb-b (last answer {answer:?}):\n{}",
            vm_b.console()
        );
    }
    vm_a.wait_for("appliance: clean shutdown complete", BOOT_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"));
}
