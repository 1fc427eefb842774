//! Lossless Huffman optimisation of a baseline JPEG (what `jpegtran -optimize` does): the
//! scan's symbols are read with the file's tables, counted, and written again with tables
//! built for this image (ITU-T T.81 Annex K.2). Pixels are unchanged, the file shrinks.
//!
//! Why not the encoder's own option: jpeg-encoder 0.7 writes optimised files as one scan per
//! component, and zune-jpeg 0.5 (the image crate's decoder, which `inspect` uses) decodes
//! non-interleaved 4:2:0 scans wrongly. This pass keeps the single interleaved scan.

use crate::ExplicitError;

/// Why a JPEG could not be optimised (the caller keeps the input as it is).
fn bad(what: impl Into<String>) -> ExplicitError {
    ExplicitError::Image(format!(
        "cannot optimise the JPEG Huffman tables: {}",
        what.into()
    ))
}

/// A Huffman table as stored in a DHT segment: code counts per length 1–16 and the symbols.
#[derive(Debug, Clone, PartialEq, Eq)]
struct HuffSpec {
    counts: [u8; 16],
    symbols: Vec<u8>,
}

/// Decoding form of a table (T.81 F.2.2.3: MINCODE, MAXCODE, VALPTR per code length).
#[derive(Debug, Clone)]
struct Decoder {
    min_code: [i32; 17],
    max_code: [i32; 17],
    first_index: [usize; 17],
    symbols: Vec<u8>,
}

impl Decoder {
    fn new(spec: &HuffSpec) -> Result<Self, ExplicitError> {
        let total: usize = spec.counts.iter().map(|&c| usize::from(c)).sum();
        if total != spec.symbols.len() || total > 256 {
            return Err(bad("DHT symbol count does not match its code counts"));
        }
        let mut d = Decoder {
            min_code: [0; 17],
            max_code: [-1; 17],
            first_index: [0; 17],
            symbols: spec.symbols.clone(),
        };
        let (mut code, mut index) = (0i32, 0usize);
        for len in 1..=16 {
            let n = usize::from(spec.counts[len - 1]);
            if n > 0 {
                d.first_index[len] = index;
                d.min_code[len] = code;
                code += n as i32;
                index += n;
                d.max_code[len] = code - 1;
            }
            if code > (1 << len) {
                return Err(bad("DHT code counts overflow their lengths"));
            }
            code <<= 1;
        }
        Ok(d)
    }

    fn decode(&self, bits: &mut BitReader<'_>) -> Result<u8, ExplicitError> {
        let mut code = 0i32;
        for len in 1..=16 {
            code = (code << 1) | bits.bit()? as i32;
            if code <= self.max_code[len] {
                let at = self.first_index[len] + (code - self.min_code[len]) as usize;
                return self
                    .symbols
                    .get(at)
                    .copied()
                    .ok_or_else(|| bad("Huffman code outside its table"));
            }
        }
        Err(bad("invalid Huffman code in the scan"))
    }
}

/// Reads bits MSB first from entropy-coded bytes with the 0xFF00 stuffing already removed.
struct BitReader<'a> {
    bytes: &'a [u8],
    at: usize,
    bit: u8,
}

impl BitReader<'_> {
    fn bit(&mut self) -> Result<u32, ExplicitError> {
        let byte = *self
            .bytes
            .get(self.at)
            .ok_or_else(|| bad("scan data ends early"))?;
        let b = (byte >> (7 - self.bit)) & 1;
        self.bit += 1;
        if self.bit == 8 {
            self.bit = 0;
            self.at += 1;
        }
        Ok(u32::from(b))
    }

    fn bits(&mut self, n: u8) -> Result<u16, ExplicitError> {
        let mut v = 0u16;
        for _ in 0..n {
            v = (v << 1) | self.bit()? as u16;
        }
        Ok(v)
    }
}

