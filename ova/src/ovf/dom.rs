//! A small namespace-resolved element tree, enough to read a descriptor back
//! and to check its structure in tests.

use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;

use super::OvfError;

/// Deeper nesting than this is not an OVF descriptor (ours is 6 deep).
const MAX_DEPTH: usize = 32;

/// An element with its namespace URI resolved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    pub ns: String,
    pub name: String,
    /// (namespace URI or "", local name, unescaped value); no `xmlns` declarations.
    pub attrs: Vec<(String, String, String)>,
    pub children: Vec<Element>,
    /// Concatenated, unescaped character data directly inside this element.
    pub text: String,
}

impl Element {
    /// The value of attribute `ns:name`.
    pub fn attr(&self, ns: &str, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, l, _)| n == ns && l == name)
            .map(|(_, _, v)| v.as_str())
    }

    /// The first child `ns:name`.
    pub fn child(&self, ns: &str, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.ns == ns && c.name == name)
    }

    /// Every child `ns:name`, in document order.
    pub fn children_named<'a>(
        &'a self,
        ns: &'a str,
        name: &'a str,
    ) -> impl Iterator<Item = &'a Element> + 'a {
        self.children
            .iter()
            .filter(move |c| c.ns == ns && c.name == name)
    }

    /// Every element below this one, depth first, including itself.
    pub fn descendants(&self) -> Vec<&Element> {
        let mut out = vec![self];
        let mut i = 0;
        while i < out.len() {
            out.extend(out[i].children.iter());
            i += 1;
        }
        out
    }
}

/// Parses a whole document into its root element.
pub fn parse_xml(xml: &[u8]) -> Result<Element, OvfError> {
    let mut reader = NsReader::from_reader(xml);
    let mut stack: Vec<Element> = Vec::new();
    let mut root = None;
    let mut buf = Vec::new();
    loop {
        let position = reader.buffer_position();
        let xml_err = |source| OvfError::Xml { position, source };
        let (ns, event) = reader.read_resolved_event_into(&mut buf).map_err(xml_err)?;
        let ns = namespace(ns)?;
        match event {
            Event::Start(e) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(OvfError::malformed(format!(
                        "elements nested deeper than {MAX_DEPTH}"
                    )));
                }
                stack.push(element(&reader, ns, &e)?);
            }
            Event::Empty(e) => {
                let el = element(&reader, ns, &e)?;
                attach(&mut stack, &mut root, el)?;
            }
            Event::End(_) => {
                let el = stack
                    .pop()
                    .ok_or_else(|| OvfError::malformed("end tag without start"))?;
                attach(&mut stack, &mut root, el)?;
            }
            Event::Text(t) => {
                let t = t.xml10_content().map_err(|e| xml_err(e.into()))?;
                push_text(&mut stack, &t)?;
            }
            Event::CData(t) => {
                let t = t.xml10_content().map_err(|e| xml_err(e.into()))?;
                push_text(&mut stack, &t)?;
            }
            Event::GeneralRef(r) => {
                let name = r.decode().map_err(|e| xml_err(e.into()))?;
                let c = if let Some(c) = r.resolve_char_ref().map_err(xml_err)? {
                    c.to_string()
                } else if let Some(s) = resolve_predefined_entity(&name) {
                    s.to_owned()
                } else {
                    return Err(OvfError::malformed(format!("unknown entity &{name};")));
                };
                push_text(&mut stack, &c)?;
            }
            Event::Eof => break,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => {}
        }
        buf.clear();
    }
    if !stack.is_empty() {
        return Err(OvfError::malformed(format!(
            "document ends inside <{}>",
            stack[stack.len() - 1].name
        )));
    }
    root.ok_or_else(|| OvfError::malformed("no root element"))
}

fn namespace(ns: ResolveResult<'_>) -> Result<String, OvfError> {
    match ns {
        ResolveResult::Bound(ns) => Ok(String::from_utf8_lossy(ns.as_ref()).into_owned()),
        ResolveResult::Unbound => Ok(String::new()),
        ResolveResult::Unknown(prefix) => Err(OvfError::malformed(format!(
            "undeclared namespace prefix {:?}",
            String::from_utf8_lossy(&prefix)
        ))),
    }
}

fn element(reader: &NsReader<&[u8]>, ns: String, e: &BytesStart<'_>) -> Result<Element, OvfError> {
    let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
    let mut attrs = Vec::new();
    for attr in e.attributes() {
        let attr = attr.map_err(|e| OvfError::malformed(format!("attribute of <{name}>: {e}")))?;
        let key = attr.key;
        if key.as_namespace_binding().is_some() {
            continue;
        }
        let (attr_ns, local) = reader.resolve_attribute(key);
        let attr_ns = namespace(attr_ns)?;
        let local = String::from_utf8_lossy(local.as_ref()).into_owned();
        let value = attr
            .decode_and_unescape_value(reader.decoder())
            .map_err(|e| OvfError::malformed(format!("attribute {local} of <{name}>: {e}")))?;
        attrs.push((attr_ns, local, value.into_owned()));
    }
    Ok(Element {
        ns,
        name,
        attrs,
        children: Vec::new(),
        text: String::new(),
    })
}

fn attach(stack: &mut [Element], root: &mut Option<Element>, el: Element) -> Result<(), OvfError> {
    match stack.last_mut() {
        Some(parent) => parent.children.push(el),
        None if root.is_none() => *root = Some(el),
        None => return Err(OvfError::malformed("more than one root element")),
    }
    Ok(())
}

fn push_text(stack: &mut [Element], text: &str) -> Result<(), OvfError> {
    match stack.last_mut() {
        Some(el) => el.text.push_str(text),
        None if text.trim().is_empty() => {}
        None => return Err(OvfError::malformed("text outside the root element")),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_namespaces_and_entities() {
        let xml = br#"<?xml version="1.0"?><a xmlns="urn:d" xmlns:p="urn:p" p:k="x &amp; y"><p:b>1 &lt; 2 &#65;</p:b><c/></a>"#;
        let root = parse_xml(xml).unwrap();
        assert_eq!((root.ns.as_str(), root.name.as_str()), ("urn:d", "a"));
        assert_eq!(root.attr("urn:p", "k"), Some("x & y"));
        assert_eq!(root.child("urn:p", "b").unwrap().text, "1 < 2 A");
        assert!(root.child("urn:d", "c").is_some());
    }

    #[test]
    fn rejects_mismatched_tags() {
        assert!(matches!(
            parse_xml(b"<a><b></a>"),
            Err(OvfError::Xml { .. })
        ));
    }

    #[test]
    fn rejects_unclosed_document() {
        assert!(parse_xml(b"<a><b/>").is_err());
    }

    #[test]
    fn rejects_undeclared_prefix() {
        assert!(matches!(
            parse_xml(b"<x:a/>"),
            Err(OvfError::Malformed { .. })
        ));
    }
}
