//! The OVF environment document vSphere gives the guest.
//!
//! ```text
//! <Environment xmlns="http://schemas.dmtf.org/ovf/environment/1"
//!     xmlns:oe=".../ovf/environment/1" xmlns:ve="http://www.vmware.com/schema/ovfenv"
//!     oe:id="" ve:vCenterId="vm-94765">          <- ESXi alone: ve:esxId
//!   <PlatformSection> Kind Version Vendor Locale </PlatformSection>
//!   <PropertySection>
//!     <Property oe:key="appliance.hostname" oe:value="lb1"/>
//!   </PropertySection>
//!   <ve:EthernetAdapterSection>
//!     <ve:Adapter ve:mac="00:50:56:..." ve:network="VM Network" ve:unitNumber="7"/>
//!   </ve:EthernetAdapterSection>
//!   <Entity oe:id="other-vm"> <PropertySection>...  <- other VMs of a vApp: skipped
//! </Environment>
//! ```
//!
//! Elements and attributes are matched by namespace, not prefix: any prefix
//! (or the default namespace) bound to the right URI works. Only the
//! `PropertySection` directly under `Environment` is this VM's.

use quick_xml::events::{BytesStart, Event};
use quick_xml::name::{Namespace, ResolveResult};
use quick_xml::NsReader;

use crate::source::{Layer, Source};
use crate::table::OVF_CLASS;

/// The OVF environment namespace (elements and `oe:` attributes).
pub const ENV_NS: &str = "http://schemas.dmtf.org/ovf/environment/1";
/// VMware's extension namespace (`ve:`).
pub const VE_NS: &str = "http://www.vmware.com/schema/ovfenv";
/// Where QEMU tests put the document (fw_cfg).
pub const FW_CFG_PATH: &str = "/sys/firmware/qemu_fw_cfg/by_name/opt/appliance/ovf-env.xml/raw";
/// The file on the `OVF ENV` CD.
pub const ISO_FILE_NAME: &str = "ovf-env.xml";
/// The volume label of that CD.
pub const ISO_VOLUME_LABEL: &str = "OVF ENV";

/// The OVF environment could not be read.
#[derive(Debug, thiserror::Error)]
pub enum OvfEnvError {
    /// The document is not well-formed XML.
    #[error("OVF environment is not well-formed XML at byte {position}: {message}")]
    Xml {
        /// Byte offset of the error.
        position: u64,
        /// The XML parser's message.
        message: String,
    },
    /// The root element is not the OVF environment's.
    #[error("OVF environment root is {found}, expected Environment in namespace {ENV_NS}")]
    NotEnvironment {
        /// The root element found (`{namespace}name`).
        found: String,
    },
    /// The document is not UTF-8 (vSphere writes UTF-8).
    #[error("OVF environment is not UTF-8 text (bad byte at offset {position})")]
    NotUtf8 {
        /// Offset of the first bad byte.
        position: usize,
    },
    /// The document ends before its elements are closed.
    #[error("OVF environment is truncated: it ends inside element {element}")]
    Truncated {
        /// The innermost element still open.
        element: String,
    },
    /// The document has no element at all.
    #[error("OVF environment is empty: expected an Environment element")]
    Empty,
}

/// `PlatformSection`: what runs the VM.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Platform {
    /// `Kind`, e.g. `VMware ESXi`.
    pub kind: Option<String>,
    /// `Version`, e.g. `8.0.3`.
    pub version: Option<String>,
    /// `Vendor`, e.g. `VMware, Inc.`.
    pub vendor: Option<String>,
    /// `Locale`, e.g. `en_US`.
    pub locale: Option<String>,
}

/// One `ve:Adapter`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Adapter {
    /// `ve:mac`.
    pub mac: String,
    /// `ve:network`: the port group name.
    pub network: Option<String>,
    /// `ve:unitNumber`.
    pub unit_number: Option<u32>,
}

