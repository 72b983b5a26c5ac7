//! `guestinfo.appliance.<key>` variables (set with `vmware-rpctool`,
//! `govc vm.change -e` or the VM's advanced configuration).
//!
//! The guest cannot list guestinfo variables, so init asks for each
//! property's variable by name ([`variables`]) and hands the answers here.

use crate::source::{Layer, Source};
use crate::table::{properties, OVF_CLASS};

/// The prefix every guestinfo variable has.
pub const GUESTINFO_PREFIX: &str = "guestinfo.";
/// The variable carrying the OVF environment.
pub const OVF_ENV_VARIABLE: &str = "guestinfo.ovfEnv";

/// The variables to ask for, one per property: `guestinfo.appliance.<key>`.
pub fn variables() -> Vec<String> {
    properties().iter().map(|p| p.guestinfo_key()).collect()
}

/// The layer from the variables found: `(variable, value)` with the
/// variable as [`variables`] names it (or without `guestinfo.`).
pub fn parse(found: impl IntoIterator<Item = (String, String)>) -> Layer {
    let prefix = format!("{OVF_CLASS}.");
    let pairs = found
        .into_iter()
        .map(|(var, value)| {
            let rest = var.strip_prefix(GUESTINFO_PREFIX).unwrap_or(&var);
            let key = rest.strip_prefix(&prefix).unwrap_or(rest);
            (key.to_owned(), value)
        })
        .collect();
    Layer::new(Source::Guestinfo, pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_round_trip_to_keys() {
        let vars = variables();
        assert!(vars.contains(&"guestinfo.appliance.network.mode".to_owned()));
        let layer = parse(vars.iter().map(|v| (v.clone(), "x".to_owned())));
        let keys: Vec<&str> = layer.pairs.iter().map(|(k, _)| k.as_str()).collect();
        let table: Vec<&str> = properties().iter().map(|p| p.key).collect();
        assert_eq!(keys, table);
        assert_eq!(layer.source, Source::Guestinfo);
    }
}
