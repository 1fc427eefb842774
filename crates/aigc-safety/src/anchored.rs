//! The matcher for lexicon patterns that hold a non-ASCII character (Chinese entries, their
//! homophone / look-alike variants, mixed patterns such as 「ai换脸」).
//!
//! An Aho-Corasick automaton over 50 000+ such patterns takes one transition into a table of
//! several megabytes per character of text, and nearly every one misses the cache. Lexicon
//! terms are rare in ordinary text, so this matcher asks a cheap question first (the idea of
//! Hyperscan's literal prefilters):
//!
//! 1. every normalised character of the lexicon gets a small dense **code** (0 for characters no
//!    pattern holds: no match can cross them);
//! 2. bit sets of what patterns *start* with, small enough to stay in the L2 cache, one hashed
//!    row per first code: the single characters that are whole patterns, then the two-code
//!    patterns and the first three codes of every longer one, in the word of the row that the
//!    second code picks (stage 1, tested at every position with one load), then the first
//!    two, three or four codes by length class (stage 2, tested only where stage 1 passed).
//!    Both stages are branch-free (the loads are independent, so their latencies overlap) and
//!    keep the few positions that pass;
//! 3. at those positions, one hash lookup finds the group of patterns sharing the first
//!    `min(length, 4)` codes (instead of a trie walk's chain of dependent cache misses); its
//!    members are stored longest first, and the first that verifies wins.
//!
//! Leftmost-longest selection over these per-position longest matches is the same as over all
//! overlapping matches (at each start only the longest can be chosen), so the result equals
//! normalising the text and running a leftmost-longest Aho-Corasick search on it.

use crate::normalize::{ASCII_FOLD, BmpFold, bmp_fold};
use std::collections::HashMap;

/// Number of possible codes (and of BMP characters).
const CODES: usize = 0x10000;

/// A table with one entry per code, on the heap.
fn per_code<T: Copy + std::fmt::Debug>(value: T) -> Box<[T; CODES]> {
    let v: Box<[T]> = vec![value; CODES].into_boxed_slice();
    match v.try_into() {
        Ok(array) => array,
        // The length is CODES by construction.
        Err(_) => unreachable!("a table of CODES entries"),
    }
}

/// One bit per code, on the heap.
fn per_code_bits() -> Box<[u64; CODES / 64]> {
    let v: Box<[u64]> = vec![0u64; CODES / 64].into_boxed_slice();
    match v.try_into() {
        Ok(array) => array,
        Err(_) => unreachable!("a bit set of CODES bits"),
    }
}

/// Code of a character that no pattern holds.
pub(crate) const NO_CODE: u16 = 0;
/// [`AnchoredMatcher::direct`]: the original character is a skip character.
pub(crate) const DIRECT_SKIP: u16 = 0xFFFF;
/// [`AnchoredMatcher::direct`]: the original character needs the general fold (it expands to
/// several characters or folds to an ASCII character, which the whole-word matcher sees).
pub(crate) const DIRECT_SLOW: u16 = 0xFFFE;
/// Largest code (the two above are reserved).
const MAX_CODE: u32 = 0xFFFD;
/// An empty slot of the group table.
const EMPTY: u32 = u32::MAX;

/// A bit set of keys `(first code, rest)`, one hashed row per first code, sized by the number
/// of keys in it. Text is dominated by its frequent characters, and a frequent character's row
/// is one compact block that stays in the cache, where one set hashed over all keys would
/// touch a cache line anywhere in it for every position. Each key sets two bits of one 64-bit
/// word of its row (a blocked Bloom filter: one load per test, and at 32 bits per key about
/// 0.4 % false positives where one bit per key gives 3 %).
#[derive(Debug)]
struct RowFilter {
    /// Per first code: `(first word of its row, words in the row - 1)`; codes without keys
    /// point at word 0, which is never set.
    rows: Box<[(u32, u32); CODES]>,
    words: Vec<u64>,
}

