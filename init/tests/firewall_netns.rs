//! The firewall against the real kernel, in network namespaces each test
//! creates and removes (even when it fails): apply, read back with Debian's
//! `nft`, and probe with real packets over a veth pair.
//!
//! Needs root, `ip` (iproute2), `ping` (iputils-ping) and `nft`
//! (`apt-get install -y nftables`, used here only to read the ruleset
//! back; the guest has no `nft`). Addresses are documentation prefixes
//! that exist only inside the test's namespaces.

use std::fs::File;
use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use init::firewall::{
    apply, build_ruleset, render_nft, render_rule, FirewallError, FirewallInput, Match, Rule,
    Ruleset, Verdict, IPPROTO_AH, IPPROTO_VRRP, VRRP_GROUP_V4, VRRP_GROUP_V6,
};
use lbd_config::vrrp::AdvertSource;
use lbd_config::VrrpAdverts;
use serde_json::Value;

/// Long enough for a SYN-ACK on a veth pair, short enough to keep the
/// suite quick when the firewall (correctly) drops the SYN.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const FW_V4: &str = "192.0.2.1";
const CLIENT_V4: &str = "192.0.2.2";
const FW_V6: &str = "2001:db8::1";
const CLIENT_V6: &str = "2001:db8::2";
const LISTED_PORT: u16 = 8080;
const UNLISTED_PORT: u16 = 8081;

static NEXT_ID: AtomicU32 = AtomicU32::new(0);

fn is_root() -> bool {
    // /proc/self belongs to the process's effective user.
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Runs a command, failing the test with its output when it fails.
fn run(program: &str, args: &[&str]) -> Output {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("running {program} (installed? nft is Debian's nftables package): {e}")
        });
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A network namespace, deleted (with its veth end) when dropped.
struct Netns {
    name: String,
}

impl Netns {
    fn new(role: &str) -> Self {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let name = format!("fwtest-{}-{id}-{role}", std::process::id());
        run("ip", &["netns", "add", &name]);
        let ns = Self { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    fn ip(&self, args: &[&str]) -> Output {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        run("ip", &all)
    }

    fn exec(&self, program: &str, args: &[&str]) -> Output {
        let mut all = vec!["netns", "exec", self.name.as_str(), program];
        all.extend_from_slice(args);
        run("ip", &all)
    }

    /// Runs `f` on a thread that has joined this namespace; sockets it
    /// opens stay in the namespace.
    fn enter<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let path = format!("/run/netns/{}", self.name);
        let ns = File::open(&path).unwrap_or_else(|e| panic!("opening {path}: {e}"));
        std::thread::scope(|s| {
            s.spawn(|| {
                // SAFETY: `ns` is an open namespace file for the whole call;
                // setns changes only this thread's network namespace, and
                // the thread ends with the scope.
                let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
                assert_eq!(rc, 0, "setns: {}", io::Error::last_os_error());
                f()
            })
            .join()
            .expect("the namespace thread does not panic")
        })
    }

    fn apply(&self, ruleset: &Ruleset) -> Result<(), FirewallError> {
        self.enter(|| apply(ruleset))
    }

    fn nft_text(&self) -> String {
        String::from_utf8_lossy(&self.exec("nft", &["list", "ruleset"]).stdout).into_owned()
    }

    fn nft_json(&self) -> Value {
        let out = self.exec("nft", &["-j", "list", "ruleset"]);
        serde_json::from_slice(&out.stdout).expect("nft -j prints JSON")
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// A firewalled namespace and a client namespace joined by a veth pair.
struct Pair {
    fw: Netns,
    client: Netns,
}

impl Pair {
    fn new() -> Self {
        let fw = Netns::new("fw");
        let client = Netns::new("cl");
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let (a, b) = (format!("fwa{id}"), format!("fwb{id}"));
        fw.ip(&[
            "link",
            "add",
            &a,
            "type",
            "veth",
            "peer",
            "name",
            &b,
            "netns",
            &client.name,
        ]);
        for (ns, dev, v4, v6) in [(&fw, &a, FW_V4, FW_V6), (&client, &b, CLIENT_V4, CLIENT_V6)] {
            ns.ip(&["addr", "add", &format!("{v4}/24"), "dev", dev]);
            ns.ip(&["addr", "add", &format!("{v6}/64"), "dev", dev, "nodad"]);
            ns.ip(&["link", "set", dev, "up"]);
        }
        Self { fw, client }
    }

    /// Whether a TCP connection from the client completes.
    fn connects(&self, addr: &str, port: u16) -> io::Result<()> {
        let ip: IpAddr = addr.parse().expect("test literal");
        self.client.enter(|| {
            TcpStream::connect_timeout(&SocketAddr::new(ip, port), CONNECT_TIMEOUT).map(drop)
        })
    }

    fn ping(&self, addr: &str) -> bool {
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.client.name,
                "ping",
                "-c",
                "1",
                "-W",
                "3",
                addr,
            ])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    }

    /// Listeners on both test ports, IPv4 and IPv6, in the firewalled
    /// namespace: an unanswered port is the firewall's doing, not a missing
    /// listener.
    fn listen(&self) -> Vec<TcpListener> {
        self.fw.enter(|| {
            [LISTED_PORT, UNLISTED_PORT]
                .into_iter()
                .flat_map(|p| [format!("{FW_V4}:{p}"), format!("[{FW_V6}]:{p}")])
                .map(|a| TcpListener::bind(&a).unwrap_or_else(|e| panic!("bind {a}: {e}")))
                .collect()
        })
    }
}

fn adverts(protocol: u8, source: AdvertSource) -> VrrpAdverts {
    VrrpAdverts {
        instance: "vi".to_owned(),
        protocol,
        source,
    }
}

fn input_with_port(port: u16) -> FirewallInput {
    FirewallInput {
        vrrp: vec![adverts(
            IPPROTO_VRRP,
            AdvertSource::Peers(vec![
                CLIENT_V4.parse().expect("literal"),
                CLIENT_V6.parse().expect("literal"),
            ]),
        )],
        tcp_ports: vec![port],
        udp_ports: vec![5353],
    }
}

/// The ruleset `nft -j` reports, in the model's terms: each chain as
/// `name hook prio policy` followed by its rules as nft text.
fn chains_from_json(json: &Value) -> Vec<(String, Vec<String>)> {
    let items = json["nftables"].as_array().expect("nftables array");
    let tables: Vec<_> = items.iter().filter_map(|i| i.get("table")).collect();
    assert_eq!(tables.len(), 1, "exactly one table: {tables:?}");
    assert_eq!(tables[0]["family"], "inet");
    assert_eq!(tables[0]["name"], "appliance");
    let chains = items.iter().filter_map(|i| i.get("chain")).map(|c| {
        let head = format!(
            "{} {} {} {}",
            str_of(&c["name"]),
            str_of(&c["hook"]),
            c["prio"],
            str_of(&c["policy"])
        );
        let rules = items
            .iter()
            .filter_map(|i| i.get("rule"))
            .filter(|r| r["chain"] == c["name"])
            .map(|r| rule_from_json(&r["expr"]))
            .collect();
        (head, rules)
    });
    chains.collect()
}

fn chains_from_model(rs: &Ruleset) -> Vec<(String, Vec<String>)> {
    rs.chains
        .iter()
        .map(|c| {
            let policy = match c.policy {
                Verdict::Accept => "accept",
                Verdict::Drop => "drop",
            };
            let head = format!("{} {} {} {policy}", c.name, c.hook.name(), c.priority);
            (head, c.rules.iter().map(render_rule).collect())
        })
        .collect()
}

fn str_of(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_owned)
}

