//! The Annex E record: seven string elements, emitted as compact JSON in the standard's order.

use crate::label::Label;
use crate::problem::Problem;
use crate::provider::{ProviderCode, looks_like_code};
use serde::Serialize;

/// The seven Annex E keys in the order the standard shows them.
pub const ANNEX_E_KEYS: [&str; 7] = [
    "Label",
    "ContentProducer",
    "ProduceID",
    "ReservedCode1",
    "ContentPropagator",
    "PropagateID",
    "ReservedCode2",
];

/// Whether a character is in the Annex E value set: printable ASCII without space, `"` and `\`.
pub fn is_annex_e_char(c: char) -> bool {
    matches!(c, '\x21' | '\x23'..='\x5b' | '\x5d'..='\x7e')
}

/// Whether every character of `value` is in the Annex E value set.
pub fn is_annex_e_value(value: &str) -> bool {
    value.chars().all(is_annex_e_char)
}

/// Why a record cannot be issued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// A required element is empty.
    #[error("{0} must not be empty")]
    Empty(&'static str),
    /// A value holds a character outside the Annex E set.
    #[error(
        "{key} holds {ch:?} at position {pos}; Annex E values use printable ASCII without space, '\"' and '\\'"
    )]
    Character {
        key: &'static str,
        pos: usize,
        ch: char,
    },
    /// A producer or propagator that is meant as a code but fails the coding rules.
    #[error("{key}: {source}")]
    ProviderCode {
        key: &'static str,
        #[source]
        source: crate::provider::ProviderCodeError,
    },
}

/// One GB 45438 Annex E implicit label.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AigcRecord {
    /// Is / possibly / suspected AI-generated.
    pub label: Label,
    /// The generating provider's name or 27-character code.
    pub content_producer: String,
    /// The producer's unique ID for this content.
    #[serde(rename = "ProduceID")]
    pub produce_id: String,
    /// The producer's protection data (e.g. a signature over the label).
    pub reserved_code1: String,
    /// The propagating platform's name or code (the producer on first write).
    pub content_propagator: String,
    /// The propagator's unique ID (the ProduceID on first write).
    #[serde(rename = "PropagateID")]
    pub propagate_id: String,
    /// The propagator's protection data.
    pub reserved_code2: String,
}

impl AigcRecord {
    /// A first-write record: the propagator fields repeat the producer's (Annex E note 1).
    pub fn new(label: Label, producer: &str, produce_id: &str) -> Self {
        Self {
            label,
            content_producer: producer.to_string(),
            produce_id: produce_id.to_string(),
            reserved_code1: String::new(),
            content_propagator: producer.to_string(),
            propagate_id: produce_id.to_string(),
            reserved_code2: String::new(),
        }
    }

    /// The values in Annex E order, paired with their keys.
    pub fn fields(&self) -> [(&'static str, &str); 7] {
        [
            ("Label", self.label.as_str()),
            ("ContentProducer", &self.content_producer),
            ("ProduceID", &self.produce_id),
            ("ReservedCode1", &self.reserved_code1),
            ("ContentPropagator", &self.content_propagator),
            ("PropagateID", &self.propagate_id),
            ("ReservedCode2", &self.reserved_code2),
        ]
    }

    /// Compact JSON of the seven keys in Annex E order, without the `{"AIGC":…}` wrapper.
    pub fn to_bare_json(&self) -> String {
        let mut out = String::with_capacity(256);
        out.push('{');
        for (i, (key, value)) in self.fields().iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push('"');
            out.push_str(key);
            out.push_str("\":");
            // serde_json escapes exactly what JSON requires; values are plain strings.
            out.push_str(&serde_json::Value::String((*value).to_string()).to_string());
        }
        out.push('}');
        out
    }

    /// Compact JSON wrapped as `{"AIGC":{…}}`, the form Annex E shows.
    pub fn to_wrapped_json(&self) -> String {
        format!("{{\"AIGC\":{}}}", self.to_bare_json())
    }

