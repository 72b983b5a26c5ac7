//! Interop with a real Keepalived (Debian's package): lbd in v2 with PASS
//! or AH auth and unicast peers forms a pair with it, both ways round, and
//! the VIP moves both ways. Needs root and `keepalived` on PATH
//! (`apt-get install -y keepalived`); skipped with a message otherwise.

mod vrrp_support;

use std::path::{Path, PathBuf};

use vrrp_support::keepalived::{keepalived_present, Keepalived};
use vrrp_support::{root, Net, Node, VIP};

const PASS: &str = "secret";

/// Keepalived's `auth_type` and lbd's.
#[derive(Clone, Copy)]
enum Auth {
    Pass,
    Ah,
}

impl Auth {
    fn keepalived(self) -> &'static str {
        match self {
            Auth::Pass => "PASS",
            Auth::Ah => "AH",
        }
    }
    /// lbd's line: `auth_pass` alone means PASS (as existing configs say).
    fn lbd(self) -> &'static str {
        match self {
            Auth::Pass => "",
            Auth::Ah => "auth_type = \"ah\"\n",
        }
    }
}

/// lbd's side: v2, 1 s, PASS or AH, unicast.
/// `peers`: (own address, peer) for unicast; `None` for multicast.
fn lbd_config(dir: &Path, prio: u8, peers: Option<(&str, &str)>, auth: Auth) -> PathBuf {
    let unicast = peers.map_or(String::new(), |(me, peer)| {
        format!("unicast_src_ip = \"{me}\"\nunicast_peers = [\"{peer}\"]\n")
    });
    let file = dir.join("lbd.toml");
    let text = format!(
        "[global]\ncontrol_socket = \"{d}/lbd.sock\"\nstate_file = \"{d}/lbd.json\"\n\
         [vrrp.vi]\ninterface = \"veth0\"\nvrid = 42\npriority = {prio}\nversion = 2\n\
         advert_int = \"1s\"\n{a}auth_pass = \"{PASS}\"\n\
         {unicast}virtual_ips = [\"{VIP}/24\"]\n",
        d = dir.display(),
        a = auth.lbd(),
    );
    std::fs::write(&file, text).expect("write lbd config");
    file
}

/// Keepalived's side of a pair: v2, 1 s, PASS or AH.
/// `peers`: (own address, peer) for unicast; `None` for multicast.
fn start_keepalived(
    net: &Net,
    node: &str,
    dir: &Path,
    prio: u8,
    peers: Option<(&str, &str)>,
    auth: Auth,
) -> Keepalived {
    let unicast = peers.map_or(String::new(), |(me, peer)| {
        format!("unicast_src_ip {me}\n  unicast_peer {{\n    {peer}\n  }}\n  ")
    });
    let auth_type = auth.keepalived();
    let text = format!(
        "global_defs {{\n  router_id ka\n  enable_script_security\n}}\n\
         vrrp_instance VI {{\n  state BACKUP\n  interface veth0\n  virtual_router_id 42\n  \
         priority {prio}\n  advert_int 1\n  {unicast}\
         authentication {{\n    auth_type {auth_type}\n    auth_pass {PASS}\n  }}\n  \
         virtual_ipaddress {{\n    {VIP}/24\n  }}\n}}\n"
    );
    Keepalived::start_with(net, node, dir, &text)
}

fn dirs(tag: &str) -> (PathBuf, PathBuf) {
    let base = std::env::temp_dir().join(format!("lbd-ka-{tag}-{}", std::process::id()));
    let (a, b) = (base.join("a"), base.join("b"));
    std::fs::create_dir_all(&a).expect("dir a");
    std::fs::create_dir_all(&b).expect("dir b");
    (a, b)
}

#[test]
fn lbd_master_keepalived_backup() {
    lbd_master_keepalived_backup_with(Auth::Pass, "k");
}

#[test]
fn ah_lbd_master_keepalived_backup() {
    lbd_master_keepalived_backup_with(Auth::Ah, "ak");
}

