//! OVF environment documents as vSphere writes them, for the tests that
//! deliver settings to the guest (fw_cfg or an `OVF ENV` CD).

/// An ESXi-shaped environment carrying `appliance.<key>` properties.
pub fn environment(properties: &[(&str, &str)]) -> String {
    let owned: Vec<(String, String)> = properties
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect();
    settings::environment_xml(&owned)
}
