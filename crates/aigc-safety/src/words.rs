//! The set of ASCII-only lexicon patterns (English entries, pinyin, initials), probed per run of
//! whole words of the text.
//!
//! A pattern may cover several words of the text (「min gan」 matches `mingan`), so the matcher
//! asks, word by word, "is the lower-cased span so far a prefix of a pattern, and is it a
//! pattern?". Words are first tested on their first letters alone (most English words fail
//! there, before any hashing); the span of a word that passes is then hashed once, extended
//! word by word (a polynomial hash modulo 2⁶⁴ is extended by more bytes without going back).
//! Three tables answer, cheapest first:
//!
//! 1. an exact bit set of the first [`SHORT_PREFIX`] letters of every pattern, indexed densely
//!    (234 KB: it stays in the L2 cache and rejects most English words at once);
//! 2. two Bloom bit sets, one over every prefix of every pattern and one over the whole
//!    patterns (a span that is only a prefix costs no probe of the pattern table);
//! 3. an open-addressing table keyed by the full 64-bit hash, verified byte by byte.

/// Letters of a prefix indexed densely in the short bit set.
pub(crate) const SHORT_PREFIX: usize = 4;
/// Base of the dense index: 0 ends the string, 1–36 are the letters and digits.
const SHORT_BASE: usize = 37;
/// Number of dense indices: `37^4` (1.9 M bits).
const SHORT_SLOTS: usize = SHORT_BASE * SHORT_BASE * SHORT_BASE * SHORT_BASE;
/// Base of the polynomial hash (odd, so powers never vanish modulo 2⁶⁴).
const BASE: u64 = 0x0000_0100_0000_01B3;
/// An empty slot of the pattern table.
const EMPTY: u32 = u32::MAX;

/// Dense digit of an ASCII letter (either case) or digit (1–36), 0 for anything else.
const DENSE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = match b as u8 {
            c @ b'a'..=b'z' => c - b'a' + 1,
            c @ b'A'..=b'Z' => c - b'A' + 1,
            c @ b'0'..=b'9' => c - b'0' + 27,
            _ => 0,
        };
        b += 1;
    }
    t
};

/// The hash of a lower-case word or span, extended byte by byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SpanHash {
    poly: u64,
    len: usize,
}

impl SpanHash {
    /// The hash of the empty span.
    pub(crate) const EMPTY: Self = Self { poly: 0, len: 0 };

    /// Extends the span by `bytes`, ASCII letters and digits (upper case is folded).
    #[inline]
    pub(crate) fn push_bytes(mut self, bytes: &[u8]) -> Self {
        for &b in bytes {
            self.poly = self
                .poly
                .wrapping_mul(BASE)
                .wrapping_add(u64::from(DENSE[usize::from(b)]));
        }
        self.len += bytes.len();
        self
    }

    /// Length of the span in bytes.
    #[inline(always)]
    pub(crate) fn len(self) -> usize {
        self.len
    }

    /// A well-mixed 64-bit key (the polynomial's low bits depend only on the last bytes).
    #[inline(always)]
    fn key(self) -> u64 {
        let k = (self.poly ^ ((self.len as u64) << 57)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (k ^ (k >> 29)).wrapping_mul(0xBF58_476D_1CE4_E5B9) ^ (k >> 32)
    }
}

/// One word of a run of ASCII text: its byte range (most words fail the test on their first
/// letters, so their hash is left for when it is needed: [`SpanHash::push_bytes`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Word {
    pub(crate) start: usize,
    pub(crate) end: usize,
}

/// `SHORT_BASE^(SHORT_PREFIX - n)`: scales the dense index of an `n`-letter prefix to its
/// place among the four-letter ones (missing letters are digit 0).
const SHORT_PAD: [usize; SHORT_PREFIX + 1] = [
    SHORT_BASE * SHORT_BASE * SHORT_BASE * SHORT_BASE,
    SHORT_BASE * SHORT_BASE * SHORT_BASE,
    SHORT_BASE * SHORT_BASE,
    SHORT_BASE,
    1,
];

/// Dense digit of byte `b` ([`DENSE`]).
#[inline(always)]
fn dense(b: u8) -> u8 {
    DENSE[usize::from(b)]
}

/// One bit per byte of `x` (little-endian: bit `k` for byte `k`), set where the byte is an
/// ASCII letter or digit: eight bytes at a time with carry-free byte arithmetic.
#[inline(always)]
fn alnum_bits(x: u64) -> u64 {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    const fn each(b: u8) -> u64 {
        0x0101_0101_0101_0101 * b as u64
    }
    // Bytes of 0x80 and above (parts of non-ASCII skip characters) are set aside so the sums
    // below never carry into the next byte; each sum has its top bit set where the byte is
    // at least the bound.
    let low = x & !HIGH;
    let folded = low | each(0x20);
    let letter =
        folded.wrapping_add(each(0x80 - b'a')) & !folded.wrapping_add(each(0x80 - b'z' - 1));
    let digit = low.wrapping_add(each(0x80 - b'0')) & !low.wrapping_add(each(0x80 - b'9' - 1));
    let set = (letter | digit) & !x & HIGH;
    // Gathers the eight top bits into the low byte order.
    ((set >> 7).wrapping_mul(0x0102_0408_1020_4080)) >> 56
}

