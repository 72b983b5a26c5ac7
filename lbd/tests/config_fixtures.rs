//! Good fixtures load; each bad fixture fails with the error its first line
//! (`# expect: ...`) names, including file and line.

use std::path::{Path, PathBuf};

fn fixtures(dir: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("fixtures dir exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/appliance.toml")
}

#[test]
fn example_config_is_valid() {
    let config = lbd::config::load_files(&[example()]).expect("example loads");
    assert_eq!(
        config.backends["horizon"].balance,
        lbd::config::Balance::Source
    );
    assert_eq!(config.stats.expect("stats").users.len(), 2);
}

#[test]
fn good_fixtures_load() {
    for file in fixtures("good") {
        // Overlays are layered on the example, as an admin would.
        let files = vec![example(), file.clone()];
        if let Err(e) = lbd::config::load_files(&files) {
            panic!("{} should load: {e}", file.display());
        }
    }
}

#[test]
fn overlay_changes_one_key() {
    let overlay = fixtures("good")
        .into_iter()
        .find(|p| p.ends_with("overlay_weight.toml"))
        .expect("overlay fixture");
    let config = lbd::config::load_files(&[example(), overlay]).expect("loads");
    let servers = &config.backends["horizon"].servers;
    assert_eq!(servers["cs2"].weight, 0);
    assert_eq!(servers["cs1"].weight, 1);
    assert_eq!(servers["cs2"].address.port(), 443);
}

#[test]
fn bad_fixtures_fail_with_file_line_and_key() {
    let bad = fixtures("bad");
    assert!(bad.len() >= 10);
    for file in bad {
        let text = std::fs::read_to_string(&file).expect("readable");
        let expect = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{} lacks `# expect:`", file.display()));
        let name = format!(
            "bad/{}",
            file.file_name().and_then(|n| n.to_str()).unwrap_or("")
        );
        let err = lbd::config::load_texts(vec![(PathBuf::from(&name), text.clone())])
            .expect_err(&name)
            .to_string();
        assert!(
            err.contains(expect),
            "{name}: expected `{expect}` in:\n{err}"
        );
    }
}