/// Bits per key in the rows of the first-stage filter, read at every position: small beats
/// exact here (measured: fewer cache misses outweigh more second-stage tests).
const FIRST_BITS: usize = 16;
/// Bits per key in the rows of the per-class filter, read only where the first pair passed;
/// what passes here costs a group lookup, a chain of cache misses.
const CLASS_BITS: usize = 32;
/// Longest row, in bits.
const MAX_ROW_BITS: usize = 1 << 24;
/// A flag a row entry carries for its first code (in both filters: the code alone is a
/// pattern), so one load answers both questions.
const ROW_FLAG: u32 = 1 << 31;

impl RowFilter {
    /// Builds the filter from keys `(first code, word key, bit key)`: the word key picks the
    /// word of the row, the bit key the two bits in it.
    fn build(alphabet: usize, keys: &[(u16, u64, u64)], bits_per_key: usize) -> Self {
        let mut per_row = vec![0usize; alphabet];
        for &(a, _, _) in keys {
            if let Some(n) = per_row.get_mut(usize::from(a)) {
                *n += 1;
            }
        }
        let mut rows = per_code((0u32, 0u32));
        // The first word stays zero: rows without keys test it.
        let mut next = 1usize;
        for (row, &n) in rows.iter_mut().zip(&per_row) {
            if n > 0 {
                let words = n
                    .saturating_mul(bits_per_key)
                    .next_power_of_two()
                    .clamp(64, MAX_ROW_BITS)
                    / 64;
                *row = (
                    u32::try_from(next).unwrap_or(0),
                    u32::try_from(words - 1).unwrap_or(0),
                );
                next += words;
            }
        }
        let mut f = Self {
            rows,
            words: vec![0; next],
        };
        for &(a, word_key, bit_key) in keys {
            let word = Self::word_in(f.row(a), mix(word_key));
            if let Some(w) = f.words.get_mut(word) {
                *w |= two_bits(mix(bit_key));
            }
        }
        f
    }

    /// The row of first code `a`: `(first word, words - 1)`.
    #[inline(always)]
    fn row(&self, a: u16) -> (u32, u32) {
        // Indexing a 65 536-entry array with a u16 needs no bounds check.
        self.rows[usize::from(a)]
    }

    /// The word of row `row` that the key hashed to `h` ([`mix`]) lives in.
    #[inline(always)]
    fn word_in((start, mask): (u32, u32), h: u64) -> usize {
        start as usize + ((h >> 40) as usize & mask as usize)
    }

    /// The word of row `row` that key `rest` lives in, and its two bits there.
    #[inline(always)]
    fn bits_in(row: (u32, u32), rest: u64) -> (usize, u64) {
        let h = mix(rest);
        (Self::word_in(row, h), two_bits(h))
    }

    /// Sets the flag of row `a` (kept in its length field, which is below 2¹⁸, so hashing into
    /// the row is the same with or without it).
    fn set_flag(&mut self, a: u16) {
        self.rows[usize::from(a)].1 |= ROW_FLAG;
    }

    /// 1 if `rest` may be in row `row`, else 0 (as a number, for branch-free code).
    #[inline(always)]
    fn test_in(&self, row: (u32, u32), rest: u64) -> u64 {
        let (word, bits) = Self::bits_in(row, rest);
        self.words
            .get(word)
            .map_or(0, |&w| u64::from(w & bits == bits))
    }

    /// 1 if `(a, rest)` may be in the set, else 0.
    #[inline(always)]
    fn test(&self, a: u16, rest: u64) -> u64 {
        self.test_in(self.row(a), rest)
    }

    fn heap_bytes(&self) -> usize {
        self.rows.len() * 8 + self.words.len() * 8
    }
}

