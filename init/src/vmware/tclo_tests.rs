//! The TCLO loop against the hypervisor double: commands queued on the
//! host side, replies and RPCI messages read back, the clock passed in.

use std::net::{IpAddr, Ipv4Addr};

use super::*;
use crate::vmware::double::FakeHypervisor;
use crate::vmware::nicinfo::encode_nic_info_v3;
use crate::vmware::report::{REPORT_RETRY, UPTIME_INTERVAL};

const MAC: [u8; 6] = [0x00, 0x50, 0x56, 0x99, 0xc0, 0x4c];

fn info() -> GuestInfo {
    GuestInfo {
        hostname: "lb1".to_owned(),
        nics: vec![GuestNic {
            name: "eth0".to_owned(),
            mac: MAC,
            addrs: vec![(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)), 24)],
        }],
        uptime: Duration::ZERO,
    }
}

fn exchanges(host: &FakeHypervisor) -> Vec<(&str, &str)> {
    host.tclo_exchanges
        .iter()
        .map(|(c, r)| (c.as_str(), r.as_str()))
        .collect()
}

fn logs(actions: &[ToolsAction]) -> Vec<&str> {
    actions
        .iter()
        .filter_map(|a| match a {
            ToolsAction::Log(l) => Some(l.as_str()),
            _ => None,
        })
        .collect()
}

/// A host that has already been through reset and Capabilities_Register
/// with `tools`, with its records cleared.
fn registered(now: Instant) -> (FakeHypervisor, Tools) {
    let mut host = FakeHypervisor::default();
    let mut tools = Tools::new(now);
    host.queue("reset");
    host.queue("Capabilities_Register");
    let actions = tools.on_timer(&mut host, now, &info());
    assert!(logs(&actions).is_empty(), "{actions:?}");
    assert!(tools.connected());
    host.tclo_exchanges.clear();
    host.rpci.clear();
    (host, tools)
}

#[test]
fn reset_ping_and_capabilities_register() {
    // Input: the host sends reset, ping, Capabilities_Register at start.
    // Output: the three replies; RPCI unified_loop after the reset reply,
    // the statechange capability, the "guest managed" version, then the
    // host name and NIC info; no power action; the TCLO channel stays open.
    let t0 = Instant::now();
    let mut host = FakeHypervisor::default();
    let mut tools = Tools::new(t0);
    assert_eq!(tools.next_deadline(), t0);
    host.queue("reset");
    host.queue("ping");
    host.queue("Capabilities_Register");
    let actions = tools.on_timer(&mut host, t0, &info());
    assert!(actions.is_empty(), "{actions:?}");
    assert_eq!(
        exchanges(&host),
        vec![
            ("reset", "OK ATR toolbox"),
            ("ping", "OK "),
            ("Capabilities_Register", "OK "),
        ]
    );
    let mut nic_msg = b"SetGuestInfo  10 ".to_vec();
    nic_msg.extend(encode_nic_info_v3(&info().nics, 2048));
    assert_eq!(
        host.rpci,
        vec![
            b"vmx.capability.unified_loop toolbox\0".to_vec(),
            b"tools.capability.statechange ".to_vec(),
            b"tools.set.version 2147483647\0".to_vec(),
            b"SetGuestInfo  1 lb1\0".to_vec(),
            nic_msg,
        ]
    );
    assert!(tools.connected());
    assert_eq!(host.open_channels(), 1, "only the TCLO channel stays open");
    assert!(host.violations.is_empty(), "{:?}", host.violations);
}

#[test]
fn commands_carrying_a_nul_are_understood() {
    let t0 = Instant::now();
    let (mut host, mut tools) = registered(t0);
    host.tclo_commands.push_back(b"ping\0".to_vec());
    tools.on_timer(&mut host, tools.next_deadline(), &info());
    assert_eq!(exchanges(&host), vec![("ping\0", "OK ")]);
}

