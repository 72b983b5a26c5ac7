//! VRRP v3 over IPv6 between two `lbd run` nodes in network namespaces
//! (see `vrrp_support`): multicast ff02::12 from the link-local address
//! and unicast peers; kill -9 moves the VIP and the client's neighbour
//! cache follows the unsolicited neighbour advertisements; an instance on
//! a missing interface waits in FAULT and comes up with the interface (and
//! again when the interface is re-created).
//! Needs root; skipped (with a message) otherwise.

mod vrrp_support;

use std::path::{Path, PathBuf};

use vrrp_support::{must, root, Net, Node, VIP, VIP6};

/// An lbd config with one v3 instance `vi` (VRID 42, 100 ms) on
/// `interface`; `body` adds the rest of `[vrrp.vi]` and any other table.
fn config(dir: &Path, node: &str, interface: &str, prio: u8, body: &str) -> PathBuf {
    let file = dir.join(format!("{node}.toml"));
    let text = format!(
        "[global]\ncontrol_socket = \"{d}/{node}.sock\"\nstate_file = \"{d}/{node}.json\"\n\
         [vrrp.vi]\ninterface = \"{interface}\"\nvrid = 42\npriority = {prio}\n\
         advert_int = \"100ms\"\n{body}",
        d = dir.display()
    );
    std::fs::write(&file, text).expect("write config");
    file
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lbd-vrrp6-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// A TCP server on [::]:8081 in a namespace that answers every connection
/// with its node's name; killed on drop.
struct Named(std::process::Child);

impl Named {
    fn start(net: &Net, node: &str) -> Self {
        let script = format!(
            "import socket\n\
             s=socket.socket(socket.AF_INET6)\n\
             s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
             s.bind(('::1', 8081))\n\
             s.listen(64)\n\
             while True:\n    c,_=s.accept()\n    c.sendall(b'{node}')\n    c.close()\n"
        );
        let child = std::process::Command::new("ip")
            .args(["netns", "exec", &net.ns(node), "python3", "-c", &script])
            .spawn()
            .expect("spawn server");
        Self(child)
    }
}

impl Drop for Named {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What the client reads from `[VIP6]:8080` (lbd's frontend), if anything.
fn fetch_through_vip(net: &Net) -> String {
    let script = format!(
        "import socket\n\
         c=socket.create_connection(('{VIP6}', 8080), 1)\n\
         c.settimeout(1)\n\
         print(c.recv(16).decode())\n"
    );
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", &net.ns("c"), "python3", "-c", &script])
        .output()
        .expect("run client");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn multicast_pair_elects_fails_over_and_announces() {
    if !root() {
        return;
    }
    let net = Net::new("6m");
    let dir = temp_dir("m");
    // The IPv4 VIP rides along unadvertised (Keepalived's
    // virtual_ipaddress_excluded); a frontend on the IPv6 VIP forwards to
    // a server on each node that says which node it is.
    let body = format!(
        "virtual_ips = [\"{VIP6}/64\", \"{VIP}/24\"]\n\
         [frontends.f]\nbind = [\"[{VIP6}]:8080\"]\ndefault_backend = \"b\"\n\
         [backends.b.servers.s]\naddress = \"[::1]:8081\"\n"
    );
    let a_cfg = config(&dir, "a", "veth0", 150, &body);
    let b_cfg = config(&dir, "b", "veth0", 100, &body);
    let _servers = (Named::start(&net, "a"), Named::start(&net, "b"));

    let mut a = Node::start(&net, "a", &a_cfg);
    let mut b = Node::start(&net, "b", &b_cfg);
    net.wait("A master, B backup over ff02::12", |n| {
        n.holds("a", VIP6) && !n.holds("b", VIP6)
    });
    assert!(
        net.holds("a", VIP),
        "the IPv4 VIP did not come with the IPv6 one"
    );
    net.wait("client pings the IPv6 VIP", |n| n.ping(VIP6));
    net.wait("client pings the IPv4 VIP", |n| n.ping(VIP));
    net.wait("client reaches A through the VIP's frontend", |n| {
        fetch_through_vip(n) == "a"
    });
    let (mac_a, mac_b) = (net.mac("a"), net.mac("b"));
    assert_ne!(mac_a, mac_b);
    assert_eq!(net.client_neighbour(VIP6), Some(mac_a.clone()));

    // kill -9 A (its VIPs stay on its interface, as Keepalived's do): B
    // takes over and its unsolicited NA moves the client's cache entry to
    // B's MAC before the client sends anything.
    a.kill9();
    net.wait("B takes the IPv6 VIP after A is killed", |n| {
        n.holds("b", VIP6)
    });
    net.wait("client's neighbour cache points at B", |n| {
        n.client_neighbour(VIP6).as_deref() == Some(mac_b.as_str())
    });
    net.wait("client pings the IPv6 VIP on B", |n| n.ping(VIP6));
    net.wait("client reaches B through the VIP's frontend", |n| {
        fetch_through_vip(n) == "b"
    });

    // A comes back: removes its stale VIPs, then preempts B.
    let mut a = Node::start(&net, "a", &a_cfg);
    net.wait("A preempts B", |n| {
        n.holds("a", VIP6) && !n.holds("b", VIP6)
    });
    net.wait("client's neighbour cache points at A again", |n| {
        n.client_neighbour(VIP6).as_deref() == Some(mac_a.as_str())
    });
    a.terminate();
    assert!(
        !net.holds("a", VIP6),
        "A kept the VIP after a graceful stop"
    );
    net.wait("B takes the VIP after A stops", |n| n.holds("b", VIP6));
    b.terminate();
    assert!(
        !net.holds("b", VIP6),
        "B kept the VIP after a graceful stop"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn unicast_pair_fails_over() {
    if !root() {
        return;
    }
    let net = Net::new("6u");
    let dir = temp_dir("u");
    let body = |me: &str, peer: &str| {
        format!(
            "unicast_src_ip = \"{me}\"\nunicast_peers = [\"{peer}\"]\n\
             virtual_ips = [\"{VIP6}/64\"]\n"
        )
    };
    let a_cfg = config(&dir, "a", "veth0", 150, &body("fd77::1", "fd77::2"));
    let b_cfg = config(&dir, "b", "veth0", 100, &body("fd77::2", "fd77::1"));
    let mut a = Node::start(&net, "a", &a_cfg);
    let mut b = Node::start(&net, "b", &b_cfg);
    net.wait("A master, B backup over unicast", |n| {
        n.holds("a", VIP6) && !n.holds("b", VIP6)
    });
    net.wait("client pings the VIP on A", |n| n.ping(VIP6));
    a.kill9();
    net.wait("B takes the VIP after A is killed", |n| n.holds("b", VIP6));
    net.wait("client pings the VIP on B", |n| n.ping(VIP6));
    b.terminate();
    assert!(
        !net.holds("b", VIP6),
        "B kept the VIP after a graceful stop"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Whether `node`'s interface `dev` holds `addr`.
fn holds_on(net: &Net, node: &str, dev: &str, addr: &str) -> bool {
    let out = std::process::Command::new("ip")
        .args(["-n", &net.ns(node), "-o", "addr", "show", "dev", dev])
        .output()
        .expect("ip addr");
    String::from_utf8_lossy(&out.stdout).contains(&format!(" {addr}/"))
}

#[test]
fn missing_interface_waits_in_fault_then_comes_up() {
    if !root() {
        return;
    }
    let net = Net::new("6f");
    let dir = temp_dir("f");
    let log = dir.join("a.log");
    let a_cfg = config(
        &dir,
        "a",
        "veth1",
        100,
        &format!("virtual_ips = [\"{VIP6}/64\"]\n"),
    );
    let mut a = Node::start_logged(&net, "a", &a_cfg, &log);
    let logged = |what: &str| std::fs::read_to_string(&log).is_ok_and(|l| l.contains(what));
    net.wait("lbd running with the instance in FAULT", |_| {
        dir.join("a.sock").exists() && logged("starts in FAULT") && logged("to=Fault")
    });
    assert!(logged("veth1"), "the log does not name the interface");
    assert!(!logged("to=Master"));

    // The interface appears (on the bridge): A attaches once its
    // link-local address is usable and, alone, becomes master.
    let sw = net.ns("s");
    let ns = net.ns("a");
    must(&[
        "ip", "-n", &sw, "link", "add", "pa1", "type", "veth", "peer", "name", "veth1", "netns",
        &ns,
    ]);
    must(&["ip", "-n", &sw, "link", "set", "pa1", "master", "br0", "up"]);
    must(&["ip", "-n", &ns, "link", "set", "veth1", "up"]);
    net.wait("A master on the new interface", |n| {
        holds_on(n, "a", "veth1", VIP6) && logged("to=Master")
    });
    net.wait("client pings the VIP", |n| n.ping(VIP6));

    // The interface is deleted and created again (a new index): A reopens
    // its sockets on the new one and is master again.
    must(&["ip", "-n", &sw, "link", "del", "pa1"]);
    must(&[
        "ip", "-n", &sw, "link", "add", "pa1", "type", "veth", "peer", "name", "veth1", "netns",
        &ns,
    ]);
    must(&["ip", "-n", &sw, "link", "set", "pa1", "master", "br0", "up"]);
    must(&["ip", "-n", &ns, "link", "set", "veth1", "up"]);
    net.wait("A master again on the re-created interface", |n| {
        logged("interface re-created") && holds_on(n, "a", "veth1", VIP6)
    });
    net.wait("client pings the VIP again", |n| n.ping(VIP6));
    a.terminate();
    assert!(!holds_on(&net, "a", "veth1", VIP6));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Admin down on A's own interface removes its IPv6 addresses, the
/// link-local source included; after up (and duplicate address detection)
/// A is a backup again and preempts B, sending from the same link-local
/// address.
#[test]
fn interface_down_and_up_moves_the_vip_and_back() {
    if !root() {
        return;
    }
    let net = Net::new("6d");
    let dir = temp_dir("d");
    let body = format!("virtual_ips = [\"{VIP6}/64\"]\n");
    let a_cfg = config(&dir, "a", "veth0", 150, &body);
    let b_cfg = config(&dir, "b", "veth0", 100, &body);
    let mut a = Node::start(&net, "a", &a_cfg);
    let mut b = Node::start(&net, "b", &b_cfg);
    net.wait("A master", |n| n.holds("a", VIP6) && !n.holds("b", VIP6));

    let ns = net.ns("a");
    must(&["ip", "-n", &ns, "link", "set", "veth0", "down"]);
    net.wait("B takes over while A is down", |n| {
        n.holds("b", VIP6) && !n.holds("a", VIP6)
    });
    must(&["ip", "-n", &ns, "link", "set", "veth0", "up"]);
    must(&[
        "ip",
        "-n",
        &ns,
        "addr",
        "replace",
        "fd77::1/64",
        "dev",
        "veth0",
        "nodad",
    ]);
    net.wait("A preempts once its interface is back", |n| {
        n.holds("a", VIP6) && !n.holds("b", VIP6)
    });
    net.wait("client pings the VIP on A", |n| n.ping(VIP6));
    a.terminate();
    b.terminate();
    let _ = std::fs::remove_dir_all(&dir);
}
