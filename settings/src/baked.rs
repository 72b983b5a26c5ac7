//! The baked settings: the `[settings]` table of `/etc/appliance/appliance.toml`.
//!
//! Keys are the table's keys; dotted keys and sub-tables are the same thing
//! in TOML, so both of these set `network.mode`:
//!
//! ```toml
//! [settings]
//! hostname = "lb1"
//! network.mode = "static"
//!
//! [settings.vrrp]
//! priority = 150
//! peers = ["192.0.2.11"]
//! ```
//!
//! Numbers and booleans become their text, arrays a comma separated list;
//! the property table then parses them like any other source's text.

use std::io;
use std::path::{Path, PathBuf};

use crate::source::{Layer, Source};

/// Where the image builder puts the baked file in the guest.
pub const BAKED_PATH: &str = "/etc/appliance/appliance.toml";
/// The table holding the settings.
const SETTINGS_TABLE: &str = "settings";

/// Reading or parsing the baked file failed.
#[derive(Debug, thiserror::Error)]
pub enum BakedError {
    /// The file exists but cannot be read.
    #[error("reading baked settings {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The file is not TOML.
    #[error("parsing baked settings {}: {message} (fix the file in the image's appliance.toml)", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The TOML parser's message, with line and column.
        message: String,
    },
    /// `settings` is a value, not a table.
    #[error("baked settings {}: `settings` must be a table ([settings])", path.display())]
    NotATable {
        /// The file.
        path: PathBuf,
    },
}

/// Reads the baked file; a missing file is an empty layer (an image may
/// bake no settings at all).
pub fn load(path: &Path) -> Result<Layer, BakedError> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text, path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Layer::new(Source::Baked, Vec::new())),
        Err(source) => Err(BakedError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Parses the text of the baked file; `path` only names it in errors.
pub fn parse(text: &str, path: &Path) -> Result<Layer, BakedError> {
    let doc: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| BakedError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
    let mut pairs = Vec::new();
    match doc.get(SETTINGS_TABLE) {
        None => {}
        Some(toml::Value::Table(table)) => flatten("", table, &mut pairs),
        Some(_) => {
            return Err(BakedError::NotATable {
                path: path.to_owned(),
            })
        }
    }
    Ok(Layer::new(Source::Baked, pairs))
}

fn flatten(prefix: &str, table: &toml::Table, out: &mut Vec<(String, String)>) {
    for (key, value) in table {
        let key = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            toml::Value::Table(t) => flatten(&key, t, out),
            other => out.push((key, text(other))),
        }
    }
}

fn text(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => s.clone(),
        toml::Value::Array(items) => items.iter().map(text).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merge::merge;

    #[test]
    fn good_file_flattens_tables_and_arrays() {
        let layer = parse(
            include_str!("../test_data/baked/good.toml"),
            Path::new("good.toml"),
        )
        .expect("good fixture parses");
        let m = merge([layer]);
        assert!(m.errors.is_empty(), "{:?}", m.errors);
        let s = &m.settings;
        assert_eq!(s.hostname, "lb1");
        assert_eq!(
            s.network.ipv4.map(|c| c.to_string()).as_deref(),
            Some("192.0.2.10/24")
        );
        assert_eq!(s.vrrp.priority, 150);
        assert_eq!(s.vrrp.peers.len(), 2);
        assert!(!s.network.slaac);
        assert_eq!(m.origins["vrrp.priority"].source, Source::Baked);
        assert_eq!(
            s.sysctls,
            vec![("net.core.somaxconn".to_owned(), "4096".to_owned())]
        );
    }

    #[test]
    fn file_without_settings_table_is_empty() {
        let layer = parse("[image]\nname = \"lb\"\n", Path::new("a.toml")).expect("parses");
        assert!(layer.pairs.is_empty());
    }

    #[test]
    fn bad_syntax_names_file_and_line() {
        let err = parse(
            include_str!("../test_data/baked/bad_syntax.toml"),
            Path::new("bad_syntax.toml"),
        )
        .expect_err("bad fixture");
        let msg = err.to_string();
        assert!(
            msg.contains("bad_syntax.toml") && msg.contains("line 3"),
            "{msg}"
        );
    }

    #[test]
    fn settings_must_be_a_table() {
        let err = parse("settings = 1\n", Path::new("x.toml")).expect_err("not a table");
        assert!(matches!(err, BakedError::NotATable { .. }));
    }

    #[test]
    fn missing_file_is_an_empty_layer() {
        let layer = load(Path::new("/nonexistent/appliance.toml")).expect("missing is fine");
        assert!(layer.pairs.is_empty());
    }
}
