//! Writing an OVF environment document, as vSphere hands one to a VM: for
//! `image-builder run --set`, and for tests that deliver settings the way
//! vCenter does. [`OvfEnvironment::parse`](crate::OvfEnvironment::parse)
//! reads it back.

use crate::table::OVF_CLASS;

/// An ESXi-shaped environment whose `PropertySection` carries each
/// `(key, value)` as `appliance.<key>`, values escaped for an XML attribute
/// (also newlines and tabs, which attribute normalisation would turn into
/// spaces).
pub fn environment_xml(properties: &[(String, String)]) -> String {
    let props: String = properties
        .iter()
        .map(|(k, v)| {
            format!(
                "    <Property oe:key=\"{}\" oe:value=\"{}\"/>\n",
                attribute(&format!("{OVF_CLASS}.{k}")),
                attribute(v)
            )
        })
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

fn attribute(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OvfEnvironment;

    #[test]
    fn values_survive_the_round_trip() {
        let props = vec![
            ("hostname".to_string(), "lb-a".to_string()),
            (
                "admin.password".to_string(),
                "a&b<c>\"d'e\nf\tg".to_string(),
            ),
        ];
        let env = OvfEnvironment::parse(&environment_xml(&props)).unwrap();
        assert_eq!(env.layer().pairs, props);
        assert_eq!(env.platform.kind.as_deref(), Some("VMware ESXi"));
    }
}
