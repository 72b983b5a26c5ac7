//! OVF environment documents as vSphere writes them, for the tests that
//! deliver settings to the guest (fw_cfg or an `OVF ENV` CD).

/// An ESXi-shaped environment carrying `appliance.<key>` properties.
pub fn environment(properties: &[(&str, &str)]) -> String {
    let props: String = properties
        .iter()
        .map(|(k, v)| format!("    <Property oe:key=\"appliance.{k}\" oe:value=\"{v}\"/>\n"))
        .collect();
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<Environment xmlns="http://schemas.dmtf.org/ovf/environment/1"
  xmlns:oe="http://schemas.dmtf.org/ovf/environment/1"
  xmlns:ve="http://www.vmware.com/schema/ovfenv" oe:id="" ve:esxId="42">
  <PlatformSection><Kind>VMware ESXi</Kind><Version>8.0.3</Version></PlatformSection>
  <PropertySection>
{props}  </PropertySection>
</Environment>
"#
    )
}
