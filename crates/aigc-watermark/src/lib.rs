//! What every aigc-mark watermark shares, whatever the signal: the 64-bit payload tied to the
//! label, its keyed 32-bit check, the error-correcting code (convolutional, soft Viterbi) with a
//! keyed interleaver, keyed pseudo-random sequences, and the detection statistics (analytic
//! false-positive probability, corrected for every hypothesis searched).
//!
//! The image, audio and video embedders build on [`codec::encode_payload`] /
//! [`codec::decode_payload`], so the payload ↔ label tie and the statistics are one piece of code.

// Library code never unwraps: everything it handles may come from outside.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod audio;
pub mod codec;
pub mod ecc;
pub mod image;
pub mod key;
pub mod keyfile;
pub mod payload;
pub mod stats;

pub use codec::{CODED_BITS, Decoded, decode_payload, encode_payload};
pub use key::{KeyedRng, WatermarkKey};
pub use keyfile::{KeyFileError, NamedKey, WatermarkKeyFile, list_keys, resolve_key};
pub use payload::Payload;
pub use stats::{false_positive_probability, normal_tail, z_threshold};