/// A parsed OVF environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OvfEnvironment {
    /// `oe:id` of the Environment (often empty).
    pub id: String,
    /// `ve:vCenterId` (only vCenter fills it).
    pub vcenter_id: Option<String>,
    /// `ve:esxId` (environments made by ESXi alone).
    pub esx_id: Option<String>,
    /// `PlatformSection`.
    pub platform: Platform,
    /// This VM's properties, `(oe:key, oe:value)` in document order.
    pub properties: Vec<(String, String)>,
    /// `ve:EthernetAdapterSection`.
    pub adapters: Vec<Adapter>,
}

impl OvfEnvironment {
    /// Parses the document.
    pub fn parse(xml: &str) -> Result<Self, OvfEnvError> {
        Parser::default().run(xml)
    }

    /// Parses the document as read from a file or guestinfo: UTF-8, with
    /// or without a byte order mark.
    pub fn parse_bytes(xml: &[u8]) -> Result<Self, OvfEnvError> {
        let xml = xml.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(xml);
        let text = std::str::from_utf8(xml).map_err(|e| OvfEnvError::NotUtf8 {
            position: e.valid_up_to(),
        })?;
        Self::parse(text)
    }

    /// The settings layer: properties of our `ovf:class` with the class
    /// prefix stripped. A key without it stays as is, so it still matches if
    /// the descriptor listed it without a class, and is otherwise reported
    /// as unknown.
    pub fn layer(&self) -> Layer {
        let prefix = format!("{OVF_CLASS}.");
        let pairs = self
            .properties
            .iter()
            .map(|(k, v)| (k.strip_prefix(&prefix).unwrap_or(k).to_owned(), v.clone()))
            .collect();
        Layer::new(Source::OvfEnv, pairs)
    }
}

/// Which element a text node belongs to.
#[derive(Clone, Copy)]
enum TextField {
    Kind,
    Version,
    Vendor,
    Locale,
}

#[derive(Default)]
struct Parser {
    env: OvfEnvironment,
    /// The open elements as (namespace, local name), root first.
    stack: Vec<(Option<String>, String)>,
    text: Option<(TextField, String)>,
    seen_root: bool,
}

impl Parser {
    fn run(mut self, xml: &str) -> Result<OvfEnvironment, OvfEnvError> {
        let mut reader = NsReader::from_str(xml);
        loop {
            let position = reader.buffer_position();
            let xml_err = |e: quick_xml::Error| OvfEnvError::Xml {
                position,
                message: e.to_string(),
            };
            let (ns, event) = reader.read_resolved_event().map_err(xml_err)?;
            let ns = namespace(&ns);
            match event {
                Event::Start(e) => {
                    self.open(&reader, ns.as_deref(), &e)?;
                    self.stack.push((ns, local_name(&e)));
                }
                Event::Empty(e) => self.open(&reader, ns.as_deref(), &e)?,
                Event::End(_) => {
                    self.close_text();
                    self.stack.pop();
                }
                Event::Text(t) => {
                    let s = t.xml10_content().map_err(|e| xml_err(e.into()))?;
                    self.push_text(&s);
                }
                Event::CData(t) => {
                    let s = t.decode().map_err(|e| xml_err(e.into()))?;
                    self.push_text(&s);
                }
                Event::GeneralRef(r) => {
                    let resolved = match r.resolve_char_ref().map_err(xml_err)? {
                        Some(c) => Some(c.to_string()),
                        None => {
                            let name = r.decode().map_err(|e| xml_err(e.into()))?;
                            quick_xml::escape::resolve_predefined_entity(&name).map(str::to_owned)
                        }
                    };
                    if let Some(s) = resolved {
                        self.push_text(&s);
                    }
                }
                Event::Eof => break,
                _ => {}
            }
        }
        if !self.seen_root {
            return Err(OvfEnvError::Empty);
        }
        if let Some((_, element)) = self.stack.pop() {
            return Err(OvfEnvError::Truncated { element });
        }
        Ok(self.env)
    }

