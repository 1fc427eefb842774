//! DOCX / XLSX / PPTX: the label is a custom document property named `AIGC` (a `vt:lpwstr`
//! holding the bare JSON) in `docProps/custom.xml`, which is registered in `_rels/.rels` and
//! `[Content_Types].xml`. Custom properties whose name contains `AIGC` are read from every
//! custom-properties part the package relationships name, and removed on write.
//!
//! Unchanged zip entries are raw-copied (their compressed bytes and CRCs stay identical); only
//! the changed XML parts are rewritten, by splicing so that their other bytes stay too.

use crate::bytes::{MAX_INFLATED, le_u16};
use crate::carrier::{Carrier, FoundLabel};
use crate::error::MetaError;
use crate::rewrite::Rewrite;
use aigc_core::{AigcRecord, Format};
use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;
use std::collections::HashSet;
use std::io::{Cursor, Read, Write};
use std::ops::Range;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

const FORMAT: &str = "OOXML";
/// The part the guides name and the one we create.
const DEFAULT_CUSTOM_PART: &str = "docProps/custom.xml";
/// The format ID every user-defined custom property uses.
const FMTID_USER_DEFINED: &str = "{D5CDD505-2E9C-101B-9397-08002B2CF9AE}";
const CUSTOM_REL_TYPES: [&str; 2] = [
    "http://schemas.openxmlformats.org/officeDocument/2006/relationships/custom-properties",
    // ISO 29500 strict spelling.
    "http://purl.oclc.org/ooxml/officeDocument/relationships/custom-properties",
];
const CUSTOM_CONTENT_TYPE: &str =
    "application/vnd.openxmlformats-officedocument.custom-properties+xml";
const CUSTOM_NS: &str = "http://schemas.openxmlformats.org/officeDocument/2006/custom-properties";
const VT_NS: &str = "http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes";

/// The DOCX / XLSX / PPTX carrier.
pub struct OoxmlCarrier;

fn zip_error(e: zip::result::ZipError) -> MetaError {
    match e {
        zip::result::ZipError::UnsupportedArchive(d) => MetaError::unsupported(FORMAT, d),
        other => MetaError::malformed(FORMAT, format!("zip: {other}")),
    }
}

fn xml_error(part: &str, e: impl std::fmt::Display) -> MetaError {
    MetaError::malformed(FORMAT, format!("{part}: {e}"))
}

/// The zip package, with entry names checked for duplicates.
struct Package<'a> {
    archive: ZipArchive<Cursor<&'a [u8]>>,
}

impl<'a> Package<'a> {
    fn open(input: &'a [u8]) -> Result<Self, MetaError> {
        let archive = ZipArchive::new(Cursor::new(input)).map_err(zip_error)?;
        check_unique_names(input, &archive)?;
        Ok(Self { archive })
    }

    fn has(&self, name: &str) -> bool {
        self.archive.index_for_name(name).is_some()
    }

    /// A part's bytes, inflated with a cap (zip bombs), or `None` when the part is absent.
    fn part(&mut self, name: &str) -> Result<Option<Vec<u8>>, MetaError> {
        let Some(i) = self.archive.index_for_name(name) else {
            return Ok(None);
        };
        let file = self.archive.by_index(i).map_err(zip_error)?;
        if file.size() > MAX_INFLATED as u64 {
            return Err(MetaError::unsupported(
                FORMAT,
                format!("{name} inflates to more than {MAX_INFLATED} bytes"),
            ));
        }
        let mut out = Vec::new();
        file.take(MAX_INFLATED as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|e| MetaError::malformed(FORMAT, format!("{name}: {e}")))?;
        if out.len() > MAX_INFLATED {
            return Err(MetaError::unsupported(
                FORMAT,
                format!("{name} inflates to more than {MAX_INFLATED} bytes"),
            ));
        }
        Ok(Some(out))
    }
}

