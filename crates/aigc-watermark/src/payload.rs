//! The 64-bit payload and how it ties a mark to its label both ways.
//!
//! A 27-character provider code and a free-form ProduceID do not fit in 64 bits, so the payload
//! is a pair of fingerprints: 24 bits of SHA-256 over the ContentProducer and 40 bits of
//! SHA-256 over ContentProducer + ProduceID. With the metadata label present, `inspect`
//! recomputes both from the label and checks that mark and label agree, without any database;
//! with the metadata stripped, the ledger (which stores every issued payload) resolves the
//! payload to the full record, and the provider fingerprint alone tells which of a list of
//! known providers made it.

use aigc_core::AigcRecord;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::fmt;

/// Bits of the provider fingerprint.
pub const PROVIDER_BITS: u32 = 24;
/// Bits of the content fingerprint.
pub const CONTENT_BITS: u32 = 40;

/// A 64-bit watermark payload: provider fingerprint (high 24 bits) and content fingerprint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Payload(pub u64);

fn fingerprint(domain: &str, parts: &[&str], bits: u32) -> u64 {
    let mut h = Sha256::new();
    h.update(domain.as_bytes());
    for p in parts {
        h.update([0u8]);
        h.update(p.as_bytes());
    }
    let d = h.finalize();
    let mut v = [0u8; 8];
    v.copy_from_slice(&d[..8]);
    u64::from_be_bytes(v) >> (64 - bits)
}

/// The provider fingerprint of a ContentProducer value.
pub fn provider_fingerprint(producer: &str) -> u32 {
    fingerprint("aigc-mark/wm/provider/v1", &[producer], PROVIDER_BITS) as u32
}

impl Payload {
    /// The payload for a record.
    pub fn from_record(r: &AigcRecord) -> Self {
        let provider = u64::from(provider_fingerprint(&r.content_producer));
        let content = fingerprint(
            "aigc-mark/wm/content/v1",
            &[&r.content_producer, &r.produce_id],
            CONTENT_BITS,
        );
        Payload((provider << CONTENT_BITS) | content)
    }

    /// The provider fingerprint (24 bits).
    pub fn provider(self) -> u32 {
        (self.0 >> CONTENT_BITS) as u32
    }

    /// The content fingerprint (40 bits).
    pub fn content(self) -> u64 {
        self.0 & ((1u64 << CONTENT_BITS) - 1)
    }

    /// Whether this payload was made from `r` (mark and label agree).
    pub fn matches(self, r: &AigcRecord) -> bool {
        self == Self::from_record(r)
    }

    /// The 64 bits, most significant first, as 0/1.
    pub fn bits(self) -> [u8; 64] {
        std::array::from_fn(|i| ((self.0 >> (63 - i)) & 1) as u8)
    }

    /// The payload from 64 bits (0/1), most significant first.
    pub fn from_bits(bits: &[u8]) -> Option<Self> {
        (bits.len() == 64).then(|| {
            Payload(
                bits.iter()
                    .fold(0u64, |acc, b| (acc << 1) | u64::from(*b & 1)),
            )
        })
    }

    /// 16 lower-case hex digits.
    pub fn to_hex(self) -> String {
        format!("{:016x}", self.0)
    }

    /// Parses 16 hex digits.
    pub fn from_hex(s: &str) -> Option<Self> {
        (s.len() == 16)
            .then(|| u64::from_str_radix(s, 16).ok().map(Payload))
            .flatten()
    }
}

impl fmt::Display for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aigc_core::Label;

    #[test]
    fn payload_ties_to_the_record() {
        let a = AigcRecord::new(Label::Generated, "001191440300708461136T1XGW3", "img-1");
        let b = AigcRecord::new(Label::Generated, "001191440300708461136T1XGW3", "img-2");
        let pa = Payload::from_record(&a);
        let pb = Payload::from_record(&b);
        assert!(pa.matches(&a) && !pa.matches(&b));
        assert_eq!(
            pa.provider(),
            pb.provider(),
            "same provider, same fingerprint"
        );
        assert_ne!(pa.content(), pb.content());
        // Propagation does not change the payload: it identifies the producer's content.
        let mut c = a.clone();
        c.content_propagator = "001191440300708461136T20000".into();
        c.propagate_id = "post".into();
        assert!(pa.matches(&c));
        assert_eq!(Payload::from_bits(&pa.bits()), Some(pa));
        assert_eq!(Payload::from_hex(&pa.to_hex()), Some(pa));
        assert_eq!(Payload::from_hex("xyz"), None);
    }
}
