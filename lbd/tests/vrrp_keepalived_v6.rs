//! Interop with a real Keepalived (Debian's package) over IPv6: VRRP v3,
//! multicast ff02::12 from the link-local addresses, one IPv6 VIP. lbd
//! master / Keepalived backup, kill -9 of lbd moves the VIP to Keepalived,
//! lbd comes back and preempts it (Keepalived accepts lbd's adverts), then
//! a higher-priority Keepalived preempts lbd (lbd accepts Keepalived's). Needs
//! root and `keepalived` on PATH; skipped with a message otherwise.

mod vrrp_support;

use std::path::{Path, PathBuf};

use vrrp_support::keepalived::{keepalived_present, Keepalived};
use vrrp_support::{root, Net, Node, VIP6};

/// lbd's side: v3, 1 s, multicast, the same VIP list as Keepalived's (the
/// advert carries it and both sides check the count).
fn lbd_config(dir: &Path, prio: u8) -> PathBuf {
    let file = dir.join("lbd.toml");
    let text = format!(
        "[global]\ncontrol_socket = \"{d}/lbd.sock\"\nstate_file = \"{d}/lbd.json\"\n\
         [vrrp.vi]\ninterface = \"veth0\"\nvrid = 42\npriority = {prio}\nversion = 3\n\
         advert_int = \"1s\"\nvirtual_ips = [\"{VIP6}/64\"]\n",
        d = dir.display()
    );
    std::fs::write(&file, text).expect("write lbd config");
    file
}

/// Keepalived's side: v3 over IPv6, multicast.
fn start_keepalived(net: &Net, node: &str, dir: &Path, prio: u8) -> Keepalived {
    let text = format!(
        "global_defs {{\n  router_id ka\n  enable_script_security\n}}\n\
         vrrp_instance VI {{\n  state BACKUP\n  interface veth0\n  virtual_router_id 42\n  \
         version 3\n  priority {prio}\n  advert_int 1\n  \
         virtual_ipaddress {{\n    {VIP6}/64\n  }}\n}}\n"
    );
    Keepalived::start_with(net, node, dir, &text)
}

#[test]
fn lbd_master_keepalived_backup_over_ipv6() {
    if !root() || !keepalived_present() {
        return;
    }
    let net = Net::new("k6");
    let base = std::env::temp_dir().join(format!("lbd-ka6-{}", std::process::id()));
    let (da, db) = (base.join("a"), base.join("b"));
    std::fs::create_dir_all(&da).expect("dir a");
    std::fs::create_dir_all(&db).expect("dir b");
    let lbd_cfg = lbd_config(&da, 150);
    let mut ka = start_keepalived(&net, "b", &db, 100);
    let mut lbd = Node::start(&net, "a", &lbd_cfg);
    net.wait("lbd master, Keepalived backup", |n| {
        n.holds("a", VIP6) && !n.holds("b", VIP6)
    });
    net.wait("client reaches the VIP on lbd", |n| n.ping(VIP6));

    // lbd killed: Keepalived takes over after its master-down interval,
    // so it accepted lbd's adverts until then.
    lbd.kill9();
    net.wait("Keepalived takes the VIP", |n| n.holds("b", VIP6));

    // lbd back: stale VIP removed, then it preempts Keepalived, which
    // therefore accepts lbd's higher priority.
    let mut lbd = Node::start(&net, "a", &lbd_cfg);
    net.wait("lbd preempts Keepalived", |n| {
        n.holds("a", VIP6) && !n.holds("b", VIP6)
    });
    net.wait("client reaches the VIP on lbd again", |n| n.ping(VIP6));

    // Keepalived returns with a higher priority: lbd steps down only if
    // it accepts Keepalived's adverts (else both would hold the VIP).
    ka.terminate();
    let mut ka = start_keepalived(&net, "b", &db, 200);
    net.wait("Keepalived preempts lbd", |n| {
        n.holds("b", VIP6) && !n.holds("a", VIP6)
    });
    net.wait("client reaches the VIP on Keepalived", |n| n.ping(VIP6));
    lbd.terminate();
    ka.terminate();
    let _ = std::fs::remove_dir_all(&base);
}