/// Walks the central directory and refuses two entries with the same name (OPC part names
/// compare case-insensitively); the zip crate keeps only one of them, which could hide a label.
fn check_unique_names(input: &[u8], archive: &ZipArchive<Cursor<&[u8]>>) -> Result<(), MetaError> {
    let mut at = usize::try_from(archive.central_directory_start())
        .map_err(|_| MetaError::malformed(FORMAT, "central directory offset too large"))?;
    let mut seen = HashSet::new();
    let mut count = 0usize;
    while input
        .get(at..)
        .is_some_and(|b| b.starts_with(b"PK\x01\x02"))
    {
        let what = "zip central directory header";
        let name_len = usize::from(le_u16(input, at.saturating_add(28), what)?);
        let extra_len = usize::from(le_u16(input, at.saturating_add(30), what)?);
        let comment_len = usize::from(le_u16(input, at.saturating_add(32), what)?);
        let name_at = at.saturating_add(46);
        let name = crate::bytes::slice(input, name_at, name_len, "zip entry name")?;
        if !seen.insert(name.to_ascii_lowercase()) {
            return Err(MetaError::malformed(
                FORMAT,
                format!(
                    "the zip holds two entries named {:?}",
                    String::from_utf8_lossy(name)
                ),
            ));
        }
        count += 1;
        at = name_at
            .checked_add(name_len + extra_len + comment_len)
            .ok_or_else(|| MetaError::truncated(what, at))?;
    }
    if count != archive.len() {
        return Err(MetaError::malformed(
            FORMAT,
            format!(
                "the central directory holds {count} headers but {} distinct entries",
                archive.len()
            ),
        ));
    }
    Ok(())
}

/// A child of the root element: its local name, attributes, byte range and text content.
struct Child {
    local: String,
    attrs: Vec<(String, String)>,
    range: Range<usize>,
    text: String,
}

impl Child {
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Where new children go: before the root's end tag, or into a root written as `<x/>`.
enum RootEnd {
    Close(usize),
    Empty(Range<usize>),
}

/// One XML part, scanned for the root and its children.
struct Scanned {
    root_name: String,
    root_attrs: Vec<(String, String)>,
    root_end: RootEnd,
    children: Vec<Child>,
}

impl Scanned {
    /// The root's namespace prefix with a colon (empty when it uses the default namespace).
    fn prefix(&self) -> String {
        self.root_name
            .split_once(':')
            .map(|(p, _)| format!("{p}:"))
            .unwrap_or_default()
    }
}

fn attrs_of(e: &BytesStart, part: &str) -> Result<Vec<(String, String)>, MetaError> {
    let mut out = Vec::new();
    for a in e.attributes() {
        let a = a.map_err(|e| xml_error(part, e))?;
        let value = a.unescape_value().map_err(|e| xml_error(part, e))?;
        out.push((
            String::from_utf8_lossy(a.key.as_ref()).into_owned(),
            value.into_owned(),
        ));
    }
    Ok(out)
}

fn position(reader: &Reader<&[u8]>) -> usize {
    usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX)
}

