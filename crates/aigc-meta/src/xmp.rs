//! XMP packets: build one with the TC260 `AIGC` property and the IPTC digital source type, merge
//! those into an existing packet (keeping everything else), and find label properties.

use crate::error::MetaError;
use aigc_core::AigcRecord;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::{Namespace, ResolveResult};
use quick_xml::reader::NsReader;
use quick_xml::writer::Writer;

/// The TC260 namespace of the 2025 placement guides.
pub const TC260_NS: &str = "http://www.tc260.org.cn/ns/AIGC/1.0/";
/// The IPTC Extension namespace that holds `DigitalSourceType`.
pub const IPTC_EXT_NS: &str = "http://iptc.org/std/Iptc4xmpExt/2008-02-29/";
/// IPTC's term for media made by a trained model.
pub const TRAINED_ALGORITHMIC_MEDIA: &str =
    "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia";
const RDF_NS: &str = "http://www.w3.org/1999/02/22-rdf-syntax-ns#";

/// A label property found in a packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XmpLabel {
    /// The property as written, e.g. `TC260:AIGC`.
    pub qualified_name: String,
    /// Whether it is in the TC260 namespace (the placement the guides name).
    pub tc260: bool,
    /// Whether it was written as an attribute rather than an element.
    pub attribute: bool,
    /// The unescaped value.
    pub value: String,
}

/// A resolved namespace URI, owned so that the reader can be used again while it is held.
type Ns = Option<Vec<u8>>;

fn owned(ns: ResolveResult) -> Ns {
    match ns {
        ResolveResult::Bound(Namespace(n)) => Some(n.to_vec()),
        _ => None,
    }
}

fn is_ns(ns: &Ns, uri: &str) -> bool {
    ns.as_deref() == Some(uri.as_bytes())
}

/// Whether a property is a label: its name contains `AIGC` (Annex E a), outside RDF's own names.
fn is_label_property(ns: &Ns, local: &[u8]) -> bool {
    !is_ns(ns, RDF_NS) && local.windows(4).any(|w| w.eq_ignore_ascii_case(b"AIGC"))
}

fn is_source_type(ns: &Ns, local: &[u8]) -> bool {
    is_ns(ns, IPTC_EXT_NS) && local == b"DigitalSourceType"
}

fn xml_error(e: impl std::fmt::Display) -> MetaError {
    MetaError::malformed("XMP", e.to_string())
}

fn escape(s: &str) -> String {
    quick_xml::escape::escape(s).into_owned()
}

/// The `rdf:Description` that carries our properties, using `rdf` as the RDF prefix.
fn description(rdf: &str, record: &AigcRecord) -> String {
    format!(
        "<{rdf}:Description {rdf}:about=\"\" xmlns:TC260=\"{TC260_NS}\" xmlns:Iptc4xmpExt=\"{IPTC_EXT_NS}\">\
         <TC260:AIGC>{}</TC260:AIGC>\
         <Iptc4xmpExt:DigitalSourceType>{TRAINED_ALGORITHMIC_MEDIA}</Iptc4xmpExt:DigitalSourceType>\
         </{rdf}:Description>",
        escape(&record.to_bare_json())
    )
}

/// A new XMP packet holding only the label and the digital source type.
pub fn new_packet(record: &AigcRecord) -> String {
    format!(
        "<?xpacket begin=\"\u{feff}\" id=\"W5M0MpCehiHzreSzNTczkc9d\"?>\n\
         <x:xmpmeta xmlns:x=\"adobe:ns:meta/\" x:xmptk=\"aigc-mark {}\">\n\
         <rdf:RDF xmlns:rdf=\"{RDF_NS}\">\n{}\n</rdf:RDF>\n</x:xmpmeta>\n<?xpacket end=\"w\"?>",
        env!("CARGO_PKG_VERSION"),
        description("rdf", record)
    )
}

