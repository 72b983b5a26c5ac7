//! The proxies' configs for `bench abuse`: the same three listeners for
//! lbd and HAProxy, mode http.
//!
//! ```text
//!  :80    web    mode http -> nginx      wrk measures here
//!  :8080  slow   mode http, redirect     slow-header connections land here
//!  :8404  stats  admin user              bad logins land here
//! ```
//!
//! Global maxconn M (default 1000), split between the two frontends' own
//! maxconn (M/2 each, adding up to M, so an lbd that warns about
//! reservations above the global limit stays quiet): the slow-header
//! client opens as many connections as the global limit, so a proxy that
//! did not hold the slow frontend to its own share would let it take every
//! slot and starve `web`.
//!
//! lbd's request-header timeout (`timeout.http_request`) is new; an older
//! lbd rejects the key. Which form a binary takes is asked of `lbd check`
//! ([`detect_http_request`]), so the bench runs against old and new lbd.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::super::error::BenchError;
use super::super::netns::{BACKEND_ADDR, PROXY_FRONT_ADDR};
use super::super::servers::{lbd_global, write, HTTP_PORT};

/// The frontend wrk measures.
pub const WEB_PORT: u16 = HTTP_PORT;
/// The frontend the slow-header connections go to.
pub const SLOW_PORT: u16 = 8080;
/// Both proxies' stats page, where the bad logins go.
pub const STATS_PORT: u16 = 8404;
pub const PORTS: [u16; 3] = [WEB_PORT, SLOW_PORT, STATS_PORT];
pub const STATS_USER: &str = "admin";
/// The stats password the proxies are given (the bad logins send another).
pub const STATS_PASSWORD: &str = "bench-stats-secret";
/// HAProxy's `timeout http-request`, and lbd's `timeout.http_request`
/// where it has one.
pub const HTTP_REQUEST_TIMEOUT: &str = "10s";

/// What both proxies are given.
pub struct Params {
    pub maxconn: u64,
    /// The slow frontend's own maxconn.
    pub slow_maxconn: u64,
    /// `web`'s own maxconn: the rest of the global limit.
    pub web_maxconn: u64,
    /// `lbd hash-password` of STATS_PASSWORD (argon2id PHC string).
    pub password_hash: String,
}

impl Params {
    pub fn new(maxconn: u64, password_hash: String) -> Self {
        let slow_maxconn = (maxconn / 2).max(1);
        Self {
            maxconn,
            slow_maxconn,
            web_maxconn: maxconn.saturating_sub(slow_maxconn).max(1),
            password_hash,
        }
    }
}

/// Where an lbd binary takes the request-header timeout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpRequestKey {
    /// `[defaults.timeout] http_request`, for every frontend (HAProxy's
    /// `defaults` line).
    Defaults,
    /// `timeout.http_request` in each frontend table.
    Frontends,
    /// Neither: an older lbd, with only `timeout.client` (which hyper uses
    /// as its header read timeout).
    Unsupported,
}

impl HttpRequestKey {
    /// The forms tried, preferred first.
    const CANDIDATES: [HttpRequestKey; 2] = [HttpRequestKey::Defaults, HttpRequestKey::Frontends];

    pub fn describe(self) -> String {
        match self {
            HttpRequestKey::Defaults => format!(
                "`[defaults.timeout] http_request = \"{HTTP_REQUEST_TIMEOUT}\"` (accepted by its `lbd check`)"
            ),
            HttpRequestKey::Frontends => format!(
                "`timeout.http_request = \"{HTTP_REQUEST_TIMEOUT}\"` on both frontends (accepted by its `lbd check`)"
            ),
            HttpRequestKey::Unsupported => {
                "no `timeout.http_request` (its `lbd check` rejects the key): only `timeout.client` 50s".into()
            }
        }
    }
}

