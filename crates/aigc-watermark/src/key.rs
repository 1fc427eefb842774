//! Watermark keys and the keyed pseudo-random sequences derived from them.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// A provider's secret watermark key (256 bits). Embedding and detection both need it.
#[derive(Clone, PartialEq, Eq)]
pub struct WatermarkKey([u8; 32]);

impl std::fmt::Debug for WatermarkKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WatermarkKey({})", self.key_id())
    }
}

impl WatermarkKey {
    /// A key from its 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// A new random key.
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut b = [0u8; 32];
        getrandom::fill(&mut b)?;
        Ok(Self(b))
    }

    /// The secret bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// A public identifier: hex of the first 8 bytes of SHA-256 over the key.
    pub fn key_id(&self) -> String {
        hex::encode(&Sha256::digest(self.0)[..8])
    }

    /// 32 bytes derived for one purpose (HMAC-SHA256 of the label), so that every use of the key
    /// (sync pattern, chip sequence, interleaver, check) is independent of the others.
    pub fn derive(&self, label: &str) -> [u8; 32] {
        // HMAC accepts keys of any length; a 32-byte key cannot fail.
        let mut mac =
            <HmacSha256 as KeyInit>::new_from_slice(&self.0).unwrap_or_else(|_| unreachable_hmac());
        mac.update(label.as_bytes());
        let out = mac.finalize().into_bytes();
        let mut d = [0u8; 32];
        d.copy_from_slice(&out);
        d
    }

    /// A deterministic generator for one purpose.
    pub fn rng(&self, label: &str) -> KeyedRng {
        KeyedRng::from_seed(self.derive(label))
    }
}

#[cold]
fn unreachable_hmac() -> HmacSha256 {
    // new_from_slice only fails for fixed-size-key MACs; HMAC takes any length.
    unreachable!("HMAC accepts keys of any length")
}

/// xoshiro256** seeded from derived key bytes: fast, deterministic on every platform.
#[derive(Debug, Clone)]
pub struct KeyedRng {
    s: [u64; 4],
}

impl KeyedRng {
    /// A generator from 32 seed bytes.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        let mut s = [0u64; 4];
        for (i, w) in s.iter_mut().enumerate() {
            let mut b = [0u8; 8];
            b.copy_from_slice(&seed[i * 8..i * 8 + 8]);
            *w = u64::from_le_bytes(b);
        }
        if s == [0; 4] {
            s[0] = 0x9E37_79B9_7F4A_7C15;
        }
        Self { s }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// A uniform number in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// A uniform integer in [0, n) (n > 0), without modulo bias.
    pub fn below(&mut self, n: usize) -> usize {
        let n = n.max(1) as u64;
        let zone = u64::MAX - (u64::MAX % n);
        loop {
            let v = self.next_u64();
            if v < zone {
                return (v % n) as usize;
            }
        }
    }

    /// `n` values of ±1.
    pub fn bipolar(&mut self, n: usize) -> Vec<f32> {
        (0..n)
            .map(|_| {
                if self.next_u64() >> 63 == 0 {
                    1.0
                } else {
                    -1.0
                }
            })
            .collect()
    }

    /// A standard normal value (Box–Muller).
    pub fn gaussian(&mut self) -> f64 {
        let u1 = self.next_f64().max(f64::MIN_POSITIVE);
        let u2 = self.next_f64();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    /// A uniformly random permutation of 0..n (Fisher–Yates).
    pub fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut p: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            let j = self.below(i + 1);
            p.swap(i, j);
        }
        p
    }
}

/// Keyed 32-bit check of a payload: the first 4 bytes of HMAC-SHA256(key, label ‖ payload).
pub fn payload_check(key: &WatermarkKey, payload: u64) -> u32 {
    let d = {
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(&key.derive("aigc-mark/wm/check/v1"))
            .unwrap_or_else(|_| unreachable_hmac());
        mac.update(&payload.to_be_bytes());
        mac.finalize().into_bytes()
    };
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_streams_are_deterministic_and_independent() {
        let k = WatermarkKey::from_bytes([7; 32]);
        let take4 = |label: &str| -> Vec<u64> {
            let mut r = k.rng(label);
            (0..4).map(|_| r.next_u64()).collect()
        };
        let (a, a2, b) = (take4("a"), take4("a"), take4("b"));
        assert_eq!(a, a2);
        assert_ne!(a, b);
        let mut r = k.rng("perm");
        let mut p = r.permutation(100);
        p.sort_unstable();
        assert_eq!(p, (0..100).collect::<Vec<_>>());
        let chips = k.rng("chips").bipolar(10_000);
        let mean: f32 = chips.iter().sum::<f32>() / chips.len() as f32;
        assert!(mean.abs() < 0.05, "balanced ±1: {mean}");
        assert_ne!(payload_check(&k, 1), payload_check(&k, 2));
        assert_ne!(
            payload_check(&k, 1),
            payload_check(&WatermarkKey::from_bytes([8; 32]), 1)
        );
        assert_eq!(k.key_id().len(), 16);
    }
}