/// Scans `xml` (a whole part) for its root element and the root's children.
fn scan(xml: &str, part: &str, root_local: &str) -> Result<Scanned, MetaError> {
    let mut reader = Reader::from_str(xml);
    reader.config_mut().trim_text(false);
    let mut depth = 0usize;
    let mut root: Option<(String, Vec<(String, String)>)> = None;
    let mut root_end = None;
    let mut children: Vec<Child> = Vec::new();
    loop {
        let before = position(&reader);
        let event = reader.read_event().map_err(|e| xml_error(part, e))?;
        let after = position(&reader);
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let empty = matches!(event, Event::Empty(_));
                match depth {
                    0 => {
                        if root.is_some() {
                            return Err(xml_error(part, "more than one root element"));
                        }
                        if e.local_name().as_ref() != root_local.as_bytes() {
                            return Err(xml_error(
                                part,
                                format!("the root element is not {root_local}"),
                            ));
                        }
                        let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                        root = Some((name, attrs_of(e, part)?));
                        if empty {
                            root_end = Some(RootEnd::Empty(before..after));
                        }
                    }
                    1 => children.push(Child {
                        local: String::from_utf8_lossy(e.local_name().as_ref()).into_owned(),
                        attrs: attrs_of(e, part)?,
                        range: before..after,
                        text: String::new(),
                    }),
                    _ => {}
                }
                if !empty {
                    depth += 1;
                }
            }
            Event::End(_) => {
                depth = depth.saturating_sub(1);
                match depth {
                    0 => root_end = Some(RootEnd::Close(before)),
                    1 => {
                        if let Some(c) = children.last_mut() {
                            c.range.end = after;
                        }
                    }
                    _ => {}
                }
            }
            Event::Text(t) if depth >= 2 => {
                if let Some(c) = children.last_mut() {
                    c.text
                        .push_str(&t.unescape().map_err(|e| xml_error(part, e))?);
                }
            }
            Event::CData(t) if depth >= 2 => {
                if let Some(c) = children.last_mut() {
                    c.text.push_str(&String::from_utf8_lossy(&t));
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    match (root, root_end) {
        (Some((root_name, root_attrs)), Some(root_end)) => Ok(Scanned {
            root_name,
            root_attrs,
            root_end,
            children,
        }),
        _ => Err(xml_error(part, format!("no complete {root_local} element"))),
    }
}

/// `xml` without the `remove` ranges and with `add` appended inside the root element.
fn splice(xml: &str, scanned: &Scanned, remove: &[Range<usize>], add: &str) -> Option<String> {
    let mut out = String::with_capacity(xml.len() + add.len() + 16);
    let mut at = 0;
    for r in remove {
        out.push_str(xml.get(at..r.start)?);
        at = r.end;
    }
    match &scanned.root_end {
        RootEnd::Close(close) => {
            out.push_str(xml.get(at..*close)?);
            out.push_str(add);
            out.push_str(xml.get(*close..)?);
        }
        RootEnd::Empty(tag) => {
            // `<Root …/>` becomes `<Root …>add</Root>`.
            let head = xml.get(at..tag.end.checked_sub(2)?)?;
            if xml.get(tag.end.checked_sub(2)?..tag.end)? != "/>" {
                return None;
            }
            out.push_str(head.trim_end());
            out.push('>');
            out.push_str(add);
            out.push_str(&format!("</{}>", scanned.root_name));
            out.push_str(xml.get(tag.end..)?);
        }
    }
    Some(out)
}

fn is_label_name(name: &str) -> bool {
    name.to_ascii_uppercase().contains("AIGC")
}

/// Part text: UTF-8 with an optional BOM (kept aside so it can be put back).
fn part_text<'b>(bytes: &'b [u8], part: &str) -> Result<(&'static str, &'b str), MetaError> {
    let (bom, rest) = match bytes.strip_prefix(b"\xEF\xBB\xBF") {
        Some(rest) => ("\u{feff}", rest),
        None => ("", bytes),
    };
    let text = std::str::from_utf8(rest).map_err(|_| {
        MetaError::unsupported(
            FORMAT,
            format!("{part} is not UTF-8 (UTF-16 parts are not handled)"),
        )
    })?;
    Ok((bom, text))
}

/// The package's relationships and the custom-properties parts they name.
struct Rels {
    bytes: Vec<u8>,
    scanned: Scanned,
    custom_targets: Vec<String>,
}

fn read_rels(pkg: &mut Package) -> Result<Rels, MetaError> {
    let part = "_rels/.rels";
    let bytes = pkg
        .part(part)?
        .ok_or_else(|| MetaError::malformed(FORMAT, "no _rels/.rels: not an OPC package"))?;
    let (_, text) = part_text(&bytes, part)?;
    let scanned = scan(text, part, "Relationships")?;
    let mut custom_targets: Vec<String> = Vec::new();
    for c in &scanned.children {
        let custom = c.local == "Relationship"
            && c.attr("Type")
                .is_some_and(|t| CUSTOM_REL_TYPES.contains(&t))
            && c.attr("TargetMode") != Some("External");
        if let Some(target) = c.attr("Target").filter(|_| custom) {
            // Package relationships are relative to the package root.
            let target = target.trim_start_matches('/').to_string();
            if target.is_empty() || target.ends_with('/') {
                return Err(MetaError::malformed(
                    FORMAT,
                    format!("_rels/.rels: custom-properties target {target:?} is not a part name"),
                ));
            }
            if !custom_targets.contains(&target) {
                custom_targets.push(target);
            }
        }
    }
    Ok(Rels {
        bytes,
        scanned,
        custom_targets,
    })
}

/// The custom-properties parts to look at, in zip order: those the relationships name and the
/// default part; the first named one (or the default) is where the label is written.
fn custom_parts(pkg: &Package, rels: &Rels) -> (String, Vec<String>) {
    let primary = rels
        .custom_targets
        .first()
        .cloned()
        .unwrap_or_else(|| DEFAULT_CUSTOM_PART.to_string());
    let mut parts: Vec<(usize, String)> = rels
        .custom_targets
        .iter()
        .map(String::as_str)
        .chain([DEFAULT_CUSTOM_PART])
        .filter_map(|p| pkg.archive.index_for_name(p).map(|i| (i, p.to_string())))
        .collect();
    parts.sort();
    parts.dedup();
    (primary, parts.into_iter().map(|(_, p)| p).collect())
}

/// Label properties of a custom-properties part: (name, value, element range).
fn label_properties(scanned: &Scanned) -> Vec<(&str, &str, Range<usize>)> {
    scanned
        .children
        .iter()
        .filter(|c| c.local == "property")
        .filter_map(|c| {
            let name = c.attr("name")?;
            is_label_name(name).then(|| (name, c.text.as_str(), c.range.clone()))
        })
        .collect()
}

/// The `<property>` element for `record`, using the root's prefixes.
fn property_xml(scanned: &Scanned, pid: i64, record: &AigcRecord) -> String {
    let p = scanned.prefix();
    let (vt, decl) = match scanned
        .root_attrs
        .iter()
        .find(|(k, v)| k.starts_with("xmlns:") && v == VT_NS)
    {
        Some((k, _)) => (k.trim_start_matches("xmlns:").to_string(), String::new()),
        None => ("vt".to_string(), format!(" xmlns:vt=\"{VT_NS}\"")),
    };
    format!(
        "<{p}property fmtid=\"{FMTID_USER_DEFINED}\" pid=\"{pid}\" name=\"AIGC\"><{vt}:lpwstr{decl}>{}</{vt}:lpwstr></{p}property>",
        quick_xml::escape::partial_escape(record.to_bare_json())
    )
}

/// A new custom-properties part holding only the label.
fn new_custom_part(record: &AigcRecord) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\r\n\
         <Properties xmlns=\"{CUSTOM_NS}\" xmlns:vt=\"{VT_NS}\">\
         <property fmtid=\"{FMTID_USER_DEFINED}\" pid=\"2\" name=\"AIGC\"><vt:lpwstr>{}</vt:lpwstr></property>\
         </Properties>",
        quick_xml::escape::partial_escape(record.to_bare_json())
    )
}

