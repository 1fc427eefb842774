//! Bounds-checked reads of integers and slices, so parsers never index past the input.

use crate::error::MetaError;

/// The bytes `at..at + len` of `b`, or a truncation error naming `what`.
pub fn slice<'a>(b: &'a [u8], at: usize, len: usize, what: &str) -> Result<&'a [u8], MetaError> {
    at.checked_add(len)
        .and_then(|end| b.get(at..end))
        .ok_or_else(|| MetaError::truncated(what, at))
}

/// `N` bytes at `at` as an array.
pub fn array<const N: usize>(b: &[u8], at: usize, what: &str) -> Result<[u8; N], MetaError> {
    let s = slice(b, at, N, what)?;
    let mut out = [0u8; N];
    out.copy_from_slice(s);
    Ok(out)
}

/// A big-endian u16 at `at`.
pub fn be_u16(b: &[u8], at: usize, what: &str) -> Result<u16, MetaError> {
    array(b, at, what).map(u16::from_be_bytes)
}

/// A big-endian u32 at `at`.
pub fn be_u32(b: &[u8], at: usize, what: &str) -> Result<u32, MetaError> {
    array(b, at, what).map(u32::from_be_bytes)
}

/// A big-endian u64 at `at`.
pub fn be_u64(b: &[u8], at: usize, what: &str) -> Result<u64, MetaError> {
    array(b, at, what).map(u64::from_be_bytes)
}

/// A little-endian u16 at `at`.
pub fn le_u16(b: &[u8], at: usize, what: &str) -> Result<u16, MetaError> {
    array(b, at, what).map(u16::from_le_bytes)
}

/// A little-endian u32 at `at`.
pub fn le_u32(b: &[u8], at: usize, what: &str) -> Result<u32, MetaError> {
    array(b, at, what).map(u32::from_le_bytes)
}

/// A little-endian u64 at `at`.
pub fn le_u64(b: &[u8], at: usize, what: &str) -> Result<u64, MetaError> {
    array(b, at, what).map(u64::from_le_bytes)
}

/// Inflates zlib data, refusing outputs over `limit` bytes (decompression bombs).
pub fn inflate_zlib(data: &[u8], limit: usize, what: &str) -> Result<Vec<u8>, MetaError> {
    use std::io::Read;
    let mut out = Vec::new();
    let mut dec = flate2::read::ZlibDecoder::new(data).take(limit as u64 + 1);
    dec.read_to_end(&mut out)
        .map_err(|e| MetaError::malformed("zlib", format!("{what}: {e}")))?;
    if out.len() > limit {
        return Err(MetaError::unsupported(
            "zlib",
            format!("{what} inflates to more than {limit} bytes"),
        ));
    }
    Ok(out)
}

/// Deflates `data` as a zlib stream.
pub fn deflate_zlib(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(data);
    enc.finish().unwrap_or_default()
}

/// The largest metadata text we inflate (16 MiB): far above any real XMP or label.
pub const MAX_INFLATED: usize = 16 << 20;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_bounds_checked() {
        let b = [0u8, 1, 2, 3, 4];
        assert_eq!(be_u32(&b, 1, "x").ok(), Some(0x0102_0304));
        assert!(be_u32(&b, 2, "x").is_err());
        assert!(slice(&b, usize::MAX, 2, "x").is_err());
        assert_eq!(
            inflate_zlib(&deflate_zlib(b"hello"), 10, "t").ok(),
            Some(b"hello".to_vec())
        );
        assert!(inflate_zlib(&deflate_zlib(&[0u8; 100]), 10, "t").is_err());
    }
}