/// lbd's config: `stem` names its socket and state file.
pub fn lbd_config(dir: &Path, stem: &str, p: &Params, key: HttpRequestKey) -> String {
    let defaults_line = if key == HttpRequestKey::Defaults {
        format!("http_request = \"{HTTP_REQUEST_TIMEOUT}\"\n")
    } else {
        String::new()
    };
    let frontend_line = if key == HttpRequestKey::Frontends {
        format!("timeout.http_request = \"{HTTP_REQUEST_TIMEOUT}\"\n")
    } else {
        String::new()
    };
    let (web_maxconn, slow_maxconn, hash) = (p.web_maxconn, p.slow_maxconn, &p.password_hash);
    format!(
        "{global}
[defaults.timeout]
connect = \"5s\"
client = \"50s\"
server = \"50s\"
queue = \"10s\"
{defaults_line}
[frontends.web]
bind = [\"{PROXY_FRONT_ADDR}:{WEB_PORT}\"]
mode = \"http\"
maxconn = {web_maxconn}
default_backend = \"web\"
{frontend_line}
[frontends.slow]
bind = [\"{PROXY_FRONT_ADDR}:{SLOW_PORT}\"]
mode = \"http\"
maxconn = {slow_maxconn}
redirect_https = true
{frontend_line}
[backends.web]
mode = \"http\"

[backends.web.servers.s1]
address = \"{BACKEND_ADDR}:{WEB_PORT}\"

[stats]
bind = \"{PROXY_FRONT_ADDR}:{STATS_PORT}\"

[stats.users.{STATS_USER}]
group = \"admin\"
password_hash = \"{hash}\"
",
        global = lbd_global(dir, stem, p.maxconn),
    )
}

/// HAProxy's config, the same job. `stats auth` holds the password in
/// clear text and HAProxy compares it as a string: a wrong login costs it
/// next to nothing, where lbd verifies an argon2id hash.
pub fn haproxy_config(p: &Params) -> String {
    let (maxconn, web_maxconn, slow_maxconn) = (p.maxconn, p.web_maxconn, p.slow_maxconn);
    format!(
        "global
    nbthread 1
    maxconn {maxconn}

defaults
    mode http
    timeout connect 5s
    timeout client 50s
    timeout server 50s
    timeout queue 10s
    timeout http-request {HTTP_REQUEST_TIMEOUT}

frontend web
    bind {PROXY_FRONT_ADDR}:{WEB_PORT}
    maxconn {web_maxconn}
    option forwardfor
    default_backend web

frontend slow
    bind {PROXY_FRONT_ADDR}:{SLOW_PORT}
    maxconn {slow_maxconn}
    http-request redirect scheme https

frontend stats
    bind {PROXY_FRONT_ADDR}:{STATS_PORT}
    stats enable
    stats uri /
    stats auth {STATS_USER}:{STATS_PASSWORD}

backend web
    server s1 {BACKEND_ADDR}:{WEB_PORT}
"
    )
}

/// `lbd hash-password` of STATS_PASSWORD, by `lbd_bin`.
pub fn hash_password(lbd_bin: &Path) -> Result<String, BenchError> {
    use std::io::Write;
    use std::process::Stdio;
    let command = format!("{} hash-password", lbd_bin.display());
    let mut child = Command::new(lbd_bin)
        .arg("hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| BenchError::Spawn {
            command: command.clone(),
            source,
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        writeln!(stdin, "{STATS_PASSWORD}").map_err(|source| BenchError::Io {
            what: format!("writing the password to {command}"),
            source,
        })?;
    }
    let out = child
        .wait_with_output()
        .map_err(|source| BenchError::Spawn {
            command: command.clone(),
            source,
        })?;
    let hash = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || !hash.starts_with("$argon2id$") {
        return Err(BenchError::CommandFailed {
            command,
            status: out.status.to_string(),
            stderr: format!(
                "want an argon2id PHC string, got {hash:?}; {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    Ok(hash)
}

/// Whether `lbd check -c path` accepts the file; Err(its output) if not.
fn lbd_check(lbd_bin: &Path, path: &Path) -> Result<Result<(), String>, BenchError> {
    let out = Command::new(lbd_bin)
        .arg("check")
        .arg("-c")
        .arg(path)
        .output()
        .map_err(|source| BenchError::Spawn {
            command: format!("{} check -c {}", lbd_bin.display(), path.display()),
            source,
        })?;
    if out.status.success() {
        return Ok(Ok(()));
    }
    Ok(Err(format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
    .trim()
    .to_string()))
}

/// The first form of `timeout.http_request` that `lbd_bin`'s `lbd check`
/// accepts, else Unsupported; an error if even the config without it is
/// rejected (then the bench's config is wrong for that lbd).
pub fn detect_http_request(
    lbd_bin: &Path,
    dir: &Path,
    stem: &str,
    p: &Params,
) -> Result<HttpRequestKey, BenchError> {
    let path: PathBuf = dir.join(format!("{stem}-check.toml"));
    for key in HttpRequestKey::CANDIDATES {
        write(&path, &lbd_config(dir, stem, p, key))?;
        if lbd_check(lbd_bin, &path)?.is_ok() {
            return Ok(key);
        }
    }
    write(
        &path,
        &lbd_config(dir, stem, p, HttpRequestKey::Unsupported),
    )?;
    match lbd_check(lbd_bin, &path)? {
        Ok(()) => Ok(HttpRequestKey::Unsupported),
        Err(output) => Err(BenchError::CommandFailed {
            command: format!("{} check -c {}", lbd_bin.display(), path.display()),
            status: "rejected the bench's config".into(),
            stderr: output,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> Params {
        Params::new(1000, "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into())
    }

    #[test]
    fn both_proxies_get_the_same_listeners_limits_and_timeouts() {
        let p = params();
        let hap = haproxy_config(&p);
        let lbd = lbd_config(Path::new("/d"), "lbd", &p, HttpRequestKey::Defaults);
        for port in PORTS {
            let bind = format!("{PROXY_FRONT_ADDR}:{port}");
            assert!(hap.contains(&bind) && lbd.contains(&bind), "{port}");
        }
        assert!(hap.contains("global\n    nbthread 1\n    maxconn 1000\n"));
        assert!(lbd.contains("\nmaxconn = 1000\n"));
        // Each frontend gets half, in both.
        for port in [WEB_PORT, SLOW_PORT] {
            assert!(hap.contains(&format!(
                "bind {PROXY_FRONT_ADDR}:{port}\n    maxconn 500\n"
            )));
        }
        assert!(lbd.contains("mode = \"http\"\nmaxconn = 500\ndefault_backend = \"web\"\n"));
        assert!(lbd.contains("mode = \"http\"\nmaxconn = 500\nredirect_https = true\n"));
        for t in ["connect", "client", "server", "queue"] {
            assert!(hap.contains(&format!("timeout {t} ")), "{t}");
            assert!(lbd.contains(&format!("\n{t} = ")), "{t}");
        }
        assert!(hap.contains("timeout http-request 10s"));
        assert!(hap.contains("stats auth admin:bench-stats-secret"));
        assert!(
            lbd.contains("[stats.users.admin]\ngroup = \"admin\"\npassword_hash = \"$argon2id$")
        );
        assert!(!hap.contains("\n    log"));
    }

    #[test]
    fn the_request_header_timeout_goes_where_the_binary_takes_it() {
        let p = params();
        let dir = Path::new("/d");
        let defaults = lbd_config(dir, "lbd", &p, HttpRequestKey::Defaults);
        assert!(defaults.contains("queue = \"10s\"\nhttp_request = \"10s\"\n"));
        assert!(!defaults.contains("timeout.http_request"));
        let frontends = lbd_config(dir, "lbd", &p, HttpRequestKey::Frontends);
        assert_eq!(
            frontends
                .matches("\ntimeout.http_request = \"10s\"\n")
                .count(),
            2
        );
        assert!(!frontends.contains("\nhttp_request"));
        let old = lbd_config(dir, "lbd-before", &p, HttpRequestKey::Unsupported);
        assert!(!old.contains("http_request"));
        assert!(old.contains("control_socket = \"/d/lbd-before.sock\""));
    }

    /// A stand-in for `lbd check -c FILE` whose verdict is the shell
    /// condition `test` on the file `$3`.
    fn fake_lbd(dir: &Path, name: &str, test: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join(name);
        let script = format!(
            "#!/bin/sh\n[ \"$1\" = check ] || exit 2\nif {test}; then exit 0; fi\necho \"$3:1: unknown key\"\nexit 1\n"
        );
        std::fs::write(&path, script).expect("write fake lbd");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        path
    }

    #[test]
    fn lbd_check_picks_the_form_the_binary_accepts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = params();
        let cases = [
            (
                "new-defaults",
                "grep -q '^http_request = ' \"$3\"",
                HttpRequestKey::Defaults,
            ),
            (
                "new-frontends",
                "grep -q '^timeout.http_request = ' \"$3\"",
                HttpRequestKey::Frontends,
            ),
            // An old lbd rejects the unknown key wherever it is.
            (
                "old",
                "! grep -q http_request \"$3\"",
                HttpRequestKey::Unsupported,
            ),
        ];
        for (name, test, want) in cases {
            let lbd = fake_lbd(dir.path(), name, test);
            let key = detect_http_request(&lbd, dir.path(), "lbd", &p).expect("detect");
            assert_eq!(key, want, "{name}");
        }
        // A config the binary rejects outright is an error carrying its
        // output, not a silent "unsupported".
        let lbd = fake_lbd(dir.path(), "rejects-all", "false");
        let e = detect_http_request(&lbd, dir.path(), "lbd", &p).expect_err("rejected");
        assert!(e.to_string().contains("unknown key"), "{e}");
    }

    #[test]
    fn the_frontends_share_the_global_limit() {
        let p = Params::new(2000, String::new());
        assert_eq!((p.slow_maxconn, p.web_maxconn), (1000, 1000));
        let p = Params::new(1001, String::new());
        assert_eq!(p.slow_maxconn + p.web_maxconn, 1001);
        // A tiny limit still leaves each frontend one.
        let p = Params::new(1, String::new());
        assert_eq!((p.slow_maxconn, p.web_maxconn), (1, 1));
    }
}
