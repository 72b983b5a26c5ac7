//! The settings `image-builder run` hands the VM, as vCenter would: from
//! `--settings FILE` and `--set key=value`, checked against the property
//! table before QEMU starts, delivered as an OVF environment.

use std::path::{Path, PathBuf};

use settings::{Layer, Source};

#[derive(Debug, thiserror::Error)]
pub enum RunSettingsError {
    #[error("--set {arg:?}: expected key=value, e.g. --set network.mode=static")]
    NotAPair { arg: String },
    #[error("reading --settings {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("--settings {}: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    #[error("{count} setting(s) would be refused by the appliance, nothing started:\n{list}")]
    Invalid { count: usize, list: String },
}

/// The pairs to deliver, in order (a later one wins): the file's, then
/// each `--set`. Keys may carry the OVF class prefix (`appliance.`).
pub fn collect(
    file: Option<&Path>,
    sets: &[String],
) -> Result<Vec<(String, String)>, RunSettingsError> {
    let mut pairs = match file {
        Some(path) => read_file(path)?,
        None => Vec::new(),
    };
    for arg in sets {
        let Some((key, value)) = arg.split_once('=') else {
            return Err(RunSettingsError::NotAPair { arg: arg.clone() });
        };
        let key = key.trim();
        let key = key.strip_prefix("appliance.").unwrap_or(key);
        if key.is_empty() {
            return Err(RunSettingsError::NotAPair { arg: arg.clone() });
        }
        pairs.push((key.to_string(), value.to_string()));
    }
    Ok(pairs)
}

/// A settings file is TOML like appliance.toml's `[settings]`: either that
/// table (so an appliance.toml works too) or the keys at the top level.
fn read_file(path: &Path) -> Result<Vec<(String, String)>, RunSettingsError> {
    let text = std::fs::read_to_string(path).map_err(|source| RunSettingsError::Read {
        path: path.into(),
        source,
    })?;
    let parse_err = |message: String| RunSettingsError::Parse {
        path: path.into(),
        message,
    };
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| parse_err(e.to_string()))?;
    let settings_table = match table.get("settings") {
        Some(toml::Value::Table(t)) => t.clone(),
        _ => table,
    };
    let mut wrapped = toml::Table::new();
    wrapped.insert("settings".into(), toml::Value::Table(settings_table));
    let text = toml::to_string(&wrapped).map_err(|e| parse_err(e.to_string()))?;
    settings::baked::parse(&text, path)
        .map(|layer| layer.pairs)
        .map_err(|e| parse_err(e.to_string()))
}

/// The settings the guest will merge: the image's baked ones under the
/// delivered ones. Every delivered value the appliance would refuse is an
/// error here, so a typo never boots a VM that ignores it.
pub fn check(
    baked: Option<Layer>,
    delivered: &[(String, String)],
) -> Result<settings::Merged, RunSettingsError> {
    let mut layers: Vec<Layer> = baked.into_iter().collect();
    layers.push(Layer::new(Source::OvfEnv, delivered.to_vec()));
    let merged = settings::merge(layers);
    let refused: Vec<String> = merged
        .errors
        .iter()
        .filter(|e| e.source == Source::OvfEnv)
        .map(|e| format!("  {e}"))
        .collect();
    if !refused.is_empty() {
        return Err(RunSettingsError::Invalid {
            count: refused.len(),
            list: refused.join("\n"),
        });
    }
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_override_the_file_and_lose_the_class_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("site.toml");
        std::fs::write(
            &file,
            "hostname = \"lb-file\"\n[network]\nmode = \"dhcp\"\n",
        )
        .unwrap();
        let pairs = collect(
            Some(&file),
            &[
                "appliance.network.mode=static".into(),
                "network.ipv4=10.0.2.15/24".into(),
                "hostname=lb-a".into(),
            ],
        )
        .unwrap();
        let merged = check(None, &pairs).unwrap();
        assert_eq!(merged.settings.hostname, "lb-a");
        assert_eq!(merged.origins["network.mode"].raw, "static");
        assert_eq!(merged.origins["network.mode"].source, Source::OvfEnv);
    }

    #[test]
    fn an_appliance_toml_is_a_settings_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("appliance.toml");
        std::fs::write(
            &file,
            "[appliance]\nname = \"x\"\n[settings]\nhostname = \"lb-baked\"\n",
        )
        .unwrap();
        assert_eq!(
            collect(Some(&file), &[]).unwrap(),
            [("hostname".to_string(), "lb-baked".to_string())]
        );
    }

    #[test]
    fn bad_input_is_refused_before_anything_starts() {
        let err = collect(None, &["network.mode".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("key=value"), "{err}");
        let pairs = collect(
            None,
            &[
                "network.ipv4=10.0.0.300/24".into(),
                "netwrk.mode=static".into(),
            ],
        )
        .unwrap();
        let err = check(None, &pairs).unwrap_err().to_string();
        assert!(err.contains("2 setting(s)"), "{err}");
        assert!(
            err.contains("network.ipv4") && err.contains("netwrk.mode"),
            "{err}"
        );
    }
}