/// Writes bits MSB first, stuffing a 0x00 after every 0xFF; pads the last byte with ones.
#[derive(Default)]
struct BitWriter {
    out: Vec<u8>,
    acc: u32,
    n: u8,
}

impl BitWriter {
    fn put(&mut self, value: u32, len: u8) {
        for i in (0..len).rev() {
            self.acc = (self.acc << 1) | ((value >> i) & 1);
            self.n += 1;
            if self.n == 8 {
                self.push_byte();
            }
        }
    }

    fn push_byte(&mut self) {
        let byte = (self.acc & 0xFF) as u8;
        self.out.push(byte);
        if byte == 0xFF {
            self.out.push(0);
        }
        self.acc = 0;
        self.n = 0;
    }

    fn finish(mut self) -> Vec<u8> {
        if self.n > 0 {
            let pad = 8 - self.n;
            self.put((1 << pad) - 1, pad);
        }
        self.out
    }
}

/// One scan component: its blocks per MCU (h × v) and its DC/AC table slots.
#[derive(Debug, Clone, Copy)]
struct ScanComponent {
    h: usize,
    v: usize,
    dc: usize,
    ac: usize,
    /// Blocks across and down when the scan has this component alone.
    blocks_x: usize,
    blocks_y: usize,
}

/// Every symbol of the scan in order: (table slot 0–3 DC / 4–7 AC, symbol, extra bits, their count).
fn walk_scan(
    data: &[u8],
    comps: &[ScanComponent],
    mcus: usize,
    decoders: &[Option<Decoder>; 8],
    mut visit: impl FnMut(usize, u8, u16, u8),
) -> Result<(), ExplicitError> {
    let mut bits = BitReader {
        bytes: data,
        at: 0,
        bit: 0,
    };
    let table = |slot: usize| {
        decoders[slot].as_ref().ok_or_else(|| {
            bad(format!(
                "scan uses an undefined Huffman table (slot {slot})"
            ))
        })
    };
    let interleaved = comps.len() > 1;
    for _ in 0..mcus {
        for c in comps {
            let blocks = if interleaved { c.h * c.v } else { 1 };
            for _ in 0..blocks {
                let dc = table(c.dc)?;
                let s = dc.decode(&mut bits)?;
                if s > 11 {
                    return Err(bad("DC difference category above 11"));
                }
                visit(c.dc, s, bits.bits(s)?, s);
                let ac = table(4 + c.ac)?;
                let mut k = 1usize;
                while k < 64 {
                    let rs = ac.decode(&mut bits)?;
                    let (run, size) = (usize::from(rs >> 4), rs & 15);
                    if size > 10 {
                        return Err(bad("AC coefficient category above 10"));
                    }
                    visit(4 + c.ac, rs, bits.bits(size)?, size);
                    if size == 0 {
                        if run != 15 {
                            break; // end of block
                        }
                        k += 16;
                    } else {
                        k += run + 1;
                    }
                }
                if k > 64 {
                    return Err(bad("AC run past the end of a block"));
                }
            }
        }
    }
    Ok(())
}

/// Optimal code lengths (≤ 16 bits, no all-ones code) for symbol frequencies, as a DHT table
/// (T.81 Annex K.2, figures K.1–K.4).
fn build_table(freq: &[u32; 256]) -> HuffSpec {
    let mut scaled = *freq;
    loop {
        let code_size = code_sizes(&scaled);
        if code_size.iter().all(|&s| s <= 32) {
            return table_from_sizes(&code_size);
        }
        // Extremely skewed counts give codes longer than figure K.3 can shorten: flatten them
        // (still non-zero) and build again.
        for f in scaled.iter_mut().filter(|f| **f > 0) {
            *f = (*f / 2).max(1);
        }
    }
}