/// A custom-properties part with its label properties removed and, if `record` is given, the
/// label added with the next free `pid` (at least 2, as Office numbers them).
fn rewrite_custom(
    bytes: &[u8],
    part: &str,
    record: Option<&AigcRecord>,
) -> Result<Vec<u8>, MetaError> {
    let (bom, text) = part_text(bytes, part)?;
    let scanned = scan(text, part, "Properties")?;
    let labels = label_properties(&scanned);
    let remove: Vec<Range<usize>> = labels.iter().map(|(_, _, r)| r.clone()).collect();
    let next_pid = scanned
        .children
        .iter()
        .filter(|c| !remove.contains(&c.range))
        .filter_map(|c| c.attr("pid")?.trim().parse::<i64>().ok())
        .max()
        .map_or(2, |m| m.saturating_add(1).max(2));
    let add = record.map_or_else(String::new, |r| property_xml(&scanned, next_pid, r));
    let spliced = splice(text, &scanned, &remove, &add)
        .ok_or_else(|| xml_error(part, "element positions do not fit the part"))?;
    Ok(format!("{bom}{spliced}").into_bytes())
}

/// `_rels/.rels` with a custom-properties relationship to `target` added under a fresh Id.
fn add_relationship(rels: &Rels, target: &str) -> Result<Vec<u8>, MetaError> {
    let part = "_rels/.rels";
    let (bom, text) = part_text(&rels.bytes, part)?;
    let ids: HashSet<&str> = rels
        .scanned
        .children
        .iter()
        .filter_map(|c| c.attr("Id"))
        .collect();
    let id = (1..)
        .map(|n| format!("rId{n}"))
        .find(|id| !ids.contains(id.as_str()))
        .unwrap_or_default();
    let add = format!(
        "<{}Relationship Id=\"{id}\" Type=\"{}\" Target=\"{}\"/>",
        rels.scanned.prefix(),
        CUSTOM_REL_TYPES[0],
        quick_xml::escape::escape(target)
    );
    let spliced = splice(text, &rels.scanned, &[], &add)
        .ok_or_else(|| xml_error(part, "element positions do not fit the part"))?;
    Ok(format!("{bom}{spliced}").into_bytes())
}

/// `[Content_Types].xml` with an Override for `part_name` added, or `None` if it has one.
fn add_override(bytes: &[u8], part_name: &str) -> Result<Option<Vec<u8>>, MetaError> {
    let part = "[Content_Types].xml";
    let (bom, text) = part_text(bytes, part)?;
    let scanned = scan(text, part, "Types")?;
    let wanted = format!("/{part_name}");
    let present = scanned.children.iter().any(|c| {
        c.local == "Override"
            && c.attr("PartName")
                .is_some_and(|p| p.eq_ignore_ascii_case(&wanted))
    });
    if present {
        return Ok(None);
    }
    let add = format!(
        "<{}Override PartName=\"{}\" ContentType=\"{CUSTOM_CONTENT_TYPE}\"/>",
        scanned.prefix(),
        quick_xml::escape::escape(&wanted)
    );
    let spliced = splice(text, &scanned, &[], &add)
        .ok_or_else(|| xml_error(part, "element positions do not fit the part"))?;
    Ok(Some(format!("{bom}{spliced}").into_bytes()))
}