/// Multiplicative hashing after folding the high half in (the keys of short patterns are zero
/// in their low bits): the top bits pick a row's word ([`RowFilter::word_in`]), two lower
/// fields the bits ([`two_bits`]), so one hash may serve both.
#[inline(always)]
fn mix(key: u64) -> u64 {
    (key ^ (key >> 32)).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// The two bits of a key hashed to `h` ([`mix`]) in its word.
#[inline(always)]
fn two_bits(h: u64) -> u64 {
    (1 << ((h >> 28) & 63)) | (1 << ((h >> 34) & 63))
}

/// The first prefilter stage's tables and the direct fold-and-code table
/// ([`AnchoredMatcher::stage1`]).
#[derive(Clone, Copy)]
pub(crate) struct Stage1<'a> {
    direct: &'a [u16; CODES],
    rows: &'a [(u32, u32); CODES],
    words: &'a [u64],
}

impl Stage1<'_> {
    /// [`AnchoredMatcher::direct`].
    #[inline(always)]
    pub(crate) fn direct(self, cp: u16) -> u16 {
        self.direct[usize::from(cp)]
    }

    /// [`AnchoredMatcher::first_pass`].
    #[inline(always)]
    pub(crate) fn pass(self, a: u16, b: u16, c: u16) -> usize {
        let (start, len) = self.rows[usize::from(a)];
        let single = (len >> 31) as usize;
        // Both keys of this position live in the word picked by `b`: one load.
        let h = mix(pack(b, 0, 0));
        let w = self
            .words
            .get(RowFilter::word_in((start, len & !ROW_FLAG), h))
            .copied()
            .unwrap_or(0);
        let (pair, triple) = (two_bits(h), two_bits(mix(class_key(3, pack(b, c, 0)))));
        let pair = usize::from(w & pair == pair) & usize::from(b != NO_CODE);
        let triple = usize::from(w & triple == triple)
            & usize::from(b != NO_CODE)
            & usize::from(c != NO_CODE);
        single | pair | triple
    }
}

/// Up to three codes packed into a key (a missing code is [`NO_CODE`]).
#[inline(always)]
fn pack(b: u16, c: u16, d: u16) -> u64 {
    (u64::from(b) << 32) | (u64::from(c) << 16) | u64::from(d)
}

/// A filter key: the length class above the packed codes (which use 48 bits).
#[inline(always)]
fn class_key(class: u8, packed: u64) -> u64 {
    (u64::from(class) << 56) | packed
}

/// Patterns are grouped by their first `min(len, 4)` codes: one group per pattern of one to
/// three codes, one group per four-code prefix for the longer ones.
#[derive(Debug, Clone, Copy)]
struct Group {
    /// Length class (1, 2, 3, or 4 for four codes or more) and the packed first codes.
    class: u8,
    first: u16,
    rest: u64,
    /// Members `members[start..start + count]`, longest first.
    start: u32,
    count: u32,
}

/// One pattern: its codes are `seqs[start..start + len]`.
#[derive(Debug, Clone, Copy)]
struct Member {
    start: u32,
    len: u32,
    pattern: u32,
}

#[inline(always)]
fn group_hash(class: u8, first: u16, rest: u64) -> u64 {
    let key = (u64::from(class) << 56) ^ (u64::from(first) << 48) ^ rest;
    (key ^ (key >> 29)).wrapping_mul(0xA076_1D64_78BD_642F)
}

/// Prefilter + grouped pattern table over the non-ASCII patterns.
#[derive(Debug)]
pub(crate) struct AnchoredMatcher {
    /// Dense code of each BMP character (indexed by the normalised character).
    bmp_codes: Box<[u16; CODES]>,
    /// Fold and code in one lookup, indexed by the *original* BMP character: its code, or
    /// [`DIRECT_SKIP`] / [`DIRECT_SLOW`].
    direct: Box<[u16; CODES]>,
    /// Code of each folded ASCII character (letters lower case, digits).
    ascii_codes: [u16; 128],
    /// Whether some ASCII letter or digit has a code (a mixed pattern such as 「ai换脸」).
    ascii_coded: bool,
    /// Codes of characters outside the BMP.
    other_codes: HashMap<char, u16>,
    /// Codes that are whole one-character patterns (dense bits; bit 0 never set).
    singles: Box<[u64; CODES / 64]>,
    /// The two-code patterns and the first three codes of the longer ones, keyed by their
    /// first two codes (the first, cheap stage).
    first: RowFilter,
    /// First codes of the patterns of two, of three, and of four or more codes (keyed by the
    /// first code, then the class and the next codes: one compact row per first code).
    prefixes: RowFilter,
    /// Open addressing, linear probing over `groups`: `(hash tag, group)`, at most half full.
    slots: Vec<(u32, u32)>,
    mask: usize,
    /// `64 - log2(slots)`.
    shift: u32,
    groups: Vec<Group>,
    members: Vec<Member>,
    seqs: Vec<u16>,
    patterns: usize,
}