#[test]
fn set_option_broadcast_ip_reports_the_primary_ip() {
    // Input: Set_Option broadcastIP 1, another option, a malformed one.
    // Output: info-set guestinfo.ip with the IPv4 address, the host holds
    // it; OK for both options; the malformed one is refused.
    let t0 = Instant::now();
    let (mut host, mut tools) = registered(t0);
    host.queue("Set_Option broadcastIP 1");
    host.queue("Set_Option synctime 0");
    host.queue("Set_Option broadcastIP");
    let actions = tools.on_timer(&mut host, tools.next_deadline(), &info());
    assert!(actions.is_empty(), "{actions:?}");
    assert_eq!(
        exchanges(&host),
        vec![
            ("Set_Option broadcastIP 1", "OK "),
            ("Set_Option synctime 0", "OK "),
            ("Set_Option broadcastIP", "ERROR Unknown or invalid option"),
        ]
    );
    assert_eq!(
        host.rpci_texts(),
        vec!["info-set guestinfo.ip 192.0.2.10\\0"]
    );
    assert_eq!(
        host.guestinfo.get("guestinfo.ip").map(String::as_str),
        Some("192.0.2.10")
    );
}

#[test]
fn broadcast_ip_follows_an_address_change() {
    let t0 = Instant::now();
    let (mut host, mut tools) = registered(t0);
    host.queue("Set_Option broadcastIP 1");
    tools.on_timer(&mut host, tools.next_deadline(), &info());
    host.rpci.clear();
    let mut moved = info();
    moved.nics[0].addrs = vec![(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 99)), 24)];
    tools.on_timer(&mut host, tools.next_deadline(), &moved);
    let rpci = host.rpci_texts();
    assert_eq!(rpci.len(), 2, "{rpci:?}");
    assert!(rpci[0].starts_with("SetGuestInfo  10 "), "{rpci:?}");
    assert_eq!(rpci[1], "info-set guestinfo.ip 192.0.2.99\\0");
}

#[test]
fn os_halt_reports_the_state_change_and_asks_power_off_once() {
    // Input: OS_Halt, later OS_Halt again. Output: reply OK (sent within
    // the same call), RPCI statechange status 1 1, one PowerOff action;
    // the second request is answered but not acted on twice.
    let t0 = Instant::now();
    let (mut host, mut tools) = registered(t0);
    host.queue("OS_Halt");
    let actions = tools.on_timer(&mut host, tools.next_deadline(), &info());
    assert_eq!(exchanges(&host), vec![("OS_Halt", "OK ")]);
    assert_eq!(
        host.rpci_texts(),
        vec!["tools.os.statechange.status 1 1\\0"]
    );
    assert_eq!(
        actions
            .iter()
            .filter(|a| **a == ToolsAction::PowerOff)
            .count(),
        1,
        "{actions:?}"
    );
    host.queue("OS_Halt");
    let again = tools.on_timer(&mut host, tools.next_deadline(), &info());
    assert!(!again.contains(&ToolsAction::PowerOff), "{again:?}");
    assert_eq!(host.tclo_exchanges.len(), 2);
}

#[test]
fn os_reboot_reports_state_2_and_asks_reboot() {
    let t0 = Instant::now();
    let (mut host, mut tools) = registered(t0);
    host.queue("OS_Reboot");
    let actions = tools.on_timer(&mut host, tools.next_deadline(), &info());
    assert_eq!(exchanges(&host), vec![("OS_Reboot", "OK ")]);
    assert_eq!(
        host.rpci_texts(),
        vec!["tools.os.statechange.status 1 2\\0"]
    );
    assert!(actions.contains(&ToolsAction::Reboot), "{actions:?}");
    assert!(!actions.contains(&ToolsAction::PowerOff));
}

