//! Content IDs for labels that are issued without one.

use std::time::{SystemTime, UNIX_EPOCH};

/// A new ProduceID: a UUIDv7 (time-ordered, 74 random bits), lower-case with hyphens, which
/// uses only Annex E characters and sorts by issue time in the ledger.
pub fn new_produce_id() -> String {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default();
    let mut b = [0u8; 16];
    // Without an OS random source fall back to the clock's nanoseconds; IDs still differ in time.
    if getrandom::fill(&mut b[6..]).is_err() {
        let ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        b[6..10].copy_from_slice(&ns.to_be_bytes());
    }
    b[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
    b[6] = 0x70 | (b[6] & 0x0F);
    b[8] = 0x80 | (b[8] & 0x3F);
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_uuid_v7_and_unique() {
        let a = new_produce_id();
        let b = new_produce_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "7");
        assert!(aigc_core::is_annex_e_value(&a));
    }
}