impl AnchoredMatcher {
    /// Builds the matcher; `patterns` are normalised, non-empty and distinct.
    pub(crate) fn build<'a>(
        patterns: impl IntoIterator<Item = (&'a str, u32)>,
    ) -> Result<Self, String> {
        let mut m = Self {
            bmp_codes: per_code(NO_CODE),
            direct: per_code(DIRECT_SKIP),
            ascii_codes: [NO_CODE; 128],
            ascii_coded: false,
            singles: per_code_bits(),
            other_codes: HashMap::new(),
            first: RowFilter::build(0, &[], FIRST_BITS),
            prefixes: RowFilter::build(0, &[], CLASS_BITS),
            slots: Vec::new(),
            mask: 0,
            shift: 0,
            groups: Vec::new(),
            members: Vec::new(),
            seqs: Vec::new(),
            patterns: 0,
        };
        let mut next_code: u32 = 1;
        let mut coded: Vec<(Vec<u16>, u32)> = Vec::new();
        for (p, id) in patterns {
            let mut seq = Vec::with_capacity(p.len() / 2);
            for c in p.chars() {
                let existing = m.code(c);
                let code = if existing != NO_CODE {
                    existing
                } else {
                    // Codes are 16 bits: a lexicon with 65 535 distinct characters is refused
                    // (real ones hold a few thousand).
                    let Some(code) = u16::try_from(next_code)
                        .ok()
                        .filter(|_| next_code <= MAX_CODE)
                    else {
                        return Err(format!(
                            "the patterns hold more than {MAX_CODE} distinct characters"
                        ));
                    };
                    next_code += 1;
                    let cp = c as u32;
                    if let Some(slot) = usize::try_from(cp)
                        .ok()
                        .filter(|_| cp < 0x10000)
                        .and_then(|i| m.bmp_codes.get_mut(i))
                    {
                        *slot = code;
                    } else {
                        m.other_codes.insert(c, code);
                    }
                    code
                };
                seq.push(code);
            }
            if !seq.is_empty() {
                coded.push((seq, id));
            }
        }
        m.patterns = coded.len();
        m.build_direct();
        let alphabet = next_code as usize;
        // Group key of every pattern; sorting by it (then longest first) lays each group's
        // members out together.
        let key = |seq: &[u16]| -> (u8, u16, u64) {
            let at = |i: usize| seq.get(i).copied().unwrap_or(NO_CODE);
            let class = seq.len().min(4) as u8;
            (class, at(0), pack(at(1), at(2), at(3)))
        };
        coded.sort_unstable_by(|(x, _), (y, _)| {
            key(x)
                .cmp(&key(y))
                .then(y.len().cmp(&x.len()))
                .then(x.cmp(y))
        });
        let mut filter_keys: Vec<(u16, u64)> = Vec::new();
        for (seq, id) in &coded {
            let (class, first, rest) = key(seq);
            let same = m
                .groups
                .last()
                .is_some_and(|g| (g.class, g.first, g.rest) == (class, first, rest));
            let (Ok(start), Ok(len), Ok(member)) = (
                u32::try_from(m.seqs.len()),
                u32::try_from(seq.len()),
                u32::try_from(m.members.len()),
            ) else {
                return Err("too many patterns".into());
            };
            if same {
                if let Some(g) = m.groups.last_mut() {
                    g.count += 1;
                }
            } else {
                m.groups.push(Group {
                    class,
                    first,
                    rest,
                    start: member,
                    count: 1,
                });
                match class {
                    1 => {
                        if let Some(w) = m.singles.get_mut(usize::from(first) / 64) {
                            *w |= 1 << (first % 64);
                        }
                    }
                    2..=4 => filter_keys.push((first, class_key(class, rest))),
                    _ => {}
                }
            }
            m.seqs.extend_from_slice(seq);
            m.members.push(Member {
                start,
                len,
                pattern: *id,
            });
        }
        let class_keys: Vec<(u16, u64, u64)> =
            filter_keys.iter().map(|&(a, k)| (a, k, k)).collect();
        m.prefixes = RowFilter::build(alphabet, &class_keys, CLASS_BITS);
        // The first stage: per first code, the second code picks the word; a two-code
        // pattern sets the bits of its second code there, a longer one those of its second
        // and third codes.
        let mut first_keys: Vec<(u16, u64, u64)> = filter_keys
            .iter()
            .map(|&(a, k)| {
                let (b, c) = ((k >> 32) as u16, (k >> 16) as u16);
                let pair = pack(b, 0, 0);
                let bits = if (k >> 56) == 2 {
                    pair
                } else {
                    class_key(3, pack(b, c, 0))
                };
                (a, pair, bits)
            })
            .collect();
        first_keys.sort_unstable();
        first_keys.dedup();
        m.first = RowFilter::build(alphabet, &first_keys, FIRST_BITS);
        for g in &m.groups {
            if g.class == 1 {
                m.first.set_flag(g.first);
                m.prefixes.set_flag(g.first);
            }
        }
        let size = m.groups.len().saturating_mul(2).next_power_of_two().max(16);
        m.slots = vec![(0, EMPTY); size];
        m.mask = size - 1;
        m.shift = 64 - size.trailing_zeros();
        for (g, group) in m.groups.iter().enumerate() {
            let h = group_hash(group.class, group.first, group.rest);
            let mut i = (h >> m.shift) as usize & m.mask;
            while m.slots.get(i).is_some_and(|s| s.1 != EMPTY) {
                i = (i + 1) & m.mask;
            }
            if let (Some(slot), Ok(g)) = (m.slots.get_mut(i), u32::try_from(g)) {
                *slot = (h as u32, g);
            }
        }
        Ok(m)
    }