#[test]
fn power_on_resume_suspend_are_acknowledged_without_action() {
    // Input: the other state changes of powerops.h. Output: status 1 3,
    // 1 4, 1 5 and no power action. After the resume the guest info is
    // sent again (the host may have lost it).
    let t0 = Instant::now();
    let (mut host, mut tools) = registered(t0);
    host.queue("OS_PowerOn");
    host.queue("OS_Resume");
    host.queue("OS_Suspend");
    let actions = tools.on_timer(&mut host, tools.next_deadline(), &info());
    assert!(actions.is_empty(), "{actions:?}");
    let rpci = host.rpci_texts();
    assert_eq!(
        rpci[..3],
        [
            "tools.os.statechange.status 1 3\\0",
            "tools.os.statechange.status 1 4\\0",
            "tools.os.statechange.status 1 5\\0",
        ]
    );
    assert_eq!(rpci[3], "SetGuestInfo  1 lb1\\0");
    assert!(rpci[4].starts_with("SetGuestInfo  10 "));
}

#[test]
fn os_power_off_is_not_a_tools_command() {
    // open-vm-tools' stateChangeCmdTable has OS_Halt for "Shut Down
    // Guest"; there is no OS_PowerOff. Unknown commands get an error,
    // logged once per name.
    let t0 = Instant::now();
    let (mut host, mut tools) = registered(t0);
    host.queue("OS_PowerOff");
    host.queue("Time_Synchronize 0");
    host.queue("Time_Synchronize 1");
    let actions = tools.on_timer(&mut host, tools.next_deadline(), &info());
    assert_eq!(
        exchanges(&host),
        vec![
            ("OS_PowerOff", "ERROR Unknown Command"),
            ("Time_Synchronize 0", "ERROR Unknown Command"),
            ("Time_Synchronize 1", "ERROR Unknown Command"),
        ]
    );
    assert_eq!(logs(&actions).len(), 2, "{actions:?}");
    assert!(!actions.contains(&ToolsAction::PowerOff));
    assert!(host.rpci.is_empty());
}

#[test]
fn polls_back_off_to_100_ms_and_a_command_resets_the_wait() {
    // Input: no commands, on_timer called at each deadline; then one
    // command. Output: waits of 10, 20, 40, 80, 100, 100 ms; after the
    // command 10 ms again. A call before the deadline does nothing.
    let t0 = Instant::now();
    let mut host = FakeHypervisor::default();
    let mut tools = Tools::new(t0);
    let mut now = t0;
    let mut waits = Vec::new();
    for _ in 0..6 {
        tools.on_timer(&mut host, now, &info());
        waits.push(tools.next_deadline() - now);
        now = tools.next_deadline();
    }
    let ms = |n| Duration::from_millis(n);
    assert_eq!(
        waits,
        vec![ms(10), ms(20), ms(40), ms(80), ms(100), ms(100)]
    );

    let calls = host.calls.len();
    let early = tools.on_timer(&mut host, now - ms(1), &info());
    assert!(early.is_empty());
    assert_eq!(
        host.calls.len(),
        calls,
        "no backdoor call before the deadline"
    );

    host.queue("ping");
    tools.on_timer(&mut host, now, &info());
    assert_eq!(tools.next_deadline() - now, ms(10));
}

#[test]
fn an_empty_message_from_the_host_means_no_command() {
    // Input: a host that answers "nothing to do" with a 0-byte message.
    // Output: the same backoff as with no message; nothing is replied.
    let t0 = Instant::now();
    let mut host = FakeHypervisor {
        tclo_empty_reply: true,
        ..FakeHypervisor::default()
    };
    let mut tools = Tools::new(t0);
    tools.on_timer(&mut host, t0, &info());
    assert_eq!(tools.next_deadline() - t0, POLL_DELAY_FIRST);
    host.queue("ping");
    let now = tools.next_deadline();
    tools.on_timer(&mut host, now, &info());
    assert_eq!(exchanges(&host), vec![("ping", "OK ")]);
    assert_eq!(tools.next_deadline() - now, POLL_DELAY_FIRST);
    assert!(host.violations.is_empty(), "{:?}", host.violations);
}

#[test]
fn a_burst_of_commands_is_handled_in_slices() {
    let t0 = Instant::now();
    let (mut host, mut tools) = registered(t0);
    for _ in 0..20 {
        host.queue("ping");
    }
    let now = tools.next_deadline();
    tools.on_timer(&mut host, now, &info());
    assert_eq!(host.tclo_exchanges.len(), MAX_COMMANDS_PER_TIMER - 1);
    assert_eq!(tools.next_deadline(), now, "more to do: poll again at once");
    tools.on_timer(&mut host, now, &info());
    assert_eq!(host.tclo_exchanges.len(), 20);
}

