//! Validation before a commit: a refused change changes nothing.
//!
//! Settings are parsed by the settings crate's merge as the `appliance`
//! source on top of the lower layers (baked, vSphere), so checks across
//! keys see what the appliance will run with ("static without an address"
//! is fine when vSphere gives the address). Services are loaded by
//! `lbd_config` on top of lbd's base config, exactly as lbd will load them.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::document::Document;

/// The name the services layer has in lbd's error messages.
pub const SERVICES_NAME: &str = "appliance store [services]";

/// What a document is checked against: everything below it.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    /// The settings layers below the store (baked, ovf-env, guestinfo).
    pub lower: Vec<settings::Layer>,
    /// lbd's base config files, `(name, text)`, in order; the services
    /// layer goes on top. Empty when there is none (a bare test).
    pub lbd_base: Vec<(PathBuf, String)>,
}

/// One refused value: which key, what was given, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// `settings.<key>` or `services` (lbd's message names the key).
    pub key: String,
    /// The value (secrets masked), or empty for services.
    pub value: String,
    /// What is wrong and what a good value looks like.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.value.is_empty() {
            write!(f, "{}: {}", self.key, self.message)
        } else {
            write!(f, "{} = {:?}: {}", self.key, self.value, self.message)
        }
    }
}

/// Every problem of a refused document (never empty).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct Problems(pub Vec<Problem>);

/// A document that passed [`validate`] (or that the vSphere rule made by
/// only removing keys): the only kind a store commits.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidDocument(Document);

impl ValidDocument {
    pub fn document(&self) -> &Document {
        &self.0
    }

    pub fn into_document(self) -> Document {
        self.0
    }

    /// For the vSphere rule: removing stored keys cannot add a value the
    /// store did not already hold, and the boot's merge reports any stored
    /// value that no longer parses.
    pub(crate) fn trusted(document: Document) -> Self {
        Self(document)
    }
}

/// Checks `document` against `rules`: every problem, or the document as
/// one that may be committed.
pub fn validate(document: Document, rules: &Rules) -> Result<ValidDocument, Problems> {
    let mut problems = settings_problems(&document, rules);
    problems.extend(services_problems(&document, rules));
    if problems.is_empty() {
        Ok(ValidDocument(document))
    } else {
        Err(Problems(problems))
    }
}

fn settings_problems(document: &Document, rules: &Rules) -> Vec<Problem> {
    let mut layers = rules.lower.clone();
    layers.push(document.settings_layer());
    settings::merge(layers)
        .errors
        .into_iter()
        .filter(|e| e.source == settings::Source::Appliance)
        .map(|e| Problem {
            key: format!("settings.{}", e.key),
            value: e.value,
            message: e.message,
        })
        .collect()
}

fn services_problems(document: &Document, rules: &Rules) -> Vec<Problem> {
    if document.services.is_empty() {
        // Nothing on top of the base: lbd's own checks cover it.
        return Vec::new();
    }
    let text = match toml::to_string(&document.services) {
        Ok(t) => t,
        Err(e) => {
            return vec![Problem {
                key: "services".into(),
                value: String::new(),
                message: format!("not expressible as TOML: {e}"),
            }]
        }
    };
    let mut files = rules.lbd_base.clone();
    files.push((PathBuf::from(SERVICES_NAME), text));
    match lbd_config::load_texts(files) {
        Ok(_) => Vec::new(),
        Err(errors) => errors
            .0
            .into_iter()
            .map(|e| Problem {
                key: "services".into(),
                value: String::new(),
                message: e.to_string(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(settings: &[(&str, &str)], services: &str) -> Document {
        Document {
            settings: settings
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            services: toml::from_str(services).expect("literal"),
        }
    }

    #[test]
    fn good_document_passes() {
        // Input: a priority and one backend with a server. Output: valid.
        let d = doc(
            &[("vrrp.priority", "150")],
            "[backends.b.servers.s1]\naddress = \"10.0.0.11:443\"\n",
        );
        assert!(validate(d, &Rules::default()).is_ok());
    }

    #[test]
    fn bad_setting_and_bad_service_are_both_refused() {
        // Input: priority 999 and a server without an address. Output: two
        // problems, one naming settings.vrrp.priority, one lbd's error.
        let d = doc(
            &[("vrrp.priority", "999")],
            "[backends.b.servers.s1]\nweight = 2\n",
        );
        let problems = validate(d, &Rules::default()).expect_err("refused").0;
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert_eq!(problems[0].key, "settings.vrrp.priority");
        assert_eq!(problems[0].value, "999");
        assert!(problems[1].message.contains("missing field `address`"));
        assert!(problems[1].message.contains(SERVICES_NAME));
    }

    #[test]
    fn checks_across_keys_see_the_lower_layers() {
        // Input: the store says static, vSphere gives the address. Output:
        // valid; without the vSphere layer the same document is refused.
        let d = doc(&[("network.mode", "static")], "");
        let rules = Rules {
            lower: vec![settings::Layer::new(
                settings::Source::OvfEnv,
                vec![("network.ipv4".into(), "10.0.0.5/24".into())],
            )],
            lbd_base: Vec::new(),
        };
        assert!(validate(d.clone(), &rules).is_ok());
        let problems = validate(d, &Rules::default()).expect_err("refused").0;
        assert_eq!(problems[0].key, "settings.network.ipv4");
    }
}
