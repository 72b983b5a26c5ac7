//! `image-builder run` as an admin tries the appliance: settings given with
//! `--set` reach the guest as an OVF environment (shown on the console with
//! that source), QEMU's user network is shaped around the static address,
//! and the forwarded stats URL answers on 127.0.0.1.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use image_builder::run::{plan, AccelChoice, RunOptions};
use qemu_tests::image::built_image;
use qemu_tests::vm::Vm;
use rootfs::paths::READY_LINE;

const BOOT_TIMEOUT: Duration = Duration::from_secs(240);
/// lbd binds its stats page right after `appliance: ready`.
const STATS_TIMEOUT: Duration = Duration::from_secs(60);

#[test]
fn settings_reach_the_guest_and_the_stats_url_answers() {
    let sets = [
        "network.mode=static",
        "network.ipv4=192.168.50.10/24",
        "network.gateway=192.168.50.1",
        "appliance.hostname=lb-run",
    ];
    let plan = plan(&RunOptions {
        image: built_image(),
        settings_file: None,
        sets: sets.iter().map(ToString::to_string).collect(),
        console: None,
        persist: false,
        memory_mib: 1024,
        cpus: 1,
        outbound: false,
        // The answer of `auto` depends on the host; the test is about the rest.
        accel: AccelChoice::Tcg,
    })
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(plan.guest_address.to_string(), "192.168.50.10");
    assert!(
        plan.delivered
            .iter()
            .any(|l| l == "network.ipv4 = 192.168.50.10/24 (ovf-env)"),
        "{:?}",
        plan.delivered
    );
    let stats_port = plan
        .forwards
        .iter()
        .find(|(guest, _)| guest.what == "stats page")
        .map(|(_, host)| *host)
        .expect("the stats page is always forwarded");

    let vm = Vm::start_spec("run", plan.vm.clone()).unwrap_or_else(|e| panic!("{e}"));
    vm.wait_for(READY_LINE, BOOT_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"));
    let console = vm.console();
    for line in [
        "network.ipv4 = 192.168.50.10/24 (ovf-env)",
        "hostname = lb-run (ovf-env)",
        "net: eth0: address 192.168.50.10/24",
    ] {
        assert!(console.contains(line), "{line:?} missing:\n{console}");
    }
    let answer = get_until_answered(stats_port, STATS_TIMEOUT).unwrap_or_else(|e| {
        panic!(
            "stats page on 127.0.0.1:{stats_port}: {e}\n{}",
            vm.console()
        )
    });
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("lbd stats"), "{answer}");
    drop(plan.workdir);
}

/// GET / on 127.0.0.1:`port` until an HTTP answer comes (QEMU accepts the
/// forward's connection before lbd listens, then closes it).
fn get_until_answered(port: u16, timeout: Duration) -> Result<String, String> {
    let deadline = Instant::now() + timeout;
    let mut last = String::new();
    while Instant::now() < deadline {
        match get(port) {
            Ok(answer) if answer.starts_with("HTTP/") => return Ok(answer),
            Ok(other) => last = format!("not HTTP: {other:?}"),
            Err(e) => last = e.to_string(),
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    Err(format!("no answer within {timeout:?}; last: {last}"))
}

fn get(port: u16) -> std::io::Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(b"GET / HTTP/1.1\r\nHost: lb-run\r\nConnection: close\r\n\r\n")?;
    let mut answer = String::new();
    s.read_to_string(&mut answer)?;
    Ok(answer)
}