#[test]
fn a_channel_dropped_by_the_host_is_reopened() {
    // Input: the host drops every channel (vMotion), then sends reset and
    // Capabilities_Register on the new one. Output: one log line, a retry
    // 100 ms later, then the loop runs again and re-registers.
    let t0 = Instant::now();
    let (mut host, mut tools) = registered(t0);
    host.host_reset();
    let now = tools.next_deadline();
    let actions = tools.on_timer(&mut host, now, &info());
    assert_eq!(logs(&actions).len(), 1, "{actions:?}");
    assert!(logs(&actions)[0].contains("reopening"), "{actions:?}");
    assert!(!tools.connected());
    assert_eq!(tools.next_deadline() - now, RETRY_DELAY_FIRST);

    host.queue("reset");
    host.queue("Capabilities_Register");
    let later = tools.next_deadline();
    let actions = tools.on_timer(&mut host, later, &info());
    assert!(logs(&actions)[0].contains("open again"), "{actions:?}");
    assert!(tools.connected());
    assert_eq!(
        exchanges(&host),
        vec![
            ("reset", "OK ATR toolbox"),
            ("Capabilities_Register", "OK ")
        ]
    );
    assert!(host.violations.is_empty(), "{:?}", host.violations);
    assert_eq!(host.open_channels(), 1);
}

#[test]
fn repeated_failures_back_off_to_one_second_and_never_stop() {
    // Input: every OPEN refused for 10 rounds, then accepted. Output: one
    // log line; waits 100, 200, 400, 800 ms then 1 s; the channel opens
    // as soon as the host allows it.
    let t0 = Instant::now();
    let mut host = FakeHypervisor {
        refuse_open: true,
        ..FakeHypervisor::default()
    };
    let mut tools = Tools::new(t0);
    let mut now = t0;
    let mut waits = Vec::new();
    let mut log_lines = 0;
    for _ in 0..10 {
        log_lines += logs(&tools.on_timer(&mut host, now, &info())).len();
        waits.push(tools.next_deadline() - now);
        now = tools.next_deadline();
    }
    let ms = |n| Duration::from_millis(n);
    assert_eq!(
        waits[..6],
        [ms(100), ms(200), ms(400), ms(800), ms(1000), ms(1000)]
    );
    assert!(waits[6..].iter().all(|w| *w == ms(1000)));
    assert_eq!(log_lines, 1);

    host.refuse_open = false;
    host.queue("reset");
    tools.on_timer(&mut host, now, &info());
    assert_eq!(exchanges(&host), vec![("reset", "OK ATR toolbox")]);
}

#[test]
fn checkpoint_during_a_reply_is_retried() {
    // Input: the VM is checkpointed while the 14-byte reply "OK ATR
    // toolbox" goes out (at its second 4-byte chunk). Output: the reply is
    // sent again from the start and arrives whole.
    let t0 = Instant::now();
    let (mut host, mut tools) = registered(t0);
    host.cpt_on_send_chunk = Some(1);
    host.queue("reset");
    host.queue("ping");
    tools.on_timer(&mut host, tools.next_deadline(), &info());
    assert_eq!(host.cpt_on_send_chunk, None, "the checkpoint happened");
    assert_eq!(
        exchanges(&host),
        vec![("reset", "OK ATR toolbox"), ("ping", "OK ")]
    );
    assert!(host.violations.is_empty(), "{:?}", host.violations);
}