    /// Checks the record before it is written: required elements present, Annex E characters
    /// only, and producer/propagator codes valid when they are codes.
    /// With `require_codes`, producer and propagator must be 27-character codes, not names.
    pub fn validate(&self, require_codes: bool) -> Result<(), RecordError> {
        // A platform labelling content that arrived unlabelled (Label 2 or 3) may not know the producer.
        if self.label == Label::Generated {
            for (key, value) in [
                ("ContentProducer", &self.content_producer),
                ("ProduceID", &self.produce_id),
            ] {
                if value.is_empty() {
                    return Err(RecordError::Empty(key));
                }
            }
        }
        if self.content_propagator.is_empty() && !self.propagate_id.is_empty() {
            return Err(RecordError::Empty("ContentPropagator"));
        }
        for (key, value) in self.fields() {
            if let Some((pos, ch)) = value
                .chars()
                .enumerate()
                .find(|(_, c)| !is_annex_e_char(*c))
            {
                return Err(RecordError::Character {
                    key,
                    pos: pos + 1,
                    ch,
                });
            }
        }
        for (key, value) in [
            ("ContentProducer", &self.content_producer),
            ("ContentPropagator", &self.content_propagator),
        ] {
            if value.is_empty() {
                continue;
            }
            if require_codes || looks_like_code(value) {
                ProviderCode::parse(value)
                    .map_err(|source| RecordError::ProviderCode { key, source })?;
            }
        }
        Ok(())
    }

    /// Lists every departure from Annex E without stopping at the first (used by `inspect`).
    pub fn problems(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        for (key, value) in [
            ("ContentProducer", &self.content_producer),
            ("ProduceID", &self.produce_id),
        ] {
            if value.is_empty() {
                problems.push(if self.label == Label::Generated {
                    Problem::error("missing-element", format!("{key} is empty"))
                } else {
                    Problem::warning(
                        "missing-element",
                        format!("{key} is empty (producer unknown)"),
                    )
                });
            }
        }
        for (key, value) in self.fields() {
            if let Some((pos, ch)) = value
                .chars()
                .enumerate()
                .find(|(_, c)| !is_annex_e_char(*c))
            {
                problems.push(Problem::warning(
                    "bad-characters",
                    format!("{key} holds {ch:?} at position {}; Annex E asks for printable ASCII without space, '\"' and '\\'", pos + 1),
                ));
            }
        }
        for (key, value) in [
            ("ContentProducer", &self.content_producer),
            ("ContentPropagator", &self.content_propagator),
        ] {
            if value.is_empty() {
                continue;
            }
            if looks_like_code(value) {
                if let Err(e) = ProviderCode::parse(value) {
                    problems.push(Problem::error("bad-provider-code", format!("{key}: {e}")));
                }
            } else {
                problems.push(Problem::warning(
                    "provider-name",
                    format!("{key} {value:?} is a name, not a 27-character provider code"),
                ));
            }
        }
        if self.content_propagator.is_empty() {
            problems.push(Problem::warning(
                "missing-propagator",
                "ContentPropagator is empty (on first write it should repeat ContentProducer)",
            ));
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CODE: &str = "001191440300708461136T1XGW3";

    #[test]
    fn json_is_compact_and_in_annex_e_order() {
        let mut r = AigcRecord::new(Label::Generated, CODE, "img-0001");
        r.reserved_code1 = "sig".into();
        assert_eq!(
            r.to_wrapped_json(),
            r#"{"AIGC":{"Label":"1","ContentProducer":"001191440300708461136T1XGW3","ProduceID":"img-0001","ReservedCode1":"sig","ContentPropagator":"001191440300708461136T1XGW3","PropagateID":"img-0001","ReservedCode2":""}}"#
        );
    }

    #[test]
    fn validation_names_the_failing_rule() {
        let mut r = AigcRecord::new(Label::Generated, CODE, "id 1");
        assert_eq!(
            r.validate(true),
            Err(RecordError::Character {
                key: "ProduceID",
                pos: 3,
                ch: ' '
            })
        );
        r.produce_id = "id\"1".into();
        assert!(matches!(
            r.validate(true),
            Err(RecordError::Character { ch: '"', .. })
        ));
        r.produce_id = String::new();
        assert_eq!(r.validate(true), Err(RecordError::Empty("ProduceID")));
        let r = AigcRecord::new(Label::Generated, "ExampleAI", "x");
        assert!(r.validate(false).is_ok());
        assert!(matches!(
            r.validate(true),
            Err(RecordError::ProviderCode {
                key: "ContentProducer",
                ..
            })
        ));
        let r = AigcRecord::new(Label::Generated, "001191440300708461136A1XGW3", "x");
        let msg = r.validate(false).unwrap_err().to_string();
        assert!(
            msg.contains("ContentProducer") && msg.contains("GB 32100"),
            "{msg}"
        );
    }

    #[test]
    fn annex_e_character_set_boundaries() {
        assert!(is_annex_e_value("!#[]~AZaz09-_:./"));
        for bad in [" ", "\"", "\\", "\u{7f}", "生", "\t"] {
            assert!(!is_annex_e_value(bad), "{bad:?}");
        }
    }
}
