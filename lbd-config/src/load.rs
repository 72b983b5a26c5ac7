//! Reading and layering config files.
//!
//! Files are applied in command-line order, later wins: tables merge key by
//! key, any other value (including arrays) replaces the earlier one. The
//! merged table is then deserialized into [`Config`] and validated. Every
//! error is reported as `file:line: key: message`, where the line is the
//! place in the last file that set the key (or its nearest enclosing table).

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde_path_to_error::Segment;
use toml_edit::{ImDocument, Item};

use crate::schema::Config;
use crate::validate::{validate, Checks, Problem};

/// One file's text and its span-preserving parse, kept to locate errors.
struct Source {
    path: PathBuf,
    text: String,
    doc: ImDocument<String>,
}

/// One config error: where and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("reading config {}: {message}", path.display())]
    Read { path: PathBuf, message: String },
    #[error("{}:{line}:{column}: TOML syntax: {message}", path.display())]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{location}: {key}: {message}")]
    Invalid {
        location: Location,
        key: String,
        message: String,
    },
}

/// A file and, when the key was found in it, a 1-based line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub path: PathBuf,
    pub line: Option<usize>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}", self.path.display()),
            None => write!(f, "{}", self.path.display()),
        }
    }
}

/// All errors found in a set of files (never empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Reads, layers, deserializes and validates `paths` in order: lbd's
/// effective config, or every error with its file and line.
pub fn load_files(paths: &[PathBuf]) -> Result<Config, ConfigErrors> {
    load_files_checked(paths, &Checks::default())
}

/// Like [`load_files`] with the texts already read (tests, property tests,
/// a program that holds the texts).
pub fn load_texts(files: Vec<(PathBuf, String)>) -> Result<Config, ConfigErrors> {
    load_texts_checked(files, &Checks::default())
}

/// [`load_files`] with the checks only the caller can make (lbd's TLS).
pub fn load_files_checked(paths: &[PathBuf], checks: &Checks) -> Result<Config, ConfigErrors> {
    let mut texts = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        match std::fs::read_to_string(path) {
            Ok(text) => texts.push((path.clone(), text)),
            Err(e) => errors.push(ConfigError::Read {
                path: path.clone(),
                message: e.to_string(),
            }),
        }
    }
    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }
    load_texts_checked(texts, checks)
}

/// [`load_texts`] with the checks only the caller can make (lbd's TLS).
pub fn load_texts_checked(
    files: Vec<(PathBuf, String)>,
    checks: &Checks,
) -> Result<Config, ConfigErrors> {
    if files.is_empty() {
        return Err(ConfigErrors(vec![ConfigError::Read {
            path: PathBuf::from("(none)"),
            message: "no config file given: pass -c FILE".into(),
        }]));
    }
    let mut sources = Vec::new();
    let mut errors = Vec::new();
    let mut merged = toml::Table::new();
    for (path, text) in files {
        let table: toml::Table = match toml::from_str(&text) {
            Ok(t) => t,
            Err(e) => {
                errors.push(syntax_error(&path, &text, &e));
                continue;
            }
        };
        let doc = match ImDocument::parse(text.clone()) {
            Ok(d) => d,
            Err(e) => {
                let (line, column) = line_col(&text, e.span().map_or(0, |s| s.start));
                errors.push(ConfigError::Syntax {
                    path,
                    line,
                    column,
                    message: e.message().to_string(),
                });
                continue;
            }
        };
        merge(&mut merged, table);
        sources.push(Source { path, text, doc });
    }
    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }
    let config: Config = match serde_path_to_error::deserialize(toml::Value::Table(merged)) {
        Ok(c) => c,
        Err(e) => {
            let mut key = path_segments(e.path());
            let message = e.inner().message().trim().to_string();
            if let Some(field) = unknown_field(&message) {
                if key.last() != Some(&field) {
                    key.push(field);
                }
            }
            let message = hint(&key, message);
            return Err(ConfigErrors(vec![invalid(&sources, &key, message)]));
        }
    };
    let problems = validate(&config, checks);
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(ConfigErrors(
            problems
                .into_iter()
                .map(|Problem { key, message }| invalid(&sources, &key, message))
                .collect(),
        ))
    }
}

/// Deep merge: tables merge per key, everything else is replaced.
fn merge(base: &mut toml::Table, overlay: toml::Table) {
    for (key, value) in overlay {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(key, v);
            }
        }
    }
}

fn syntax_error(path: &Path, text: &str, e: &toml::de::Error) -> ConfigError {
    let (line, column) = line_col(text, e.span().map_or(0, |s| s.start));
    ConfigError::Syntax {
        path: path.to_path_buf(),
        line,
        column,
        message: e.message().trim().to_string(),
    }
}

fn path_segments(path: &serde_path_to_error::Path) -> Vec<String> {
    path.iter()
        .filter_map(|s| match s {
            Segment::Seq { index } => Some(index.to_string()),
            Segment::Map { key } => Some(key.clone()),
            Segment::Enum { variant } => Some(variant.clone()),
            Segment::Unknown => None,
        })
        .collect()
}

/// serde names an unknown key only in its message: pull it out so the error
/// points at the key's own line.
fn unknown_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    Some(rest.split('`').next()?.to_string())
}

fn hint(key: &[String], message: String) -> String {
    let address_key = key.iter().any(|k| k == "address" || k == "bind");
    if address_key && message.contains("invalid socket address") {
        return format!(
            "{message}: write IP:port such as 192.0.2.10:443 or [2001:db8::1]:443 \
             (binds need an IP address)"
        );
    }
    message
}