/// The words of one run of ASCII text, with buffers reused from run to run.
#[derive(Debug, Default)]
pub(crate) struct RunWords {
    /// One bit per byte of the run: set for letters and digits; one zero block after.
    alnum: Vec<u64>,
    /// The words, in order.
    pub(crate) words: Vec<Word>,
    /// Indices into `words` of the words whose first letters begin a pattern:
    /// `firsts[..first_count]` (grow-only).
    firsts: Vec<usize>,
    first_count: usize,
}

impl RunWords {
    /// The indices of the words that may begin a pattern.
    pub(crate) fn firsts(&self) -> &[usize] {
        self.firsts.get(..self.first_count).unwrap_or(&[])
    }

    /// Splits `run`, which starts at byte `base` of the text, into its words (runs of ASCII
    /// letters and digits), and notes those whose first letters begin one of `set`'s
    /// patterns.
    ///
    /// Without a branch per byte or per word outcome (they mispredict on text, where word
    /// lengths and outcomes look random): the letters and digits become a bit mask, 64 bytes
    /// a word, words are found with `trailing_zeros`, and a word is kept as a possible first
    /// by bumping a count.
    pub(crate) fn split(&mut self, set: &WordPatterns, run: &[u8], base: usize) {
        let blocks = run.len().div_ceil(64);
        self.alnum.clear();
        self.alnum.resize(blocks + 1, 0);
        for (chunk, m) in run.chunks(64).zip(self.alnum.iter_mut()) {
            *m = chunk.chunks(8).enumerate().fold(0u64, |m, (k, part)| {
                let x = match <[u8; 8]>::try_from(part) {
                    Ok(a) => u64::from_le_bytes(a),
                    // The last bytes of the run, padded with zeros (not letters or digits).
                    Err(_) => part
                        .iter()
                        .rev()
                        .fold(0u64, |x, &b| (x << 8) | u64::from(b)),
                };
                m | (alnum_bits(x) << (8 * k))
            });
        }
        self.words.clear();
        let mut firsts = 0;
        let mut carry = 0u64;
        for (block, &m) in self.alnum.iter().enumerate().take(blocks) {
            let mut starts = m & !((m << 1) | carry);
            carry = m >> 63;
            while starts != 0 {
                let off = starts.trailing_zeros() as usize;
                starts &= starts - 1;
                let start = block * 64 + off;
                // The first byte at or after `start` that is not a letter or digit (the zero
                // block after the run stops the search).
                let mut end = start;
                let mut b = block;
                let mut rest = !m >> off;
                while rest == 0 {
                    b += 1;
                    end = b * 64;
                    rest = self.alnum.get(b).map_or(1, |&m| !m);
                }
                end += rest.trailing_zeros() as usize;
                let len = end - start;
                let digit = |k: usize| {
                    usize::from(run.get(start + k).map_or(0, |&b| dense(b))) * usize::from(k < len)
                };
                let short = ((digit(0) * SHORT_BASE + digit(1)) * SHORT_BASE + digit(2))
                    * SHORT_BASE
                    + digit(3);
                // The slot is written whether or not the word passes (grown one at a time past
                // the longest list so far).
                if self.firsts.len() <= firsts {
                    self.firsts.push(0);
                }
                if let Some(slot) = self.firsts.get_mut(firsts) {
                    *slot = self.words.len();
                    firsts += usize::from(set.short_prefix(short));
                }
                self.words.push(Word {
                    start: base + start,
                    end: base + end,
                });
            }
        }
        self.first_count = firsts;
    }
}

/// The dense index of the first `min(len, SHORT_PREFIX)` bytes of a span, case folded
/// (`None` if one is not an ASCII letter or digit).
#[inline]
pub(crate) fn short_index(bytes: &[u8]) -> Option<usize> {
    let mut i = 0;
    let mut k = 0;
    for &b in bytes.iter().take(SHORT_PREFIX) {
        let d = dense(b);
        if d == 0 {
            return None;
        }
        i = i * SHORT_BASE + usize::from(d);
        k += 1;
    }
    Some(i * SHORT_PAD.get(k).copied().unwrap_or(1))
}

