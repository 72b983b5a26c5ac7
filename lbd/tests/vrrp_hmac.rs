//! Two `lbd run` nodes with `auth_type = "hmac"` in network namespaces
//! (see `vrrp_support`): election and kill -9 failover; adverts of the
//! dead master captured and replayed on the segment do not keep the
//! backup passive; a node with another key is ignored. Needs root and
//! python3 (raw sockets for capture and replay); skipped otherwise.

mod vrrp_support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use vrrp_support::{config, root, Net, Node};

const KEY: &str = "0123456789abcdef0123456789abcdef";
const OTHER_KEY: &str = "fedcba9876543210fedcba9876543210";

fn hmac(key: &str) -> String {
    format!("auth_type = \"hmac\"\nauth_key = \"{key}\"\n")
}

/// Prints, as hex lines, the next `argv[1]` VRRP datagrams (IP header
/// included) from source `argv[2]`; gives up after 10 s of silence.
const CAPTURE: &str = r#"
import socket, sys
n = int(sys.argv[1]); src = sys.argv[2]
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 112)
s.settimeout(10)
got = 0
while got < n:
    d = s.recv(65535)
    if socket.inet_ntoa(d[12:16]) == src:
        print(d.hex(), flush=True); got += 1
"#;

/// Sends the datagrams of file `argv[1]` as they are (IP header included,
/// so with the captured source address) to `argv[2]`, one every 100 ms,
/// round and round, for `argv[3]` seconds.
const REPLAY: &str = r#"
import socket, sys, time
ds = [bytes.fromhex(l) for l in open(sys.argv[1]).read().split()]
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
end = time.time() + float(sys.argv[3])
while time.time() < end:
    for d in ds:
        s.sendto(d, (sys.argv[2], 0)); time.sleep(0.1)
"#;

/// `count` VRRP datagrams from `src` seen in `node`'s namespace, as hex
/// lines; `None` if they did not come within 10 s.
fn capture(net: &Net, node: &str, count: usize, src: &str) -> Option<String> {
    let out = Command::new("ip")
        .args(["netns", "exec", &net.ns(node), "python3", "-c", CAPTURE])
        .arg(count.to_string())
        .arg(src)
        .stderr(Stdio::null())
        .output()
        .expect("run capture");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    (out.status.success() && text.lines().count() == count).then_some(text)
}

/// The replayer; killed on drop.
struct Replay(Child);

impl Replay {
    fn start(net: &Net, node: &str, file: &Path, dst: &str) -> Self {
        let child = Command::new("ip")
            .args(["netns", "exec", &net.ns(node), "python3", "-c", REPLAY])
            .arg(file)
            .arg(dst)
            .arg("120")
            .spawn()
            .expect("spawn replay");
        Self(child)
    }
}