#[test]
fn uptime_goes_out_at_registration_and_every_30_s() {
    // Input: uptime 12.34 s at registration, later 42.34 s. Output:
    // SetGuestInfo 7 in hundredths of a second, right after
    // Capabilities_Register and again once 30 s have passed, not before.
    let t0 = Instant::now();
    let mut host = FakeHypervisor::default();
    let mut tools = Tools::new(t0);
    let mut guest = GuestInfo {
        uptime: Duration::from_millis(12_345),
        ..info()
    };
    host.queue("reset");
    host.queue("Capabilities_Register");
    tools.on_timer(&mut host, t0, &guest);
    let rpci = host.rpci_texts();
    assert_eq!(
        rpci.last().map(String::as_str),
        Some("SetGuestInfo  7 1234\\0")
    );
    host.rpci.clear();
    tools.on_timer(&mut host, tools.next_deadline(), &guest);
    assert!(host.rpci.is_empty(), "{:?}", host.rpci_texts());
    guest.uptime += Duration::from_secs(30);
    tools.on_timer(&mut host, t0 + UPTIME_INTERVAL, &guest);
    assert_eq!(host.rpci_texts(), vec!["SetGuestInfo  7 4234\\0"]);
}

#[test]
fn guest_info_is_sent_only_when_it_changes() {
    let t0 = Instant::now();
    let (mut host, mut tools) = registered(t0);
    tools.on_timer(&mut host, tools.next_deadline(), &info());
    assert!(host.rpci.is_empty(), "unchanged: nothing sent");
    let mut renamed = info();
    renamed.hostname = "lb2".to_owned();
    tools.on_timer(&mut host, tools.next_deadline(), &renamed);
    assert_eq!(host.rpci_texts(), vec!["SetGuestInfo  1 lb2\\0"]);
}

#[test]
fn an_old_host_gets_nic_info_as_type_9() {
    // Input: the host does not know SetGuestInfo type 10. Output: the same
    // XDR sent as type 9, and type 9 straight away from then on.
    let t0 = Instant::now();
    let mut host = FakeHypervisor {
        rpci_unknown: vec!["SetGuestInfo  10 ".to_owned()],
        ..FakeHypervisor::default()
    };
    let mut tools = Tools::new(t0);
    host.queue("reset");
    host.queue("Capabilities_Register");
    let actions = tools.on_timer(&mut host, t0, &info());
    assert!(actions.is_empty(), "{actions:?}");
    let rpci = host.rpci_texts();
    let n = rpci.len();
    assert!(rpci[n - 2].starts_with("SetGuestInfo  10 "), "{rpci:?}");
    assert!(rpci[n - 1].starts_with("SetGuestInfo  9 "), "{rpci:?}");
    let mut v2 = b"SetGuestInfo  9 ".to_vec();
    v2.extend(encode_nic_info_v3(&info().nics, 64));
    assert_eq!(host.rpci[n - 1], v2);

    host.rpci.clear();
    let mut more = info();
    more.nics[0]
        .addrs
        .push((IpAddr::V4(Ipv4Addr::new(192, 0, 2, 11)), 24));
    tools.on_timer(&mut host, tools.next_deadline(), &more);
    let rpci = host.rpci_texts();
    assert_eq!(rpci.len(), 1, "{rpci:?}");
    assert!(rpci[0].starts_with("SetGuestInfo  9 "));
}

#[test]
fn a_refused_report_is_logged_and_retried_after_30_s() {
    let t0 = Instant::now();
    let mut host = FakeHypervisor {
        rpci_unknown: vec!["SetGuestInfo  1 ".to_owned()],
        ..FakeHypervisor::default()
    };
    let mut tools = Tools::new(t0);
    host.queue("reset");
    host.queue("Capabilities_Register");
    let actions = tools.on_timer(&mut host, t0, &info());
    assert_eq!(logs(&actions).len(), 1, "{actions:?}");
    assert!(logs(&actions)[0].contains("refused"), "{actions:?}");
    host.rpci.clear();
    tools.on_timer(&mut host, tools.next_deadline(), &info());
    assert!(host.rpci.is_empty(), "no retry before 30 s");
    let late = t0 + REPORT_RETRY;
    tools.on_timer(&mut host, late, &info());
    assert_eq!(host.rpci_texts(), vec!["SetGuestInfo  1 lb1\\0"]);
}
