//! Two `lbd run` nodes with VRRP in network namespaces (see
//! `vrrp_support`): election, kill -9, preemption, graceful stop,
//! nopreempt. Needs root; skipped (with a message) otherwise.

mod vrrp_support;

use std::time::{Duration, Instant};

use vrrp_support::{config, root, Net, Node};

#[test]
fn two_nodes_elect_fail_over_and_preempt() {
    if !root() {
        return;
    }
    let net = Net::new("e");
    let dir = std::env::temp_dir().join(format!("lbd-vrrp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let a_cfg = config(&dir, "a", 150, "10.77.0.1", "10.77.0.2", "");
    let b_cfg = config(&dir, "b", 100, "10.77.0.2", "10.77.0.1", "");

    // Both start; the higher priority (A) ends up the only holder.
    let mut a = Node::start(&net, "a", &a_cfg);
    let mut b = Node::start(&net, "b", &b_cfg);
    net.wait("A master, B backup", |n| {
        n.holds_vip("a") && !n.holds_vip("b")
    });
    net.wait("client reaches the VIP", Net::ping_vip);

    // kill -9 A: B takes over (A's stale VIP stays on its interface).
    a.kill9();
    net.wait("B takes the VIP after A is killed", |n| n.holds_vip("b"));
    net.wait("client reaches the VIP on B", Net::ping_vip);

    // A comes back: removes its stale VIP, then preempts B.
    let mut a = Node::start(&net, "a", &a_cfg);
    net.wait("A preempts B", |n| n.holds_vip("a") && !n.holds_vip("b"));
    net.wait("client reaches the VIP on A again", Net::ping_vip);

    // Graceful stop of A: VIP gone from A when lbd exits, B holds it.
    a.terminate();
    assert!(!net.holds_vip("a"), "A kept the VIP after a graceful stop");
    net.wait("B takes the VIP after A stops", |n| n.holds_vip("b"));
    net.wait("client reaches the VIP on B", Net::ping_vip);
    b.terminate();
    assert!(!net.holds_vip("b"), "B kept the VIP after a graceful stop");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn nopreempt_keeps_the_current_master() {
    if !root() {
        return;
    }
    let net = Net::new("n");
    let dir = std::env::temp_dir().join(format!("lbd-vrrp-np-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let a_cfg = config(
        &dir,
        "a",
        150,
        "10.77.0.1",
        "10.77.0.2",
        "nopreempt = true\n",
    );
    let b_cfg = config(
        &dir,
        "b",
        100,
        "10.77.0.2",
        "10.77.0.1",
        "nopreempt = true\n",
    );
    // B alone becomes master; A, higher but nopreempt, stays backup.
    let _b = Node::start(&net, "b", &b_cfg);
    net.wait("B master alone", |n| n.holds_vip("b"));
    let mut a = Node::start(&net, "a", &a_cfg);
    // A has started when its control socket exists; then give it more than
    // one master-down interval (0.3 s + skew) of B's adverts.
    net.wait("A started", |_| dir.join("a.sock").exists());
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        assert!(!net.holds_vip("a"), "A preempted despite nopreempt");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(net.holds_vip("b"));
    a.terminate();
    let _ = std::fs::remove_dir_all(&dir);
}
