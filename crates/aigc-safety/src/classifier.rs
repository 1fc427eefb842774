//! A linear classifier over the 31 Appendix A risks.
//!
//! # Model
//! One-vs-rest logistic regression. Features of a text: the character 1- to n-grams (n = 2 by
//! default; stored in the weights file) of its
//! normalised form (the same fold as the lexicon, so evasions fold away here too), present or
//! absent, hashed into 2^`hash_bits` slots and scaled to unit length; plus lexicon-hit features
//! (`any hit`, `hit of risk X`, `hit of risk X at severity S`), each with value 1, hashed into the
//! same space. A risk is flagged when its probability reaches the risk's threshold; thresholds are
//! chosen per risk on out-of-fold predictions (k-fold validation) to maximise F1.
//!
//! # Weights file (`.clf`, version 1)
//! All integers little-endian.
//!
//! ```text
//! magic      8 bytes  "AIGCSCLF"
//! version    u16      1
//! hash_bits  u8       feature slots = 2^hash_bits (10..=24)
//! max_ngram  u8       longest character n-gram (1..=5)
//! risks      u16      number of risk blocks that follow
//! per risk:
//!   code_len u8, code (UTF-8, an Appendix A code such as "A1.4")
//!   bias f32, threshold f32, scale f32
//!   count u32, then `count` pairs: slot delta (LEB128 varint, from the previous slot of this
//!   risk, first from 0) and weight i8 (weight = i8 × scale)
//! crc32      u32      CRC-32 (IEEE) of every byte before it
//! ```
//!
//! Weights are quantised to 8 bits per risk and zero weights are not stored, so a model trained
//! on a few thousand examples is a few hundred kilobytes.

use crate::lexicon::{CompiledLexicon, Hit, Scratch};
use crate::normalize::fold_chars_into;
use crate::taxonomy::{self, risks};
use serde::Serialize;
use std::path::Path;

/// Default number of hash bits (262 144 feature slots).
pub const DEFAULT_HASH_BITS: u8 = 18;
/// Longest character n-gram used by default.
pub const DEFAULT_MAX_NGRAM: u8 = 2;
const MAGIC: &[u8; 8] = b"AIGCSCLF";
/// A risk is flagged only if its score-to-threshold ratio is at least this fraction of the
/// strongest risk's ratio.
const RELATIVE_FLAG: f32 = 0.8;
/// Thresholds are not chosen below this: with few validation positives, a very low cut fits
/// the noise and floods the risk with false positives.
const MIN_THRESHOLD: f32 = 0.1;
const VERSION: u16 = 1;

/// The bundled seed model, trained by `aigc-mark safety train` on `assets/safety/seed-train.jsonl`.
pub const SEED_MODEL: &[u8] = include_bytes!("../../../assets/safety/seed-classifier.clf");

