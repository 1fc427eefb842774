//! Implicit labels in file metadata (GB 45438 Annex E placed as the TC260 2025 guides say).
//!
//! Every container format is one [`Carrier`] module registered in [`registry::CARRIERS`]; a
//! carrier finds every label in a file and writes or replaces exactly one, returning a
//! [`Rewrite`] that keeps the media payload's bytes untouched.

// Library code never unwraps: everything it handles may come from outside.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod bytes;
pub mod carrier;
pub mod carriers;
pub mod error;
pub mod registry;
pub mod rewrite;
pub mod xmp;

#[cfg(test)]
pub(crate) mod test_support;

pub use carrier::{Carrier, FoundLabel};
pub use error::MetaError;
pub use registry::{carrier_for, supported_formats};
pub use rewrite::{Piece, Rewrite};