/// Huffman code sizes for the 256 symbols plus the reserved one (figure K.1).
fn code_sizes(freq: &[u32; 256]) -> [usize; 257] {
    // Index 256 is the reserved symbol that keeps the all-ones code unused.
    let mut f = [0u64; 257];
    for (d, &s) in f.iter_mut().zip(freq) {
        *d = u64::from(s);
    }
    f[256] = 1;
    let mut code_size = [0usize; 257];
    let mut others = [usize::MAX; 257];
    loop {
        // The two least frequent live entries; ties go to the larger index (so the reserved
        // symbol ends up with the longest code).
        let mut v1 = None;
        for i in 0..257 {
            if f[i] > 0 && v1.is_none_or(|j: usize| f[i] <= f[j]) {
                v1 = Some(i);
            }
        }
        let mut v2 = None;
        for i in 0..257 {
            if f[i] > 0 && Some(i) != v1 && v2.is_none_or(|j: usize| f[i] <= f[j]) {
                v2 = Some(i);
            }
        }
        let (Some(mut c1), Some(mut c2)) = (v1, v2) else {
            break;
        };
        f[c1] += f[c2];
        f[c2] = 0;
        code_size[c1] += 1;
        while others[c1] != usize::MAX {
            c1 = others[c1];
            code_size[c1] += 1;
        }
        others[c1] = c2;
        code_size[c2] += 1;
        while others[c2] != usize::MAX {
            c2 = others[c2];
            code_size[c2] += 1;
        }
    }
    code_size
}

/// The DHT form of code sizes of at most 32 bits, limited to 16 bits (figures K.2–K.4).
fn table_from_sizes(code_size: &[usize; 257]) -> HuffSpec {
    let mut counts = [0u32; 33];
    for &s in code_size {
        if s > 0 {
            counts[s] += 1;
        }
    }
    // Figure K.3: move codes longer than 16 bits up the tree.
    let mut i = 32;
    while i > 16 {
        while counts[i] > 0 {
            let mut j = i - 2;
            while j > 0 && counts[j] == 0 {
                j -= 1;
            }
            counts[i] -= 2;
            counts[i - 1] += 1;
            counts[j + 1] += 2;
            counts[j] -= 1;
        }
        i -= 1;
    }
    // Drop the reserved symbol's code (the last of the longest length).
    while i > 0 && counts[i] == 0 {
        i -= 1;
    }
    if i > 0 {
        counts[i] -= 1;
    }
    // Figure K.4: symbols by code size, then by value.
    let mut symbols = Vec::new();
    for size in 1..=32 {
        for (sym, &s) in code_size.iter().enumerate().take(256) {
            if s == size {
                symbols.push(sym as u8);
            }
        }
    }
    let mut out = [0u8; 16];
    for (o, &c) in out.iter_mut().zip(&counts[1..=16]) {
        *o = c as u8;
    }
    HuffSpec {
        counts: out,
        symbols,
    }
}

/// Encoding form of a table: (code, length) per symbol.
fn encoder_of(spec: &HuffSpec) -> [(u32, u8); 256] {
    let mut table = [(0u32, 0u8); 256];
    let (mut code, mut at) = (0u32, 0usize);
    for len in 1..=16u8 {
        for _ in 0..spec.counts[usize::from(len) - 1] {
            if let Some(&sym) = spec.symbols.get(at) {
                table[usize::from(sym)] = (code, len);
            }
            code += 1;
            at += 1;
        }
        code <<= 1;
    }
    table
}

/// Removes the 0x00 stuffed after each 0xFF in entropy-coded data.
fn unstuff(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        out.push(data[i]);
        i += if data[i] == 0xFF { 2 } else { 1 };
    }
    out
}

