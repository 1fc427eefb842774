//! The payload chain every carrier uses: 64 payload bits + 32-bit keyed check → convolutional
//! code → keyed interleaving → ±1 chips; and back, from soft values to a payload that is only
//! returned when its check passes.

use crate::ecc;
use crate::key::{WatermarkKey, payload_check};
use crate::payload::Payload;
use serde::Serialize;

/// Payload plus check bits.
pub const MESSAGE_BITS: usize = 96;
/// Coded chips carried by a mark.
pub const CODED_BITS: usize = (MESSAGE_BITS + ecc::TAIL) * ecc::RATE_INV;

fn message_bits(payload: Payload, key: &WatermarkKey) -> Vec<u8> {
    let check = payload_check(key, payload.0);
    let mut bits = payload.bits().to_vec();
    bits.extend((0..32).map(|i| ((check >> (31 - i)) & 1) as u8));
    bits
}

fn interleaver(key: &WatermarkKey) -> Vec<usize> {
    key.rng("aigc-mark/wm/interleave/v1")
        .permutation(CODED_BITS)
}

/// The `CODED_BITS` chips (±1) that carry `payload` under `key`.
pub fn encode_payload(payload: Payload, key: &WatermarkKey) -> Vec<f32> {
    let coded = ecc::encode(&message_bits(payload, key));
    let perm = interleaver(key);
    let mut out = vec![0.0f32; CODED_BITS];
    for (i, bit) in coded.iter().enumerate() {
        out[perm[i]] = if *bit == 1 { 1.0 } else { -1.0 };
    }
    out
}

/// The result of decoding soft chips.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decoded {
    /// The payload, only when its keyed check passed.
    pub payload: Option<Payload>,
    /// Coded chips whose sign disagreed with the decoded codeword (errors corrected).
    pub bit_errors: usize,
    /// Chips decoded.
    pub chips: usize,
}

/// Decodes `CODED_BITS` soft chips (positive = 1). Never returns an unchecked payload.
pub fn decode_payload(soft: &[f32], key: &WatermarkKey) -> Decoded {
    let none = Decoded {
        payload: None,
        bit_errors: soft.len(),
        chips: soft.len(),
    };
    if soft.len() != CODED_BITS {
        return none;
    }
    let deinterleaved = deinterleave(soft, key);
    let Some(bits) = ecc::decode(&deinterleaved, MESSAGE_BITS) else {
        return none;
    };
    checked(&bits, &deinterleaved, key)
}

/// The soft chips in code order.
fn deinterleave(soft: &[f32], key: &WatermarkKey) -> Vec<f32> {
    interleaver(key).iter().map(|&p| soft[p]).collect()
}

/// One decoded message: its chip errors against the soft chips, and the payload only when the
/// keyed check of its last 32 bits passes.
fn checked(bits: &[u8], deinterleaved: &[f32], key: &WatermarkKey) -> Decoded {
    let bit_errors = ecc::encode(bits)
        .iter()
        .zip(deinterleaved)
        .filter(|(b, v)| (**b == 1) != (**v > 0.0))
        .count();
    let check = bits[64..]
        .iter()
        .fold(0u32, |acc, b| (acc << 1) | u32::from(*b));
    let payload = Payload::from_bits(&bits[..64]).filter(|p| payload_check(key, p.0) == check);
    Decoded {
        payload,
        bit_errors,
        chips: CODED_BITS,
    }
}

