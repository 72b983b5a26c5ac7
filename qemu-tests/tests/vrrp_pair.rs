//! Two appliance VMs deployed as a pair, the way a vSphere admin fills in
//! the wizard: static addresses, each other as unicast VRRP peer, one VIP,
//! a shared secret (HMAC between appliances), priorities 150 and 100. They
//! sit on one bridge in a namespace the test creates; the test is the
//! client on that bridge.
//!
//! The higher-priority node holds the VIP; shutting it down from vSphere
//! (ACPI power button) moves the VIP to the other node, whose gratuitous
//! ARPs repoint the client. Nothing here asserts on timing.

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
            ("vrrp.virtual_ips", &format!("{VIP}/24")),
            ("vrrp.auth", SECRET),
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

#[test]
fn a_pair_holds_the_vip_and_hands_it_over_on_shutdown() {
    let ns = NetNs::with_bridge("192.0.2.1/24", &[A.tap, B.tap]);
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
    vm_a.wait_for("appliance: clean shutdown complete", BOOT_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"));
}
