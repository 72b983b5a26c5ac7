//! The guest's network from outside: static addressing from the OVF
//! environment, DHCP against a real dnsmasq, and the firewall (a listed
//! port answers, an unlisted one is silently dropped). Each VM sits on a
//! tap device in a network namespace the test creates and removes.

use std::time::Duration;

use image_builder::qemu::NetBackend;
use qemu_tests::image::built_image;
use qemu_tests::netns::{NetNs, Probe, TAP};
use qemu_tests::ovf_env::environment;
use qemu_tests::vm::{Vm, VmOptions};
use rootfs::paths::READY_LINE;

const BOOT_TIMEOUT: Duration = Duration::from_secs(240);
const GUEST_MAC: &str = "00:50:56:99:c0:4c";

/// How the OVF environment reaches the guest.
#[derive(Clone, Copy)]
enum Transport {
    FwCfg,
    Iso,
}

fn start_vm(name: &str, ns: &NetNs, env: Option<String>) -> (Vm, tempfile::TempDir) {
    start_vm_with(name, ns, env, Transport::FwCfg)
}

fn start_vm_with(
    name: &str,
    ns: &NetNs,
    env: Option<String>,
    transport: Transport,
) -> (Vm, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = VmOptions {
        nics: vec![(
            NetBackend::Tap { ifname: TAP.into() },
            Some(GUEST_MAC.into()),
        )],
        netns: Some(ns.name.clone()),
        // The status screen is read back through init's debug port.
        debug_port: true,
        ..VmOptions::default()
    };
    if let Some(env) = env {
        let content = dir.path().join("iso");
        std::fs::create_dir(&content).unwrap();
        let path = content.join("ovf-env.xml");
        std::fs::write(&path, env).unwrap();
        match transport {
            Transport::FwCfg => opts.fw_cfg = vec![("opt/appliance/ovf-env.xml".into(), path)],
            Transport::Iso => {
                // An ISO 9660 image labelled "OVF ENV", as vSphere's iso transport makes.
                let iso = dir.path().join("ovf-env.iso");
                let out = std::process::Command::new("xorriso")
                    .args(["-as", "mkisofs", "-quiet", "-V", "OVF ENV", "-o"])
                    .arg(&iso)
                    .arg(&content)
                    .output()
                    .unwrap_or_else(|e| panic!("xorriso: {e} (apt-get install xorriso)"));
                assert!(
                    out.status.success(),
                    "xorriso: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                opts.cdrom = Some(iso);
            }
        }
    }
    let vm = Vm::start(name, &built_image(), opts).unwrap_or_else(|e| panic!("{e}"));
    (vm, dir)
}

#[test]
fn static_address_from_ovf_environment_and_firewall() {
    static_address_and_firewall(Transport::FwCfg, "QEMU fw_cfg");
}

#[test]
fn static_address_from_ovf_environment_on_iso() {
    static_address_and_firewall(Transport::Iso, "CD /dev/sr0");
}

fn static_address_and_firewall(transport: Transport, transport_name: &str) {
    let mut ns = NetNs::with_tap("192.0.2.1/24");
    // A real NTP server for the guest, serving this host's clock at stratum
    // 8; -x: chronyd never touches the host clock.
    let chrony = tempfile::tempdir().unwrap();
    let conf = chrony.path().join("chrony.conf");
    std::fs::write(
        &conf,
        format!(
            "bindaddress 192.0.2.1\ncmdport 0\nlocal stratum 8\nallow all\npidfile {d}/chronyd.pid\ndriftfile {d}/drift\n",
            d = chrony.path().display()
        ),
    )
    .unwrap();
    ns.spawn("chronyd", &["-d", "-x", "-f", &conf.display().to_string()]);
    // A syslog receiver: every datagram appended to a file.
    let syslog_file = chrony.path().join("syslog.txt");
    let receiver = format!(
        "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.bind(('192.0.2.1',5514))\n\
         f=open('{}','ab',buffering=0)\nwhile True:\n    f.write(s.recv(4096)+b'\\n')\n",
        syslog_file.display()
    );
    ns.spawn("python3", &["-c", &receiver]);
    // The backend of the service configured through the wizard's slot 1:
    // a web server on the test's side, answering its http check too.
    let _site = ns.spawn_web_server("192.0.2.1", BACKEND_PORT, BACKEND_BODY);
    let env = environment(&[
        ("hostname", "lb-static"),
        ("admin.password", CONSOLE_PASSWORD),
        ("network.mode", "static"),
        ("network.ipv4", "192.0.2.10/24"),
        ("network.gateway", "192.0.2.1"),
        ("network.dns", "192.0.2.53"),
        ("network.ntp", "192.0.2.1"),
        ("firewall.ports", "9100/tcp"),
        ("vrrp.virtual_ips", "192.0.2.100/24"),
        // Keys lbd's HMAC between appliances: the VIP below proves lbd
        // accepted the overlay init wrote from it.
        ("vrrp.auth", "0123456789abcdef-test"),
        ("syslog.server", "192.0.2.1:5514"),
        // The image ships no services: this one comes from the deploy
        // wizard's slot only, on the VIP above (typed once more here, held
        // once), with its http->https redirect on port 80.
        ("service.1.name", "web"),
        ("service.1.virtual_ip", "192.0.2.100"),
        ("service.1.ports", "443"),
        ("service.1.servers", &format!("192.0.2.1:{BACKEND_PORT}")),
        ("service.1.check", "http"),
        ("service.1.redirect_http", "true"),
    ]);
    let (vm, _dir) = start_vm_with("static", &ns, Some(env), transport);
    vm.wait_for(READY_LINE, BOOT_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"));
    let console = vm.console();
    let transport_line = format!("OVF environment from {transport_name}");
    assert!(
        console.contains(&transport_line),
        "console lacks {transport_line:?}:\n{console}"
    );
    for expected in [
        "network.ipv4 = 192.0.2.10/24 (ovf-env)",
        "network.gateway = 192.0.2.1 (ovf-env)",
        "network.dns = 192.0.2.53 (ovf-env)",
        "network.ntp = 192.0.2.1 (ovf-env)",
        "hostname = lb-static (ovf-env)",
        // The ruleset init prints opens lbd's ports (the stats page and
        // the slot's service with its redirect) and the extra one.
        "service.1.servers = 192.0.2.1:8080 (ovf-env)",
        "tcp dport 80 accept",
        "tcp dport 443 accept",
        "tcp dport 8404 accept",
        "tcp dport 9100 accept",
        // The web console: its port opened, and its certificate made for
        // the hostname and the static address, announced on that address.
        "tcp dport 5480 accept",
        "self-signed, for lb-static, 192.0.2.10, valid 10 years",
        "init: web console https://192.0.2.10:5480/ certificate (self-signed) SHA-256 ",
        "firewall applied",
        // lbd runs as its own uid with CAP_NET_BIND_SERVICE, CAP_NET_ADMIN
        // and CAP_NET_RAW only, and still serves :80, :443 and the VIP.
        "uid 101, capabilities 0000000000003400)",
        // The clock, from the NTP server given in the OVF environment.
        "init: time: synchronised with 192.0.2.1 (",
    ] {
        assert!(
            console.contains(expected),
            "console lacks {expected:?}:\n{console}"
        );
    }
    assert!(
        ns.ping_until("192.0.2.10", 30),
        "no ping answer:\n{}",
        vm.console()
    );
    // lbd's stats page (a listed port) answers; a port nobody opened is
    // dropped, not refused: the probe times out.
    // lbd binds a moment after "ready": give it time.
    let stats_answers = (0..30).any(|_| {
        let ok = ns.tcp_probe("192.0.2.10", 8404) == Probe::Answered;
        if !ok {
            std::thread::sleep(Duration::from_secs(1));
        }
        ok
    });
    assert!(
        stats_answers,
        "stats port 8404 never answered:\n{}",
        vm.console()
    );
    // The console lines reach the syslog server as RFC 5424 messages.
    let syslog_seen = (0..30).any(|_| {
        let text = std::fs::read_to_string(&syslog_file).unwrap_or_default();
        let seen = text
            .lines()
            .any(|l| l.starts_with("<30>1 ") && l.contains(" lb-static appliance - - - ready"));
        if !seen {
            std::thread::sleep(Duration::from_secs(1));
        }
        seen
    });
    assert!(
        syslog_seen,
        "no RFC 5424 'ready' line at the syslog server: {:?}",
        std::fs::read_to_string(&syslog_file).unwrap_or_default()
    );
    // A lone node with a virtual IP becomes VRRP master (lbd, from the
    // overlay init writes) and the VIP answers.
    assert!(
        ns.ping_until("192.0.2.100", 60),
        "the VIP never answered:\n{}",
        vm.console()
    );
    service_from_the_slot_carries_traffic(&ns, &vm);
    web_console_answers_with_the_announced_certificate(&ns, &vm);
    web_console_changes_and_restores_the_configuration(&ns, &vm);
    assert_eq!(
        ns.tcp_probe("192.0.2.10", 2222),
        Probe::Silent,
        "unlisted port must be dropped"
    );
    status_screen_shows_the_node(&vm);
}

/// The wizard's admin password: the web console's `admin` user.
const CONSOLE_PASSWORD: &str = "console-admin-pw";

/// The web console as an admin meets it: plain HTTP on :5480 is sent to
/// HTTPS, the certificate presented is the one whose fingerprint the VM
/// console announced, the login page answers, and a script with the
/// wizard's admin password reads the node's status over the API.
fn web_console_answers_with_the_announced_certificate(ns: &NetNs, vm: &Vm) {
    let console = vm.console();
    let marker = "init: web console https://192.0.2.10:5480/ certificate (self-signed) SHA-256 ";
    let announced = console
        .lines()
        .find_map(|l| l.split_once(marker).map(|(_, f)| f.trim().to_string()))
        .unwrap_or_else(|| panic!("no fingerprint line on the console:\n{console}"));
    let curl = |args: &[&str]| {
        let out = ns.exec("curl", args);
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    // lbd binds the console a moment after "ready".
    let mut redirect = String::new();
    let up = (0..30).any(|_| {
        redirect = curl(&[
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{redirect_url}",
            "--max-time",
            "5",
            "http://192.0.2.10:5480/",
        ]);
        let ok = redirect == "301 https://192.0.2.10:5480/";
        if !ok {
            std::thread::sleep(Duration::from_secs(1));
        }
        ok
    });
    assert!(
        up,
        "plain HTTP on :5480 gave {redirect:?}:\n{}",
        vm.console()
    );
    let shown = ns.exec(
        "sh",
        &[
            "-c",
            "openssl s_client -connect 192.0.2.10:5480 </dev/null 2>/dev/null \
             | openssl x509 -noout -fingerprint -sha256",
        ],
    );
    let shown = String::from_utf8_lossy(&shown.stdout);
    let presented = shown.trim().rsplit('=').next().unwrap_or_default();
    assert!(
        presented.eq_ignore_ascii_case(&announced),
        "the console announced {announced}, :5480 presents {shown:?}"
    );
    let login = curl(&["-sk", "--max-time", "10", "https://192.0.2.10:5480/login"]);
    assert!(login.contains("Log in"), "login page: {login}");
    let user = format!("admin:{CONSOLE_PASSWORD}");
    let status = curl(&[
        "-sk",
        "--max-time",
        "30",
        "-u",
        &user,
        "https://192.0.2.10:5480/api/v1/status",
    ]);
    assert!(
        status.contains("lb-static") && status.contains("\"web\""),
        "/api/v1/status with the wizard's admin password: {status}"
    );
}

/// The configuration API against the real store in init: values with
/// their sources, a preview, a commit that lbd applies, a stale base
/// refused, a bad value refused naming its key, history naming the user,
/// the log, export, and restore of the first revision.
fn web_console_changes_and_restores_the_configuration(ns: &NetNs, vm: &Vm) {
    let user = format!("admin:{CONSOLE_PASSWORD}");
    let api = |method: &str, path: &str, body: &str| -> (u16, serde_json::Value, String) {
        let url = format!("https://192.0.2.10:5480{path}");
        let mut args = vec![
            "-sk",
            "--max-time",
            "40",
            "-u",
            &user,
            "-X",
            method,
            "-w",
            "\n%{http_code}",
        ];
        if !body.is_empty() {
            args.extend(["-H", "Content-Type: application/json", "-d", body]);
        }
        args.push(&url);
        let out = ns.exec("curl", &args);
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
        let json = serde_json::from_str(body).unwrap_or(serde_json::Value::Null);
        (code.trim().parse().unwrap_or(0), json, body.to_string())
    };
    let (code, config, text) = api("GET", "/api/v1/config", "");
    assert_eq!(code, 200, "GET /api/v1/config: {text}\n{}", vm.console());
    let base = config["revision"].as_u64().expect("revision");
    let dns = config["values"]
        .as_array()
        .and_then(|v| v.iter().find(|v| v["key"] == "network.dns"))
        .unwrap_or_else(|| panic!("no network.dns in {text}"));
    assert_eq!(dns["value"], "192.0.2.53");
    assert_eq!(dns["source"], "ovf-env");
    assert_eq!(dns["live"], true);
    let two = r#"{"set":{"service.1.servers":"192.0.2.1:8080,192.0.2.1:8081"}}"#;
    let (code, preview, text) = api("POST", "/api/v1/config/preview", two);
    assert_eq!(code, 200, "preview: {text}");
    assert_eq!(preview["diff"][0]["key"], "service.1.servers", "{text}");
    assert_eq!(preview["diff"][0]["before"], "192.0.2.1:8080", "{text}");
    let bad = format!(r#"{{"base":{base},"set":{{"service.1.ports":"99999"}}}}"#);
    let (code, refused, text) = api("POST", "/api/v1/config", &bad);
    assert_eq!(code, 400, "a bad port: {text}");
    assert_eq!(refused["problems"][0]["key"], "service.1.ports", "{text}");
    let commit = format!(
        r#"{{"base":{base},"set":{{"service.1.servers":"192.0.2.1:8080,192.0.2.1:8081"}},"summary":"second web server"}}"#
    );
    let (code, committed, text) = api("POST", "/api/v1/config", &commit);
    assert_eq!(code, 200, "commit: {text}\n{}", vm.console());
    let revision = committed["revision"]["revision"]
        .as_u64()
        .expect("new revision");
    let (_, status, text) = api("GET", "/api/v1/status", "");
    assert!(
        text.contains("192.0.2.1:8081"),
        "lbd has the new server: {text}"
    );
    drop(status);
    let (code, _, text) = api("POST", "/api/v1/config", &commit);
    assert_eq!(code, 409, "the same base again: {text}");
    let (_, history, text) = api("GET", "/api/v1/config/history?limit=5", "");
    assert_eq!(
        history["revisions"][0]["changed_by"], "admin (api)",
        "{text}"
    );
    assert_eq!(
        history["revisions"][0]["summary"], "second web server",
        "{text}"
    );
    let (code, _, exported) = api("GET", "/api/v1/config/export", "");
    assert_eq!(code, 200);
    assert!(exported.contains("192.0.2.1:8081"), "export: {exported}");
    let (code, logs, text) = api(
        "GET",
        "/api/v1/logs?lines=50&filter=configuration%20changed",
        "",
    );
    assert_eq!(code, 200, "logs: {text}");
    assert!(
        logs["lines"].as_array().is_some_and(|l| !l.is_empty()),
        "the log names the change: {text}"
    );
    let restore = format!(r#"{{"revision":{base},"base":{revision}}}"#);
    let (code, _, text) = api("POST", "/api/v1/config/restore", &restore);
    assert_eq!(code, 200, "restore: {text}\n{}", vm.console());
    let (_, _, text) = api("GET", "/api/v1/status", "");
    assert!(!text.contains("192.0.2.1:8081"), "restored: {text}");
    service_from_the_slot_carries_traffic(ns, vm);
}

/// The test's web server behind the slot's service.
const BACKEND_PORT: u16 = 8080;
const BACKEND_BODY: &str = "backend reached";

/// The service configured only through `service.1.*`: a client's request
/// to VIP:443 reaches the backend through lbd (mode tcp passes it as is),
/// and VIP:80 answers with a redirect to https.
fn service_from_the_slot_carries_traffic(ns: &NetNs, vm: &Vm) {
    // lbd's check marks the server up after `rise` checks: give it time.
    let mut answer = String::new();
    let reached = (0..30).any(|_| {
        answer = ns.http_get("192.0.2.100", 443);
        let ok = answer == format!("200  {BACKEND_BODY}");
        if !ok {
            std::thread::sleep(Duration::from_secs(1));
        }
        ok
    });
    assert!(
        reached,
        "VIP:443 did not reach the backend (last answer {answer:?}):\n{}",
        vm.console()
    );
    let redirect = ns.http_get("192.0.2.100", 80);
    assert!(
        redirect.starts_with("302 https://192.0.2.100/"),
        "VIP:80 did not redirect to https: {redirect:?}\n{}",
        vm.console()
    );
}

/// The console status screen (tty1, read back through init's debug port)
/// shows what an admin looks for: the addresses with the VIP, gateway and
/// DNS, where the settings came from, lbd's VRRP state and the stats page.
fn status_screen_shows_the_node(vm: &Vm) {
    let expected = [
        "Load balancer appliance",
        "lb-static",
        "192.0.2.10/24",
        "192.0.2.100/24",
        "gateway 192.0.2.1  dns 192.0.2.53",
        "from ovf-env; the rest defaults",
        "MASTER 192.0.2.100/24 priority",
        "stats and admin page http://192.0.2.10:8404/",
        // The web console and the fingerprint to check at the first visit.
        "Console   https://192.0.2.10:5480/ (self-signed)",
        "SHA-256 ",
        // The slot's service, its redirect, and its one server up.
        "web OPEN",
        "web-http OPEN",
        "web 1/1 up",
        "Problems  none",
        "Alt+F2",
    ];
    let mut screen = String::new();
    for _ in 0..30 {
        vm.debug("screen").unwrap_or_else(|e| panic!("{e}"));
        std::thread::sleep(Duration::from_secs(1));
        // The last dump: lines after the last "screen|" block started.
        let console = vm.console();
        let dump: Vec<&str> = console
            .lines()
            .filter_map(|l| l.split_once("init: debug port: screen| ").map(|(_, t)| t))
            .collect();
        let start = dump
            .iter()
            .rposition(|l| l.contains("Load balancer appliance"))
            .unwrap_or(0);
        screen = dump[start..].join("\n");
        if expected.iter().all(|e| screen.contains(e)) {
            eprintln!("status screen:\n{screen}");
            return;
        }
    }
    let missing: Vec<_> = expected.iter().filter(|e| !screen.contains(*e)).collect();
    panic!("status screen lacks {missing:?}:\n{screen}");
}

#[test]
fn dhcp_lease_from_dnsmasq() {
    let mut ns = NetNs::with_tap("192.0.2.1/24");
    let leases = tempfile::NamedTempFile::new().unwrap();
    let leasefile = format!("--dhcp-leasefile={}", leases.path().display());
    ns.spawn(
        "dnsmasq",
        &[
            "--no-daemon",
            "--conf-file=/dev/null",
            "--port=0",
            "--bind-interfaces",
            &format!("--interface={TAP}"),
            "--dhcp-range=192.0.2.100,192.0.2.100,255.255.255.0,1h",
            "--dhcp-option=option:router,192.0.2.1",
            "--dhcp-option=option:dns-server,192.0.2.53",
            &leasefile,
        ],
    );
    let (vm, _dir) = start_vm("dhcp", &ns, None);
    vm.wait_for(READY_LINE, BOOT_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"));
    vm.wait_for(
        "DHCP lease 192.0.2.100/24 from 192.0.2.1 (router 192.0.2.1, DNS 192.0.2.53)",
        Duration::from_secs(5),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        ns.ping_until("192.0.2.100", 30),
        "no ping answer:\n{}",
        vm.console()
    );
}
