//! `lbd check` as an admin runs it: exit status and messages.

use std::path::Path;
use std::process::Command;

fn lbd() -> Command {
    Command::new(env!("CARGO_BIN_EXE_lbd"))
}

fn manifest(p: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(p)
        .display()
        .to_string()
}

#[test]
fn check_accepts_the_example() {
    let out = lbd()
        .args(["check", "-c", &manifest("examples/appliance.toml")])
        .output()
        .expect("runs lbd");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("config OK"));
    assert!(
        out.stderr.is_empty(),
        "the example has no warnings: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn check_warns_but_passes_on_likely_mistakes() {
    let dir = std::env::temp_dir().join(format!("lbd-warn-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("w.toml");
    std::fs::write(
        &file,
        "[backends.lonely]\n[stats]\nbind = \"127.0.0.1:1\"\n",
    )
    .expect("write");
    let out = lbd()
        .args(["check", "-c"])
        .arg(&file)
        .output()
        .expect("runs lbd");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("warning: backends.lonely: has no servers"),
        "{stderr}"
    );
    assert!(
        stderr.contains("warning: backends.lonely: no frontend uses it"),
        "{stderr}"
    );
    assert!(
        stderr.contains("warning: stats.users: no users"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn check_rejects_a_bad_overlay_with_file_and_line() {
    let bad = manifest("tests/fixtures/bad/unknown_key.toml");
    let out = lbd()
        .args([
            "check",
            "-c",
            &manifest("examples/appliance.toml"),
            "-c",
            &bad,
        ])
        .output()
        .expect("runs lbd");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{bad}:6: backends.b.balanse")),
        "{stderr}"
    );
}

#[test]
fn check_reports_every_validation_error() {
    let dir = std::env::temp_dir().join(format!("lbd-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("two.toml");
    std::fs::write(
        &file,
        "[frontends.f]\nbind = [\"127.0.0.1:1\"]\ndefault_backend = \"x\"\n\
         [backends.b.servers.s]\naddress = \"127.0.0.1:2\"\nweight = 999\n",
    )
    .expect("write");
    let out = lbd()
        .args(["check", "-c"])
        .arg(&file)
        .output()
        .expect("runs lbd");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains(":3: frontends.f.default_backend"),
        "{stderr}"
    );
    assert!(
        stderr.contains(":6: backends.b.servers.s.weight"),
        "{stderr}"
    );
    assert!(stderr.contains("2 error(s)"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn hash_password_output_is_accepted_by_check() {
    use std::io::Write;
    let mut child = lbd()
        .arg("hash-password")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("runs lbd");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"pw\n")
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    let hash = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(lbd::password::verify_password("pw", &hash));
}