impl Drop for Replay {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn python_present() -> bool {
    let found = vrrp_support::sh(&["python3", "-c", "pass"]);
    if !found {
        eprintln!("skipped: python3 is not installed");
    }
    found
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lbd-vrrp-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// `node` holds the VIP for `period` without a break.
fn keeps_vip(net: &Net, node: &str, period: Duration, why: &str) {
    let until = Instant::now() + period;
    while Instant::now() < until {
        assert!(net.holds_vip(node), "{node} lost the VIP: {why}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn hmac_pair_fails_over_and_replayed_adverts_do_not_hold_the_backup() {
    if !root() || !python_present() {
        return;
    }
    let net = Net::new("h");
    let dir = temp_dir("hm");
    let a_cfg = config(&dir, "a", 150, "10.77.0.1", "10.77.0.2", &hmac(KEY));
    let b_cfg = config(&dir, "b", 100, "10.77.0.2", "10.77.0.1", &hmac(KEY));
    let mut a = Node::start(&net, "a", &a_cfg);
    let mut b = Node::start(&net, "b", &b_cfg);
    net.wait("A master, B backup", |n| {
        n.holds_vip("a") && !n.holds_vip("b")
    });
    net.wait("client reaches the VIP", Net::ping_vip);

    // Three seconds of A's adverts, as B receives them.
    let captured = capture(&net, "b", 30, "10.77.0.1").expect("A's adverts reach B");
    let file = dir.join("captured.hex");
    std::fs::write(&file, captured).expect("write capture");
    // The client's namespace replays them to B, forged as from A, all
    // along; A dies.
    let _replay = Replay::start(&net, "c", &file, "10.77.0.2");
    a.kill9();
    // B takes over all the same: every replayed advert is numbered at or
    // below the last one B accepted from A.
    net.wait("B takes the VIP despite the replayed adverts", |n| {
        n.holds_vip("b")
    });
    // The replays do reach B (A is dead: whatever comes from 10.77.0.1
    // is a replay), and B stays master through them.
    assert!(
        capture(&net, "b", 10, "10.77.0.1").is_some(),
        "the replayed adverts never reached B: the test proves nothing"
    );
    keeps_vip(&net, "b", Duration::from_secs(2), "a replayed advert");
    net.wait("client reaches the VIP on B", Net::ping_vip);

    // A comes back (new counter from its clock): B accepts it, A preempts.
    let mut a = Node::start(&net, "a", &a_cfg);
    net.wait("A preempts B after its restart", |n| {
        n.holds_vip("a") && !n.holds_vip("b")
    });
    a.terminate();
    b.terminate();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn hmac_node_with_another_key_is_ignored() {
    if !root() {
        return;
    }
    let net = Net::new("w");
    let dir = temp_dir("hw");
    let b_cfg = config(&dir, "b", 100, "10.77.0.2", "10.77.0.1", &hmac(KEY));
    let wrong = config(&dir, "a", 150, "10.77.0.1", "10.77.0.2", &hmac(OTHER_KEY));
    let mut b = Node::start(&net, "b", &b_cfg);
    net.wait("B master alone", |n| n.holds_vip("b"));

    // A, higher but with another key: neither hears the other, both are
    // master. What matters: B never yields to A's unauthenticated
    // priority 150.
    let mut a = Node::start(&net, "a", &wrong);
    net.wait("A (another key) master on its own", |n| n.holds_vip("a"));
    keeps_vip(
        &net,
        "b",
        Duration::from_secs(2),
        "it yielded to adverts with another key",
    );
    a.terminate();

    // The same A with the right key: B accepts its adverts and yields.
    let right = config(&dir, "a", 150, "10.77.0.1", "10.77.0.2", &hmac(KEY));
    let mut a = Node::start(&net, "a", &right);
    net.wait("A with the right key preempts B", |n| {
        n.holds_vip("a") && !n.holds_vip("b")
    });
    a.terminate();
    b.terminate();
    let _ = std::fs::remove_dir_all(&dir);
}

/// hmac over multicast (224.0.0.18, the group in the tag): election and
/// kill -9 failover.
#[test]
fn hmac_over_multicast_elects_and_fails_over() {
    if !root() {
        return;
    }
    let net = Net::new("hc");
    let dir = temp_dir("hc");
    let multicast = |node: &str, prio: u8| {
        let file = dir.join(format!("{node}.toml"));
        let text = format!(
            "[global]\ncontrol_socket = \"{d}/{node}.sock\"\nstate_file = \"{d}/{node}.json\"\n\
             [vrrp.vi]\ninterface = \"veth0\"\nvrid = 7\npriority = {prio}\n\
             advert_int = \"100ms\"\nvirtual_ips = [\"{vip}/24\"]\n{auth}",
            d = dir.display(),
            vip = vrrp_support::VIP,
            auth = hmac(KEY),
        );
        std::fs::write(&file, text).expect("write config");
        file
    };
    let mut a = Node::start(&net, "a", &multicast("a", 150));
    let mut b = Node::start(&net, "b", &multicast("b", 100));
    net.wait("A master, B backup over multicast", |n| {
        n.holds_vip("a") && !n.holds_vip("b")
    });
    // B hears A: it stays backup (without the tag check passing, it would
    // be master too after 0.4 s).
    let until = Instant::now() + Duration::from_secs(1);
    while Instant::now() < until {
        assert!(
            !net.holds_vip("b"),
            "B does not accept A's multicast adverts"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    a.kill9();
    net.wait("B takes the VIP after A is killed", |n| n.holds_vip("b"));
    b.terminate();
    let _ = std::fs::remove_dir_all(&dir);
}