    /// Handles an opening (or empty) element at the current depth.
    fn open(
        &mut self,
        reader: &NsReader<&[u8]>,
        ns: Option<&str>,
        e: &BytesStart<'_>,
    ) -> Result<(), OvfEnvError> {
        let local = local_name(e);
        if self.stack.is_empty() {
            if self.seen_root {
                return Ok(());
            }
            if ns != Some(ENV_NS) || local != "Environment" {
                return Err(OvfEnvError::NotEnvironment {
                    found: format!("{{{}}}{local}", ns.unwrap_or("")),
                });
            }
            self.seen_root = true;
            let attrs = attributes(reader, e);
            self.env.id = attr(&attrs, Some(ENV_NS), "id").unwrap_or_default();
            self.env.vcenter_id = attr(&attrs, Some(VE_NS), "vCenterId");
            self.env.esx_id = attr(&attrs, Some(VE_NS), "esxId");
            return Ok(());
        }
        // Only children of the root's own sections are ours: an Entity's
        // PropertySection (another VM of a vApp) is deeper.
        let parent = match self.stack.as_slice() {
            [_root, (ns, name)] => (ns.as_deref(), name.as_str()),
            _ => return Ok(()),
        };
        match (parent, ns, local.as_str()) {
            ((Some(ENV_NS), "PropertySection"), Some(ENV_NS), "Property") => {
                let attrs = attributes(reader, e);
                let key = attr(&attrs, Some(ENV_NS), "key").or_else(|| attr(&attrs, None, "key"));
                let value =
                    attr(&attrs, Some(ENV_NS), "value").or_else(|| attr(&attrs, None, "value"));
                if let Some(key) = key {
                    self.env.properties.push((key, value.unwrap_or_default()));
                }
            }
            ((Some(ENV_NS), "PlatformSection"), Some(ENV_NS), field) => {
                let field = match field {
                    "Kind" => TextField::Kind,
                    "Version" => TextField::Version,
                    "Vendor" => TextField::Vendor,
                    "Locale" => TextField::Locale,
                    _ => return Ok(()),
                };
                self.text = Some((field, String::new()));
            }
            ((Some(VE_NS), "EthernetAdapterSection"), Some(VE_NS), "Adapter") => {
                let attrs = attributes(reader, e);
                self.env.adapters.push(Adapter {
                    mac: attr(&attrs, Some(VE_NS), "mac").unwrap_or_default(),
                    network: attr(&attrs, Some(VE_NS), "network"),
                    unit_number: attr(&attrs, Some(VE_NS), "unitNumber")
                        .and_then(|n| n.trim().parse().ok()),
                });
            }
            _ => {}
        }
        Ok(())
    }

    fn push_text(&mut self, s: &str) {
        if let Some((_, buf)) = &mut self.text {
            buf.push_str(s);
        }
    }

    fn close_text(&mut self) {
        let Some((field, text)) = self.text.take() else {
            return;
        };
        let text = Some(text.trim().to_owned());
        let p = &mut self.env.platform;
        match field {
            TextField::Kind => p.kind = text,
            TextField::Version => p.version = text,
            TextField::Vendor => p.vendor = text,
            TextField::Locale => p.locale = text,
        }
    }
}

fn namespace(ns: &ResolveResult<'_>) -> Option<String> {
    match ns {
        ResolveResult::Bound(Namespace(uri)) => Some(String::from_utf8_lossy(uri).into_owned()),
        _ => None,
    }
}

fn local_name(e: &BytesStart<'_>) -> String {
    String::from_utf8_lossy(e.local_name().as_ref()).into_owned()
}

/// `(namespace, local name, unescaped value)` of each attribute; attributes
/// that are not well-formed are skipped (the element's other data still
/// counts).
fn attributes(
    reader: &NsReader<&[u8]>,
    e: &BytesStart<'_>,
) -> Vec<(Option<String>, String, String)> {
    e.attributes()
        .filter_map(Result::ok)
        .filter_map(|a| {
            let (ns, local) = reader.resolve_attribute(a.key);
            let value = a.decode_and_unescape_value(reader.decoder()).ok()?;
            let local = String::from_utf8_lossy(local.as_ref()).into_owned();
            Some((namespace(&ns), local, value.into_owned()))
        })
        .collect()
}

fn attr(
    attrs: &[(Option<String>, String, String)],
    ns: Option<&str>,
    local: &str,
) -> Option<String> {
    attrs
        .iter()
        .find(|(n, l, _)| n.as_deref() == ns && l == local)
        .map(|(_, _, v)| v.clone())
}

#[cfg(test)]
#[path = "ovfenv_tests.rs"]
mod tests;