fn lbd_master_keepalived_backup_with(auth: Auth, tag: &str) {
    if !root() || !keepalived_present() {
        return;
    }
    let net = Net::new(tag);
    let (da, db) = dirs(&format!("lm{tag}"));
    let lbd_cfg = lbd_config(&da, 150, Some(("10.77.0.1", "10.77.0.2")), auth);
    let mut ka = start_keepalived(&net, "b", &db, 100, Some(("10.77.0.2", "10.77.0.1")), auth);
    let mut lbd = Node::start(&net, "a", &lbd_cfg);
    net.wait("lbd master, Keepalived backup", |n| {
        n.holds_vip("a") && !n.holds_vip("b")
    });
    net.wait("client reaches the VIP on lbd", Net::ping_vip);

    // lbd killed: Keepalived takes over after its master-down interval.
    lbd.kill9();
    net.wait("Keepalived takes the VIP", |n| n.holds_vip("b"));
    net.wait("client reaches the VIP on Keepalived", Net::ping_vip);

    // lbd back: stale VIP removed, then it preempts Keepalived.
    let mut lbd = Node::start(&net, "a", &lbd_cfg);
    net.wait("lbd preempts Keepalived", |n| {
        n.holds_vip("a") && !n.holds_vip("b")
    });

    // Graceful stop of lbd: priority 0, Keepalived takes over.
    lbd.terminate();
    assert!(
        !net.holds_vip("a"),
        "lbd kept the VIP after a graceful stop"
    );
    net.wait("Keepalived takes the VIP after lbd stops", |n| {
        n.holds_vip("b")
    });
    net.wait("client reaches the VIP on Keepalived", Net::ping_vip);
    ka.terminate();
}

#[test]
fn keepalived_master_lbd_backup() {
    keepalived_master_lbd_backup_with(Auth::Pass, "j");
}

#[test]
fn ah_keepalived_master_lbd_backup() {
    keepalived_master_lbd_backup_with(Auth::Ah, "aj");
}

fn keepalived_master_lbd_backup_with(auth: Auth, tag: &str) {
    if !root() || !keepalived_present() {
        return;
    }
    let net = Net::new(tag);
    let (da, db) = dirs(&format!("km{tag}"));
    let lbd_cfg = lbd_config(&da, 100, Some(("10.77.0.1", "10.77.0.2")), auth);
    let mut ka = start_keepalived(&net, "b", &db, 150, Some(("10.77.0.2", "10.77.0.1")), auth);
    net.wait("Keepalived master alone", |n| n.holds_vip("b"));
    let mut lbd = Node::start(&net, "a", &lbd_cfg);
    net.wait("lbd started", |_| da.join("lbd.sock").exists());
    assert!(
        !net.holds_vip("a"),
        "lbd took the VIP from a higher Keepalived"
    );

    // Keepalived stops gracefully (priority 0): lbd takes over.
    ka.terminate();
    net.wait("lbd takes the VIP", |n| {
        n.holds_vip("a") && !n.holds_vip("b")
    });
    net.wait("client reaches the VIP on lbd", Net::ping_vip);

    // Keepalived returns and preempts lbd.
    let mut ka = start_keepalived(&net, "b", &db, 150, Some(("10.77.0.2", "10.77.0.1")), auth);
    net.wait("Keepalived preempts lbd", |n| {
        n.holds_vip("b") && !n.holds_vip("a")
    });

    // Keepalived killed with -9 (its VIP stays on its interface): lbd
    // takes over all the same.
    ka.kill9();
    net.wait("lbd takes the VIP after Keepalived is killed", |n| {
        n.holds_vip("a")
    });
    lbd.terminate();
}

/// AH over multicast (224.0.0.18): Keepalived covers the TTL with the ICV
/// then, unlike unicast. lbd master, Keepalived backup, lbd killed.
#[test]
fn ah_multicast_lbd_master_keepalived_backup() {
    if !root() || !keepalived_present() {
        return;
    }
    let net = Net::new("am");
    let (da, db) = dirs("am");
    let lbd_cfg = lbd_config(&da, 150, None, Auth::Ah);
    let mut ka = start_keepalived(&net, "b", &db, 100, None, Auth::Ah);
    let mut lbd = Node::start(&net, "a", &lbd_cfg);
    net.wait("lbd master, Keepalived backup (multicast AH)", |n| {
        n.holds_vip("a") && !n.holds_vip("b")
    });
    lbd.kill9();
    net.wait("Keepalived takes the VIP", |n| n.holds_vip("b"));
    let mut lbd = Node::start(&net, "a", &lbd_cfg);
    net.wait("lbd preempts Keepalived (multicast AH)", |n| {
        n.holds_vip("a") && !n.holds_vip("b")
    });
    lbd.terminate();
    ka.terminate();
}