/// One rule of `nft -j` as nft text: `{"match": {left, right}}` becomes
/// `left right`, `{"accept": null}` becomes `accept`.
fn rule_from_json(exprs: &Value) -> String {
    let mut words = Vec::new();
    for e in exprs.as_array().expect("expr array") {
        let Some(m) = e.get("match") else {
            words.extend(e.as_object().expect("verdict object").keys().cloned());
            continue;
        };
        let left = &m["left"];
        let (name, quoted) = if let Some(p) = left.get("payload") {
            (
                format!("{} {}", str_of(&p["protocol"]), str_of(&p["field"])),
                false,
            )
        } else if let Some(meta) = left.get("meta") {
            match str_of(&meta["key"]).as_str() {
                k @ ("iif" | "iifname") => (k.to_owned(), true),
                k => (format!("meta {k}"), false),
            }
        } else if let Some(ct) = left.get("ct") {
            (format!("ct {}", str_of(&ct["key"])), false)
        } else {
            (left.to_string(), false)
        };
        let right = match &m["right"] {
            Value::Array(items) => items.iter().map(str_of).collect::<Vec<_>>().join(","),
            v if quoted => format!("\"{}\"", str_of(v)),
            v => str_of(v),
        };
        let op = match str_of(&m["op"]).as_str() {
            "==" | "in" => String::new(),
            other => format!("{other} "),
        };
        words.push(format!("{name} {op}{right}"));
    }
    words.join(" ")
}

#[test]
fn applied_ruleset_reads_back_as_the_model() {
    if !is_root() {
        eprintln!("skipped: needs root for network namespaces");
        return;
    }
    let ns = Netns::new("rb");
    let rs = build_ruleset(&input_with_port(443));
    ns.apply(&rs)
        .expect("the kernel accepts the appliance ruleset");
    assert_eq!(chains_from_json(&ns.nft_json()), chains_from_model(&rs));
    // What init prints is what nft itself prints.
    assert_eq!(ns.nft_text(), render_nft(&rs));
}

