//! VRRP following the balancer itself, in network namespaces (see
//! `vrrp_support`): a frontend disabled by an operator on the master
//! moves the VIP (`track_frontend`), notify hooks run in order with
//! Keepalived's arguments, and a reload applies `[vrrp]` changes.
//! Needs root; skipped (with a message) otherwise.

mod vrrp_support;

use std::path::Path;
use std::process::Command;

use vrrp_support::{config, root, Net, Node};

/// Runs `lbd ctl` against `node`'s control socket; panics on failure.
fn ctl(dir: &Path, node: &str, words: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_lbd"))
        .args(["ctl", "--socket"])
        .arg(dir.join(format!("{node}.sock")))
        .args(words)
        .output()
        .expect("lbd ctl");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "lbd ctl {words:?}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// A hook that appends its arguments to `calls`.
fn recording_hook(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let calls = dir.join("calls");
    let hook = dir.join("hook.sh");
    std::fs::write(
        &hook,
        format!("#!/bin/sh\necho \"$*\" >> {}\n", calls.display()),
    )
    .expect("hook");
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    (hook, calls)
}

fn states_called(calls: &Path) -> Vec<String> {
    std::fs::read_to_string(calls)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2).map(str::to_string))
        .collect()
}

#[test]
fn disabling_the_masters_frontend_moves_the_vip_and_hooks_follow() {
    if !root() {
        return;
    }
    let net = Net::new("f");
    let dir = std::env::temp_dir().join(format!("lbd-vrrp-fe-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (hook, calls) = recording_hook(&dir);
    let frontend = "[frontends.web]\nbind = [\"0.0.0.0:18080\"]\ndefault_backend = \"web\"\n\
                    [backends.web.servers.s1]\naddress = \"127.0.0.1:18081\"\n";
    let a_extra = format!(
        "[vrrp.vi.track_frontend.web]\nweight = 100\n\
         [vrrp.vi.notify]\nall = \"{}\"\n{frontend}",
        hook.display()
    );
    let a_cfg = config(&dir, "a", 150, "10.77.0.1", "10.77.0.2", &a_extra);
    let b_cfg = config(&dir, "b", 100, "10.77.0.2", "10.77.0.1", frontend);
    let mut a = Node::start(&net, "a", &a_cfg);
    let mut b = Node::start(&net, "b", &b_cfg);
    net.wait("A master", |n| n.holds_vip("a") && !n.holds_vip("b"));
    let vrrp = ctl(&dir, "a", &["show", "vrrp"]);
    assert!(
        vrrp.contains("\"state\": \"MASTER\"") && vrrp.contains("\"priority\": 150"),
        "show vrrp: {vrrp}"
    );

    // The operator takes A's frontend out: A drops to 50, B takes over.
    let said = ctl(&dir, "a", &["disable", "frontend", "web"]);
    assert!(said.contains("disabled"), "{said}");
    net.wait("B takes over when A's frontend is disabled", |n| {
        n.holds_vip("b") && !n.holds_vip("a")
    });
    let stat = ctl(&dir, "a", &["show", "stat"]);
    assert!(
        stat.contains("STOP"),
        "show stat marks the frontend: {stat}"
    );
    let vrrp = ctl(&dir, "a", &["show", "vrrp"]);
    assert!(
        vrrp.contains("\"state\": \"BACKUP\"") && vrrp.contains("\"priority\": 50"),
        "show vrrp after the disable: {vrrp}"
    );

    // Enabled again: A is back at 150 and preempts.
    ctl(&dir, "a", &["enable", "frontend", "web"]);
    net.wait("A preempts once its frontend accepts again", |n| {
        n.holds_vip("a") && !n.holds_vip("b")
    });
    net.wait("A's hooks ran for each change", |_| {
        states_called(&calls).len() >= 4
    });
    a.terminate();
    assert_eq!(
        states_called(&calls),
        ["BACKUP", "MASTER", "BACKUP", "MASTER", "STOP"],
        "hooks in order, STOP on the graceful stop"
    );
    let first = std::fs::read_to_string(&calls).expect("calls");
    assert!(
        first.starts_with("INSTANCE vi BACKUP 150\nINSTANCE vi MASTER 150\n"),
        "Keepalived's arguments: {first}"
    );
    b.terminate();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_reload_applies_vrrp_changes() {
    if !root() {
        return;
    }
    let net = Net::new("r");
    let dir = std::env::temp_dir().join(format!("lbd-vrrp-rl-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let a_cfg = config(&dir, "a", 150, "10.77.0.1", "10.77.0.2", "");
    let b_cfg = config(&dir, "b", 100, "10.77.0.2", "10.77.0.1", "");
    let mut a = Node::start(&net, "a", &a_cfg);
    let mut b = Node::start(&net, "b", &b_cfg);
    net.wait("A master", |n| n.holds_vip("a") && !n.holds_vip("b"));

    // A's priority lowered to 50 in its file, then reloaded: B takes over.
    config(&dir, "a", 50, "10.77.0.1", "10.77.0.2", "");
    ctl(&dir, "a", &["reload"]);
    net.wait("B master after A's priority is lowered", |n| {
        n.holds_vip("b") && !n.holds_vip("a")
    });

    // B's instance removed from its file: B lets the VIP go, A takes it.
    let b_plain = dir.join("b.toml");
    let text = std::fs::read_to_string(&b_plain).expect("b config");
    let global_only: String = text
        .split("[vrrp.vi]")
        .next()
        .expect("global part")
        .to_string();
    std::fs::write(&b_plain, global_only).expect("rewrite b");
    ctl(&dir, "b", &["reload"]);
    net.wait("A master after B's instance is removed", |n| {
        n.holds_vip("a") && !n.holds_vip("b")
    });
    net.wait("client reaches the VIP", Net::ping_vip);
    a.terminate();
    b.terminate();
    let _ = std::fs::remove_dir_all(&dir);
}