    /// Fills [`direct`](Self::direct) and the ASCII codes from the fold table and the codes.
    fn build_direct(&mut self) {
        for cp in 0..=u16::MAX {
            let v = match bmp_fold(cp) {
                BmpFold::Skip => DIRECT_SKIP,
                BmpFold::One(c) if !c.is_ascii() => self.code(c),
                BmpFold::One(_) | BmpFold::Several => DIRECT_SLOW,
            };
            self.direct[usize::from(cp)] = v;
        }
        for (b, slot) in (0u8..128).zip(self.ascii_codes.iter_mut()) {
            let folded = ASCII_FOLD[usize::from(b)];
            *slot = if folded == 0 {
                NO_CODE
            } else {
                self.bmp_codes[usize::from(folded)]
            };
        }
        self.ascii_coded = self.ascii_codes.iter().any(|&c| c != NO_CODE);
    }

    /// Fold and code of the original BMP character `cp` in one lookup: its code,
    /// [`DIRECT_SKIP`] or [`DIRECT_SLOW`].
    #[inline(always)]
    pub(crate) fn direct(&self, cp: u16) -> u16 {
        self.direct[usize::from(cp)]
    }

    /// Code of the original ASCII byte `b` ([`NO_CODE`] for skip characters too).
    #[inline(always)]
    pub(crate) fn ascii_code(&self, b: u8) -> u16 {
        self.ascii_codes[usize::from(b & 0x7F)]
    }

    /// Whether some ASCII letter or digit has a code.
    pub(crate) fn ascii_coded(&self) -> bool {
        self.ascii_coded
    }

    /// Whether the matcher has no pattern.
    pub(crate) fn is_empty(&self) -> bool {
        self.patterns == 0
    }