/// Decodes like [`decode_payload`], but tests up to `list` paths of the list Viterbi decoder
/// (best first) against the keyed check and returns the first that passes, with the number of
/// paths tested: each one could pass the 32-bit check by chance, so the caller counts them all
/// as decode attempts. With `list` = 1 it is [`decode_payload`].
pub fn decode_payload_list(soft: &[f32], key: &WatermarkKey, list: usize) -> (Decoded, usize) {
    let none = Decoded {
        payload: None,
        bit_errors: soft.len(),
        chips: soft.len(),
    };
    if soft.len() != CODED_BITS {
        return (none, 0);
    }
    // The plain Viterbi path first: it is the list's first path, and most decodes of a marked
    // image stop there without the list's cost.
    let first = decode_payload(soft, key);
    if first.payload.is_some() || list <= 1 {
        return (first, 1);
    }
    let deinterleaved = deinterleave(soft, key);
    let Some(paths) = ecc::decode_list(&deinterleaved, MESSAGE_BITS, list) else {
        return (first, 1);
    };
    // Path 0 is the Viterbi path just tested.
    for (tested, bits) in paths.iter().enumerate().skip(1) {
        let d = checked(bits, &deinterleaved, key);
        if d.payload.is_some() {
            return (d, tested + 1);
        }
    }
    (first, paths.len().max(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::KeyedRng;

    #[test]
    fn round_trip_with_noise_and_wrong_key() {
        let key = WatermarkKey::from_bytes([3; 32]);
        let payload = Payload(0x0123_4567_89AB_CDEF);
        let chips = encode_payload(payload, &key);
        assert_eq!(chips.len(), CODED_BITS);
        let clean = decode_payload(&chips, &key);
        assert_eq!(clean.payload, Some(payload));
        assert_eq!(clean.bit_errors, 0);
        // Gaussian noise at chip SNR 0 dB: about 16 % of the signs flip, all corrected.
        let mut rng = KeyedRng::from_seed([9; 32]);
        let noisy: Vec<f32> = chips.iter().map(|c| c + rng.gaussian() as f32).collect();
        let d = decode_payload(&noisy, &key);
        assert_eq!(d.payload, Some(payload));
        assert!(d.bit_errors > 20, "noise flipped {} chips", d.bit_errors);
        // Another key never yields a payload.
        let other = WatermarkKey::from_bytes([4; 32]);
        assert_eq!(decode_payload(&chips, &other).payload, None);
    }

    #[test]
    fn list_decoding_recovers_more_and_counts_every_path_tested() {
        let key = WatermarkKey::from_bytes([6; 32]);
        let payload = Payload(0x0FED_CBA9_8765_4321);
        let chips = encode_payload(payload, &key);
        // One path is the plain decoder.
        let (d, tested) = decode_payload_list(&chips, &key, 1);
        assert_eq!((d.payload, tested), (Some(payload), 1));
        // Near the code's limit (chip SNR ≈ −3 dB) the check finds the payload further down
        // the list where the best path is wrong; it never accepts another payload.
        let mut rng = KeyedRng::from_seed([2; 32]);
        let (mut plain, mut listed) = (0, 0);
        for _ in 0..60 {
            let noisy: Vec<f32> = chips
                .iter()
                .map(|c| c + 1.4 * rng.gaussian() as f32)
                .collect();
            let one = decode_payload(&noisy, &key);
            let (many, tested) = decode_payload_list(&noisy, &key, 64);
            assert!(one.payload.is_none() || one.payload == Some(payload));
            assert!(many.payload.is_none() || many.payload == Some(payload));
            assert!((1..=64).contains(&tested));
            if one.payload.is_some() {
                assert_eq!((many.payload, tested), (one.payload, 1));
            }
            plain += usize::from(one.payload.is_some());
            listed += usize::from(many.payload.is_some());
        }
        assert!(listed > plain, "list {listed} vs plain {plain} of 60");
        // Noise: every path is tested and none passes.
        let noise: Vec<f32> = (0..CODED_BITS).map(|_| rng.gaussian() as f32).collect();
        let (d, tested) = decode_payload_list(&noise, &key, 64);
        assert_eq!((d.payload, tested), (None, 64));
        assert_eq!(decode_payload_list(&noise[1..], &key, 64).1, 0);
    }

    #[test]
    fn pure_noise_never_yields_a_payload() {
        let key = WatermarkKey::from_bytes([5; 32]);
        let mut rng = KeyedRng::from_seed([1; 32]);
        for _ in 0..2000 {
            let noise: Vec<f32> = (0..CODED_BITS).map(|_| rng.gaussian() as f32).collect();
            assert_eq!(decode_payload(&noise, &key).payload, None);
        }
    }
}
