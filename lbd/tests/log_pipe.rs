//! lbd with its log on a pipe nobody reads (init fallen behind): it keeps
//! serving, counts the lines it dropped, says so once the reader catches
//! up, and stops at once on SIGTERM.

mod support;

use std::io::Read;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::*;

/// Connections driven through lbd: far more log lines than a pipe (64 KiB
/// is about 250 connection lines) and lbd's queue (4096 lines) hold.
const CONNECTIONS: usize = 6000;
/// Enough to fill the pipe again.
const REFILL: usize = 1000;
/// Connections in flight at once.
const AT_ONCE: usize = 20;
/// Longer than any healthy batch takes; old lbd, blocked in write(2),
/// never answered at all.
const BATCH_PATIENCE: Duration = Duration::from_secs(10);
/// Old lbd, blocked in write(2), took about 20 s to stop.
const STOP_PATIENCE: Duration = Duration::from_secs(5);

/// Runs `count` connections to `to`, each must be answered by "a".
async fn drive(to: SocketAddr, count: usize) {
    for start in (0..count).step_by(AT_ONCE) {
        let batch: Vec<_> = (start..(start + AT_ONCE).min(count))
            .map(|_| tokio::spawn(which_server(to, None)))
            .collect();
        let answers = tokio::time::timeout(BATCH_PATIENCE, async {
            let mut answers = Vec::new();
            for task in batch {
                answers.push(task.await.expect("connection task"));
            }
            answers
        })
        .await
        .unwrap_or_else(|_| panic!("lbd stopped serving after about {start} connections"));
        assert!(answers.iter().all(|a| a == "a"), "{answers:?}");
    }
}

fn log_lines_dropped(dir: &std::path::Path) -> u64 {
    let (ok, out, err) = ctl(dir, "show info");
    assert!(ok, "show info: {err}");
    let info: serde_json::Value = serde_json::from_str(&out).expect("show info is JSON");
    info["log_lines_dropped"]
        .as_u64()
        .expect("log_lines_dropped")
}

fn wait_until_ready(dir: &std::path::Path, child: &mut Child) {
    let until = Instant::now() + PATIENCE;
    while !ctl(dir, "show info").0 {
        assert!(
            child.try_wait().expect("try_wait").is_none(),
            "lbd exited at start"
        );
        assert!(
            Instant::now() < until,
            "lbd's control socket never answered"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_pipe_nobody_reads_does_not_stop_serving() {
    let a = EchoBackend::start("a").await;
    let port = free_port();
    let to = SocketAddr::from(([127, 0, 0, 1], port));
    let dir = temp_dir("log-pipe");
    let file = dir.join("lbd.toml");
    std::fs::write(
        &file,
        format!(
            "{}[frontends.f]\nbind = [\"127.0.0.1:{port}\"]\ndefault_backend = \"web\"\n\
             [backends.web.servers.a]\naddress = \"{}\"\n",
            global(&dir),
            a.addr
        ),
    )
    .expect("write config");
    // stdout and stderr on one pipe whose read end is held but not read.
    let (mut reader, writer) = std::io::pipe().expect("pipe");
    let mut child = Command::new(env!("CARGO_BIN_EXE_lbd"))
        .arg("run")
        .arg("-c")
        .arg(&file)
        .env("LBD_LOG", "debug")
        .stdin(Stdio::null())
        .stdout(writer.try_clone().expect("clone pipe"))
        .stderr(writer)
        .spawn()
        .expect("spawn lbd");
    wait_until_ready(&dir, &mut child);

    drive(to, CONNECTIONS).await;
    let dropped = log_lines_dropped(&dir);
    assert!(dropped > 0, "nothing dropped: the pipe never filled");

    // The reader catches up: lbd says what it dropped, once.
    let (tx, rx) = mpsc::channel();
    let drainer = std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut buf = [0u8; 65536];
        let until = Instant::now() + PATIENCE;
        while Instant::now() < until {
            match reader.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
            let text = String::from_utf8_lossy(&seen);
            if let Some(line) = text.lines().find(|l| l.contains("log lines dropped")) {
                let _ = tx.send(line.to_string());
                break;
            }
        }
        reader
    });
    // A line to write once the pipe has room.
    assert!(ctl(&dir, "set weight web/a 2").0);
    let note = rx
        .recv_timeout(PATIENCE)
        .expect("no \"log lines dropped\" line once the reader caught up");
    assert!(note.contains("log_lines_dropped="), "{note}");
    // The reader stops again: the pipe fills up again.
    let reader = drainer.join().expect("drainer");
    drive(to, REFILL).await;

    // SIGTERM with the pipe full: lbd stops at once.
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let until = Instant::now() + STOP_PATIENCE;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() >= until {
            let _ = child.kill();
            let _ = child.wait();
            panic!("lbd did not stop within {STOP_PATIENCE:?} of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "lbd exited with {status}");
    drop(reader);
    let _ = std::fs::remove_dir_all(&dir);
}