fn invalid(sources: &[Source], key: &[String], message: String) -> ConfigError {
    ConfigError::Invalid {
        location: locate(sources, key),
        key: if key.is_empty() {
            "(top level)".into()
        } else {
            key.join(".")
        },
        message,
    }
}

/// The latest file that holds the deepest prefix of `key`, and its line.
fn locate(sources: &[Source], key: &[String]) -> Location {
    let mut best: Option<(usize, &Source, Range<usize>)> = None;
    for source in sources.iter().rev() {
        if let Some((depth, span)) = find_span(source.doc.as_table(), key) {
            if best.as_ref().is_none_or(|(d, _, _)| depth > *d) {
                best = Some((depth, source, span));
            }
        }
    }
    match best {
        Some((_, source, span)) => Location {
            path: source.path.clone(),
            line: Some(line_col(&source.text, span.start).0),
        },
        None => Location {
            path: sources
                .last()
                .map_or_else(|| PathBuf::from("(none)"), |s| s.path.clone()),
            line: None,
        },
    }
}

/// Walks `key` down `table`; returns how many segments matched and the span
/// of the last matched key.
fn find_span(table: &toml_edit::Table, key: &[String]) -> Option<(usize, Range<usize>)> {
    let mut found = None;
    let mut item: Option<&Item> = None;
    let mut current: &dyn toml_edit::TableLike = table;
    for (depth, seg) in key.iter().enumerate() {
        if let Some(it) = item {
            if let Some(t) = it.as_table_like() {
                current = t;
            } else if let (Some(arr), Ok(i)) = (it.as_array_of_tables(), seg.parse::<usize>()) {
                match arr.get(i) {
                    Some(t) => {
                        if let Some(span) = t.span() {
                            found = Some((depth + 1, span));
                        }
                        item = None;
                        current = t;
                        continue;
                    }
                    None => break,
                }
            } else {
                break;
            }
        }
        match current.get_key_value(seg) {
            Some((k, v)) => {
                if let Some(span) = k.span().or_else(|| v.span()) {
                    found = Some((depth + 1, span));
                }
                item = Some(v);
            }
            None => break,
        }
    }
    found
}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before
        .rfind('\n')
        .map_or(before.len(), |p| before.len() - p - 1)
        + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(files: &[(&str, &str)]) -> Result<Config, ConfigErrors> {
        load_texts(
            files
                .iter()
                .map(|(p, t)| (PathBuf::from(p), t.to_string()))
                .collect(),
        )
    }

    #[test]
    fn later_file_wins_per_key() {
        let base = "[backends.b]\nbalance = \"source\"\n[backends.b.servers.s1]\naddress = \"127.0.0.1:1\"\nweight = 5\n";
        let overlay = "[backends.b.servers.s1]\nweight = 7\n";
        let config = load(&[("base.toml", base), ("over.toml", overlay)]).unwrap();
        let server = &config.backends["b"].servers["s1"];
        assert_eq!(server.weight, 7);
        assert_eq!(server.address.port(), 1);
        assert_eq!(config.backends["b"].balance, crate::Balance::Source);
    }

    #[test]
    fn unknown_key_points_at_its_line() {
        let text = "[backends.b]\nbalance = \"source\"\nbalanse = \"x\"\n";
        let err = load(&[("a.toml", text)]).unwrap_err().to_string();
        assert!(
            err.starts_with("a.toml:3: backends.b.balanse: unknown field"),
            "{err}"
        );
    }

    #[test]
    fn error_in_overlay_names_the_overlay() {
        let base = "[backends.b.servers.s1]\naddress = \"127.0.0.1:1\"\n";
        let overlay = "\n\n[backends.b.servers.s1]\nweight = \"heavy\"\n";
        let err = load(&[("base.toml", base), ("over.toml", overlay)])
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("over.toml:4: backends.b.servers.s1.weight:"),
            "{err}"
        );
    }

    #[test]
    fn syntax_error_has_line_and_column() {
        let err = load(&[("a.toml", "[global]\nmaxconn = = 3\n")])
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("a.toml:2:"), "{err}");
        assert!(err.contains("TOML syntax"), "{err}");
    }

    #[test]
    fn missing_field_points_at_table() {
        let text = "[backends.b]\n[backends.b.servers.s1]\nweight = 2\n";
        let err = load(&[("a.toml", text)]).unwrap_err().to_string();
        assert!(err.starts_with("a.toml:2: backends.b.servers.s1"), "{err}");
        assert!(err.contains("missing field `address`"), "{err}");
    }

    #[test]
    fn server_names_are_accepted_bind_names_are_not() {
        let ok = "[backends.b.servers.s1]\naddress = \"cs1.example.com:443\"\n";
        let config = load(&[("a.toml", ok)]).expect("a server may be given by name");
        assert_eq!(
            config.backends["b"].servers["s1"].address.host(),
            Some("cs1.example.com")
        );
        let bad = "[frontends.f]\nbind = [\"vip.example.com:443\"]\n";
        let err = load(&[("a.toml", bad)]).unwrap_err().to_string();
        assert!(err.contains("binds need an IP address"), "{err}");
        assert!(err.starts_with("a.toml:2:"), "{err}");
    }

    #[test]
    fn line_col_counts_from_one() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
        assert_eq!(line_col("ab", 99), (1, 3));
    }
}
