use super::*;

fn snapshot() -> Snapshot {
    Snapshot {
        version: "0.1.0".into(),
        hostname: "lb-a".into(),
        uptime_s: 7_384,
        addresses: vec![
            ("ens192".into(), "192.0.2.10/24".into()),
            ("ens192".into(), "192.0.2.100/24".into()),
        ],
        gateway: Some("192.0.2.1".into()),
        dns: vec!["192.0.2.53".into()],
        settings: "6 from ovf-env, 14 defaults".into(),
        problems: Vec::new(),
        service: "running (pid 154)".into(),
        lbd: LbdView::Answered {
            connections: 12,
            reloads: 0,
            stats: Some("192.0.2.10:8404".into()),
            frontends: vec![FrontendView {
                frontend: "horizon".into(),
                status: "OPEN".into(),
                active: 12,
            }],
            backends: vec![
                BackendView {
                    backend: "horizon".into(),
                    servers: 2,
                    usable: 2,
                },
                BackendView {
                    backend: "web".into(),
                    servers: 1,
                    usable: 0,
                },
            ],
            vrrp: vec![VrrpView {
                instance: "appliance".into(),
                state: "MASTER".into(),
                priority: 90,
                configured_priority: 100,
                virtual_ips: vec!["192.0.2.100/24".into()],
                for_s: 125,
            }],
        },
        console: Some(ConsoleRow {
            url: "https://192.0.2.10:5480/".into(),
            origin: "self-signed".into(),
            fingerprint: crate::console_tls::Fingerprint([0xa5; 32]).halves(),
        }),
        recent: (1..=30).map(|i| format!("log line {i}")).collect(),
    }
}

#[test]
fn everything_an_admin_looks_for_fits_80x25() {
    let screen = render(&snapshot(), 80, 25);
    assert_eq!(screen.len(), 25);
    assert!(screen.iter().all(|l| l.chars().count() <= 80));
    let text = screen.join("\n");
    for needle in [
        "Load balancer appliance 0.1.0  lb-a",
        "up 2h 03m",
        "ens192 192.0.2.10/24",
        "ens192 192.0.2.100/24",
        "gateway 192.0.2.1  dns 192.0.2.53",
        "6 from ovf-env, 14 defaults",
        "running (pid 154) - 12 connections",
        "http://192.0.2.10:8404/",
        "MASTER 192.0.2.100/24 priority 90 (of 100), for 2m 05s",
        "horizon OPEN 12",
        "horizon 2/2 up  web 0/1 up DOWN",
        "Problems  none",
        "Alt+F2",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    // The newest log lines, not the oldest.
    assert!(text.contains("log line 30"), "{text}");
    assert!(!text.contains("log line 1\n"), "{text}");
    assert!(screen[24].contains("Alt+F2"), "footer on the last row");
}

/// Input: lbd answering with no frontends and no backends (the image as
/// shipped). Output: the screen says no service is configured and how to
/// add one, instead of empty frontend and backend lists.
#[test]
fn no_services_says_how_to_add_one() {
    let mut s = snapshot();
    if let LbdView::Answered {
        frontends,
        backends,
        ..
    } = &mut s.lbd
    {
        frontends.clear();
        backends.clear();
    }
    let screen = render(&s, 80, 25);
    assert!(screen.iter().all(|l| l.chars().count() <= 80));
    let text = screen.join("\n");
    for needle in [
        "Services  no services configured.",
        "Service 1-4 slots (vApp Options, then restart the VM)",
        "lbd.config (base64)",
        "http://192.0.2.10:8404/",
        "Problems  none",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    assert!(!text.contains("Frontends"), "{text}");
    // With a service, the lists are back and the hint is gone.
    let text = render(&snapshot(), 80, 25).join("\n");
    assert!(text.contains("Frontends horizon OPEN 12"), "{text}");
    assert!(!text.contains("no services configured"), "{text}");
}

#[test]
fn problems_and_an_unreachable_lbd_are_shown() {
    let mut s = snapshot();
    s.problems = vec!["network.ipv4 = 300.1.1.1 (ovf-env): not an IPv4 address".into()];
    s.lbd = LbdView::Unreachable("connection refused".into());
    s.service = "restarting in 400 ms (attempt 3)".into();
    let text = render(&s, 80, 25).join("\n");
    assert!(
        text.contains("PROBLEMS  network.ipv4 = 300.1.1.1"),
        "{text}"
    );
    assert!(
        text.contains("restarting in 400 ms (attempt 3) - not answering: connection refused"),
        "{text}"
    );
}

#[test]
fn small_and_large_screens_keep_the_shape() {
    let s = snapshot();
    let small = render(&s, 20, 5);
    assert_eq!(small.len(), MIN_ROWS);
    assert!(small.iter().all(|l| l.chars().count() <= MIN_COLS));
    assert!(small.last().is_some_and(|l| l.contains("Alt+F2")));
    let big = render(&s, 128, 48);
    assert_eq!(big.len(), 48);
    assert!(big[0].ends_with("up 2h 03m "), "{:?}", big[0]);
    // Long lines are cut on characters, never inside a UTF-8 sequence.
    let mut wide = s;
    wide.hostname = "é".repeat(200);
    assert!(render(&wide, 80, 25)[0].chars().count() <= 80);
}

/// Input: log lines indented with tabs (nft's ruleset) and one carrying an
/// escape sequence. Output: spaces to the next tab stop, the escape made
/// harmless, every line within the width.
#[test]
fn tabs_and_control_characters_never_reach_the_console() {
    let mut s = snapshot();
    s.recent = vec![
        "init: \tchain forward {".to_string(),
        "lbd: path=/\x1b[2Jx".to_string(),
    ];
    let screen = render(&s, 80, 25);
    // Tab stops count from the screen's first column, as the console's do.
    let chain = screen.iter().find(|l| l.ends_with("chain forward {"));
    assert_eq!(chain.and_then(|l| l.find("chain")), Some(16), "{screen:#?}");
    assert!(
        screen.iter().all(|l| !l.contains(['\t', '\x1b'])),
        "{screen:#?}"
    );
    assert!(
        screen.iter().any(|l| l.contains("path=/?[2Jx")),
        "{screen:#?}"
    );
    assert_eq!(fit("\tx", 4), "    ");
}

#[test]
fn paint_colours_whole_words_only() {
    assert_eq!(paint("a MASTER b"), "a \x1b[1;32mMASTER\x1b[0m b");
    assert_eq!(paint("MASTERS DOWNLOAD"), "MASTERS DOWNLOAD");
    assert!(paint("web 0/1 up DOWN").contains("\x1b[1;31mDOWN"));
}

/// Input: the console set up with a self-signed certificate.
/// Output: its URL and the whole fingerprint, split over two rows that
/// fit 80 columns, joined they are the 95-character form browsers show.
#[test]
fn console_url_and_fingerprint_fit_80_columns() {
    let screen = render(&snapshot(), 80, 25);
    assert!(screen.iter().all(|l| l.chars().count() <= 80));
    let at = screen
        .iter()
        .position(|l| l.starts_with(" Console   https://192.0.2.10:5480/ (self-signed)"))
        .unwrap_or_else(|| panic!("no console row in:\n{}", screen.join("\n")));
    let first = screen[at + 1]
        .trim()
        .strip_prefix("SHA-256 ")
        .expect("fingerprint");
    let joined = format!("{first}{}", screen[at + 2].trim());
    assert_eq!(
        joined,
        crate::console_tls::Fingerprint([0xa5; 32]).to_string()
    );
}
