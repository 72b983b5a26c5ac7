//! `auth_type = "hmac"` on IPv6 instances (VRRP v3 over ff02::12 from the
//! link-local address) between two `lbd run` nodes in network namespaces
//! (see `vrrp_support`): election and kill -9 failover; a node with
//! another key is ignored; an instance without authentication says so at
//! start. Needs root; skipped (with a message) otherwise.

mod vrrp_support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use vrrp_support::{root, Net, Node, PATIENCE, VIP6};

const KEY: &str = "0123456789abcdef0123456789abcdef";
const OTHER_KEY: &str = "fedcba9876543210fedcba9876543210";
const NO_AUTH_WARNING: &str = "vrrp instance runs without authentication";

fn hmac(key: &str) -> String {
    format!("auth_type = \"hmac\"\nauth_key = \"{key}\"\n")
}

/// An IPv6 multicast instance `vi` (VRID 42, 100 ms) holding [`VIP6`].
fn config(dir: &Path, node: &str, prio: u8, auth: &str) -> PathBuf {
    let file = dir.join(format!("{node}.toml"));
    let text = format!(
        "[global]\ncontrol_socket = \"{d}/{node}.sock\"\nstate_file = \"{d}/{node}.json\"\n\
         [vrrp.vi]\ninterface = \"veth0\"\nvrid = 42\npriority = {prio}\n\
         advert_int = \"100ms\"\nvirtual_ips = [\"{VIP6}/64\"]\n{auth}",
        d = dir.display()
    );
    std::fs::write(&file, text).expect("write config");
    file
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lbd-vrrp6h-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// `node` holds the VIP for `period` without a break.
fn keeps_vip6(net: &Net, node: &str, period: Duration, why: &str) {
    let until = Instant::now() + period;
    while Instant::now() < until {
        assert!(net.holds(node, VIP6), "{node} lost the VIP: {why}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until the log file at `path` contains `needle`.
fn wait_for_log(path: &Path, needle: &str) -> String {
    let until = Instant::now() + PATIENCE;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.contains(needle) {
            return text;
        }
        assert!(
            Instant::now() < until,
            "{} never logged {needle:?}:\n{text}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Input: two hmac nodes, A (150) and B (100), then A killed.
/// Output: A master and B backup (B accepts A's tagged adverts), then B
/// master.
#[test]
fn hmac_v6_pair_elects_and_fails_over() {
    if !root() {
        return;
    }
    let net = Net::new("6h");
    let dir = temp_dir("pair");
    let log_b = dir.join("b.log");
    let mut a = Node::start(&net, "a", &config(&dir, "a", 150, &hmac(KEY)));
    let mut b = Node::start_logged(&net, "b", &config(&dir, "b", 100, &hmac(KEY)), &log_b);
    net.wait("A master, B backup over ff02::12 with hmac", |n| {
        n.holds("a", VIP6) && !n.holds("b", VIP6)
    });
    // B hears A: it stays backup (without the tag check passing, it would
    // be master too after 0.4 s).
    let until = Instant::now() + Duration::from_secs(1);
    while Instant::now() < until {
        assert!(!net.holds("b", VIP6), "B does not accept A's hmac adverts");
        std::thread::sleep(Duration::from_millis(50));
    }
    a.kill9();
    net.wait("B takes the VIP after A is killed", |n| n.holds("b", VIP6));
    b.terminate();
    let log = std::fs::read_to_string(&log_b).unwrap_or_default();
    assert!(
        !log.contains(NO_AUTH_WARNING),
        "an hmac instance warned that it is unauthenticated:\n{log}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Input: B (100, hmac) master alone, then A (150) with another key, then
/// A with the right key.
/// Output: B never yields to the wrong key's adverts; it does yield to
/// the right one.
#[test]
fn hmac_v6_node_with_another_key_is_ignored() {
    if !root() {
        return;
    }
    let net = Net::new("6w");
    let dir = temp_dir("wrong");
    let mut b = Node::start(&net, "b", &config(&dir, "b", 100, &hmac(KEY)));
    net.wait("B master alone", |n| n.holds("b", VIP6));
    let mut a = Node::start(&net, "a", &config(&dir, "a", 150, &hmac(OTHER_KEY)));
    net.wait("A (another key) master on its own", |n| n.holds("a", VIP6));
    keeps_vip6(
        &net,
        "b",
        Duration::from_secs(2),
        "it yielded to adverts with another key",
    );
    a.terminate();
    let mut a = Node::start(&net, "a", &config(&dir, "a", 150, &hmac(KEY)));
    net.wait("A with the right key preempts B", |n| {
        n.holds("a", VIP6) && !n.holds("b", VIP6)
    });
    a.terminate();
    b.terminate();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Input: an instance with virtual IPs and no auth_type.
/// Output: a warning at start naming the instance and the fix.
#[test]
fn unauthenticated_instance_warns_at_start() {
    if !root() {
        return;
    }
    let net = Net::new("6n");
    let dir = temp_dir("noauth");
    let log = dir.join("a.log");
    let mut a = Node::start_logged(&net, "a", &config(&dir, "a", 150, ""), &log);
    let text = wait_for_log(&log, NO_AUTH_WARNING);
    let line = text
        .lines()
        .find(|l| l.contains(NO_AUTH_WARNING))
        .unwrap_or_default();
    assert!(line.contains("WARN"), "{line}");
    assert!(
        line.contains("instance=\"vi\"") || line.contains("instance=vi"),
        "{line}"
    );
    assert!(line.contains("auth_key"), "{line}");
    a.terminate();
    let _ = std::fs::remove_dir_all(&dir);
}