/// Errors of the classifier.
#[derive(Debug, thiserror::Error)]
pub enum ClassifierError {
    /// A weights file is malformed.
    #[error("{origin}: not a valid classifier weights file: {message}")]
    Format {
        /// File name or other origin.
        origin: String,
        /// What is wrong.
        message: String,
    },
    /// A labelled data line is malformed.
    #[error("{origin}:{line}: {message}")]
    Data {
        /// File name.
        origin: String,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// Not enough data to train.
    #[error("cannot train: {0}")]
    Training(String),
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// One labelled example: a text and the risks it shows (none = safe).
#[derive(Debug, Clone)]
pub struct Example {
    /// The text.
    pub text: String,
    /// Indices into [`taxonomy::risks`].
    pub labels: Vec<u8>,
}

/// Parses labelled JSONL: one object a line, `{"text": "...", "labels": ["A1.4"]}`; `labels`
/// may also be a single string `label`/`risk`, and `[]`, `""` or `"safe"` mean no risk.
pub fn parse_labelled(text: &str, origin: &str) -> Result<Vec<Example>, ClassifierError> {
    let mut out = Vec::new();
    for (line, parsed) in crate::jsonl::objects(text) {
        let err = |message: String| ClassifierError::Data {
            origin: origin.to_string(),
            line,
            message,
        };
        let v = parsed.map_err(err)?;
        let text = v
            .get("text")
            .and_then(|t| t.as_str())
            .ok_or_else(|| err("missing string field \"text\"".into()))?;
        let mut codes: Vec<&str> = Vec::new();
        match v
            .get("labels")
            .or_else(|| v.get("label"))
            .or_else(|| v.get("risk"))
        {
            None | Some(serde_json::Value::Null) => {
                return Err(err(
                    "missing \"labels\" (an array of risk codes, [] for safe)".into(),
                ));
            }
            Some(serde_json::Value::String(s)) => codes.push(s),
            Some(serde_json::Value::Array(a)) => {
                for x in a {
                    codes.push(
                        x.as_str()
                            .ok_or_else(|| err("\"labels\" must hold risk-code strings".into()))?,
                    );
                }
            }
            Some(_) => return Err(err("\"labels\" must be an array or a string".into())),
        }
        let mut labels = Vec::new();
        for c in codes {
            let c = c.trim();
            if c.is_empty() || c.eq_ignore_ascii_case("safe") {
                continue;
            }
            let i = taxonomy::risk_index(c)
                .ok_or_else(|| err(format!("unknown risk code {c:?} (expected A1.1 … A5.2)")))?;
            if !labels.contains(&i) {
                labels.push(i);
            }
        }
        out.push(Example {
            text: text.to_string(),
            labels,
        });
    }
    Ok(out)
}

/// Reads and parses a labelled JSONL file.
pub fn read_labelled(path: &Path) -> Result<Vec<Example>, ClassifierError> {
    // One reader for every UTF-8 data file of the crate.
    let text = crate::lexicon::read_text_as(
        path,
        |path, source| ClassifierError::Io { path, source },
        |origin, line, message| ClassifierError::Data {
            origin,
            line,
            message,
        },
    )?;
    parse_labelled(&text, &path.display().to_string())
}

/// Feature extraction shared by training and scoring.
#[derive(Debug, Clone, Copy)]
pub struct Featurizer {
    /// Feature slots = 2^hash_bits.
    pub hash_bits: u8,
    /// Longest n-gram.
    pub max_ngram: u8,
}

impl Default for Featurizer {
    fn default() -> Self {
        Self {
            hash_bits: DEFAULT_HASH_BITS,
            max_ngram: DEFAULT_MAX_NGRAM,
        }
    }
}

#[inline]
fn mix(h: u64) -> u64 {
    let h = (h ^ (h >> 31)).wrapping_mul(0x7fb5_d329_728e_a185);
    let h = (h ^ (h >> 27)).wrapping_mul(0x81da_def4_bc2d_d44d);
    h ^ (h >> 33)
}

/// A sparse feature vector: unique slots (in first-seen order) with their values.
pub type Features = Vec<(u32, f32)>;

impl Featurizer {
    fn slot(&self, h: u64) -> u32 {
        (mix(h) >> (64 - u32::from(self.hash_bits))) as u32
    }

    fn tag_slot(&self, tag: &str) -> u32 {
        let mut h = 0xcbf2_9ce4_8422_2325u64;
        for b in tag.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        self.slot(h ^ 0x5555)
    }

    /// Features of `text` (its normalised characters folded into `scratch`) with its lexicon
    /// `hits`.
    pub fn features(&self, text: &str, hits: &[Hit], scratch: &mut Scratch) -> Features {
        let chars = &mut scratch.chars;
        chars.clear();
        fold_chars_into(text, chars);
        // De-duplicate through a bit set over the slots (reused, cleared after use) instead of
        // sorting: a 2 000-character text has about 6 000 n-grams.
        let words = (1usize << self.hash_bits).div_ceil(64);
        let seen = &mut scratch.seen;
        if seen.len() != words {
            seen.clear();
            seen.resize(words, 0);
        }
        let mut f: Features = Vec::with_capacity(chars.len() * usize::from(self.max_ngram));
        let mut add = |f: &mut Features, slot: u32, value: f32| {
            let (w, bit) = ((slot / 64) as usize, 1u64 << (slot % 64));
            match seen.get_mut(w) {
                Some(x) if *x & bit == 0 => {
                    *x |= bit;
                    f.push((slot, value));
                }
                Some(_) => {
                    // Only a tag can meet a slot already taken: the tag's value wins.
                    if value == 1.0
                        && let Some(e) = f.iter_mut().find(|e| e.0 == slot)
                    {
                        e.1 = value;
                    }
                }
                None => {}
            }
        };
        for i in 0..chars.len() {
            let mut h = 0u64;
            for n in 0..usize::from(self.max_ngram) {
                let Some(&c) = chars.get(i + n) else { break };
                h = mix(h ^ u64::from(c)).wrapping_add(n as u64 + 1);
                add(&mut f, self.slot(h), 0.0);
            }
        }
        let norm = if f.is_empty() {
            1.0
        } else {
            1.0 / (f.len() as f32).sqrt()
        };
        for x in &mut f {
            x.1 = norm;
        }
        if !hits.is_empty() {
            add(&mut f, self.tag_slot("lex:any"), 1.0);
            for h in hits {
                add(&mut f, self.tag_slot(&format!("lex:{}", h.risk)), 1.0);
                add(
                    &mut f,
                    self.tag_slot(&format!("lex:{}:{}", h.risk, h.severity.as_str())),
                    1.0,
                );
            }
        }
        for &(slot, _) in &f {
            if let Some(x) = seen.get_mut((slot / 64) as usize) {
                *x = 0;
            }
        }
        f
    }
}

/// One risk's model.
#[derive(Debug, Clone)]
struct RiskModel {
    code: &'static str,
    bias: f32,
    threshold: f32,
    scale: f32,
    /// (slot, quantised weight), sorted by slot.
    weights: Vec<(u32, i8)>,
}

/// A trained classifier, ready to score.
#[derive(Debug, Clone)]
pub struct Classifier {
    featurizer: Featurizer,
    risks: Vec<RiskModel>,
    /// Per slot: range into `entries` (CSR by slot, so scoring touches each feature once).
    offsets: Vec<u32>,
    entries: Vec<(u8, f32)>,
}

/// The score of one risk for one text.
#[derive(Debug, Clone, Serialize)]
pub struct RiskScore {
    /// Risk code.
    pub risk: &'static str,
    /// Probability 0–1.
    pub score: f32,
    /// The risk's threshold.
    pub threshold: f32,
    /// `score >= threshold`.
    pub flagged: bool,
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

fn put_varint(out: &mut Vec<u8>, mut v: u32) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// A cursor over the weights file.
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    origin: &'a str,
}

impl<'a> Reader<'a> {
    fn err(&self, message: impl Into<String>) -> ClassifierError {
        ClassifierError::Format {
            origin: self.origin.to_string(),
            message: format!("{} (at byte {})", message.into(), self.pos),
        }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], ClassifierError> {
        let s = self
            .data
            .get(self.pos..self.pos.saturating_add(n))
            .ok_or_else(|| self.err("truncated"))?;
        self.pos += n;
        Ok(s)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], ClassifierError> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, ClassifierError> {
        Ok(self.array::<1>()?[0])
    }
    fn u16(&mut self) -> Result<u16, ClassifierError> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32, ClassifierError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn f32(&mut self) -> Result<f32, ClassifierError> {
        let v = f32::from_le_bytes(self.array()?);
        if v.is_finite() {
            Ok(v)
        } else {
            Err(self.err("non-finite number"))
        }
    }
    fn varint(&mut self) -> Result<u32, ClassifierError> {
        let mut v = 0u32;
        for shift in (0..35).step_by(7) {
            let b = self.u8()?;
            v |= u32::from(b & 0x7f).checked_shl(shift).unwrap_or(0);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(self.err("varint too long"))
    }
}

impl Classifier {
    /// The bundled seed model.
    pub fn seed() -> Result<Self, ClassifierError> {
        Self::from_bytes(SEED_MODEL, "bundled seed classifier")
    }

    /// Loads a weights file.
    pub fn load(path: &Path) -> Result<Self, ClassifierError> {
        let bytes = std::fs::read(path).map_err(|source| ClassifierError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_bytes(&bytes, &path.display().to_string())
    }

    /// Parses the weights format (see the module documentation).
    pub fn from_bytes(data: &[u8], origin: &str) -> Result<Self, ClassifierError> {
        let mut r = Reader {
            data,
            pos: 0,
            origin,
        };
        if r.take(8)? != MAGIC {
            return Err(r.err("wrong magic (expected AIGCSCLF)"));
        }
        let version = r.u16()?;
        if version != VERSION {
            return Err(r.err(format!(
                "unsupported version {version} (this build reads 1)"
            )));
        }
        let body_end = data
            .len()
            .checked_sub(4)
            .ok_or_else(|| r.err("truncated"))?;
        let stored = data
            .get(body_end..)
            .and_then(|s| <[u8; 4]>::try_from(s).ok())
            .map(u32::from_le_bytes)
            .ok_or_else(|| r.err("truncated"))?;
        let actual = crc32fast::hash(data.get(..body_end).unwrap_or_default());
        if stored != actual {
            return Err(r.err("checksum mismatch (file damaged)"));
        }
        let hash_bits = r.u8()?;
        let max_ngram = r.u8()?;
        if !(10..=24).contains(&hash_bits) || !(1..=5).contains(&max_ngram) {
            return Err(r.err(format!(
                "hash_bits {hash_bits} / max_ngram {max_ngram} out of range"
            )));
        }
        let n = r.u16()?;
        let slots = 1u32 << hash_bits;
        let mut models = Vec::new();
        for _ in 0..n {
            let len = usize::from(r.u8()?);
            let code_bytes = r.take(len)?;
            let code = std::str::from_utf8(code_bytes)
                .ok()
                .and_then(taxonomy::risk)
                .map(|x| x.code)
                .ok_or_else(|| r.err("unknown risk code"))?;
            let bias = r.f32()?;
            let threshold = r.f32()?;
            let scale = r.f32()?;
            let count = r.u32()?;
            if count > slots {
                return Err(r.err("more weights than slots"));
            }
            let mut weights = Vec::with_capacity(count as usize);
            let mut slot = 0u32;
            for k in 0..count {
                let d = r.varint()?;
                slot = if k == 0 {
                    d
                } else {
                    slot.checked_add(d).ok_or_else(|| r.err("slot overflow"))?
                };
                if slot >= slots || (k > 0 && d == 0) {
                    return Err(r.err("slot out of range or not increasing"));
                }
                weights.push((slot, r.u8()? as i8));
            }
            models.push(RiskModel {
                code,
                bias,
                threshold,
                scale,
                weights,
            });
        }
        if r.pos != body_end {
            return Err(r.err("trailing bytes before the checksum"));
        }
        Ok(Self::assemble(
            Featurizer {
                hash_bits,
                max_ngram,
            },
            models,
        ))
    }

    fn assemble(featurizer: Featurizer, risks: Vec<RiskModel>) -> Self {
        let slots = 1usize << featurizer.hash_bits;
        let mut counts = vec![0u32; slots + 1];
        for m in &risks {
            for &(s, _) in &m.weights {
                if let Some(c) = counts.get_mut(s as usize + 1) {
                    *c += 1;
                }
            }
        }
        for i in 1..counts.len() {
            counts[i] += counts[i - 1];
        }
        let mut fill = counts.clone();
        let total = counts.last().copied().unwrap_or(0) as usize;
        let mut entries = vec![(0u8, 0f32); total];
        for (ri, m) in risks.iter().enumerate() {
            for &(s, q) in &m.weights {
                if let Some(pos) = fill.get_mut(s as usize) {
                    if let Some(e) = entries.get_mut(*pos as usize) {
                        *e = (ri as u8, f32::from(q) * m.scale);
                    }
                    *pos += 1;
                }
            }
        }
        Self {
            featurizer,
            risks,
            offsets: counts,
            entries,
        }
    }

    /// Serialises to the weights format.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.push(self.featurizer.hash_bits);
        out.push(self.featurizer.max_ngram);
        out.extend_from_slice(&(self.risks.len() as u16).to_le_bytes());
        for m in &self.risks {
            out.push(m.code.len() as u8);
            out.extend_from_slice(m.code.as_bytes());
            for v in [m.bias, m.threshold, m.scale] {
                out.extend_from_slice(&v.to_le_bytes());
            }
            out.extend_from_slice(&(m.weights.len() as u32).to_le_bytes());
            let mut prev = 0u32;
            for &(s, q) in &m.weights {
                put_varint(&mut out, s - prev);
                prev = s;
                out.push(q as u8);
            }
        }
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// The feature extractor this model was trained with.
    pub fn featurizer(&self) -> Featurizer {
        self.featurizer
    }

    /// Stored (non-zero) weights over all risks.
    pub fn weight_count(&self) -> usize {
        self.entries.len()
    }

    /// The per-risk thresholds.
    pub fn thresholds(&self) -> Vec<(&'static str, f32)> {
        self.risks.iter().map(|m| (m.code, m.threshold)).collect()
    }

    /// Probabilities for already extracted features, one per risk in model order.
    pub fn probabilities(&self, features: &Features) -> Vec<f32> {
        let mut z: Vec<f32> = self.risks.iter().map(|m| m.bias).collect();
        for &(slot, v) in features {
            let a = self.offsets.get(slot as usize).copied().unwrap_or(0) as usize;
            let b = self.offsets.get(slot as usize + 1).copied().unwrap_or(0) as usize;
            for &(ri, w) in self.entries.get(a..b).unwrap_or_default() {
                if let Some(x) = z.get_mut(usize::from(ri)) {
                    *x += w * v;
                }
            }
        }
        z.into_iter().map(sigmoid).collect()
    }

    /// Scores `text` given its lexicon hits; `buf` is reused for normalisation.
    pub fn score_with(&self, text: &str, hits: &[Hit], scratch: &mut Scratch) -> Vec<RiskScore> {
        let f = self.featurizer.features(text, hits, scratch);
        let probs = self.probabilities(&f);
        // A text without a single feature (empty, or only spaces and punctuation) scores the
        // biases alone: nothing in it can be flagged.
        let evidence = !f.is_empty();
        // Relative to its threshold, the strongest risk; others must come close to it to be
        // flagged too (texts rarely show many risks at once; this trims one-vs-rest noise).
        let best = probs
            .iter()
            .zip(&self.risks)
            .map(|(p, m)| p / m.threshold.max(1e-3))
            .fold(0f32, f32::max);
        probs
            .into_iter()
            .zip(&self.risks)
            .map(|(p, m)| RiskScore {
                risk: m.code,
                score: p,
                threshold: m.threshold,
                flagged: evidence
                    && p >= m.threshold
                    && p / m.threshold.max(1e-3) >= RELATIVE_FLAG * best,
            })
            .collect()
    }

    /// Scores `text`, finding lexicon hits with `lexicon` first.
    pub fn score(&self, lexicon: &CompiledLexicon, text: &str) -> Vec<RiskScore> {
        let mut buf = Scratch::default();
        let hits = lexicon.find_with(text, &mut buf);
        self.score_with(text, &hits, &mut buf)
    }
}

/// Training settings.
#[derive(Debug, Clone, Copy)]
pub struct TrainOptions {
    /// Features.
    pub featurizer: Featurizer,
    /// Passes over the data.
    pub epochs: usize,
    /// AdaGrad base learning rate.
    pub learning_rate: f32,
    /// L2 penalty per update.
    pub l2: f32,
    /// Folds for out-of-fold threshold selection.
    pub folds: usize,
    /// Shuffling seed.
    pub seed: u64,
}

impl Default for TrainOptions {
    fn default() -> Self {
        Self {
            featurizer: Featurizer::default(),
            epochs: 30,
            learning_rate: 0.5,
            l2: 1e-5,
            folds: 5,
            seed: 0x5AFE,
        }
    }
}

/// What training did.
#[derive(Debug, Clone, Serialize)]
pub struct TrainSummary {
    /// Examples used.
    pub examples: usize,
    /// Examples with no risk.
    pub safe_examples: usize,
    /// Positive examples per risk (risks without any keep a never-firing threshold of 1.0).
    pub positives: Vec<(&'static str, usize)>,
    /// Chosen thresholds.
    pub thresholds: Vec<(&'static str, f32)>,
    /// Micro-F1 of the out-of-fold predictions at the chosen thresholds.
    pub validation_micro_f1: f64,
    /// Stored weights.
    pub weights: usize,
    /// Serialised size in bytes.
    pub file_bytes: usize,
}

/// A small deterministic generator for shuffling (xorshift*).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }
}

/// Dense weights during training.
struct Dense {
    w: Vec<Vec<f32>>,
    g2: Vec<Vec<f32>>,
    bias: Vec<f32>,
    bias_g2: Vec<f32>,
}

fn fit(data: &[(Features, Vec<u8>)], idx: &[usize], opt: &TrainOptions, rng: &mut Rng) -> Dense {
    let n_risks = risks().len();
    let slots = 1usize << opt.featurizer.hash_bits;
    let mut d = Dense {
        w: vec![vec![0.0; slots]; n_risks],
        g2: vec![vec![0.0; slots]; n_risks],
        bias: vec![-2.0; n_risks],
        bias_g2: vec![0.0; n_risks],
    };
    // Positives are rare per risk: weight them up to balance, capped so a single example cannot
    // dominate.
    let mut pos = vec![0usize; n_risks];
    for &i in idx {
        if let Some((_, labels)) = data.get(i) {
            for &l in labels {
                if let Some(p) = pos.get_mut(usize::from(l)) {
                    *p += 1;
                }
            }
        }
    }
    let pos_weight: Vec<f32> = pos
        .iter()
        .map(|&p| {
            if p == 0 {
                1.0
            } else {
                ((idx.len() - p) as f32 / p as f32).clamp(1.0, 20.0)
            }
        })
        .collect();
    let mut order = idx.to_vec();
    for _ in 0..opt.epochs {
        rng.shuffle(&mut order);
        for &i in &order {
            let Some((f, labels)) = data.get(i) else {
                continue;
            };
            for r in 0..n_risks {
                let y = labels.contains(&(r as u8));
                let (Some(w), Some(g2)) = (d.w.get_mut(r), d.g2.get_mut(r)) else {
                    continue;
                };
                let mut z = d.bias.get(r).copied().unwrap_or(0.0);
                for &(s, v) in f {
                    z += w.get(s as usize).copied().unwrap_or(0.0) * v;
                }
                let p = sigmoid(z);
                let weight = if y {
                    pos_weight.get(r).copied().unwrap_or(1.0)
                } else {
                    1.0
                };
                let grad = (p - if y { 1.0 } else { 0.0 }) * weight;
                if grad.abs() < 1e-6 {
                    continue;
                }
                for &(s, v) in f {
                    let s = s as usize;
                    if let (Some(wi), Some(gi)) = (w.get_mut(s), g2.get_mut(s)) {
                        let g = grad * v + opt.l2 * *wi;
                        *gi += g * g;
                        *wi -= opt.learning_rate * g / (gi.sqrt() + 1e-8);
                    }
                }
                if let (Some(b), Some(bg)) = (d.bias.get_mut(r), d.bias_g2.get_mut(r)) {
                    *bg += grad * grad;
                    *b -= opt.learning_rate * grad / (bg.sqrt() + 1e-8);
                }
            }
        }
    }
    d
}

fn dense_prob(d: &Dense, r: usize, f: &Features) -> f32 {
    let mut z = d.bias.get(r).copied().unwrap_or(0.0);
    if let Some(w) = d.w.get(r) {
        for &(s, v) in f {
            z += w.get(s as usize).copied().unwrap_or(0.0) * v;
        }
    }
    sigmoid(z)
}

/// The threshold maximising F1 over `(score, is_positive)` pairs; 1.0 (never fires) without
/// positives.
fn best_threshold(scored: &mut [(f32, bool)]) -> f32 {
    let total_pos = scored.iter().filter(|x| x.1).count();
    if total_pos == 0 {
        return 1.0;
    }
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    let (mut tp, mut fp) = (0usize, 0usize);
    let mut best = (0.0f64, 0.5f32);
    for (k, &(s, y)) in scored.iter().enumerate() {
        if y {
            tp += 1;
        } else {
            fp += 1;
        }
        // Only cut between distinct scores.
        if scored.get(k + 1).is_some_and(|n| n.0 == s) {
            continue;
        }
        let f1 = 2.0 * tp as f64 / (2 * tp + fp + (total_pos - tp)) as f64;
        if f1 > best.0 {
            // Midway to the next lower score, so the threshold generalises a little.
            let next = scored.get(k + 1).map_or(0.0, |n| n.0);
            best = (f1, ((s + next) / 2.0).clamp(MIN_THRESHOLD, 0.98));
        }
    }
    best.1
}

/// Trains on `examples` (lexicon hits from `lexicon` become features).
pub fn train(
    examples: &[Example],
    lexicon: &CompiledLexicon,
    opt: &TrainOptions,
) -> Result<(Classifier, TrainSummary), ClassifierError> {
    if !(10..=24).contains(&opt.featurizer.hash_bits)
        || !(1..=5).contains(&opt.featurizer.max_ngram)
    {
        return Err(ClassifierError::Training(
            "hash bits must be 10..=24 and n-grams 1..=5".into(),
        ));
    }
    let n_risks = risks().len();
    let positives: Vec<usize> = (0..n_risks)
        .map(|r| {
            examples
                .iter()
                .filter(|e| e.labels.contains(&(r as u8)))
                .count()
        })
        .collect();
    if positives.iter().all(|&p| p == 0) || examples.len() < 10 {
        return Err(ClassifierError::Training(format!(
            "need at least 10 examples with some labelled risks ({} examples, {} positive labels)",
            examples.len(),
            positives.iter().sum::<usize>()
        )));
    }
    let mut buf = Scratch::default();
    let data: Vec<(Features, Vec<u8>)> = examples
        .iter()
        .map(|e| {
            let hits = lexicon.find_with(&e.text, &mut buf);
            (
                opt.featurizer.features(&e.text, &hits, &mut buf),
                e.labels.clone(),
            )
        })
        .collect();
    let mut rng = Rng(opt.seed | 1);
    // Out-of-fold probabilities for threshold selection.
    let mut order: Vec<usize> = (0..data.len()).collect();
    rng.shuffle(&mut order);
    let folds = opt.folds.clamp(2, data.len());
    let mut oof = vec![vec![0f32; n_risks]; data.len()];
    for k in 0..folds {
        let train_idx: Vec<usize> = order
            .iter()
            .enumerate()
            .filter(|(j, _)| j % folds != k)
            .map(|(_, &i)| i)
            .collect();
        let model = fit(&data, &train_idx, opt, &mut rng);
        for (j, &i) in order.iter().enumerate() {
            if j % folds == k
                && let (Some(row), Some((f, _))) = (oof.get_mut(i), data.get(i))
            {
                for (r, x) in row.iter_mut().enumerate() {
                    *x = dense_prob(&model, r, f);
                }
            }
        }
    }
    let thresholds: Vec<f32> = (0..n_risks)
        .map(|r| {
            let mut scored: Vec<(f32, bool)> = data
                .iter()
                .zip(&oof)
                .map(|((_, l), p)| (p.get(r).copied().unwrap_or(0.0), l.contains(&(r as u8))))
                .collect();
            best_threshold(&mut scored)
        })
        .collect();
    let mut counts = Counts::new(n_risks);
    for ((_, l), p) in data.iter().zip(&oof) {
        let predicted: Vec<u8> = (0..n_risks)
            .filter(|&r| {
                p.get(r).copied().unwrap_or(0.0) >= thresholds.get(r).copied().unwrap_or(1.0)
            })
            .map(|r| r as u8)
            .collect();
        counts.add(l, &predicted);
    }
    // The final model on all data.
    let all: Vec<usize> = (0..data.len()).collect();
    let dense = fit(&data, &all, opt, &mut rng);
    let models: Vec<RiskModel> = risks()
        .iter()
        .enumerate()
        .map(|(r, risk)| {
            let w = dense.w.get(r).map(Vec::as_slice).unwrap_or_default();
            let max = w.iter().fold(0f32, |m, x| m.max(x.abs()));
            let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
            let weights = w
                .iter()
                .enumerate()
                .filter_map(|(s, &x)| {
                    let q = (x / scale).round().clamp(-127.0, 127.0) as i8;
                    (q != 0).then_some((s as u32, q))
                })
                .collect();
            RiskModel {
                code: risk.code,
                bias: dense.bias.get(r).copied().unwrap_or(0.0),
                threshold: thresholds.get(r).copied().unwrap_or(1.0),
                scale,
                weights,
            }
        })
        .collect();
    let clf = Classifier::assemble(opt.featurizer, models);
    let summary = TrainSummary {
        examples: examples.len(),
        safe_examples: examples.iter().filter(|e| e.labels.is_empty()).count(),
        positives: risks()
            .iter()
            .zip(&positives)
            .map(|(r, &p)| (r.code, p))
            .collect(),
        thresholds: clf.thresholds(),
        validation_micro_f1: counts.report().micro.f1,
        weights: clf.weight_count(),
        file_bytes: clf.to_bytes().len(),
    };
    Ok((clf, summary))
}

/// Precision, recall and F1.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Prf {
    /// Precision.
    pub precision: f64,
    /// Recall.
    pub recall: f64,
    /// F1.
    pub f1: f64,
}

impl Prf {
    fn from_counts(tp: usize, fp: usize, fn_: usize) -> Self {
        let p = if tp + fp == 0 {
            0.0
        } else {
            tp as f64 / (tp + fp) as f64
        };
        let r = if tp + fn_ == 0 {
            0.0
        } else {
            tp as f64 / (tp + fn_) as f64
        };
        let f1 = if tp == 0 {
            0.0
        } else {
            2.0 * tp as f64 / (2 * tp + fp + fn_) as f64
        };
        Self {
            precision: p,
            recall: r,
            f1,
        }
    }
}

/// Per-risk evaluation.
#[derive(Debug, Clone, Serialize)]
pub struct RiskEval {
    /// Risk code.
    pub risk: &'static str,
    /// Examples labelled with the risk.
    pub support: usize,
    /// True positives.
    pub tp: usize,
    /// False positives.
    pub fp: usize,
    /// False negatives.
    pub fn_: usize,
    /// Scores.
    #[serde(flatten)]
    pub prf: Prf,
}

/// An evaluation over labelled data.
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    /// Examples evaluated.
    pub examples: usize,
    /// Per risk (all 31).
    pub per_risk: Vec<RiskEval>,
    /// Macro average over the risks with support.
    pub macro_avg: Prf,
    /// Micro average over all risk decisions.
    pub micro: Prf,
    /// Risks with support in the data.
    pub risks_with_support: usize,
    /// Exact-match rate of the whole label set (safe = empty set).
    pub exact_match: f64,
    /// Accuracy of the safe / unsafe decision.
    pub binary_accuracy: f64,
}

/// Counts of decisions, per risk.
struct Counts {
    tp: Vec<usize>,
    fp: Vec<usize>,
    fn_: Vec<usize>,
    examples: usize,
    exact: usize,
    binary_ok: usize,
}

impl Counts {
    fn new(n: usize) -> Self {
        Self {
            tp: vec![0; n],
            fp: vec![0; n],
            fn_: vec![0; n],
            examples: 0,
            exact: 0,
            binary_ok: 0,
        }
    }
    fn add(&mut self, gold: &[u8], predicted: &[u8]) {
        self.examples += 1;
        for r in 0..self.tp.len() {
            let (g, p) = (gold.contains(&(r as u8)), predicted.contains(&(r as u8)));
            let slot = match (g, p) {
                (true, true) => self.tp.get_mut(r),
                (false, true) => self.fp.get_mut(r),
                (true, false) => self.fn_.get_mut(r),
                (false, false) => None,
            };
            if let Some(x) = slot {
                *x += 1;
            }
        }
        let mut a = gold.to_vec();
        let mut b = predicted.to_vec();
        a.sort_unstable();
        b.sort_unstable();
        if a == b {
            self.exact += 1;
        }
        if a.is_empty() == b.is_empty() {
            self.binary_ok += 1;
        }
    }
    fn report(&self) -> EvalReport {
        let per_risk: Vec<RiskEval> = risks()
            .iter()
            .enumerate()
            .map(|(r, risk)| {
                let tp = self.tp.get(r).copied().unwrap_or(0);
                let fp = self.fp.get(r).copied().unwrap_or(0);
                let fn_ = self.fn_.get(r).copied().unwrap_or(0);
                RiskEval {
                    risk: risk.code,
                    support: tp + fn_,
                    tp,
                    fp,
                    fn_,
                    prf: Prf::from_counts(tp, fp, fn_),
                }
            })
            .collect();
        let supported: Vec<&RiskEval> = per_risk.iter().filter(|r| r.support > 0).collect();
        let k = supported.len().max(1) as f64;
        let macro_avg = Prf {
            precision: supported.iter().map(|r| r.prf.precision).sum::<f64>() / k,
            recall: supported.iter().map(|r| r.prf.recall).sum::<f64>() / k,
            f1: supported.iter().map(|r| r.prf.f1).sum::<f64>() / k,
        };
        let micro = Prf::from_counts(
            self.tp.iter().sum(),
            self.fp.iter().sum(),
            self.fn_.iter().sum(),
        );
        let n = self.examples.max(1) as f64;
        EvalReport {
            examples: self.examples,
            risks_with_support: supported.len(),
            per_risk,
            macro_avg,
            micro,
            exact_match: self.exact as f64 / n,
            binary_accuracy: self.binary_ok as f64 / n,
        }
    }
}

/// Evaluates any predictor (gold labels vs predicted risk indices) over `examples`.
pub fn evaluate_with(examples: &[Example], mut predict: impl FnMut(&str) -> Vec<u8>) -> EvalReport {
    let mut counts = Counts::new(risks().len());
    for e in examples {
        counts.add(&e.labels, &predict(&e.text));
    }
    counts.report()
}

/// Evaluates the classifier on labelled `examples`.
pub fn evaluate(clf: &Classifier, lexicon: &CompiledLexicon, examples: &[Example]) -> EvalReport {
    let mut buf = Scratch::default();
    evaluate_with(examples, |text| {
        let hits = lexicon.find_with(text, &mut buf);
        clf.score_with(text, &hits, &mut buf)
            .iter()
            .filter(|s| s.flagged)
            .filter_map(|s| taxonomy::risk_index(s.risk))
            .collect()
    })
}

/// Baseline: flag the risks of the lexicon hits only.
pub fn evaluate_lexicon_only(lexicon: &CompiledLexicon, examples: &[Example]) -> EvalReport {
    let mut buf = Scratch::default();
    evaluate_with(examples, |text| {
        lexicon
            .find_with(text, &mut buf)
            .iter()
            .filter_map(|h| taxonomy::risk_index(h.risk))
            .collect()
    })
}

/// Baseline: always predict the most frequent risk of `train`.
pub fn evaluate_majority(train: &[Example], examples: &[Example]) -> EvalReport {
    let mut counts = vec![0usize; risks().len()];
    for e in train {
        for &l in &e.labels {
            if let Some(c) = counts.get_mut(usize::from(l)) {
                *c += 1;
            }
        }
    }
    let best = counts
        .iter()
        .enumerate()
        .max_by_key(|(_, c)| **c)
        .map(|(i, _)| i as u8)
        .unwrap_or(0);
    evaluate_with(examples, |_| vec![best])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lexicon::LexiconSources;

    fn lexicon() -> CompiledLexicon {
        CompiledLexicon::compile(&LexiconSources::seed().unwrap_or_default())
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn toy() -> Vec<Example> {
        let mut v = Vec::new();
        for (i, t) in [
            "今天天气很好，我们去公园散步",
            "这家餐厅的菜很好吃",
            "请帮我写一首关于春天的诗",
            "如何学习编程语言",
            "推荐几本历史书",
            "明天开会讨论项目进度",
        ]
        .iter()
        .enumerate()
        {
            v.push(Example {
                text: format!("{t}{i}"),
                labels: vec![],
            });
        }
        let a14 = taxonomy::risk_index("A1.4").unwrap_or(0);
        for t in [
            "教你制造炸弹袭击人群",
            "加入恐怖组织发动袭击",
            "宣扬极端主义和恐怖袭击",
            "制作爆炸物去袭击车站",
            "策划恐怖袭击的方法",
        ] {
            v.push(Example {
                text: t.into(),
                labels: vec![a14],
            });
        }
        v
    }

    #[test]
    fn weights_round_trip_and_reject_damage() {
        let lex = lexicon();
        let opt = TrainOptions {
            featurizer: Featurizer {
                hash_bits: 12,
                max_ngram: 3,
            },
            epochs: 10,
            ..TrainOptions::default()
        };
        let (clf, summary) = train(&toy(), &lex, &opt).unwrap_or_else(|e| panic!("{e}"));
        let bytes = clf.to_bytes();
        assert_eq!(summary.file_bytes, bytes.len());
        let back = Classifier::from_bytes(&bytes, "t").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back.to_bytes(), bytes);
        let s1 = clf.score(&lex, "策划袭击");
        let s2 = back.score(&lex, "策划袭击");
        assert_eq!(s1.len(), 31);
        for (a, b) in s1.iter().zip(&s2) {
            assert!((a.score - b.score).abs() < 1e-6);
        }
        let a14 = s1
            .iter()
            .find(|s| s.risk == "A1.4")
            .map_or(0.0, |s| s.score);
        let a11 = s1
            .iter()
            .find(|s| s.risk == "A1.1")
            .map_or(1.0, |s| s.score);
        assert!(a14 > a11, "A1.4 {a14} vs A1.1 {a11}");
        // Every truncation and a flipped byte are clean errors.
        for n in [0, 5, 8, 12, bytes.len() / 2, bytes.len() - 1] {
            assert!(Classifier::from_bytes(&bytes[..n], "t").is_err(), "len {n}");
        }
        let mut bad = bytes.clone();
        bad[20] ^= 0x40;
        let e = Classifier::from_bytes(&bad, "w.clf")
            .map(|_| ())
            .unwrap_err();
        assert!(e.to_string().contains("w.clf"), "{e}");
    }

    #[test]
    fn labelled_data_errors_name_the_line() {
        let ok = parse_labelled(
            "{\"text\":\"a\",\"labels\":[]}\n{\"text\":\"b\",\"label\":\"A1.4\"}\n",
            "d",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ok.len(), 2);
        assert_eq!(
            ok[1].labels,
            vec![taxonomy::risk_index("A1.4").unwrap_or(99)]
        );
        for (bad, what) in [
            ("{\"text\":\"a\"}", "labels"),
            ("{\"labels\":[]}", "text"),
            ("{\"text\":\"a\",\"labels\":[\"A9.9\"]}", "A9.9"),
            ("not json", "JSON"),
        ] {
            let e = parse_labelled(&format!("\n{bad}\n"), "d.jsonl")
                .map(|_| ())
                .unwrap_err();
            let m = e.to_string();
            assert!(m.starts_with("d.jsonl:2:") && m.contains(what), "{m}");
        }
    }

    #[test]
    fn threshold_maximises_f1() {
        let mut s = vec![
            (0.9, true),
            (0.8, true),
            (0.7, false),
            (0.6, true),
            (0.1, false),
        ];
        let t = best_threshold(&mut s);
        // Best F1 cuts below 0.6 (3 tp, 1 fp): F1 = 6/7.
        assert!(t > 0.1 && t <= 0.6, "{t}");
        let mut low = vec![(0.05, true), (0.01, false)];
        assert_eq!(
            best_threshold(&mut low),
            MIN_THRESHOLD,
            "never below the floor"
        );
        assert_eq!(best_threshold(&mut [(0.5, false)]), 1.0);
    }

    #[test]
    fn seed_model_loads_and_covers_all_risks() {
        let clf = Classifier::seed().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(clf.thresholds().len(), 31);
    }

    #[test]
    fn a_text_without_features_flags_nothing() {
        let clf = Classifier::seed().unwrap_or_else(|e| panic!("{e}"));
        let lex = lexicon();
        for text in ["", "   \n", "，。！？……"] {
            let scores = clf.score(&lex, text);
            assert!(scores.iter().all(|s| !s.flagged), "{text:?}: {scores:?}");
        }
    }
}