impl Carrier for OoxmlCarrier {
    fn formats(&self) -> &'static [Format] {
        &[Format::Docx, Format::Xlsx, Format::Pptx]
    }

    fn placement(&self) -> &'static str {
        "docProps/custom.xml custom property AIGC (vt:lpwstr)"
    }

    fn read(&self, input: &[u8]) -> Result<Vec<FoundLabel>, MetaError> {
        let mut pkg = Package::open(input)?;
        let rels = read_rels(&mut pkg)?;
        let (primary, parts) = custom_parts(&pkg, &rels);
        let mut found = Vec::new();
        for part in parts {
            let Some(bytes) = pkg.part(&part)? else {
                continue;
            };
            let (_, text) = part_text(&bytes, &part)?;
            let scanned = scan(text, &part, "Properties")?;
            for (name, value, _) in label_properties(&scanned) {
                found.push(FoundLabel::new(
                    format!("{part} custom property {name}"),
                    part == primary && name == "AIGC",
                    value,
                ));
            }
        }
        Ok(found)
    }

    fn write(&self, input: &[u8], record: &AigcRecord) -> Result<Rewrite, MetaError> {
        let mut pkg = Package::open(input)?;
        let rels = read_rels(&mut pkg)?;
        let (primary, parts) = custom_parts(&pkg, &rels);
        // New contents of changed parts, by name.
        let mut changed: Vec<(String, Vec<u8>)> = Vec::new();
        for part in &parts {
            let Some(bytes) = pkg.part(part)? else {
                continue;
            };
            let new = rewrite_custom(&bytes, part, (*part == primary).then_some(record))?;
            if new != bytes {
                changed.push((part.clone(), new));
            }
        }
        let mut added: Vec<(String, Vec<u8>)> = Vec::new();
        if !pkg.has(&primary) {
            added.push((primary.clone(), new_custom_part(record).into_bytes()));
        }
        if rels.custom_targets.is_empty() {
            changed.push(("_rels/.rels".into(), add_relationship(&rels, &primary)?));
        }
        let content_types = pkg.part("[Content_Types].xml")?.ok_or_else(|| {
            MetaError::malformed(FORMAT, "no [Content_Types].xml: not an OPC package")
        })?;
        if let Some(new) = add_override(&content_types, &primary)? {
            changed.push(("[Content_Types].xml".into(), new));
        }

        let out = repack(&mut pkg, input.len(), &changed, &added)?;
        let mut rewrite = Rewrite::new();
        rewrite.insert(out);
        Ok(rewrite)
    }
}

/// The package rewritten with `changed` parts replaced and `added` parts appended; every other
/// entry is copied raw (compressed bytes, timestamps and flags as they were).
fn repack(
    pkg: &mut Package,
    size_hint: usize,
    changed: &[(String, Vec<u8>)],
    added: &[(String, Vec<u8>)],
) -> Result<Vec<u8>, MetaError> {
    let mut writer = ZipWriter::new(Cursor::new(Vec::with_capacity(size_hint + 1024)));
    writer.set_raw_comment(pkg.archive.comment().into());
    for i in 0..pkg.archive.len() {
        let name = pkg
            .archive
            .name_for_index(i)
            .ok_or_else(|| MetaError::malformed(FORMAT, "zip entry without a name"))?
            .to_string();
        if let Some((_, data)) = changed.iter().find(|(n, _)| *n == name) {
            let modified = pkg
                .archive
                .by_index_raw(i)
                .map_err(zip_error)?
                .last_modified();
            write_entry(&mut writer, &name, data, modified)?;
        } else {
            let file = pkg.archive.by_index_raw(i).map_err(zip_error)?;
            writer.raw_copy_file(file).map_err(zip_error)?;
        }
    }
    // A new part takes the package relationships' timestamp rather than the zip epoch.
    let stamp = match pkg.archive.index_for_name("_rels/.rels") {
        Some(i) => pkg
            .archive
            .by_index_raw(i)
            .map_err(zip_error)?
            .last_modified(),
        None => None,
    };
    for (name, data) in added {
        write_entry(&mut writer, name, data, stamp)?;
    }
    Ok(writer.finish().map_err(zip_error)?.into_inner())
}

/// Relationship types of the main document part (transitional and strict OOXML).
const OFFICE_DOCUMENT_REL_TYPES: [&str; 2] = [
    "http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument",
    "http://purl.oclc.org/ooxml/officeDocument/relationships/officeDocument",
];

