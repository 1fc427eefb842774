//! Signatures over AIGC labels and the key files that hold them.
//!
//! A signature is stored in ReservedCode1 (producer) or ReservedCode2 (propagator) as the token
//! `AMS1.<alg>.<key id>.<signature>` (aigc-mark signature, version 1): `alg` is `sm2`
//! (SM3withSM2, GB/T 32918, user ID `1234567812345678`, signature r‖s) or `ed25519`; the key id
//! is the first 8 bytes of SHA-256 over the public key (SEC1 uncompressed for SM2, raw for
//! Ed25519) in hex; the signature is unpadded base64url. Every character is in the Annex E set.
//!
//! The producer signs the ASCII string `"Label":"…","ContentProducer":"…","ProduceID":"…"`
//! (TC260-PG-202511A Annex A.1); a propagator signs the same string followed by
//! `,"ReservedCode1":"…","ContentPropagator":"…","PropagateID":"…"`, so its signature also
//! covers the producer's.

// Library code never unwraps: everything it handles may come from outside.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod keys;

pub use keys::{KeyFile, KeyRing, default_key_dir, load_secret};

use aigc_core::AigcRecord;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use sha2::{Digest, Sha256};
use signature_traits::{Signer, Verifier};
use std::fmt;
use std::str::FromStr;

mod signature_traits {
    pub use ed25519_dalek::{Signer, Verifier};
}

/// The token prefix and version of our signature encoding.
pub const TOKEN_VERSION: &str = "AMS1";
/// The default SM2 user ID (GB/T 35276), as TC260-PG-202511A uses it.
pub const SM2_USER_ID: &str = "1234567812345678";

/// Errors of key handling and signing.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The operating system's random source failed.
    #[error("cannot read random bytes for a new key: {0}")]
    Random(String),
    /// A key file could not be read or written.
    #[error("key file {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A key file's content is wrong.
    #[error("key file {path}: {detail}")]
    BadKeyFile { path: String, detail: String },
    /// The key holds no secret part.
    #[error("key {0} is a public key; signing needs the secret key file")]
    NotSecret(String),
    /// No key matches.
    #[error("no key {0:?} (give a key file path, or a key id found in the key directory)")]
    NotFound(String),
    /// The algorithm name is unknown.
    #[error("unknown signature algorithm {0:?} (use sm2 or ed25519)")]
    UnknownAlgorithm(String),
}

/// A signature algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    /// SM3withSM2 (OID 1.2.156.10197.1.501).
    Sm2,
    /// Ed25519 (RFC 8032).
    Ed25519,
}

impl Algorithm {
    /// The name used in tokens and key files.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sm2 => "sm2",
            Algorithm::Ed25519 => "ed25519",
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Algorithm {
    type Err = SignError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "sm2" | "sm3withsm2" => Ok(Algorithm::Sm2),
            "ed25519" => Ok(Algorithm::Ed25519),
            other => Err(SignError::UnknownAlgorithm(other.to_string())),
        }
    }
}

/// A public key that verifies label signatures.
#[derive(Clone)]
pub enum PublicKey {
    /// An SM2 key with the default user ID.
    Sm2(Box<sm2::dsa::VerifyingKey>),
    /// An Ed25519 key.
    Ed25519(ed25519_dalek::VerifyingKey),
}

impl PublicKey {
    /// The algorithm.
    pub fn algorithm(&self) -> Algorithm {
        match self {
            PublicKey::Sm2(_) => Algorithm::Sm2,
            PublicKey::Ed25519(_) => Algorithm::Ed25519,
        }
    }

    /// The encoded public key: SEC1 uncompressed for SM2, 32 raw bytes for Ed25519.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            PublicKey::Sm2(k) => k.to_sec1_bytes().to_vec(),
            PublicKey::Ed25519(k) => k.to_bytes().to_vec(),
        }
    }

    /// Decodes a public key of `alg` from [`PublicKey::to_bytes`] form.
    pub fn from_bytes(alg: Algorithm, bytes: &[u8]) -> Option<Self> {
        match alg {
            Algorithm::Sm2 => sm2::dsa::VerifyingKey::from_sec1_bytes(SM2_USER_ID, bytes)
                .ok()
                .map(|k| PublicKey::Sm2(Box::new(k))),
            Algorithm::Ed25519 => {
                let arr: [u8; 32] = bytes.try_into().ok()?;
                ed25519_dalek::VerifyingKey::from_bytes(&arr)
                    .ok()
                    .map(PublicKey::Ed25519)
            }
        }
    }

    /// The key id: hex of the first 8 bytes of SHA-256 over the encoded key.
    pub fn key_id(&self) -> String {
        hex::encode(&Sha256::digest(self.to_bytes())[..8])
    }

    /// Whether `sig` is a valid signature of `msg`.
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        match self {
            PublicKey::Sm2(k) => sm2::dsa::Signature::from_slice(sig)
                .is_ok_and(|s| Verifier::verify(k.as_ref(), msg, &s).is_ok()),
            PublicKey::Ed25519(k) => <[u8; 64]>::try_from(sig).is_ok_and(|b| {
                k.verify(msg, &ed25519_dalek::Signature::from_bytes(&b))
                    .is_ok()
            }),
        }
    }
}