/// Every label property in `packet`, in document order.
pub fn find_labels(packet: &str) -> Result<Vec<XmpLabel>, MetaError> {
    let mut reader = NsReader::from_str(packet);
    reader.config_mut().trim_text(false);
    let mut found = Vec::new();
    // (depth at which the open label element started, index into `found`)
    let mut open: Option<(usize, usize)> = None;
    let mut depth = 0usize;
    loop {
        let (ns, event) = reader.read_resolved_event().map_err(xml_error)?;
        let ns = owned(ns);
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let is_empty = matches!(event, Event::Empty(_));
                for attr in e.attributes().with_checks(false) {
                    let attr = attr.map_err(xml_error)?;
                    let (ans, local) = reader.resolve_attribute(attr.key);
                    let ans = owned(ans);
                    if is_label_property(&ans, local.as_ref()) {
                        let value = attr.unescape_value().map_err(xml_error)?.into_owned();
                        found.push(XmpLabel {
                            qualified_name: String::from_utf8_lossy(attr.key.as_ref()).into_owned(),
                            tc260: is_ns(&ans, TC260_NS),
                            attribute: true,
                            value,
                        });
                    }
                }
                if open.is_none() && is_label_property(&ns, e.local_name().as_ref()) {
                    found.push(XmpLabel {
                        qualified_name: String::from_utf8_lossy(e.name().as_ref()).into_owned(),
                        tc260: is_ns(&ns, TC260_NS),
                        attribute: false,
                        value: String::new(),
                    });
                    if !is_empty {
                        open = Some((depth, found.len() - 1));
                    }
                }
                if !is_empty {
                    depth += 1;
                }
            }
            Event::Text(t) => {
                if let Some((_, i)) = open {
                    found[i].value.push_str(&t.unescape().map_err(xml_error)?);
                }
            }
            Event::CData(t) => {
                if let Some((_, i)) = open {
                    found[i].value.push_str(&String::from_utf8_lossy(&t));
                }
            }
            Event::End(_) => {
                depth = depth.saturating_sub(1);
                if open.is_some_and(|(d, _)| d == depth) {
                    open = None;
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    for label in &mut found {
        if !label.attribute {
            label.value = label.value.trim().to_string();
        }
    }
    Ok(found)
}

/// `existing` with every label property and digital-source-type removed and, when `record` is
/// given, a description with the new label added; everything else is kept as it was.
pub fn merge_packet(existing: &str, record: Option<&AigcRecord>) -> Result<String, MetaError> {
    // Labelling again with the same record changes nothing.
    if let Some(record) = record {
        let found = find_labels(existing)?;
        if let [only] = found.as_slice()
            && only.tc260
            && only.value == record.to_bare_json()
            && existing.contains(TRAINED_ALGORITHMIC_MEDIA)
        {
            return Ok(existing.to_string());
        }
    }
    let mut reader = NsReader::from_str(existing);
    reader.config_mut().trim_text(false);
    let mut writer = Writer::new(Vec::with_capacity(existing.len() + 512));
    let mut skip_depth: Option<usize> = None;
    let mut depth = 0usize;
    let mut wrote = false;
    // Depth inside rdf:RDF, and the open top-level rdf:Description: where it starts in the
    // output, its depth, and whether it keeps any content. A description left empty once our
    // properties are gone is dropped, so re-labelling does not pile up empty descriptions.
    let mut rdf_depth: Option<usize> = None;
    let mut open_desc: Option<(usize, usize, bool)> = None;
    loop {
        let (ns, event) = reader.read_resolved_event().map_err(xml_error)?;
        let ns = owned(ns);
        if let Some(d) = skip_depth {
            match event {
                Event::Start(_) => depth += 1,
                Event::End(_) => {
                    depth -= 1;
                    if depth == d {
                        skip_depth = None;
                    }
                }
                Event::Eof => {
                    return Err(xml_error(
                        "unexpected end of packet inside a label property",
                    ));
                }
                _ => {}
            }
            continue;
        }
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let local = e.local_name();
                if is_label_property(&ns, local.as_ref()) || is_source_type(&ns, local.as_ref()) {
                    if matches!(event, Event::Start(_)) {
                        skip_depth = Some(depth);
                        depth += 1;
                    }
                    continue;
                }
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                let mut kept = BytesStart::new(name);
                let mut meaningful_attrs = false;
                for attr in e.attributes().with_checks(false) {
                    let attr = attr.map_err(xml_error)?;
                    let (ans, alocal) = reader.resolve_attribute(attr.key);
                    let ans = owned(ans);
                    if !(is_label_property(&ans, alocal.as_ref())
                        || is_source_type(&ans, alocal.as_ref()))
                    {
                        let key = attr.key.as_ref();
                        let declaration = key == b"xmlns" || key.starts_with(b"xmlns:");
                        let about = is_ns(&ans, RDF_NS) && alocal.as_ref() == b"about";
                        meaningful_attrs |= !(declaration || about);
                        kept.push_attribute(attr);
                    }
                }
                let is_rdf = is_ns(&ns, RDF_NS);
                if let Some((_, _, content)) = open_desc.as_mut() {
                    *content = true;
                }
                let top_level_desc = is_rdf
                    && local.as_ref() == b"Description"
                    && rdf_depth == Some(depth.saturating_sub(1));
                if top_level_desc && !meaningful_attrs {
                    if matches!(event, Event::Empty(_)) {
                        continue;
                    }
                    open_desc = Some((writer.get_ref().len(), depth, false));
                }
                if is_rdf && local.as_ref() == b"RDF" && matches!(event, Event::Start(_)) {
                    rdf_depth = Some(depth);
                }
                if matches!(event, Event::Start(_)) {
                    depth += 1;
                    writer.write_event(Event::Start(kept)).map_err(xml_error)?;
                } else {
                    writer.write_event(Event::Empty(kept)).map_err(xml_error)?;
                }
            }
            Event::End(ref e) => {
                depth = depth.saturating_sub(1);
                if let Some((start, d, content)) = open_desc
                    && d == depth
                {
                    open_desc = None;
                    if !content {
                        writer.get_mut().truncate(start);
                        continue;
                    }
                }
                if is_ns(&ns, RDF_NS) && e.local_name().as_ref() == b"RDF" {
                    if let Some(record) = record {
                        let prefix = e
                            .name()
                            .prefix()
                            .map(|p| String::from_utf8_lossy(p.as_ref()).into_owned())
                            .unwrap_or_else(|| "rdf".into());
                        writer
                            .get_mut()
                            .extend_from_slice(description(&prefix, record).as_bytes());
                    }
                    wrote = true;
                }
                writer
                    .write_event(Event::End(e.clone()))
                    .map_err(xml_error)?;
            }
            Event::Eof => break,
            other => {
                if let (Some((_, _, content)), Event::Text(t)) = (open_desc.as_mut(), &other)
                    && !t.iter().all(u8::is_ascii_whitespace)
                {
                    *content = true;
                }
                writer.write_event(other).map_err(xml_error)?
            }
        }
    }
    if !wrote {
        return Err(xml_error("the packet has no rdf:RDF element"));
    }
    String::from_utf8(writer.into_inner()).map_err(xml_error)
}

