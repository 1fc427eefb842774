//! Reading a label value found in a file: the wrapped and bare Annex E forms and the 2023 guide's
//! legacy schema, with every departure from Annex E reported as a problem.

use crate::label::Label;
use crate::problem::Problem;
use crate::record::{ANNEX_E_KEYS, AigcRecord};
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;
use std::fmt;

/// The shape in which a label value was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LabelForm {
    /// `{"AIGC":{…}}` as Annex E shows it.
    Wrapped,
    /// The seven keys without the wrapper, as the 2025 placement guides write them.
    Bare,
    /// The 2023 guide's `{"ServiceProvider","Time","ContentID"}` schema.
    Legacy,
    /// Not JSON, or JSON of no known schema.
    Unrecognised,
}

/// A label in the 2023 guide's superseded schema (TC260-PG-20233A §3.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct LegacyRecord {
    /// The service provider.
    pub service_provider: String,
    /// Generation time, `yyyy-MM-dd HH:mm:ss.SSS`.
    pub time: String,
    /// The provider's content ID.
    #[serde(rename = "ContentID")]
    pub content_id: String,
}

/// The result of reading one label value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ParsedLabel {
    /// The shape it was written in.
    pub form: LabelForm,
    /// The Annex E record, when the value is one (even a flawed one).
    pub record: Option<AigcRecord>,
    /// The legacy record, when the value uses the 2023 schema.
    pub legacy: Option<LegacyRecord>,
    /// Everything that departs from Annex E.
    pub problems: Vec<Problem>,
}

impl ParsedLabel {
    /// Whether the value is a usable Annex E record with no errors.
    pub fn is_valid(&self) -> bool {
        self.record.is_some()
            && !self
                .problems
                .iter()
                .any(|p| p.severity == crate::Severity::Error)
    }
}

/// JSON object entries in file order, keeping duplicates (serde_json's map would drop them and
/// sort the keys). `V` is `Value` for values, or `Box<RawValue>` to parse a nested object later
/// with its key order intact.
struct Entries<V = Value>(Vec<(String, V)>);

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Entries<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct EntriesVisitor<V>(std::marker::PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for EntriesVisitor<V> {
            type Value = Entries<V>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries<V>, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, V>()? {
                    out.push((k, v));
                }
                Ok(Entries(out))
            }
        }
        d.deserialize_map(EntriesVisitor(std::marker::PhantomData))
    }
}

/// Parses a label value as found in a file.
pub fn parse_label_value(raw: &str) -> ParsedLabel {
    let mut problems = Vec::new();
    let trimmed = raw.trim_matches(|c: char| c.is_whitespace() || c == '\0');
    if trimmed.len() != raw.len() {
        problems.push(Problem::warning(
            "surrounding-whitespace",
            "the value has leading or trailing whitespace or NULs",
        ));
    }
    let parsed = serde_json::from_str::<Entries<Box<RawValue>>>(trimmed)
        .map_err(|e| format!("the value is not a JSON object: {e}"))
        .and_then(|outer| match outer.0.as_slice() {
            [(k, v)] if k == "AIGC" => serde_json::from_str::<Entries>(v.get())
                .map(|inner| (true, inner))
                .map_err(|_| "the AIGC wrapper does not hold a JSON object".to_string()),
            _ => serde_json::from_str::<Entries>(trimmed)
                .map(|entries| (false, entries))
                .map_err(|e| format!("the value is not a JSON object: {e}")),
        });
    let (wrapped, inner) = match parsed {
        Ok(p) => p,
        Err(message) => {
            problems.push(Problem::error("not-json", message));
            return ParsedLabel {
                form: LabelForm::Unrecognised,
                record: None,
                legacy: None,
                problems,
            };
        }
    };
    if inner
        .0
        .iter()
        .any(|(k, _)| k == "ServiceProvider" || k == "ContentID")
        && !inner.0.iter().any(|(k, _)| k == "Label")
    {
        return parse_legacy(inner, problems);
    }
    parse_annex_e(inner, wrapped, problems)
}

