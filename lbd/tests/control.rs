//! The control socket through `lbd ctl`: show, drain, maint across restart,
//! reload (bad config rejected without dropping connections), events.

mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};

use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn config(dir: &std::path::Path, port: u16, a: &EchoBackend, b: &EchoBackend) -> String {
    format!(
        "{}[frontends.f]\nbind = [\"127.0.0.1:{port}\"]\ndefault_backend = \"web\"\n\
         [backends.web]\nbalance = \"roundrobin\"\n\
         [backends.web.servers.a]\naddress = \"{}\"\n[backends.web.servers.b]\naddress = \"{}\"\n",
        global(dir),
        a.addr,
        b.addr
    )
}

async fn echo_roundtrip(s: &mut tokio::net::TcpStream, text: &str) -> String {
    s.write_all(text.as_bytes()).await.expect("write");
    let mut buf = vec![0u8; text.len()];
    s.read_exact(&mut buf).await.expect("echo back");
    String::from_utf8_lossy(&buf).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_info_and_stat() {
    let a = EchoBackend::start("a").await;
    let b = EchoBackend::start("b").await;
    let port = free_port();
    let dir = temp_dir("show");
    let _lbd = Lbd::start(&dir, &config(&dir, port, &a, &b));
    let (ok, out, _) = ctl(&dir, "show info");
    assert!(ok);
    let info: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(info["servers"], 2);
    assert_eq!(info["current_connections"], 0);
    let mut held = connect_from(SocketAddr::from(([127, 0, 0, 1], port)), None).await;
    assert_eq!(read_line(&mut held).await, "a");
    let (_, out, _) = ctl(&dir, "show info");
    let info: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(info["current_connections"], 1);
    let (_, out, _) = ctl(&dir, "show stat");
    let stat: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(stat["frontends"][0]["active"], 1);
    assert_eq!(status(&dir, "web/a"), "UP");
    let (ok, _, err) = ctl(&dir, "set server web/nope state drain");
    assert!(!ok);
    assert!(err.contains("no server `web/nope`"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_keeps_existing_connections_and_takes_no_new_ones() {
    let a = EchoBackend::start("a").await;
    let b = EchoBackend::start("b").await;
    let port = free_port();
    let to = SocketAddr::from(([127, 0, 0, 1], port));
    let dir = temp_dir("drain");
    let _lbd = Lbd::start(&dir, &config(&dir, port, &a, &b));
    let mut held = connect_from(to, None).await;
    assert_eq!(read_line(&mut held).await, "a");
    let (ok, _, err) = ctl(&dir, "set server web/a state drain");
    assert!(ok, "{err}");
    assert_eq!(status(&dir, "web/a"), "DRAIN");
    for _ in 0..4 {
        assert_eq!(which_server(to, None).await, "b");
    }
    assert_eq!(echo_roundtrip(&mut held, "still here").await, "still here");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maint_persists_across_restart() {
    let a = EchoBackend::start("a").await;
    let b = EchoBackend::start("b").await;
    let port = free_port();
    let to = SocketAddr::from(([127, 0, 0, 1], port));
    let dir = temp_dir("maint");
    let cfg = config(&dir, port, &a, &b);
    {
        let mut lbd = Lbd::start(&dir, &cfg);
        assert!(ctl(&dir, "set server web/a state maint").0);
        assert!(lbd.terminate().success());
    }
    let _lbd = Lbd::start(&dir, &cfg);
    assert_eq!(status(&dir, "web/a"), "MAINT");
    for _ in 0..4 {
        assert_eq!(which_server(to, None).await, "b");
    }
    assert!(ctl(&dir, "set server web/a state ready").0);
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..4 {
        seen.insert(which_server(to, None).await);
    }
    assert_eq!(seen.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_reload_is_rejected_and_keeps_connections_good_reload_applies() {
    let a = EchoBackend::start("a").await;
    let b = EchoBackend::start("b").await;
    let port = free_port();
    let to = SocketAddr::from(([127, 0, 0, 1], port));
    let dir = temp_dir("reload");
    let mut lbd = Lbd::start(&dir, &config(&dir, port, &a, &b));
    assert!(ctl(&dir, "set server web/b state drain").0);
    let mut held = connect_from(to, None).await;
    assert_eq!(read_line(&mut held).await, "a");

    // A typo: rejected with file:line, old config keeps serving.
    let file = dir.join("lbd.toml");
    let good = std::fs::read_to_string(&file).expect("config");
    std::fs::write(&file, format!("{good}balanse = \"x\"\n")).expect("write");
    let (ok, _, err) = ctl(&dir, "reload");
    assert!(!ok);
    assert!(err.contains(&format!("{}:", file.display())), "{err}");
    assert!(err.contains("balanse"), "{err}");
    assert_eq!(
        echo_roundtrip(&mut held, "after bad reload").await,
        "after bad reload"
    );
    assert_eq!(which_server(to, None).await, "a");

    // A good reload via SIGHUP: weight change applies, drain survives
    // (state file), the running connection is untouched.
    std::fs::write(
        &file,
        good.replace(
            "[backends.web.servers.a]\n",
            "[backends.web.servers.a]\nweight = 2\n",
        ),
    )
    .expect("write");
    lbd.signal("HUP");
    lbd.wait_for("reload applied");
    assert_eq!(
        echo_roundtrip(&mut held, "after good reload").await,
        "after good reload"
    );
    assert_eq!(status(&dir, "web/b"), "DRAIN");
    let (_, out, _) = ctl(&dir, "show stat");
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    let a_row = v["servers"]
        .as_array()
        .expect("rows")
        .iter()
        .find(|r| r["server"] == "a")
        .cloned()
        .expect("a");
    assert_eq!(a_row["weight"], 2);
    assert_eq!(
        a_row["active"], 1,
        "the held connection still counts after reload"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_stream_reports_changes() {
    let a = EchoBackend::start("a").await;
    let b = EchoBackend::start("b").await;
    let port = free_port();
    let dir = temp_dir("events");
    let _lbd = Lbd::start(&dir, &config(&dir, port, &a, &b));
    let mut child = Command::new(env!("CARGO_BIN_EXE_lbd"))
        .arg("ctl")
        .arg("--socket")
        .arg(dir.join("lbd.sock"))
        .arg("events")
        .stdout(Stdio::piped())
        .spawn()
        .expect("ctl events");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    // The stream is open once ctl printed nothing yet but is connected; the
    // set below is retried until an event arrives (bounded).
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        if let Some(Ok(line)) = lines.next() {
            let _ = tx.send(line);
        }
    });
    let mut got = None;
    for _ in 0..50 {
        assert!(ctl(&dir, "set weight web/b 3").0);
        if let Ok(line) = rx.recv_timeout(std::time::Duration::from_millis(200)) {
            got = Some(line);
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let line = got.expect("an event line");
    let v: serde_json::Value = serde_json::from_str(&line).expect("event JSON");
    assert_eq!(v["event"], "weight");
    assert_eq!(v["server"], "web/b");
    assert_eq!(v["weight"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_client_api_for_the_status_screen() {
    let a = EchoBackend::start("a").await;
    let b = EchoBackend::start("b").await;
    let port = free_port();
    let dir = temp_dir("typed");
    let _lbd = Lbd::start(&dir, &config(&dir, port, &a, &b));
    let socket = dir.join("lbd.sock");
    let stat = lbd::control::client::show_stat(&socket)
        .await
        .expect("show stat");
    assert_eq!(stat.servers.len(), 2);
    assert!(stat.servers.iter().all(|s| s.status == "UP"));
    let info = lbd::control::client::show_info(&socket)
        .await
        .expect("show info");
    assert_eq!(info.name, "lbd");
    let err = lbd::control::client::request(&socket, "bogus")
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("unknown command"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_connections_close_at_the_reload_deadline() {
    let a = EchoBackend::start("a").await;
    let b = EchoBackend::start("b").await;
    let port = free_port();
    let to = SocketAddr::from(([127, 0, 0, 1], port));
    let dir = temp_dir("deadline");
    let cfg = config(&dir, port, &a, &b)
        .replace("reload_deadline = \"1h\"", "reload_deadline = \"300ms\"");
    let mut lbd = Lbd::start(&dir, &cfg);
    let mut held = connect_from(to, None).await;
    let first = read_line(&mut held).await;
    assert!(ctl(&dir, "reload").0);
    // The tunnel from the old config is closed by lbd at the deadline.
    let line = lbd.wait_for_all(&["connection", "term=\"KD\""]);
    assert!(line.contains(&format!("server=\"{first}\"")), "{line}");
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(PATIENCE, held.read_to_end(&mut rest)).await;
    assert!(matches!(closed, Ok(Ok(0))), "{closed:?}");
    // New connections are served by the new config.
    let mut fresh = connect_from(to, None).await;
    assert!(!read_line(&mut fresh).await.is_empty());
}