/// Multicast instances in VRRP (112) and one in AH (51, `auth_type =
/// "ah"`): the kernel takes them and nft names them as init prints them.
#[test]
fn vrrp_group_and_ah_rules_read_back() {
    if !is_root() {
        eprintln!("skipped: needs root for network namespaces");
        return;
    }
    let ns = Netns::new("grp");
    let rs = build_ruleset(&FirewallInput {
        vrrp: vec![
            adverts(IPPROTO_VRRP, AdvertSource::Group(VRRP_GROUP_V4.into())),
            adverts(IPPROTO_VRRP, AdvertSource::Group(VRRP_GROUP_V6.into())),
            adverts(IPPROTO_AH, AdvertSource::Group(VRRP_GROUP_V4.into())),
        ],
        ..FirewallInput::default()
    });
    ns.apply(&rs)
        .expect("the kernel accepts the appliance ruleset");
    assert_eq!(ns.nft_text(), render_nft(&rs));
}

#[test]
fn listed_port_answers_unlisted_does_not_and_reapply_replaces() {
    if !is_root() {
        eprintln!("skipped: needs root for network namespaces");
        return;
    }
    let pair = Pair::new();
    let _listeners = pair.listen();
    // Without a firewall both ports answer: the probe itself works.
    pair.connects(FW_V4, UNLISTED_PORT)
        .expect("no firewall yet: the unlisted port answers");

    pair.fw
        .apply(&build_ruleset(&input_with_port(LISTED_PORT)))
        .expect("first ruleset applies");
    pair.connects(FW_V4, LISTED_PORT)
        .expect("listed port over IPv4");
    pair.connects(FW_V6, LISTED_PORT)
        .expect("listed port over IPv6");
    let err = pair
        .connects(FW_V4, UNLISTED_PORT)
        .expect_err("unlisted port");
    assert_eq!(
        err.kind(),
        io::ErrorKind::TimedOut,
        "dropped, not refused: {err}"
    );
    assert!(pair.ping(FW_V4), "ping over IPv4");
    assert!(
        pair.ping(FW_V6),
        "ping over IPv6 (needs neighbour discovery)"
    );

    // Applying again replaces the table: the ports swap roles.
    let second = build_ruleset(&input_with_port(UNLISTED_PORT));
    pair.fw.apply(&second).expect("second ruleset applies");
    assert_eq!(
        chains_from_json(&pair.fw.nft_json()),
        chains_from_model(&second)
    );
    pair.connects(FW_V4, UNLISTED_PORT)
        .expect("newly listed port");
    let err = pair
        .connects(FW_V4, LISTED_PORT)
        .expect_err("no longer listed");
    assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
}

/// A rule the kernel refuses: an interface name longer than any netlink
/// data value (64 bytes).
fn with_bad_rule(mut rs: Ruleset) -> Ruleset {
    rs.chains[0]
        .rules
        .push(Rule::accept(vec![Match::IifName("x".repeat(100))]));
    rs
}

#[test]
fn rejected_batch_keeps_the_previous_ruleset() {
    if !is_root() {
        eprintln!("skipped: needs root for network namespaces");
        return;
    }
    let ns = Netns::new("rej");
    let good = build_ruleset(&input_with_port(443));
    ns.apply(&good).expect("good ruleset applies");
    let before = ns.nft_text();

    let bad = with_bad_rule(build_ruleset(&input_with_port(80)));
    let index = bad.chains[0].rules.len();
    let err = ns
        .apply(&bad)
        .expect_err("the kernel refuses the long name");
    let text = err.to_string();
    eprintln!("apply failed as expected: {text}");
    assert!(
        matches!(err, FirewallError::Rejected { .. }),
        "rejected by the kernel: {text}"
    );
    assert!(
        text.contains(&format!("rule {index} of chain input (iifname \"xxx")),
        "names the rule: {text}"
    );
    assert_eq!(ns.nft_text(), before, "the previous ruleset stays");
    assert!(
        !before.contains("dport 80 "),
        "nothing of the bad batch leaked"
    );
}

#[test]
fn rejected_first_batch_leaves_no_table() {
    if !is_root() {
        eprintln!("skipped: needs root for network namespaces");
        return;
    }
    let ns = Netns::new("rej0");
    let bad = with_bad_rule(build_ruleset(&FirewallInput::default()));
    ns.apply(&bad)
        .expect_err("the kernel refuses the long name");
    assert_eq!(ns.nft_text(), "", "no half-made table");
}

#[test]
fn thousands_of_rules_are_all_acknowledged() {
    if !is_root() {
        eprintln!("skipped: needs root for network namespaces");
        return;
    }
    let ns = Netns::new("big");
    let input = FirewallInput {
        tcp_ports: (1000..4000).collect(),
        udp_ports: (1000..2000).collect(),
        ..FirewallInput::default()
    };
    let rs = build_ruleset(&input);
    ns.apply(&rs)
        .expect("every ack fits in the socket's receive queue");
    assert_eq!(chains_from_json(&ns.nft_json()), chains_from_model(&rs));
}