    /// The code of a normalised character ([`NO_CODE`] if no pattern holds it).
    #[inline(always)]
    pub(crate) fn code(&self, c: char) -> u16 {
        let cp = c as u32;
        if cp < 0x10000 {
            self.bmp_codes[(cp & 0xFFFF) as usize]
        } else {
            self.other_codes.get(&c).copied().unwrap_or(NO_CODE)
        }
    }

    /// Heap bytes of the tables.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.bmp_codes.len() * 2
            + self.direct.len() * 2
            + self.other_codes.len() * 8
            + self.singles.len() * 8
            + self.first.heap_bytes()
            + self.prefixes.heap_bytes()
            + self.slots.len() * 8
            + self.groups.len() * std::mem::size_of::<Group>()
            + self.members.len() * std::mem::size_of::<Member>()
            + self.seqs.len() * 2
    }

    #[inline(always)]
    fn single(&self, a: u16) -> u64 {
        (self.singles[usize::from(a) / 64] >> (a % 64)) & 1
    }

    /// Number of [`NO_CODE`] entries [`candidates`](Self::candidates) needs after the codes.
    pub(crate) const PADDING: usize = 3;

    /// Stage 1 of the prefilter for a position whose code is `a`, followed by `b` and `c`: 1
    /// if a pattern may start there (`a` alone is a pattern, `a b` may be one, or `a b c` may
    /// begin a longer one), else 0. Branch-free; [`NO_CODE`] as `a` never passes.
    #[inline(always)]
    pub(crate) fn first_pass(&self, a: u16, b: u16, c: u16) -> usize {
        self.stage1().pass(a, b, c)
    }

    /// The tables of the first prefilter stage and of the fold, borrowed as plain slices a
    /// hot loop can keep in registers.
    #[inline(always)]
    pub(crate) fn stage1(&self) -> Stage1<'_> {
        Stage1 {
            direct: &self.direct,
            rows: &self.first.rows,
            words: &self.first.words,
        }
    }

    /// Stage 2 of the prefilter: keeps, in order and in place, the positions of `starts` whose
    /// length class may hold a pattern, and returns how many. `codes` must end with
    /// [`PADDING`](Self::PADDING) [`NO_CODE`] entries.
    pub(crate) fn refine(&self, codes: &[u16], starts: &mut [usize]) -> usize {
        // Branch-free: every test is computed, so the loads of consecutive positions are
        // independent and overlap; a position is kept by bumping `kept`.
        let mut kept = 0;
        let f = &self.prefixes;
        for i in 0..starts.len() {
            let Some(&k) = starts.get(i) else { break };
            // One bounds check for the four codes (the padding makes it pass at every
            // position of the text).
            let Some(&[a, b, c, d]) = codes
                .get(k..k + 4)
                .and_then(|s| <&[u16; 4]>::try_from(s).ok())
            else {
                continue;
            };
            let (hb, hc, hd) = (b != NO_CODE, c != NO_CODE, d != NO_CODE);
            let (start, len) = f.row(a);
            let row = (start, len & !ROW_FLAG);
            let pass = u64::from(len >> 31)
                | (f.test_in(row, class_key(2, pack(b, 0, 0))) & u64::from(hb))
                | (f.test_in(row, class_key(3, pack(b, c, 0))) & u64::from(hb & hc))
                | (f.test_in(row, class_key(4, pack(b, c, d))) & u64::from(hb & hc & hd));
            if let Some(slot) = starts.get_mut(kept) {
                *slot = k;
            }
            kept += pass as usize;
        }
        kept
    }

    /// Writes into `out` the positions `k` at which a pattern may start (no false negatives),
    /// in increasing order: both prefilter stages over `codes`, which must end with
    /// [`PADDING`](Self::PADDING) [`NO_CODE`] entries (not positions of the text).
    #[cfg(test)]
    pub(crate) fn candidates(&self, codes: &[u16], out: &mut Vec<usize>) {
        out.clear();
        for (k, w) in codes.windows(3).enumerate() {
            if self.first_pass(w[0], w[1], w[2]) == 1 {
                out.push(k);
            }
        }
        let kept = self.refine(codes, out);
        out.truncate(kept);
    }

    /// The group of patterns with length class `class` and first codes `first`, `rest`.
    #[inline]
    fn group(&self, class: u8, first: u16, rest: u64) -> Option<&Group> {
        let h = group_hash(class, first, rest);
        let mut i = (h >> self.shift) as usize & self.mask;
        loop {
            let &(tag, g) = self.slots.get(i)?;
            if g == EMPTY {
                return None;
            }
            if tag == h as u32
                && let Some(group) = self.groups.get(g as usize)
                && (group.class, group.first, group.rest) == (class, first, rest)
            {
                return Some(group);
            }
            i = (i + 1) & self.mask;
        }
    }

    /// The longest pattern starting at `codes[k]`: `(index of its last code, pattern)`.
    #[inline]
    pub(crate) fn longest_at(&self, codes: &[u16], k: usize) -> Option<(usize, u32)> {
        let rest = codes.get(k..)?;
        let at = |i: usize| rest.get(i).copied().unwrap_or(NO_CODE);
        let (a, b, c, d) = (at(0), at(1), at(2), at(3));
        if a == NO_CODE {
            return None;
        }
        let classes = [
            (
                4,
                b != NO_CODE && c != NO_CODE && d != NO_CODE,
                pack(b, c, d),
            ),
            (3, b != NO_CODE && c != NO_CODE, pack(b, c, 0)),
            (2, b != NO_CODE, pack(b, 0, 0)),
            (1, true, 0),
        ];
        for (class, possible, packed) in classes {
            let filter_says = match class {
                1 => self.single(a),
                _ => self.prefixes.test(a, class_key(class, packed)),
            };
            if !possible || filter_says == 0 {
                continue;
            }
            let Some(g) = self.group(class, a, packed) else {
                continue;
            };
            let start = g.start as usize;
            for member in self.members.get(start..start + g.count as usize)? {
                let (s, l) = (member.start as usize, member.len as usize);
                if rest
                    .get(..l)
                    .is_some_and(|t| self.seqs.get(s..s + l) == Some(t))
                {
                    return Some((k + l - 1, member.pattern));
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(m: &AnchoredMatcher, s: &str) -> Vec<u16> {
        s.chars().map(|c| m.code(c)).collect()
    }

    #[test]
    fn longest_pattern_at_each_position() {
        let pats = ["炸", "炸弹", "制造炸弹", "造炸弹药", "ai换脸", "𠀀字"];
        let m = AnchoredMatcher::build(pats.iter().zip(0u32..).map(|(p, i)| (*p, i)))
            .unwrap_or_else(|e| panic!("{e}"));
        let t = codes(&m, "制造炸弹药x");
        assert_eq!(t[5], NO_CODE, "x is in no pattern");
        assert_eq!(m.longest_at(&t, 0), Some((3, 2)));
        assert_eq!(m.longest_at(&t, 1), Some((4, 3)));
        assert_eq!(m.longest_at(&t, 2), Some((3, 1)));
        assert_eq!(m.longest_at(&t, 3), None);
        let mut padded = t.clone();
        padded.extend([NO_CODE; AnchoredMatcher::PADDING]);
        let mut starts = Vec::new();
        m.candidates(&padded, &mut starts);
        assert!(starts.starts_with(&[0, 1, 2]), "{starts:?}");
        assert!(!starts.contains(&5) && starts.iter().all(|&k| k < t.len()));
        let t = codes(&m, "用ai换脸和𠀀字");
        assert_eq!(m.longest_at(&t, 1), Some((4, 4)));
        assert_eq!(m.longest_at(&t, 6), Some((7, 5)));
        // A code-0 character in the middle ends the walk.
        let t = codes(&m, "制造炸x弹");
        assert_eq!(m.longest_at(&t, 0), None);
        assert_eq!(m.longest_at(&t, 2), Some((2, 0)));
        assert!(AnchoredMatcher::build([]).is_ok_and(|e| e.is_empty()) && !m.is_empty());
    }
}
