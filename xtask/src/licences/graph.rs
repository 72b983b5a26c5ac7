//! Which crates end up linked into the programs: a walk over `cargo
//! metadata`'s resolve graph from the roots, through normal dependencies
//! only. Dev-dependencies (tests) and build-dependencies (build scripts,
//! run on the build host) are not shipped; proc-macros are normal
//! dependencies and are counted, which errs on the strict side.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// A crate that ships in a program, with its `license` field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Linked {
    pub name: String,
    pub version: String,
    pub licence: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    #[error("cargo metadata's output has no {what}: run it with --format-version 1 (and without --no-deps)")]
    Missing { what: &'static str },
    #[error("no workspace member named {root:?} in cargo metadata's output")]
    NoRoot { root: String },
}

/// Every crate reachable from the workspace members named `roots`
/// (the roots included), by name and version.
pub fn linked(metadata: &Value, roots: &[&str]) -> Result<Vec<Linked>, GraphError> {
    let packages = metadata["packages"]
        .as_array()
        .ok_or(GraphError::Missing { what: "packages" })?;
    let by_id: BTreeMap<&str, &Value> = packages
        .iter()
        .filter_map(|p| Some((p["id"].as_str()?, p)))
        .collect();
    let nodes = metadata["resolve"]["nodes"]
        .as_array()
        .ok_or(GraphError::Missing {
            what: "resolve.nodes",
        })?;
    let edges: BTreeMap<&str, Vec<&str>> = nodes
        .iter()
        .filter_map(|n| Some((n["id"].as_str()?, normal_deps(n))))
        .collect();
    let members: Vec<&str> = metadata["workspace_members"]
        .as_array()
        .ok_or(GraphError::Missing {
            what: "workspace_members",
        })?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let mut todo = Vec::new();
    for root in roots {
        let id = members
            .iter()
            .find(|id| by_id.get(*id).and_then(|p| p["name"].as_str()) == Some(root))
            .ok_or_else(|| GraphError::NoRoot {
                root: (*root).to_owned(),
            })?;
        todo.push(*id);
    }
    let mut seen = BTreeSet::new();
    while let Some(id) = todo.pop() {
        if seen.insert(id) {
            todo.extend(edges.get(id).into_iter().flatten().copied());
        }
    }
    Ok(seen
        .into_iter()
        .filter_map(|id| by_id.get(id))
        .map(|p| Linked {
            name: p["name"].as_str().unwrap_or("?").to_owned(),
            version: p["version"].as_str().unwrap_or("?").to_owned(),
            licence: p["license"].as_str().map(str::to_owned),
        })
        .collect())
}

/// The ids a resolve node depends on as a normal dependency (a
/// `dep_kinds` entry whose `kind` is null) on some target.
fn normal_deps(node: &Value) -> Vec<&str> {
    node["deps"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|dep| {
            dep["dep_kinds"]
                .as_array()
                .is_some_and(|kinds| kinds.iter().any(|k| k["kind"].is_null()))
        })
        .filter_map(|dep| dep["pkg"].as_str())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Input: `app` depends on `lib` (normal, and as a build-dependency
    /// too), on `gpl-test-helper` (dev only) and `gpl-codegen` (build
    /// only); `lib` depends on `leaf`; `other` is a member nobody asked
    /// for. Output: `app`, `lib` and `leaf`, with their licences.
    #[test]
    fn only_normal_dependencies_of_the_roots_are_linked() {
        let metadata: Value =
            serde_json::from_str(include_str!("../../test_data/licences/metadata.json"))
                .expect("fixture is JSON");
        let linked = linked(&metadata, &["app"]).expect("walks");
        let names: Vec<&str> = linked.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["app", "leaf", "lib"]);
        assert_eq!(linked[1].licence.as_deref(), Some("MIT"));
        assert!(matches!(
            super::linked(&metadata, &["nope"]),
            Err(GraphError::NoRoot { .. })
        ));
    }
}