/// A secret key that signs labels.
#[derive(Clone)]
pub enum SecretKey {
    /// An SM2 key with the default user ID.
    Sm2(Box<sm2::dsa::SigningKey>),
    /// An Ed25519 key.
    Ed25519(Box<ed25519_dalek::SigningKey>),
}

impl SecretKey {
    /// A new random key.
    pub fn generate(alg: Algorithm) -> Result<Self, SignError> {
        loop {
            let mut seed = [0u8; 32];
            getrandom::fill(&mut seed).map_err(|e| SignError::Random(e.to_string()))?;
            // An SM2 scalar must be below the group order; retry on the rare seed that is not.
            if let Some(k) = Self::from_bytes(alg, &seed) {
                return Ok(k);
            }
        }
    }

    /// Decodes a secret key of `alg` from its 32 bytes.
    pub fn from_bytes(alg: Algorithm, bytes: &[u8]) -> Option<Self> {
        match alg {
            Algorithm::Sm2 => sm2::dsa::SigningKey::from_slice(SM2_USER_ID, bytes)
                .ok()
                .map(|k| SecretKey::Sm2(Box::new(k))),
            Algorithm::Ed25519 => {
                let arr: [u8; 32] = bytes.try_into().ok()?;
                Some(SecretKey::Ed25519(Box::new(
                    ed25519_dalek::SigningKey::from_bytes(&arr),
                )))
            }
        }
    }

    /// The 32 secret bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            SecretKey::Sm2(k) => k.to_bytes().to_vec(),
            SecretKey::Ed25519(k) => k.to_bytes().to_vec(),
        }
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        match self {
            SecretKey::Sm2(k) => PublicKey::Sm2(Box::new(k.verifying_key().clone())),
            SecretKey::Ed25519(k) => PublicKey::Ed25519(k.verifying_key()),
        }
    }

    /// The algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.public_key().algorithm()
    }

    /// Signs `msg`.
    pub fn sign(&self, msg: &[u8]) -> Vec<u8> {
        match self {
            SecretKey::Sm2(k) => {
                let s: sm2::dsa::Signature = Signer::sign(k.as_ref(), msg);
                s.to_bytes().to_vec()
            }
            SecretKey::Ed25519(k) => k.sign(msg).to_bytes().to_vec(),
        }
    }

    /// A signature token over `msg` for a ReservedCode field.
    pub fn token(&self, msg: &[u8]) -> String {
        let public = self.public_key();
        format!(
            "{TOKEN_VERSION}.{}.{}.{}",
            public.algorithm(),
            public.key_id(),
            URL_SAFE_NO_PAD.encode(self.sign(msg))
        )
    }
}

fn pairs(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("\"{k}\":{}", serde_json::Value::String((*v).to_string())))
        .collect::<Vec<_>>()
        .join(",")
}

/// The string a producer signs (TC260-PG-202511A Annex A.1).
pub fn producer_message(r: &AigcRecord) -> String {
    pairs(&[
        ("Label", r.label.as_str()),
        ("ContentProducer", &r.content_producer),
        ("ProduceID", &r.produce_id),
    ])
}

/// The string a propagator signs: the producer's string plus its protection data and the
/// propagator's fields.
pub fn propagator_message(r: &AigcRecord) -> String {
    format!(
        "{},{}",
        producer_message(r),
        pairs(&[
            ("ReservedCode1", &r.reserved_code1),
            ("ContentPropagator", &r.content_propagator),
            ("PropagateID", &r.propagate_id),
        ])
    )
}

/// Signs as the producer: sets ReservedCode1.
pub fn sign_as_producer(record: &mut AigcRecord, key: &SecretKey) {
    record.reserved_code1 = key.token(producer_message(record).as_bytes());
}

/// Signs as the propagator: sets ReservedCode2.
pub fn sign_as_propagator(record: &mut AigcRecord, key: &SecretKey) {
    record.reserved_code2 = key.token(propagator_message(record).as_bytes());
}

/// What a ReservedCode field says about a signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum SignatureState {
    /// The field is empty.
    Absent,
    /// The field holds data that is not one of our signature tokens.
    NotOurs,
    /// The token is malformed.
    Malformed { detail: String },
    /// The signature verifies under a known key.
    Valid {
        algorithm: Algorithm,
        key_id: String,
    },
    /// A known key, but the signature does not match the label.
    Invalid {
        algorithm: Algorithm,
        key_id: String,
    },
    /// The key that made it is not in the key ring.
    UnknownKey {
        algorithm: Algorithm,
        key_id: String,
    },
}

impl SignatureState {
    /// A short word for tables.
    pub fn word(&self) -> &'static str {
        match self {
            SignatureState::Absent => "none",
            SignatureState::NotOurs => "other data",
            SignatureState::Malformed { .. } => "malformed",
            SignatureState::Valid { .. } => "valid",
            SignatureState::Invalid { .. } => "INVALID",
            SignatureState::UnknownKey { .. } => "unknown key",
        }
    }
}

