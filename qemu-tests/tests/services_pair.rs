//! Two appliance VMs configured only through the deploy wizard's values
//! (the OVF environment): two service slots with their virtual IPs, VRRP
//! priorities 101/100 with each other as unicast peer and a shared secret,
//! no `lbd.config`. The backends (four small HTTPS servers) and the client
//! share one bridge in a namespace the test creates.
//!
//! Client traffic to each VIP reaches its backends and sticks to one per
//! client address (`balance = source`); port 80 redirects to https; the
//! master is powered off while the client loops requests (the gap is
//! printed, not asserted); the master comes back and takes the VIPs again.

use std::time::{Duration, Instant};

use image_builder::qemu::NetBackend;
use qemu_tests::backends::{https_get, spawn_https, Certificate};
use qemu_tests::image::built_image;
use qemu_tests::netns::NetNs;
use qemu_tests::ovf_env::environment;
use qemu_tests::vm::{Vm, VmOptions};
use rootfs::paths::READY_LINE;

const BOOT_TIMEOUT: Duration = Duration::from_secs(300);
const HORIZON_VIP: &str = "192.0.2.100";
const APPVOL_VIP: &str = "192.0.2.101";
const SECRET: &str = "pair-secret-0123456789";
/// The client's addresses on the bridge: one per simulated client.
const CLIENTS: [&str; 8] = [
    "192.0.2.1",
    "192.0.2.2",
    "192.0.2.3",
    "192.0.2.4",
    "192.0.2.5",
    "192.0.2.6",
    "192.0.2.7",
    "192.0.2.8",
];
const BACKENDS: [(&str, &str); 4] = [
    ("192.0.2.21", "cs1"),
    ("192.0.2.22", "cs2"),
    ("192.0.2.31", "av1"),
    ("192.0.2.32", "av2"),
];

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
    mac: "00:50:56:99:c1:0a",
    ip: "192.0.2.11",
    peer: "192.0.2.12",
    priority: "101",
};
const B: Node = Node {
    name: "lb-b",
    tap: "tap1",
    mac: "00:50:56:99:c1:0b",
    ip: "192.0.2.12",
    peer: "192.0.2.11",
    priority: "100",
};

/// What the admin types into the wizard for one node.
fn wizard(node: &Node) -> String {
    let ipv4 = format!("{}/24", node.ip);
    environment(&[
        ("hostname", node.name),
        ("network.mode", "static"),
        ("network.ipv4", &ipv4),
        ("network.gateway", "192.0.2.1"),
        ("vrrp.priority", node.priority),
        ("vrrp.peers", node.peer),
        ("vrrp.auth", SECRET),
        ("service.1.name", "horizon"),
        ("service.1.virtual_ip", HORIZON_VIP),
        ("service.1.ports", "443"),
        ("service.1.servers", "192.0.2.21,192.0.2.22"),
        ("service.1.balance", "source"),
        ("service.1.check", "https"),
        ("service.1.check_path", "/favicon.ico"),
        ("service.1.redirect_http", "True"),
        ("service.2.name", "appvolumes"),
        ("service.2.virtual_ip", APPVOL_VIP),
        ("service.2.ports", "443"),
        ("service.2.servers", "192.0.2.31:443,192.0.2.32:443"),
        ("service.2.balance", "source"),
        ("service.2.check", "https"),
    ])
}

