//! The desired state and its revisions, and their TOML form on disk.
//!
//! ```text
//! # The appliance's desired state, revision 8. Written by init: change it
//! # through the web console, the API or the console setup.
//! revision = 8
//! parent = 7
//! node = "lb1"
//! changed_at = 1764700000
//! changed_by = "console"
//! summary = "server cs3 added to horizon"
//!
//! [settings]
//! "network.ipv4" = "10.0.0.5/24"
//!
//! [services.backends.horizon.servers.cs3]
//! address = "10.0.0.13:443"
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The appliance's desired state: what an admin set on the appliance.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Document {
    /// Raw values by the settings table's keys (`network.ipv4`,
    /// `vrrp.priority`), parsed by the settings crate's merge as the
    /// `appliance` source.
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
    /// An lbd config layer (frontends, backends, servers, checks, stats
    /// users), applied on top of lbd's base config.
    #[serde(default)]
    pub services: toml::Table,
}

impl Document {
    /// The settings as the merge's `appliance` layer.
    pub fn settings_layer(&self) -> settings::Layer {
        let pairs = self
            .settings
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        settings::Layer::new(settings::Source::Appliance, pairs)
    }
}

/// Who made a revision, when and why: everything but the document.
///
/// Revision 0 is the empty store: it is never written, and the first
/// commit (revision 1) has it as its parent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    /// A counter, one more than the highest revision the store has had.
    pub revision: u64,
    /// The revision this one was based on.
    pub parent: u64,
    /// The node (hostname) that made it; a pair sync will exchange
    /// revisions of both nodes without a new format.
    pub node: String,
    /// Seconds since the Unix epoch, as the caller's clock said.
    pub changed_at: u64,
    /// `vsphere`, `console`, `api`, `restore`, ...
    pub changed_by: String,
    /// A sentence for the history list: "server cs3 added to horizon".
    pub summary: String,
}

/// One revision: its metadata and the document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Revision {
    pub meta: Meta,
    pub document: Document,
}

/// The file form: metadata first, then `[settings]` and `[services]`
/// (TOML wants plain values before tables).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RevisionFile {
    revision: u64,
    parent: u64,
    node: String,
    changed_at: u64,
    changed_by: String,
    summary: String,
    #[serde(default)]
    settings: BTreeMap<String, String>,
    #[serde(default)]
    services: toml::Table,
}

/// Why a revision file does not read.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    #[error("not valid UTF-8: {source}")]
    Utf8 { source: std::string::FromUtf8Error },
    /// Boxed: toml's error is large, and this one travels in every
    /// `Result` of the store.
    #[error("not a revision: {source}")]
    Parse { source: Box<toml::de::Error> },
    #[error("writing revision {revision} as TOML: {source}")]
    Serialize {
        revision: u64,
        source: toml::ser::Error,
    },
}

impl Revision {
    /// The file's text: a comment saying what it is, then the TOML.
    pub fn encode(&self) -> Result<String, DocumentError> {
        let file = RevisionFile {
            revision: self.meta.revision,
            parent: self.meta.parent,
            node: self.meta.node.clone(),
            changed_at: self.meta.changed_at,
            changed_by: self.meta.changed_by.clone(),
            summary: self.meta.summary.clone(),
            settings: self.document.settings.clone(),
            services: self.document.services.clone(),
        };
        let body = toml::to_string(&file).map_err(|source| DocumentError::Serialize {
            revision: self.meta.revision,
            source,
        })?;
        Ok(format!(
            "# The appliance's desired state, revision {}. Written by init: change it\n\
             # through the web console, the API or the console setup.\n{body}",
            self.meta.revision
        ))
    }

    /// Reads a file written by [`Revision::encode`].
    pub fn decode(bytes: Vec<u8>) -> Result<Self, DocumentError> {
        let text = String::from_utf8(bytes).map_err(|source| DocumentError::Utf8 { source })?;
        let file: RevisionFile = toml::from_str(&text).map_err(|e| DocumentError::Parse {
            source: Box::new(e),
        })?;
        Ok(Self {
            meta: Meta {
                revision: file.revision,
                parent: file.parent,
                node: file.node,
                changed_at: file.changed_at,
                changed_by: file.changed_by,
                summary: file.summary,
            },
            document: Document {
                settings: file.settings,
                services: file.services,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> Revision {
        let services: toml::Table =
            toml::from_str("[backends.horizon.servers.cs3]\naddress = \"10.0.0.13:443\"\n")
                .expect("literal");
        Revision {
            meta: Meta {
                revision: 8,
                parent: 7,
                node: "lb1".into(),
                changed_at: 1_764_700_000,
                changed_by: "console".into(),
                summary: "server cs3 added to horizon".into(),
            },
            document: Document {
                settings: [("network.ipv4".to_owned(), "10.0.0.5/24".to_owned())].into(),
                services,
            },
        }
    }

    #[test]
    fn encode_then_decode_gives_the_same_revision() {
        // Input: revision 8 with one setting and one server. Output: the
        // text the module doc shows, and decoding it gives revision 8 back.
        let text = example().encode().expect("encodes");
        assert!(text.contains("revision = 8\nparent = 7\n"), "{text}");
        assert!(
            text.contains("[settings]\n\"network.ipv4\" = \"10.0.0.5/24\"\n"),
            "{text}"
        );
        assert!(
            text.contains("[services.backends.horizon.servers.cs3]\n"),
            "{text}"
        );
        let back = Revision::decode(text.into_bytes()).expect("decodes");
        assert_eq!(back, example());
    }

    #[test]
    fn revision_travels_as_one_json_line() {
        // Input: revision 8. Output: JSON without a newline (one line of
        // the appliance socket), which reads back as revision 8.
        let json = serde_json::to_string(&example()).expect("to json");
        assert!(!json.contains('\n'));
        let back: Revision = serde_json::from_str(&json).expect("from json");
        assert_eq!(back, example());
    }

    #[test]
    fn truncated_file_is_a_parse_error() {
        // Input: the first half of a revision file. Output: a Parse error.
        let text = example().encode().expect("encodes");
        let half = text.as_bytes()[..text.len() / 2].to_vec();
        assert!(matches!(
            Revision::decode(half),
            Err(DocumentError::Parse { .. })
        ));
    }
}