/// Rewrites a single-scan baseline JPEG with Huffman tables optimised for its own symbols.
/// The coefficients (and so the decoded pixels) are unchanged. Progressive, multi-scan and
/// restart-interval files are refused with an error (the caller keeps them as they are).
pub fn optimise_huffman(jpeg: &[u8]) -> Result<Vec<u8>, ExplicitError> {
    if !jpeg.starts_with(&[0xFF, 0xD8]) {
        return Err(bad("no start-of-image marker"));
    }
    let mut specs: [Option<HuffSpec>; 8] = Default::default();
    // Components from the frame header: (id, h, v).
    let mut frame: Vec<(u8, usize, usize)> = Vec::new();
    let (mut width, mut height) = (0usize, 0usize);
    // Segments kept as they are (everything before the scan but the DHTs).
    let mut kept: Vec<&[u8]> = Vec::new();
    let mut at = 2usize;
    loop {
        let (Some(&0xFF), Some(&m)) = (jpeg.get(at), jpeg.get(at + 1)) else {
            return Err(bad(format!("no marker at offset {at}")));
        };
        let len = jpeg
            .get(at + 2..at + 4)
            .map(|s| usize::from(u16::from_be_bytes([s[0], s[1]])))
            .ok_or_else(|| bad("truncated segment"))?;
        let end = at + 2 + len;
        let seg = jpeg
            .get(at..end)
            .filter(|_| len >= 2)
            .ok_or_else(|| bad("segment runs past the end"))?;
        let payload = &seg[4..];
        match m {
            0xC4 => {
                let mut p = payload;
                while let Some(&tc_th) = p.first() {
                    let slot = usize::from(tc_th >> 4) * 4 + usize::from(tc_th & 3);
                    if tc_th >> 4 > 1 {
                        return Err(bad("bad DHT table class"));
                    }
                    let counts: [u8; 16] = p
                        .get(1..17)
                        .and_then(|c| c.try_into().ok())
                        .ok_or_else(|| bad("short DHT"))?;
                    let n: usize = counts.iter().map(|&c| usize::from(c)).sum();
                    let symbols = p.get(17..17 + n).ok_or_else(|| bad("short DHT"))?.to_vec();
                    specs[slot] = Some(HuffSpec { counts, symbols });
                    p = &p[17 + n..];
                }
            }
            0xC0 | 0xC1 => {
                if payload.first() != Some(&8) {
                    return Err(bad("only 8-bit samples are handled"));
                }
                let g = |i: usize| payload.get(i).copied().ok_or_else(|| bad("short SOF"));
                height = usize::from(u16::from_be_bytes([g(1)?, g(2)?]));
                width = usize::from(u16::from_be_bytes([g(3)?, g(4)?]));
                for i in 0..usize::from(g(5)?) {
                    let hv = g(7 + 3 * i)?;
                    frame.push((g(6 + 3 * i)?, usize::from(hv >> 4), usize::from(hv & 15)));
                }
                kept.push(seg);
            }
            0xC2 | 0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => {
                return Err(bad("not a baseline Huffman JPEG"));
            }
            0xDD => {
                if payload.get(..2).is_some_and(|r| r != [0, 0]) {
                    return Err(bad("restart intervals are not handled"));
                }
                kept.push(seg);
            }
            0xDA => break,
            _ => kept.push(seg),
        }
        at = end;
    }
    let sos_at = at;
    let sos_len = usize::from(u16::from_be_bytes([jpeg[at + 2], jpeg[at + 3]]));
    let sos = jpeg
        .get(at + 4..at + 2 + sos_len)
        .ok_or_else(|| bad("short SOS"))?;
    let ns = usize::from(*sos.first().ok_or_else(|| bad("short SOS"))?);
    if sos.get(1 + 2 * ns..4 + 2 * ns) != Some(&[0, 63, 0][..]) {
        return Err(bad("not a sequential full-spectrum scan"));
    }
    if frame.is_empty() || ns == 0 || width == 0 || height == 0 {
        return Err(bad("no frame header or empty scan"));
    }
    let h_max = frame.iter().map(|c| c.1).max().unwrap_or(1).max(1);
    let v_max = frame.iter().map(|c| c.2).max().unwrap_or(1).max(1);
    let mut comps = Vec::with_capacity(ns);
    for i in 0..ns {
        let (id, tables) = (sos[1 + 2 * i], sos[2 + 2 * i]);
        let &(_, h, v) = frame
            .iter()
            .find(|c| c.0 == id)
            .ok_or_else(|| bad("scan names a component the frame lacks"))?;
        if !(1..=4).contains(&h) || !(1..=4).contains(&v) {
            return Err(bad("bad sampling factors"));
        }
        comps.push(ScanComponent {
            h,
            v,
            dc: usize::from(tables >> 4) & 3,
            ac: usize::from(tables & 15) & 3,
            blocks_x: (width * h).div_ceil(h_max).div_ceil(8),
            blocks_y: (height * v).div_ceil(v_max).div_ceil(8),
        });
    }
    let mcus = if ns > 1 {
        width.div_ceil(8 * h_max) * height.div_ceil(8 * v_max)
    } else {
        comps[0].blocks_x * comps[0].blocks_y
    };
    // Entropy-coded data runs to the next marker that is not stuffing.
    let data_start = sos_at + 2 + sos_len;
    let mut data_end = data_start;
    while data_end + 1 < jpeg.len() && !(jpeg[data_end] == 0xFF && jpeg[data_end + 1] != 0) {
        data_end += 1;
    }
    if jpeg.get(data_end..data_end + 2) != Some(&[0xFF, 0xD9][..]) {
        return Err(bad(
            "more than one scan, or no end-of-image marker after the scan",
        ));
    }
    let data = unstuff(&jpeg[data_start..data_end]);
    let mut decoders: [Option<Decoder>; 8] = Default::default();
    for (d, s) in decoders.iter_mut().zip(&specs) {
        if let Some(s) = s {
            *d = Some(Decoder::new(s)?);
        }
    }
    // Pass 1: count symbols per table.
    let mut freq = [[0u32; 256]; 8];
    walk_scan(&data, &comps, mcus, &decoders, |slot, sym, _, _| {
        freq[slot][usize::from(sym)] += 1;
    })?;
    let mut new_specs: [Option<HuffSpec>; 8] = Default::default();
    let mut encoders = [[(0u32, 0u8); 256]; 8];
    for slot in 0..8 {
        if freq[slot].iter().any(|&f| f > 0) {
            let spec = build_table(&freq[slot]);
            encoders[slot] = encoder_of(&spec);
            new_specs[slot] = Some(spec);
        }
    }
    // Pass 2: the same symbols and extra bits, coded with the new tables.
    let mut writer = BitWriter::default();
    walk_scan(&data, &comps, mcus, &decoders, |slot, sym, extra, n| {
        let (code, len) = encoders[slot][usize::from(sym)];
        writer.put(code, len);
        writer.put(u32::from(extra), n);
    })?;
    let scan = writer.finish();
    let mut out = Vec::with_capacity(jpeg.len());
    out.extend_from_slice(&[0xFF, 0xD8]);
    for seg in kept {
        out.extend_from_slice(seg);
    }
    for (slot, spec) in new_specs.iter().enumerate() {
        let Some(spec) = spec else { continue };
        let len = 2 + 1 + 16 + spec.symbols.len();
        out.extend_from_slice(&[0xFF, 0xC4]);
        out.extend_from_slice(&(len as u16).to_be_bytes());
        out.push(((slot / 4) << 4 | (slot % 4)) as u8);
        out.extend_from_slice(&spec.counts);
        out.extend_from_slice(&spec.symbols);
    }
    out.extend_from_slice(&jpeg[sos_at..data_start]);
    out.extend_from_slice(&scan);
    out.extend_from_slice(&[0xFF, 0xD9]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A photo-like test picture: smooth gradients plus texture.
    fn picture(w: u32, h: u32) -> Vec<u8> {
        (0..h)
            .flat_map(|y| {
                (0..w).flat_map(move |x| {
                    let t = ((x * 13 + y * 7) ^ (x * y / 5)) % 32;
                    [
                        (x * 255 / w.max(1)) as u8,
                        (y * 200 / h.max(1) + t) as u8,
                        ((x + y) * 3 % 256) as u8,
                    ]
                })
            })
            .collect()
    }

    fn encode(w: u16, h: u16, q: u8, s: jpeg_encoder::SamplingFactor, grey: bool) -> Vec<u8> {
        let px = picture(u32::from(w), u32::from(h));
        let mut out = Vec::new();
        let mut e = jpeg_encoder::Encoder::new(&mut out, q);
        e.set_sampling_factor(s);
        if grey {
            let luma: Vec<u8> = px.chunks(3).map(|p| p[1]).collect();
            e.encode(&luma, w, h, jpeg_encoder::ColorType::Luma)
                .unwrap();
        } else {
            e.encode(&px, w, h, jpeg_encoder::ColorType::Rgb).unwrap();
        }
        out
    }

    #[test]
    fn optimised_files_are_smaller_and_decode_to_the_same_pixels() {
        use jpeg_encoder::SamplingFactor as S;
        for (w, h, q, s, grey) in [
            (333u16, 217u16, 75u8, S::R_4_2_0, false),
            (64, 64, 95, S::R_4_4_4, false),
            (101, 37, 50, S::R_4_2_2, false),
            (17, 9, 90, S::R_4_2_0, false),
            (120, 80, 80, S::R_4_4_4, true),
        ] {
            let plain = encode(w, h, q, s, grey);
            let optimised = optimise_huffman(&plain).unwrap();
            assert!(
                optimised.len() < plain.len(),
                "{w}×{h} q{q}: {} → {}",
                plain.len(),
                optimised.len()
            );
            let a = image::load_from_memory(&plain).unwrap();
            let b = image::load_from_memory(&optimised).unwrap();
            assert_eq!(a.as_bytes(), b.as_bytes(), "{w}×{h} q{q} {s:?}");
            // The optimised file keeps one interleaved scan.
            let scans = optimised.windows(2).filter(|p| p == &[0xFF, 0xDA]).count();
            assert_eq!(scans, 1);
        }
    }

    #[test]
    fn tables_are_prefix_free_with_no_all_ones_code_and_at_most_16_bits() {
        // Skewed frequencies force lengths past 16 before limiting.
        let mut freq = [0u32; 256];
        for (i, f) in freq.iter_mut().enumerate().take(40) {
            *f = 1u32 << (i.min(30));
        }
        let spec = build_table(&freq);
        assert_eq!(spec.symbols.len(), 40);
        let kraft: f64 = spec
            .counts
            .iter()
            .enumerate()
            .map(|(i, &c)| f64::from(c) / f64::from(1u32 << (i + 1)))
            .sum();
        assert!(kraft < 1.0, "the all-ones code must stay free: {kraft}");
        let dec = Decoder::new(&spec).unwrap();
        let enc = encoder_of(&spec);
        for &sym in &spec.symbols {
            let (code, len) = enc[usize::from(sym)];
            assert!((1..=16).contains(&len));
            assert_ne!(code, (1 << len) - 1);
            let bytes = (code << (32 - u32::from(len))).to_be_bytes();
            let mut r = BitReader {
                bytes: &bytes,
                at: 0,
                bit: 0,
            };
            assert_eq!(dec.decode(&mut r).unwrap(), sym);
        }
    }

    #[test]
    fn progressive_truncated_and_foreign_input_is_refused() {
        let plain = encode(48, 48, 80, jpeg_encoder::SamplingFactor::R_4_2_0, false);
        for cut in [0, 2, 30, plain.len() / 2, plain.len() - 2] {
            assert!(optimise_huffman(&plain[..cut]).is_err(), "cut at {cut}");
        }
        let mut prog = Vec::new();
        let mut e = jpeg_encoder::Encoder::new(&mut prog, 80);
        e.set_progressive(true);
        e.encode(&picture(32, 32), 32, 32, jpeg_encoder::ColorType::Rgb)
            .unwrap();
        assert!(optimise_huffman(&prog).is_err());
        assert!(optimise_huffman(b"GIF89a").is_err());
    }
}