/// ASCII-only patterns, lower case; see the module docs.
#[derive(Debug)]
pub(crate) struct WordPatterns {
    /// `(key, pattern id, start of the pattern in `bytes`)`, open addressing, at most half full.
    slots: Vec<(u64, u32, u32)>,
    slot_shift: u32,
    /// The patterns, each followed by a 0 byte.
    bytes: Vec<u8>,
    /// Longest pattern, in bytes.
    max_len: usize,
    patterns: usize,
    /// Exact bit set of short prefixes (module docs, 1).
    short: Vec<u64>,
    /// Bloom bit set of every prefix, `prefix_bits` bits (a power of two).
    prefixes: Vec<u64>,
    prefix_shift: u32,
    /// Bloom bit set of the whole patterns.
    wholes: Vec<u64>,
    whole_shift: u32,
}

/// A Bloom bit set of about `bits_per_item` bits per item: `(words, 64 - log2(bits))`.
fn bloom(items: usize, bits_per_item: usize) -> (Vec<u64>, u32) {
    let bits = items
        .saturating_mul(bits_per_item)
        .next_power_of_two()
        .clamp(1 << 12, 1 << 30);
    (vec![0; bits / 64], 64 - bits.trailing_zeros())
}

#[inline(always)]
fn bit_of(words: &[u64], shift: u32, key: u64) -> bool {
    let bit = (key >> shift) as usize;
    words
        .get(bit / 64)
        .is_some_and(|w| (w >> (bit % 64)) & 1 != 0)
}

fn set_bit(words: &mut [u64], shift: u32, key: u64) {
    let bit = (key >> shift) as usize;
    if let Some(w) = words.get_mut(bit / 64) {
        *w |= 1 << (bit % 64);
    }
}