fn start(node: &Node, ns: &NetNs) -> (Vm, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let env = dir.path().join("ovf-env.xml");
    std::fs::write(&env, wizard(node)).unwrap();
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

/// Polls until the client's neighbour entry for `vip` is `node`'s MAC and
/// a request through it is answered.
fn vip_on(ns: &NetNs, vip: &str, node: &Node, attempts: u32) -> bool {
    let url = format!("https://{vip}/");
    (0..attempts).any(|_| {
        let answered = https_get(ns, CLIENTS[0], &url, 2).is_some();
        let here = ns.neighbour_mac(vip).as_deref() == Some(node.mac);
        if !(answered && here) {
            std::thread::sleep(Duration::from_millis(500));
        }
        answered && here
    })
}

/// Which backend each client address reaches through `vip`, asked five
/// times each: every client must get the same answer each time.
fn sticky_backends(ns: &NetNs, vip: &str) -> Vec<String> {
    let url = format!("https://{vip}/");
    CLIENTS
        .iter()
        .map(|client| {
            let answers: Vec<Option<String>> =
                (0..5).map(|_| https_get(ns, client, &url, 5)).collect();
            let first = answers[0]
                .clone()
                .unwrap_or_else(|| panic!("{client} got no answer from {vip}: {answers:?}"));
            assert!(
                answers.iter().all(|a| a.as_deref() == Some(first.as_str())),
                "{client} was not kept on one backend of {vip}: {answers:?}"
            );
            first
        })
        .collect()
}

/// Loops requests to `vip` from one client until `stop` says so; returns
/// the longest time between two answered requests and the answers.
fn loop_requests(
    ns: &NetNs,
    vip: &str,
    stop: &dyn Fn(&[String]) -> bool,
    limit: Duration,
) -> (Duration, Vec<String>) {
    let url = format!("https://{vip}/");
    let started = Instant::now();
    let mut last_ok = Instant::now();
    let mut gap = Duration::ZERO;
    let mut answers = Vec::new();
    while started.elapsed() < limit && !stop(&answers) {
        if let Some(body) = https_get(ns, CLIENTS[0], &url, 1) {
            gap = gap.max(last_ok.elapsed());
            last_ok = Instant::now();
            answers.push(body);
        }
    }
    (gap, answers)
}

fn consoles(a: &Vm, b: &Vm) -> String {
    format!("--- lb-a\n{}\n--- lb-b\n{}", a.console(), b.console())
}

#[test]
fn two_wizard_configured_nodes_balance_fail_over_and_preempt() {
    let mut ns = NetNs::with_bridge("192.0.2.1/24", &[A.tap, B.tap]);
    for addr in CLIENTS
        .iter()
        .skip(1)
        .chain(BACKENDS.iter().map(|(a, _)| a))
    {
        ns.exec_ok("ip", &["addr", "add", &format!("{addr}/24"), "dev", "br0"]);
    }
    let certs = tempfile::tempdir().unwrap();
    let cert = Certificate::make(certs.path());
    for (addr, name) in BACKENDS {
        spawn_https(&mut ns, addr, 443, name, &cert);
    }

    let (vm_a, dir_a) = start(&A, &ns);
    let (vm_b, _dir_b) = start(&B, &ns);
    for vm in [&vm_a, &vm_b] {
        vm.wait_for(READY_LINE, BOOT_TIMEOUT)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    for vip in [HORIZON_VIP, APPVOL_VIP] {
        assert!(
            vip_on(&ns, vip, &A, 180),
            "{vip} never answered from lb-a (priority 101):\n{}",
            consoles(&vm_a, &vm_b)
        );
    }

    // Each VIP reaches its own backends, one per client address.
    let horizon = sticky_backends(&ns, HORIZON_VIP);
    let appvol = sticky_backends(&ns, APPVOL_VIP);
    eprintln!("horizon by client: {horizon:?}\nappvolumes by client: {appvol:?}");
    assert!(
        horizon.iter().all(|b| b == "cs1" || b == "cs2"),
        "{horizon:?}"
    );
    assert!(
        appvol.iter().all(|b| b == "av1" || b == "av2"),
        "{appvol:?}"
    );
    assert!(
        horizon.contains(&"cs1".to_string()) && horizon.contains(&"cs2".to_string()),
        "eight clients all hashed to one Horizon server: {horizon:?}"
    );

    // Port 80 on the Horizon VIP answers with a redirect to https.
    let redirect = ns.exec(
        "curl",
        &[
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{redirect_url}",
            "--max-time",
            "5",
            &format!("http://{HORIZON_VIP}/portal"),
        ],
    );
    let redirect = String::from_utf8_lossy(&redirect.stdout).to_string();
    assert!(
        redirect.starts_with("30") && redirect.ends_with(&format!("https://{HORIZON_VIP}/portal")),
        "port 80 did not redirect: {redirect:?}"
    );

    // The admin powers lb-a off while a client keeps requesting.
    vm_a.acpi_powerdown().unwrap_or_else(|e| panic!("{e}"));
    let on_b = || ns.neighbour_mac(HORIZON_VIP).as_deref() == Some(B.mac);
    let (gap, answers) = loop_requests(
        &ns,
        HORIZON_VIP,
        &|answers| on_b() && answers.len() > 20,
        Duration::from_secs(120),
    );
    eprintln!(
        "failover gap while lb-a powered off: {:.2} s ({} answers)",
        gap.as_secs_f64(),
        answers.len()
    );
    assert!(
        on_b() && vip_on(&ns, APPVOL_VIP, &B, 60),
        "the VIPs did not move to lb-b:\n{}",
        consoles(&vm_a, &vm_b)
    );
    assert!(
        answers.iter().all(|b| b == "cs1" || b == "cs2"),
        "{answers:?}"
    );
    vm_a.wait_for("appliance: clean shutdown complete", BOOT_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"));
    drop(vm_a);
    drop(dir_a);

    // lb-a comes back with its higher priority and takes the VIPs again.
    let (vm_a, _dir_a) = start(&A, &ns);
    vm_a.wait_for(READY_LINE, BOOT_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"));
    for vip in [HORIZON_VIP, APPVOL_VIP] {
        assert!(
            vip_on(&ns, vip, &A, 180),
            "lb-a did not preempt {vip}:\n{}",
            consoles(&vm_a, &vm_b)
        );
    }
}
