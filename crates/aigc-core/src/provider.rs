//! The 27-character service-provider code (服务提供者编码, 网安秘字〔2025〕29号) and the unified
//! social credit code (统一社会信用代码, GB 32100-2015) embedded in it.

use std::fmt;
use std::str::FromStr;

/// The 31 characters a unified social credit code may use, in check-value order (no I, O, S, V, Z).
const USCC_ALPHABET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
/// GB 32100 weights for positions 1..=17: 3^(i-1) mod 31.
const USCC_WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];

/// Why a provider code was rejected; each variant names the rule that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderCodeError {
    /// The code is not 27 characters long.
    #[error("provider code must be 27 characters, got {0}")]
    Length(usize),
    /// A character other than 0-9 or A-Z.
    #[error("provider code may hold only digits and upper-case letters; {ch:?} at position {pos}")]
    Character { pos: usize, ch: char },
    /// Positions 1-2 are not the format code `00`.
    #[error("provider code must start with the format code \"00\", got {0:?}")]
    FormatCode(String),
    /// Position 23 is not 1 (generation) or 2 (propagation).
    #[error(
        "position 23 of the provider code is the service type and must be 1 (generation) or 2 (propagation), got {0:?}"
    )]
    ServiceType(char),
    /// A character that the unified social credit code alphabet excludes (I, O, S, V, Z).
    #[error(
        "unified social credit code (positions 5-22) may not contain {ch:?} (position {pos} of the provider code)"
    )]
    UsccCharacter { pos: usize, ch: char },
    /// The unified social credit code's 18th character is not its GB 32100 check character.
    #[error(
        "unified social credit code {uscc} fails its GB 32100 check: last character should be {expected:?}, got {found:?}"
    )]
    UsccCheck {
        uscc: String,
        expected: char,
        found: char,
    },
}

/// Computes the GB 32100 check character of the first 17 characters of a unified social credit
/// code, or `None` when one of them is outside the code's alphabet.
pub fn uscc_check_char(first17: &str) -> Option<char> {
    let bytes = first17.as_bytes();
    if bytes.len() != 17 {
        return None;
    }
    let mut sum = 0u32;
    for (b, w) in bytes.iter().zip(USCC_WEIGHTS) {
        let v = USCC_ALPHABET.iter().position(|c| c == b)? as u32;
        sum += v * w;
    }
    let check = (31 - sum % 31) % 31;
    Some(USCC_ALPHABET[check as usize] as char)
}

/// A validated 27-character provider code.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProviderCode(String);

impl ProviderCode {
    /// Validates `code` against every rule of the coding scheme.
    pub fn parse(code: &str) -> Result<Self, ProviderCodeError> {
        let n = code.chars().count();
        if n != 27 {
            return Err(ProviderCodeError::Length(n));
        }
        for (i, ch) in code.chars().enumerate() {
            if !(ch.is_ascii_digit() || ch.is_ascii_uppercase()) {
                return Err(ProviderCodeError::Character { pos: i + 1, ch });
            }
        }
        if &code[0..2] != "00" {
            return Err(ProviderCodeError::FormatCode(code[0..2].to_string()));
        }
        // Organisations bound to their unified social credit code: subject type 1, binding type 1.
        if &code[2..4] == "11" {
            let uscc = &code[4..22];
            for (i, ch) in uscc.chars().enumerate() {
                if !USCC_ALPHABET.contains(&(ch as u8)) {
                    return Err(ProviderCodeError::UsccCharacter { pos: i + 5, ch });
                }
            }
            let expected = uscc_check_char(&uscc[..17]).unwrap_or('?');
            let found = uscc.as_bytes()[17] as char;
            if expected != found {
                return Err(ProviderCodeError::UsccCheck {
                    uscc: uscc.to_string(),
                    expected,
                    found,
                });
            }
        }
        let service = code.as_bytes()[22] as char;
        if service != '1' && service != '2' {
            return Err(ProviderCodeError::ServiceType(service));
        }
        Ok(Self(code.to_string()))
    }

    /// The code as stored in a label.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The embedded unified social credit code when the subject is bound to one.
    pub fn uscc(&self) -> Option<&str> {
        (&self.0[2..4] == "11").then(|| &self.0[4..22])
    }

    /// Whether position 23 marks a propagation service.
    pub fn is_propagation_service(&self) -> bool {
        self.0.as_bytes()[22] == b'2'
    }
}

impl fmt::Display for ProviderCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for ProviderCode {
    type Err = ProviderCodeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Whether a producer/propagator value looks like it is meant as a code rather than a name.
pub(crate) fn looks_like_code(value: &str) -> bool {
    value.len() >= 20
        && value.starts_with("00")
        && value
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_code_from_the_field_validates() {
        let code = ProviderCode::parse("001191440300708461136T1XGW3").expect("valid");
        assert_eq!(code.uscc(), Some("91440300708461136T"));
        assert!(!code.is_propagation_service());
    }

    #[test]
    fn uscc_check_characters_of_published_codes() {
        // The first is the code seen in real labelled files; the second is a further known-valid code.
        assert_eq!(uscc_check_char("91440300708461136"), Some('T'));
        assert_eq!(uscc_check_char("91110000802100433"), Some('B'));
        assert_eq!(
            uscc_check_char("9111000010000001I"),
            None,
            "I is not in the alphabet"
        );
    }

    #[test]
    fn each_rule_is_named() {
        assert_eq!(
            ProviderCode::parse("0011"),
            Err(ProviderCodeError::Length(4))
        );
        assert!(matches!(
            ProviderCode::parse("001191440300708461136t1XGW3"),
            Err(ProviderCodeError::Character { pos: 22, ch: 't' })
        ));
        assert!(matches!(
            ProviderCode::parse("011191440300708461136T1XGW3"),
            Err(ProviderCodeError::FormatCode(_))
        ));
        assert!(matches!(
            ProviderCode::parse("001191440300708461136T3XGW3"),
            Err(ProviderCodeError::ServiceType('3'))
        ));
        let err = ProviderCode::parse("001191440300708461136A1XGW3").unwrap_err();
        assert_eq!(
            err,
            ProviderCodeError::UsccCheck {
                uscc: "91440300708461136A".into(),
                expected: 'T',
                found: 'A'
            }
        );
        assert!(err.to_string().contains("GB 32100"));
        assert!(matches!(
            ProviderCode::parse("0011914403007084611I6T1XGW3"),
            Err(ProviderCodeError::UsccCharacter { pos: 20, ch: 'I' })
        ));
    }

    #[test]
    fn propagation_service_digit() {
        let code = ProviderCode::parse("001191440300708461136T20000").expect("valid");
        assert!(code.is_propagation_service());
    }
}