fn string_of(key: &str, value: &Value, problems: &mut Vec<Problem>) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => {
            problems.push(Problem::error(
                "non-string-value",
                format!("{key} is null; Annex E values are strings"),
            ));
            String::new()
        }
        other => {
            problems.push(Problem::error(
                "non-string-value",
                format!("{key} is {other}, not a string; Annex E values are strings"),
            ));
            match other {
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => other.to_string(),
            }
        }
    }
}

fn parse_annex_e(entries: Entries, wrapped: bool, mut problems: Vec<Problem>) -> ParsedLabel {
    let mut values: [Option<String>; 7] = Default::default();
    let mut order = Vec::new();
    for (key, value) in &entries.0 {
        match ANNEX_E_KEYS.iter().position(|k| k == key) {
            Some(i) => {
                if values[i].is_some() {
                    problems.push(Problem::error(
                        "duplicate-key",
                        format!("{key} appears more than once"),
                    ));
                }
                values[i] = Some(string_of(key, value, &mut problems));
                order.push(i);
            }
            None => {
                let near = ANNEX_E_KEYS.iter().find(|k| k.eq_ignore_ascii_case(key));
                let hint = near
                    .map(|k| format!(" (did you mean {k}?)"))
                    .unwrap_or_default();
                problems.push(Problem::warning(
                    "unknown-key",
                    format!("unknown key {key:?}{hint}"),
                ));
            }
        }
    }
    if values.iter().all(Option::is_none) {
        problems.push(Problem::error(
            "no-annex-e-keys",
            "the JSON object holds none of the Annex E keys",
        ));
        return ParsedLabel {
            form: LabelForm::Unrecognised,
            record: None,
            legacy: None,
            problems,
        };
    }
    for (i, v) in values.iter().enumerate() {
        if v.is_none() {
            let sev = if i <= 2 {
                Problem::error
            } else {
                Problem::warning
            };
            problems.push(sev(
                "missing-key",
                format!("key {} is missing", ANNEX_E_KEYS[i]),
            ));
        }
    }
    if order.windows(2).any(|w| w[0] > w[1]) {
        problems.push(Problem::warning(
            "key-order",
            "keys are not in Annex E order",
        ));
    }
    let [
        label,
        producer,
        produce_id,
        rc1,
        propagator,
        propagate_id,
        rc2,
    ] = values.map(Option::unwrap_or_default);
    let label = match label.parse::<Label>() {
        Ok(l) => l,
        Err(e) => {
            problems.push(Problem::error("bad-label-value", e.to_string()));
            return ParsedLabel {
                form: if wrapped {
                    LabelForm::Wrapped
                } else {
                    LabelForm::Bare
                },
                record: None,
                legacy: None,
                problems,
            };
        }
    };
    let record = AigcRecord {
        label,
        content_producer: producer,
        produce_id,
        reserved_code1: rc1,
        content_propagator: propagator,
        propagate_id,
        reserved_code2: rc2,
    };
    for p in record.problems() {
        // A missing key was already reported; don't report it again as empty.
        if !(p.code == "missing-element" && problems.iter().any(|q| q.code == "missing-key")) {
            problems.push(p);
        }
    }
    ParsedLabel {
        form: if wrapped {
            LabelForm::Wrapped
        } else {
            LabelForm::Bare
        },
        record: Some(record),
        legacy: None,
        problems,
    }
}