/// Unpadded packet text from raw bytes (UTF-8, possibly with a BOM or trailing NULs).
pub fn packet_text(bytes: &[u8]) -> Result<&str, MetaError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let end = bytes.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
    std::str::from_utf8(&bytes[..end])
        .map_err(|e| MetaError::malformed("XMP", format!("packet is not UTF-8: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> AigcRecord {
        crate::test_support::record("x<1>&")
    }

    #[test]
    fn new_packet_round_trips() {
        let p = new_packet(&record());
        let found = find_labels(&p).expect("parse");
        assert_eq!(found.len(), 1);
        assert!(found[0].tc260 && !found[0].attribute);
        assert_eq!(found[0].value, record().to_bare_json());
        assert!(p.contains(TRAINED_ALGORITHMIC_MEDIA));
    }

    #[test]
    fn merge_keeps_other_properties_and_replaces_labels() {
        let existing = r#"<?xpacket begin='' id='W5M0MpCehiHzreSzNTczkc9d'?>
<x:xmpmeta xmlns:x='adobe:ns:meta/'><r:RDF xmlns:r='http://www.w3.org/1999/02/22-rdf-syntax-ns#'>
<r:Description r:about='' xmlns:dc='http://purl.org/dc/elements/1.1/' xmlns:T='http://www.tc260.org.cn/ns/AIGC/1.0/' T:AIGC='{&quot;Label&quot;:&quot;2&quot;}'>
<dc:title><r:Alt><r:li xml:lang='x-default'>Kept title</r:li></r:Alt></dc:title>
<T:AIGC>{"Label":"3"}</T:AIGC>
</r:Description></r:RDF></x:xmpmeta>
<?xpacket end='w'?>"#;
        let before = find_labels(existing).expect("parse");
        assert_eq!(before.len(), 2);
        assert_eq!(before[0].value, r#"{"Label":"2"}"#);
        let merged = merge_packet(existing, Some(&record())).expect("merge");
        let after = find_labels(&merged).expect("parse");
        assert_eq!(after.len(), 1, "{merged}");
        assert_eq!(after[0].value, record().to_bare_json());
        assert!(
            merged.contains("Kept title")
                && merged.contains("<r:Description r:about=\"\" xmlns:TC260")
        );
        // Merging again gives the same packet: the emptied description is not kept.
        assert_eq!(
            merge_packet(&merged, Some(&record())).expect("again"),
            merged
        );
        let stripped = merge_packet(&merged, None).expect("strip");
        assert!(find_labels(&stripped).expect("parse").is_empty());
        assert!(!stripped.contains("DigitalSourceType"));
    }

    #[test]
    fn broken_packets_are_errors() {
        assert!(
            merge_packet(
                "<x:xmpmeta xmlns:x='adobe:ns:meta/'></x:xmpmeta>",
                Some(&record())
            )
            .is_err()
        );
        assert!(find_labels("<a><b></a>").is_err());
    }
}
