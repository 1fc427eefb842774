//! Damaged images never panic the visible-label path: truncations and byte corruptions of every
//! sample image either label cleanly (and the output decodes) or fail with an error.

use aigc_core::sniff;
use aigc_explicit::LabelSpec;
use aigc_explicit::image_file::{label_image, supports};

fn samples() -> Vec<std::path::PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../samples/media");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("samples/media")
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            std::fs::read(p)
                .ok()
                .and_then(|b| sniff(&b))
                .is_some_and(supports)
        })
        .collect();
    files.sort();
    files
}

#[test]
fn mutated_sample_images_never_panic() {
    let spec = LabelSpec::default_label();
    let files = samples();
    assert!(files.len() >= 6, "{files:?}");
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    let (mut ok, mut err) = (0, 0);
    for path in files {
        let original = std::fs::read(&path).expect("read");
        let Some(format) = sniff(&original) else {
            continue;
        };
        let n = original.len();
        let mut cases: Vec<Vec<u8>> = (0..24).map(|i| original[..n * i / 24].to_vec()).collect();
        for _ in 0..40 {
            let mut m = original.clone();
            for _ in 0..1 + next() % 6 {
                let at = (next() as usize) % n.min(2048);
                m[at] = next() as u8;
            }
            cases.push(m);
        }
        for m in cases {
            match label_image(&m, format, &spec) {
                Ok(out) => {
                    ok += 1;
                    assert_eq!(sniff(&out.bytes), Some(format), "{}", path.display());
                }
                Err(e) => {
                    err += 1;
                    assert!(!e.to_string().is_empty());
                }
            }
        }
    }
    assert!(ok > 0 && err > 0, "ok {ok}, err {err}");
}