/// An OOXML package opened to change the content of parts (e.g. a visible paragraph in the
/// main document); the output copies every other entry raw.
pub struct OoxmlParts<'a> {
    input: &'a [u8],
    pkg: Package<'a>,
}

impl<'a> OoxmlParts<'a> {
    /// Opens `input` (refusing duplicate entry names).
    pub fn open(input: &'a [u8]) -> Result<Self, MetaError> {
        Ok(Self {
            input,
            pkg: Package::open(input)?,
        })
    }

    /// The main document part the package relationships name (`word/document.xml` in DOCX).
    pub fn main_part(&mut self) -> Result<String, MetaError> {
        let rels = read_rels(&mut self.pkg)?;
        rels.scanned
            .children
            .iter()
            .filter(|c| c.local == "Relationship" && c.attr("TargetMode") != Some("External"))
            .find(|c| {
                c.attr("Type")
                    .is_some_and(|t| OFFICE_DOCUMENT_REL_TYPES.contains(&t))
            })
            .and_then(|c| c.attr("Target"))
            .map(|t| t.trim_start_matches('/').to_string())
            .filter(|t| self.pkg.has(t))
            .ok_or_else(|| {
                MetaError::malformed(
                    FORMAT,
                    "_rels/.rels names no main document part that exists",
                )
            })
    }

    /// A part's bytes (inflation capped), or `None` when it is absent.
    pub fn part(&mut self, name: &str) -> Result<Option<Vec<u8>>, MetaError> {
        self.pkg.part(name)
    }

    /// The package with the `changed` parts' contents replaced (each must exist).
    pub fn replace(mut self, changed: &[(String, Vec<u8>)]) -> Result<Vec<u8>, MetaError> {
        if let Some((missing, _)) = changed.iter().find(|(n, _)| !self.pkg.has(n)) {
            return Err(MetaError::malformed(
                FORMAT,
                format!("no part {missing} to replace"),
            ));
        }
        repack(&mut self.pkg, self.input.len(), changed, &[])
    }
}