/// Checks a token from a ReservedCode field over `msg`.
pub fn verify_token(token: &str, msg: &[u8], keys: &KeyRing) -> SignatureState {
    if token.is_empty() {
        return SignatureState::Absent;
    }
    let mut parts = token.split('.');
    if parts.next() != Some(TOKEN_VERSION) {
        return SignatureState::NotOurs;
    }
    let (Some(alg), Some(key_id), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return SignatureState::Malformed {
            detail: "expected AMS1.<alg>.<key id>.<signature>".into(),
        };
    };
    let algorithm = match alg.parse::<Algorithm>() {
        Ok(a) => a,
        Err(e) => {
            return SignatureState::Malformed {
                detail: e.to_string(),
            };
        }
    };
    let Ok(sig) = URL_SAFE_NO_PAD.decode(sig) else {
        return SignatureState::Malformed {
            detail: "signature is not base64url".into(),
        };
    };
    let key_id = key_id.to_string();
    match keys.public(&key_id) {
        Some(k) if k.algorithm() == algorithm => {
            if k.verify(msg, &sig) {
                SignatureState::Valid { algorithm, key_id }
            } else {
                SignatureState::Invalid { algorithm, key_id }
            }
        }
        _ => SignatureState::UnknownKey { algorithm, key_id },
    }
}

/// The producer's and the propagator's signature states of a record.
pub fn verify_record(r: &AigcRecord, keys: &KeyRing) -> (SignatureState, SignatureState) {
    (
        verify_token(&r.reserved_code1, producer_message(r).as_bytes(), keys),
        verify_token(&r.reserved_code2, propagator_message(r).as_bytes(), keys),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use aigc_core::{Label, is_annex_e_value};

    fn record() -> AigcRecord {
        AigcRecord::new(Label::Generated, "001191440300708461136T1XGW3", "id-1")
    }

    #[test]
    fn producer_message_matches_the_guide() {
        assert_eq!(
            producer_message(&record()),
            r#""Label":"1","ContentProducer":"001191440300708461136T1XGW3","ProduceID":"id-1""#
        );
    }

    #[test]
    fn both_algorithms_sign_and_verify() {
        for alg in [Algorithm::Sm2, Algorithm::Ed25519] {
            let key = SecretKey::generate(alg).expect("key");
            let mut ring = KeyRing::default();
            ring.add(key.public_key());
            let mut r = record();
            sign_as_producer(&mut r, &key);
            assert!(is_annex_e_value(&r.reserved_code1), "{}", r.reserved_code1);
            assert!(r.validate(true).is_ok());
            assert!(
                matches!(verify_record(&r, &ring).0, SignatureState::Valid { .. }),
                "{alg}"
            );
            // Tampering with the label breaks it.
            let mut t = r.clone();
            t.produce_id = "id-2".into();
            assert!(matches!(
                verify_record(&t, &ring).0,
                SignatureState::Invalid { .. }
            ));
            // Without the key it is unknown.
            assert!(matches!(
                verify_record(&r, &KeyRing::default()).0,
                SignatureState::UnknownKey { .. }
            ));
            // Propagator signature covers the producer's.
            sign_as_propagator(&mut r, &key);
            assert!(matches!(
                verify_record(&r, &ring).1,
                SignatureState::Valid { .. }
            ));
            let mut t = r.clone();
            t.reserved_code1.push('x');
            assert!(!matches!(
                verify_record(&t, &ring).1,
                SignatureState::Valid { .. }
            ));
            // Round trip of the secret bytes.
            let again = SecretKey::from_bytes(alg, &key.to_bytes()).expect("decode");
            assert_eq!(again.public_key().key_id(), key.public_key().key_id());
        }
    }

    #[test]
    fn sm2_signature_verifies_with_sm2_user_id() {
        // Verification must use the SM2 user ID: a key built with another ID rejects the signature.
        let key = SecretKey::generate(Algorithm::Sm2).expect("key");
        let sig = key.sign(b"msg");
        let other =
            sm2::dsa::VerifyingKey::from_sec1_bytes("other-id", &key.public_key().to_bytes())
                .expect("key");
        assert!(!PublicKey::Sm2(Box::new(other)).verify(b"msg", &sig));
        assert!(key.public_key().verify(b"msg", &sig));
    }

    #[test]
    fn other_data_and_malformed_tokens() {
        let ring = KeyRing::default();
        assert_eq!(verify_token("", b"m", &ring), SignatureState::Absent);
        assert_eq!(
            verify_token("e862483430d978cbf828b8b24296ef9328d843a0", b"m", &ring),
            SignatureState::NotOurs
        );
        assert!(matches!(
            verify_token("AMS1.sm2.abc", b"m", &ring),
            SignatureState::Malformed { .. }
        ));
        assert!(matches!(
            verify_token("AMS1.rsa.abc.def", b"m", &ring),
            SignatureState::Malformed { .. }
        ));
    }
}
