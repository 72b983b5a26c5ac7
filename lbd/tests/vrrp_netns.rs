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

/// A TCP listener on 127.0.0.1:8081 inside a namespace (the tracked
/// backend's only server); killed on drop.
struct Listener(std::process::Child);

impl Listener {
    fn start(net: &Net, node: &str) -> Self {
        let script = "import socket,time\n\
                      s=socket.socket()\n\
                      s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
                      s.bind(('127.0.0.1', 8081))\n\
                      s.listen(64)\n\
                      time.sleep(600)\n";
        let child = std::process::Command::new("ip")
            .args(["netns", "exec", &net.ns(node), "python3", "-c", script])
            .spawn()
            .expect("spawn listener");
        Self(child)
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn backend_failure_on_master_moves_the_vip() {
    if !root() {
        return;
    }
    let net = Net::new("t");
    let dir = std::env::temp_dir().join(format!("lbd-vrrp-tr-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    // A (150) tracks backend `web` with weight 100: 50 when it is down.
    let track = "[vrrp.vi.track_backend.web]\nweight = 100\n\
                 [backends.web.check]\ntype = \"tcp\"\ninter = \"200ms\"\nrise = 1\nfall = 1\n\
                 [backends.web.servers.s1]\naddress = \"127.0.0.1:8081\"\n";
    let a_cfg = config(&dir, "a", 150, "10.77.0.1", "10.77.0.2", track);
    let b_cfg = config(&dir, "b", 100, "10.77.0.2", "10.77.0.1", "");
    let listener = Listener::start(&net, "a");
    net.wait("backend listening", |n| {
        vrrp_support::sh(&[
            "ip",
            "netns",
            "exec",
            &n.ns("a"),
            "python3",
            "-c",
            "import socket; socket.create_connection(('127.0.0.1', 8081), 1)",
        ])
    });
    let mut a = Node::start(&net, "a", &a_cfg);
    let mut b = Node::start(&net, "b", &b_cfg);
    net.wait("A master with its backend up", |n| {
        n.holds_vip("a") && !n.holds_vip("b")
    });

    // The backend dies: A drops to 50, B (100) takes over.
    drop(listener);
    net.wait("B takes over when A's backend fails", |n| {
        n.holds_vip("b") && !n.holds_vip("a")
    });

    // The backend returns: A is back at 150 and preempts.
    let _listener = Listener::start(&net, "a");
    net.wait("A preempts once its backend is back", |n| {
        n.holds_vip("a") && !n.holds_vip("b")
    });
    a.terminate();
    b.terminate();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn link_down_moves_the_vip_and_back() {
    if !root() {
        return;
    }
    let net = Net::new("l");
    let dir = std::env::temp_dir().join(format!("lbd-vrrp-ld-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    // The second GARP burst is pushed out of the test's reach.
    let late = "garp_delay = \"600s\"\n";
    let a_cfg = config(&dir, "a", 150, "10.77.0.1", "10.77.0.2", late);
    let b_cfg = config(&dir, "b", 100, "10.77.0.2", "10.77.0.1", late);
    let mut a = Node::start(&net, "a", &a_cfg);
    let mut b = Node::start(&net, "b", &b_cfg);
    net.wait("A master", |n| n.holds_vip("a") && !n.holds_vip("b"));

    // A's cable pulled (its switch port down): A loses carrier, goes to
    // Fault and drops the VIP; B hears nothing and takes over.
    vrrp_support::must(&["ip", "-n", &net.ns("s"), "link", "set", "pa", "down"]);
    net.wait("A drops the VIP in Fault", |n| !n.holds_vip("a"));
    net.wait("B takes over while A is cut off", |n| n.holds_vip("b"));
    net.wait("client reaches the VIP on B", Net::ping_vip);

    net.wait("client's ARP entry points at B", |n| {
        client_sees_mac_of(n, "b")
    });

    // Cable back: A leaves Fault as a backup, preempts B, and its
    // gratuitous ARPs move the client's entry (which no traffic refreshes
    // here) back to A's MAC.
    vrrp_support::must(&["ip", "-n", &net.ns("s"), "link", "set", "pa", "up"]);
    net.wait("A preempts when its link is back", |n| {
        n.holds_vip("a") && !n.holds_vip("b")
    });
    net.wait("client's ARP entry back on A without traffic", |n| {
        client_sees_mac_of(n, "a")
    });
    net.wait("client reaches the VIP on A", Net::ping_vip);
    a.terminate();
    b.terminate();
    let _ = std::fs::remove_dir_all(&dir);
}

/// The client's ARP entry for the VIP is node's MAC.
fn client_sees_mac_of(net: &Net, node: &str) -> bool {
    let out = |args: &[&str]| {
        std::process::Command::new("ip")
            .args(args)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
            .unwrap_or_default()
    };
    let link = out(&["-n", &net.ns(node), "-o", "link", "show", "dev", "veth0"]);
    let mac = link
        .split_whitespace()
        .skip_while(|w| *w != "link/ether")
        .nth(1)
        .unwrap_or("none")
        .to_string();
    let neigh = out(&["-n", &net.ns("c"), "neigh", "show", vrrp_support::VIP]);
    neigh.contains(&mac)
}

#[test]
fn multicast_v3_election_with_events_on_the_control_socket() {
    use std::io::{BufRead, BufReader};

    if !root() {
        return;
    }
    let net = Net::new("m");
    let dir = std::env::temp_dir().join(format!("lbd-vrrp-mc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    // No unicast peers: adverts go to 224.0.0.18 from the interface address.
    let multicast = |node: &str, prio: u8| {
        let file = dir.join(format!("{node}.toml"));
        let text = format!(
            "[global]\ncontrol_socket = \"{d}/{node}.sock\"\nstate_file = \"{d}/{node}.json\"\n\
             [vrrp.vi]\ninterface = \"veth0\"\nvrid = 7\npriority = {prio}\n\
             advert_int = \"100ms\"\nvirtual_ips = [\"{vip}/24\"]\n",
            d = dir.display(),
            vip = vrrp_support::VIP
        );
        std::fs::write(&file, text).expect("write config");
        file
    };
    let mut b = Node::start(&net, "b", &multicast("b", 100));
    net.wait("B master alone", |n| n.holds_vip("b"));
    net.wait("B's control socket", |_| dir.join("b.sock").exists());
    let mut events = std::process::Command::new(env!("CARGO_BIN_EXE_lbd"))
        .args(["ctl", "--socket"])
        .arg(dir.join("b.sock"))
        .arg("events")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("lbd ctl events");
    let stdout = events.stdout.take().expect("stdout");
    let mut a = Node::start(&net, "a", &multicast("a", 150));
    net.wait("A preempts B over multicast", |n| {
        n.holds_vip("a") && !n.holds_vip("b")
    });
    // B's event stream shows it leaving Master for A.
    let line = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find(|l| l.contains("\"vrrp\""))
        .expect("a vrrp event");
    assert!(
        line.contains("\"from\":\"Master\"") && line.contains("\"to\":\"Backup\""),
        "{line}"
    );
    assert!(line.contains("10.77.0.1"), "{line}");
    let _ = events.kill();
    let _ = events.wait();
    a.terminate();
    b.terminate();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn split_brain_heals_with_gratuitous_arps() {
    if !root() {
        return;
    }
    let net = Net::new("b");
    let dir = std::env::temp_dir().join(format!("lbd-vrrp-sb-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    // The second GARP burst is pushed out of the test's reach, so only the
    // split-brain GARPs can move the client's ARP entry back to A.
    let late = "garp_delay = \"600s\"\n";
    let a_cfg = config(&dir, "a", 150, "10.77.0.1", "10.77.0.2", late);
    let b_cfg = config(&dir, "b", 100, "10.77.0.2", "10.77.0.1", late);
    let b_ns = net.ns("b");
    // B hears no adverts (nftables drops VRRP on its input): both masters.
    vrrp_support::must(&[
        "ip", "netns", "exec", &b_ns, "nft", "add", "table", "inet", "sb",
    ]);
    vrrp_support::must(&[
        "ip",
        "netns",
        "exec",
        &b_ns,
        "nft",
        "add",
        "chain",
        "inet",
        "sb",
        "in",
        "{ type filter hook input priority 0 ; }",
    ]);
    vrrp_support::must(&[
        "ip", "netns", "exec", &b_ns, "nft", "add", "rule", "inet", "sb", "in", "ip", "protocol",
        "112", "drop",
    ]);
    let mut a = Node::start(&net, "a", &a_cfg);
    net.wait("A master", |n| n.holds_vip("a"));
    // The client learns A's MAC (GARPs only update existing entries).
    net.wait("client reaches the VIP on A", Net::ping_vip);
    let mut b = Node::start(&net, "b", &b_cfg);
    net.wait("B master too (split brain)", |n| n.holds_vip("b"));
    // B's GARPs (when it became master) took the client's entry. A answers
    // B's adverts with its own GARPs, at most once a second: the entry
    // moves back to A even before the split brain heals.
    net.wait("client's entry back on A", |n| client_sees_mac_of(n, "a"));

    // Heal: B hears A, yields; A is the only holder.
    vrrp_support::must(&[
        "ip", "netns", "exec", &b_ns, "nft", "delete", "table", "inet", "sb",
    ]);
    net.wait("B yields when the split brain heals", |n| {
        n.holds_vip("a") && !n.holds_vip("b")
    });
    net.wait("client reaches the VIP on A", Net::ping_vip);
    a.terminate();
    b.terminate();
    let _ = std::fs::remove_dir_all(&dir);
}

/// The stats page's `/metrics` of node `node`, fetched inside its namespace.
fn metrics_of(net: &Net, node: &str) -> String {
    let out = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &net.ns(node),
            "curl",
            "-s",
            "--max-time",
            "2",
        ])
        .arg("http://127.0.0.1:8404/metrics")
        .output()
        .expect("run curl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The value of the sample line that starts with `series` (name and labels).
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
}

#[test]
fn metrics_name_the_vrrp_state_and_count_transitions() {
    if !root() {
        return;
    }
    // Each test of this binary needs its own tag: the namespaces are
    // named by tag and process id.
    let net = Net::new("me");
    let dir = std::env::temp_dir().join(format!("lbd-vrrp-me-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let stats = "[stats]\nbind = \"127.0.0.1:8404\"\n";
    let a_cfg = config(&dir, "a", 150, "10.77.0.1", "10.77.0.2", stats);
    let b_cfg = config(&dir, "b", 100, "10.77.0.2", "10.77.0.1", stats);
    let mut a = Node::start(&net, "a", &a_cfg);
    let _b = Node::start(&net, "b", &b_cfg);
    net.wait("A master, B backup", |n| {
        n.holds_vip("a") && !n.holds_vip("b")
    });

    let master = "lbd_vrrp_state{instance=\"vi\",state=\"MASTER\"}";
    let backup = "lbd_vrrp_state{instance=\"vi\",state=\"BACKUP\"}";
    net.wait("A's metrics say MASTER, B's BACKUP", |n| {
        sample(&metrics_of(n, "a"), master) == Some(1.0)
            && sample(&metrics_of(n, "b"), backup) == Some(1.0)
    });
    let b = metrics_of(&net, "b");
    assert_eq!(sample(&b, master), Some(0.0), "{b}");
    assert_eq!(
        sample(&b, "lbd_vrrp_priority{instance=\"vi\"}"),
        Some(100.0),
        "{b}"
    );
    assert!(b.contains("lbd_node_info{hostname=\""), "{b}");
    let transitions = "lbd_vrrp_transitions_total{instance=\"vi\"}";
    let before = sample(&b, transitions).expect("B counts transitions");

    a.kill9();
    net.wait("B's metrics say MASTER after A is killed", |n| {
        sample(&metrics_of(n, "b"), master) == Some(1.0)
    });
    let b = metrics_of(&net, "b");
    assert_eq!(sample(&b, transitions), Some(before + 1.0), "{b}");
    let _ = std::fs::remove_dir_all(&dir);
}