fn parse_legacy(entries: Entries, mut problems: Vec<Problem>) -> ParsedLabel {
    problems.push(Problem::warning(
        "legacy-schema",
        "2023 guide schema (ServiceProvider/Time/ContentID), superseded by GB 45438 Annex E",
    ));
    let mut get = |key: &str| {
        entries
            .0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(k, v)| string_of(k, v, &mut problems))
            .unwrap_or_default()
    };
    let legacy = LegacyRecord {
        service_provider: get("ServiceProvider"),
        time: get("Time"),
        content_id: get("ContentID"),
    };
    for (key, value) in [
        ("ServiceProvider", &legacy.service_provider),
        ("ContentID", &legacy.content_id),
    ] {
        if value.chars().count() > 32 {
            problems.push(Problem::warning(
                "legacy-too-long",
                format!("{key} is longer than 32 characters"),
            ));
        }
    }
    if !is_legacy_time(&legacy.time) {
        problems.push(Problem::warning(
            "legacy-time",
            format!("Time {:?} is not yyyy-MM-dd HH:mm:ss.SSS", legacy.time),
        ));
    }
    ParsedLabel {
        form: LabelForm::Legacy,
        record: None,
        legacy: Some(legacy),
        problems,
    }
}

fn is_legacy_time(t: &str) -> bool {
    let b = t.as_bytes();
    b.len() == 23
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b' ',
            13 | 16 => *c == b':',
            19 => *c == b'.',
            _ => c.is_ascii_digit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BARE: &str = r#"{"Label":"1","ContentProducer":"001191440300708461136T1XGW3","ProduceID":"a1","ReservedCode1":"","ContentPropagator":"001191440300708461136T1XGW3","PropagateID":"a1","ReservedCode2":""}"#;

    #[test]
    fn wrapped_and_bare_forms_read_the_same_record() {
        let bare = parse_label_value(BARE);
        let wrapped = parse_label_value(&format!("{{\"AIGC\":{BARE}}}"));
        assert_eq!(bare.form, LabelForm::Bare);
        assert_eq!(wrapped.form, LabelForm::Wrapped);
        assert!(bare.is_valid(), "{:?}", bare.problems);
        assert!(
            bare.problems.is_empty() && wrapped.problems.is_empty(),
            "{:?}",
            wrapped.problems
        );
        let dup = parse_label_value(
            r#"{"AIGC":{"Label":"1","Label":"2","ContentProducer":"x","ProduceID":"a"}}"#,
        );
        assert!(dup.problems.iter().any(|q| q.code == "duplicate-key"));
        assert_eq!(bare.record, wrapped.record);
        assert_eq!(
            bare.record.as_ref().map(|r| r.to_bare_json()),
            Some(BARE.to_string())
        );
    }

    #[test]
    fn legacy_schema_is_recognised() {
        let p = parse_label_value(
            r#"{"AIGC":{"ServiceProvider":"ExampleAI","Time":"2024-01-02 03:04:05.678","ContentID":"c1"}}"#,
        );
        assert_eq!(p.form, LabelForm::Legacy);
        assert_eq!(p.legacy.as_ref().map(|l| l.content_id.as_str()), Some("c1"));
        assert!(p.problems.iter().any(|q| q.code == "legacy-schema"));
        assert!(!p.problems.iter().any(|q| q.code == "legacy-time"));
        assert!(!p.is_valid());
    }

    #[test]
    fn flaws_are_reported() {
        let p = parse_label_value(
            r#"{"Label":1,"ContentProducer":"x y","ProduceID":"a","ProduceID":"b","Extra":"1"}"#,
        );
        let codes: Vec<_> = p.problems.iter().map(|q| q.code).collect();
        for code in [
            "non-string-value",
            "duplicate-key",
            "unknown-key",
            "missing-key",
            "bad-characters",
        ] {
            assert!(codes.contains(&code), "{code} missing from {codes:?}");
        }
        assert!(!p.is_valid());
        let p = parse_label_value(r#"{"Label":"4","ContentProducer":"x","ProduceID":"a"}"#);
        assert!(p.problems.iter().any(|q| q.code == "bad-label-value"));
        let p = parse_label_value("AI generated");
        assert_eq!(p.form, LabelForm::Unrecognised);
        let p = parse_label_value(
            r#"{"Label":"1","ProduceID":"a","ContentProducer":"001191440300708461136T1XGW3"}"#,
        );
        assert!(p.problems.iter().any(|q| q.code == "key-order"));
    }
}