impl WordPatterns {
    /// Builds the set from lower-case ASCII `patterns` (distinct, non-empty) with their ids.
    pub(crate) fn build<'a>(patterns: impl IntoIterator<Item = (&'a str, u32)>) -> Self {
        let patterns: Vec<(&str, u32)> = patterns.into_iter().collect();
        let total_prefixes = patterns.iter().map(|(p, _)| p.len()).sum();
        let (prefixes, prefix_shift) = bloom(total_prefixes, 8);
        let (wholes, whole_shift) = bloom(patterns.len(), 12);
        let size = patterns.len().saturating_mul(2).next_power_of_two().max(16);
        let mut set = Self {
            slots: vec![(0, EMPTY, 0); size],
            slot_shift: 64 - size.trailing_zeros(),
            bytes: Vec::new(),
            max_len: 0,
            patterns: 0,
            short: vec![0; SHORT_SLOTS.div_ceil(64)],
            prefixes,
            prefix_shift,
            wholes,
            whole_shift,
        };
        for (p, id) in patterns {
            set.insert(p.as_bytes(), id);
        }
        set
    }

    fn insert(&mut self, p: &[u8], id: u32) {
        let Ok(start) = u32::try_from(self.bytes.len()) else {
            return;
        };
        self.max_len = self.max_len.max(p.len());
        self.patterns += 1;
        // Every shorter prefix too: a span of fewer bytes than SHORT_PREFIX is tested whole.
        for n in 1..=p.len().min(SHORT_PREFIX) {
            if let Some(i) = p.get(..n).and_then(short_index)
                && let Some(w) = self.short.get_mut(i / 64)
            {
                *w |= 1 << (i % 64);
            }
        }
        let mut h = SpanHash::EMPTY;
        for &b in p {
            h = h.push_bytes(&[b]);
            set_bit(&mut self.prefixes, self.prefix_shift, h.key());
        }
        set_bit(&mut self.wholes, self.whole_shift, h.key());
        self.bytes.extend_from_slice(p);
        self.bytes.push(0);
        let key = h.key();
        let mask = self.slots.len() - 1;
        let mut i = (key >> self.slot_shift) as usize & mask;
        while self.slots.get(i).is_some_and(|s| s.1 != EMPTY) {
            i = (i + 1) & mask;
        }
        if let Some(slot) = self.slots.get_mut(i) {
            *slot = (key, id, start);
        }
    }

    /// Whether the set has no pattern.
    pub(crate) fn is_empty(&self) -> bool {
        self.patterns == 0
    }

    /// Longest pattern, in bytes.
    pub(crate) fn max_len(&self) -> usize {
        self.max_len
    }

    /// Heap bytes of the tables.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.slots.len() * 16
            + self.bytes.len()
            + (self.short.len() + self.prefixes.len() + self.wholes.len()) * 8
    }

    /// Whether a span whose first `min(len, SHORT_PREFIX)` bytes have dense index `short` may
    /// begin a pattern (exact: no false positives or negatives for those bytes).
    #[inline(always)]
    pub(crate) fn short_prefix(&self, short: usize) -> bool {
        self.short
            .get(short / 64)
            .is_some_and(|w| (w >> (short % 64)) & 1 != 0)
    }

    /// Whether the span with hash `h` may be the prefix of a pattern (no false negatives).
    #[inline(always)]
    pub(crate) fn may_prefix(&self, h: SpanHash) -> bool {
        bit_of(&self.prefixes, self.prefix_shift, h.key())
    }

    /// The pattern equal to the span with hash `h`, whose bytes `same` confirms.
    #[inline]
    pub(crate) fn get(&self, h: SpanHash, same: impl Fn(&[u8]) -> bool) -> Option<u32> {
        let key = h.key();
        if !bit_of(&self.wholes, self.whole_shift, key) {
            return None;
        }
        let mask = self.slots.len() - 1;
        let mut i = (key >> self.slot_shift) as usize & mask;
        loop {
            let &(k, id, start) = self.slots.get(i)?;
            if id == EMPTY {
                return None;
            }
            if k == key {
                let start = start as usize;
                if let Some(p) = self.bytes.get(start..start + h.len())
                    && self.bytes.get(start + h.len()) == Some(&0)
                    && same(p)
                {
                    return Some(id);
                }
            }
            i = (i + 1) & mask;
        }
    }

    /// [`may_prefix`](Self::may_prefix) of a whole lower-case span, with the short test first.
    pub(crate) fn may_prefix_bytes(&self, span: &[u8]) -> bool {
        short_index(span).is_some_and(|i| self.short_prefix(i))
            && (span.len() <= SHORT_PREFIX || self.may_prefix(SpanHash::EMPTY.push_bytes(span)))
    }

    /// [`get`](Self::get) of a whole lower-case span.
    pub(crate) fn get_bytes(&self, span: &[u8]) -> Option<u32> {
        self.get(SpanHash::EMPTY.push_bytes(span), |p| p == span)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alnum_bits_agree_with_the_byte_test() {
        let bytes: Vec<u8> = (0..=255u8)
            .chain(b"aZ09 zA9/:@[`{".iter().copied())
            .collect();
        for window in bytes.windows(8) {
            let x = u64::from_le_bytes(window.try_into().unwrap_or([0; 8]));
            let want = window.iter().enumerate().fold(0u64, |m, (k, b)| {
                m | (u64::from(b.is_ascii_alphanumeric()) << k)
            });
            assert_eq!(alnum_bits(x), want, "{window:?}");
        }
    }

    #[test]
    fn hashes_extend_word_by_word_and_lookups_are_exact() {
        let whole = SpanHash::EMPTY.push_bytes(b"mingan");
        let parts = SpanHash::EMPTY.push_bytes(b"min").push_bytes(b"gan");
        assert_eq!(whole, parts);
        let set = WordPatterns::build([("mingan", 7), ("mgc", 8), ("bad", 9)]);
        assert_eq!(set.get_bytes(b"mingan"), Some(7));
        assert_eq!(set.get(parts, |p| p == b"mingan"), Some(7));
        assert_eq!(set.get_bytes(b"minga"), None);
        assert_eq!(set.get_bytes(b"mgc"), Some(8));
        assert!(set.may_prefix_bytes(b"min") && set.may_prefix_bytes(b"minga"));
        assert!(!set.may_prefix_bytes(b"x") && !set.may_prefix_bytes(b"mgd"));
        assert!(short_index(b"a-b").is_none() && short_index(b"MiN") == short_index(b"min"));
        assert_eq!(
            SpanHash::EMPTY.push_bytes(b"MinGan"),
            SpanHash::EMPTY.push_bytes(b"mingan")
        );
        let mut run = RunWords::default();
        run.split(&set, b" Min,gan  x1 bad", 10);
        let got: Vec<(usize, usize)> = run.words.iter().map(|w| (w.start, w.end)).collect();
        assert_eq!(got, [(11, 14), (15, 18), (20, 22), (23, 26)]);
        // Words whose first letters begin a pattern: 「Min」 (mingan) and 「bad」.
        assert_eq!(run.firsts(), [0, 3]);
        // Words across 64-byte blocks, and a run that ends inside a word.
        let long = format!("{}mingan{}bad", " ".repeat(61), "-".repeat(70));
        run.split(&set, long.as_bytes(), 0);
        let got: Vec<(usize, usize)> = run.words.iter().map(|w| (w.start, w.end)).collect();
        assert_eq!(got, [(61, 67), (137, 140)]);
        assert_eq!(run.firsts(), [0, 1]);
        run.split(&set, b"Longword", 0);
        assert_eq!(run.words.len(), 1);
        assert!(run.firsts().is_empty());
        run.split(&set, b" ,. ", 0);
        assert!(run.words.is_empty() && run.firsts().is_empty());
        assert_eq!(set.max_len(), 6);
        assert!(!set.is_empty() && WordPatterns::build([]).is_empty());
    }
}
