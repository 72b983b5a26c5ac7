//! `global.log = "syslog"`: lbd's lines arrive as datagrams on the socket.

mod support;

use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};

use support::*;

#[test]
fn logs_go_to_the_syslog_socket() {
    let dir = temp_dir("syslog");
    let sock = dir.join("log.sock");
    let server = UnixDatagram::bind(&sock).expect("bind syslog socket");
    server.set_read_timeout(Some(PATIENCE)).expect("timeout");
    let port = free_port();
    let cfg = format!(
        "{}log = \"syslog\"\nsyslog_socket = \"{}\"\n\
         [frontends.f]\nbind = [\"127.0.0.1:{port}\"]\ndefault_backend = \"b\"\n[backends.b]\n",
        global(&dir),
        sock.display()
    );
    let file = dir.join("lbd.toml");
    std::fs::write(&file, cfg).expect("config");
    let mut child = Command::new(env!("CARGO_BIN_EXE_lbd"))
        .arg("run")
        .arg("-c")
        .arg(&file)
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn lbd");
    let mut buf = [0u8; 2048];
    let mut ready = None;
    for _ in 0..20 {
        let Ok(n) = server.recv(&mut buf) else { break };
        let line = String::from_utf8_lossy(&buf[..n]).to_string();
        if line.contains("ready") {
            ready = Some(line);
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let line = ready.expect("a ready line on the syslog socket");
    assert!(
        line.starts_with(&format!("<30>lbd[{}]: ", child.id())),
        "{line}"
    );
}