fn write_entry(
    writer: &mut ZipWriter<Cursor<Vec<u8>>>,
    name: &str,
    data: &[u8],
    modified: Option<zip::DateTime>,
) -> Result<(), MetaError> {
    let mut options = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    if let Some(m) = modified {
        options = options.last_modified_time(m);
    }
    writer.start_file(name, options).map_err(zip_error)?;
    writer
        .write_all(data)
        .map_err(|e| MetaError::malformed(FORMAT, format!("writing {name}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::*;
    use aigc_core::Label;

    const PACKAGES: [&str; 4] = [
        "document.docx",
        "document-custom.docx",
        "sheet.xlsx",
        "slides.pptx",
    ];

    fn record() -> AigcRecord {
        crate::test_support::record("doc-0001")
    }

    /// Every entry as (name, crc, raw compressed bytes), read with the zip crate.
    fn raw_entries(b: &[u8]) -> Vec<(String, u32, Vec<u8>)> {
        let mut a = ZipArchive::new(Cursor::new(b)).expect("zip");
        (0..a.len())
            .map(|i| {
                let f = a.by_index_raw(i).expect("entry");
                let (name, crc) = (f.name().to_string(), f.crc32());
                let mut raw = Vec::new();
                let mut f = f;
                f.read_to_end(&mut raw).expect("raw read");
                (name, crc, raw)
            })
            .collect()
    }

    /// What a python3 `script` run on `files` prints.
    fn python(script: &str, files: &[&TempFile]) -> String {
        let mut args = vec!["-c", script];
        args.extend(files.iter().map(|f| f.arg()));
        String::from_utf8_lossy(&run("python3", &args)).into_owned()
    }

    #[test]
    fn writes_one_label_into_every_sample_and_rewrites_it() {
        let r = record();
        for name in PACKAGES {
            let input = sample(name);
            assert!(OoxmlCarrier.read(&input).expect("read").is_empty());
            let out = write(&OoxmlCarrier, &input, &r);
            assert_one_label_as(&OoxmlCarrier, &out, &r, Form::Bare);
            let mut r2 = r.clone();
            r2.label = Label::Possibly;
            let again = write(&OoxmlCarrier, &out, &r2);
            assert_one_label_as(&OoxmlCarrier, &again, &r2, Form::Bare);
            let custom = Package::open(&again)
                .expect("zip")
                .part(DEFAULT_CUSTOM_PART)
                .expect("part")
                .expect("custom.xml");
            let custom = String::from_utf8(custom).expect("utf8");
            if name == "document-custom.docx" {
                assert!(
                    custom.contains("pid=\"2\" name=\"Department\"><vt:lpwstr>Research")
                        && custom.contains("pid=\"3\" name=\"AIGC\""),
                    "{custom}"
                );
            } else {
                assert!(custom.contains("pid=\"2\" name=\"AIGC\""), "{custom}");
            }
            // Registered once in the relationships and content types.
            let mut pkg = Package::open(&again).expect("zip");
            let rels = String::from_utf8(pkg.part("_rels/.rels").expect("rels").expect("rels"))
                .expect("utf8");
            assert_eq!(rels.matches("custom-properties").count(), 1, "{rels}");
            let ct = String::from_utf8(pkg.part("[Content_Types].xml").expect("ct").expect("ct"))
                .expect("utf8");
            assert_eq!(ct.matches("/docProps/custom.xml").count(), 1, "{ct}");
        }
    }

    #[test]
    fn exiftool_reads_the_label() {
        let r = record();
        for name in PACKAGES {
            let out = write(&OoxmlCarrier, &sample(name), &r);
            let path = temp_file(name, &out);
            let json = exiftool(&path, &[]);
            assert_eq!(
                json["XML:AIGC"].as_str(),
                Some(r.to_bare_json().as_str()),
                "{name}: {json}"
            );
            if name == "document-custom.docx" {
                assert_eq!(json["XML:Department"].as_str(), Some("Research"));
            }
        }
    }

    #[test]
    fn other_entries_stay_byte_identical_and_the_zip_checks_out() {
        let rewritten = ["[Content_Types].xml", "_rels/.rels", DEFAULT_CUSTOM_PART];
        for name in PACKAGES {
            let input = sample(name);
            let out = write(&OoxmlCarrier, &input, &record());
            let before = raw_entries(&input);
            let after = raw_entries(&out);
            for entry in &before {
                if !rewritten.contains(&entry.0.as_str()) {
                    assert!(after.contains(entry), "{name}: {} changed", entry.0);
                }
            }
            let order: Vec<&str> = after.iter().map(|e| e.0.as_str()).collect();
            let original: Vec<&str> = before.iter().map(|e| e.0.as_str()).collect();
            assert_eq!(
                &order[..original.len()],
                &original[..],
                "{name}: entry order"
            );
            // Python's zipfile verifies every entry's CRC and reads the XML parts.
            let path = temp_file(name, &out);
            let res = python(
                "import sys, zipfile\n\
                 z = zipfile.ZipFile(sys.argv[1])\n\
                 assert z.testzip() is None\n\
                 print(z.read('docProps/custom.xml').decode())",
                &[&path],
            );
            assert!(res.contains(&record().to_bare_json()), "{res}");
        }
    }

    #[test]
    fn labels_written_elsewhere_are_read_and_replaced() {
        // python3's zipfile writes a package with two label properties in a relocated part.
        let input = sample("document.docx");
        let src = temp_file("foreign-src.docx", &input);
        let dst = temp_path("foreign.docx");
        python(
            r#"import sys, zipfile
src, dst = zipfile.ZipFile(sys.argv[1]), zipfile.ZipFile(sys.argv[2], "w", zipfile.ZIP_DEFLATED)
for i in src.infolist():
    d = src.read(i.filename)
    if i.filename == "_rels/.rels":
        d = d.replace(b"</Relationships>", b'<Relationship Id="rId9" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/custom-properties" Target="/docProps/props.xml"/></Relationships>')
    dst.writestr(i, d)
dst.writestr("docProps/props.xml", '<?xml version="1.0"?><op:Properties xmlns:op="http://schemas.openxmlformats.org/officeDocument/2006/custom-properties" xmlns:t="http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes"><op:property fmtid="{D5CDD505-2E9C-101B-9397-08002B2CF9AE}" pid="5" name="Kept"><t:lpwstr>yes</t:lpwstr></op:property><op:property fmtid="{D5CDD505-2E9C-101B-9397-08002B2CF9AE}" pid="6" name="AIGC"><t:lpwstr>{"AIGC":{"Label":"3","ContentProducer":"x","ProduceID":"y"}}</t:lpwstr></op:property><op:property fmtid="{D5CDD505-2E9C-101B-9397-08002B2CF9AE}" pid="7" name="aigc_legacy"><t:lpwstr>old</t:lpwstr></op:property></op:Properties>')
dst.close()"#,
            &[&src, &dst],
        );
        let foreign = std::fs::read(&dst).expect("read");
        let found = OoxmlCarrier.read(&foreign).expect("read");
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].primary && found[0].placement.contains("docProps/props.xml"));
        assert_eq!(
            found[0].parsed.record.as_ref().map(|r| r.label),
            Some(Label::Suspected)
        );
        assert!(!found[1].primary && found[1].value == "old");
        let out = write(&OoxmlCarrier, &foreign, &record());
        assert_one_label_as(&OoxmlCarrier, &out, &record(), Form::Bare);
        let props = Package::open(&out)
            .expect("zip")
            .part("docProps/props.xml")
            .expect("part")
            .expect("props");
        let props = String::from_utf8(props).expect("utf8");
        assert!(
            props.contains("name=\"Kept\"><t:lpwstr>yes")
                && props.contains("<op:property fmtid=\"{D5CDD505-2E9C-101B-9397-08002B2CF9AE}\" pid=\"6\" name=\"AIGC\"><t:lpwstr>"),
            "{props}"
        );
        assert!(!Package::open(&out).expect("zip").has(DEFAULT_CUSTOM_PART));
    }

    #[test]
    fn duplicate_entries_and_bombs_are_refused() {
        let mut w = ZipWriter::new(Cursor::new(Vec::new()));
        // Stored rather than deflated to keep the test fast; the cap is the same.
        let o = SimpleFileOptions::default().compression_method(CompressionMethod::Stored);
        w.start_file("[Content_Types].xml", o).expect("start");
        w.start_file("_rels/.rels", o).expect("start");
        w.write_all(&vec![b' '; MAX_INFLATED + 10]).expect("bomb");
        let bomb = w.finish().expect("finish").into_inner();
        let e = OoxmlCarrier.read(&bomb).expect_err("bomb");
        assert!(e.to_string().contains("inflates to more than"), "{e}");
        // Rename core.xml to the main part's name (same length) in its local and central headers.
        let mut dup = sample("document.docx");
        let (from, to) = (b"docProps/core.xml", b"word/document.xml");
        for at in 0..dup.len() - from.len() {
            if &dup[at..at + from.len()] == from {
                dup[at..at + to.len()].copy_from_slice(to);
            }
        }
        let e = OoxmlCarrier.read(&dup).expect_err("duplicate");
        assert!(e.to_string().contains("two entries"), "{e}");
    }

    #[test]
    fn hostile_inputs_never_panic() {
        let labelled = write(&OoxmlCarrier, &sample("document-custom.docx"), &record());
        let r = record();
        assert_hostile_inputs_never_panic(&OoxmlCarrier, &labelled, 2000, 1);
        let mut rng = XorShift::new(0x2545_F491_4F6C_DD1D);
        // The CRCs stop most flips above before the XML is parsed: mutate the XML parts themselves.
        let parts = raw_entries(&labelled).into_iter().map(|e| e.0);
        let mut pkg = Package::open(&labelled).expect("zip");
        let texts: Vec<(String, Vec<u8>)> = parts
            .map(|n| {
                let data = pkg.part(&n).expect("part").expect("part");
                (n, data)
            })
            .collect();
        let repack = |target: &str, data: &[u8]| {
            let mut w = ZipWriter::new(Cursor::new(Vec::new()));
            let o = SimpleFileOptions::default().compression_method(CompressionMethod::Stored);
            for (n, d) in &texts {
                w.start_file(n.as_str(), o).expect("start");
                w.write_all(if n == target { data } else { d })
                    .expect("write");
            }
            w.finish().expect("finish").into_inner()
        };
        for target in ["[Content_Types].xml", "_rels/.rels", DEFAULT_CUSTOM_PART] {
            let original = &texts.iter().find(|t| t.0 == target).expect("part").1;
            for i in 0..250 {
                let mut v = original.clone();
                if i % 2 == 0 {
                    v.truncate(rng.below(v.len()));
                }
                for _ in 0..2 {
                    let at = rng.below(v.len().max(1));
                    if let Some(b) = v.get_mut(at) {
                        let alphabet = b"<>/\"'=&:; x\xff";
                        *b = alphabet[rng.below(alphabet.len())];
                    }
                }
                let zip = repack(target, &v);
                let _ = OoxmlCarrier.read(&zip);
                if let Ok(w) = OoxmlCarrier.write(&zip, &r) {
                    // Whatever was accepted now holds exactly one label.
                    let out = w.to_vec(&zip);
                    let found = OoxmlCarrier.read(&out).expect("read our output");
                    assert_eq!(found.len(), 1, "{}", String::from_utf8_lossy(&v));
                }
            }
        }
    }
}
