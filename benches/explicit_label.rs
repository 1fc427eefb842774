//! Visible-label speed: the per-frame overlay (what video will pay per frame) and whole-file
//! `aigc-mark label` with the drawn label against `--metadata-only` on JPEG/PNG of growing size.
//! Run with `cargo bench --bench explicit_label` (needs ffmpeg to make the fixtures). Prints
//! median wall times; no thresholds (the report states the figures).

use aigc_explicit::{LabelLayout, LabelSpec, PixelLayout};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const CODE: &str = "001191440300708461136T1XGW3";
const RUNS: usize = 5;

fn median(mut f: impl FnMut()) -> Duration {
    f();
    let mut times: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    times[RUNS / 2]
}

fn run(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn fixture(dir: &Path, w: u32, h: u32, ext: &str) -> PathBuf {
    let path = dir.join(format!("src-{w}x{h}.{ext}"));
    if !path.exists() {
        run(Command::new("ffmpeg").args([
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            &format!("testsrc2=size={w}x{h}"),
            "-frames:v",
            "1",
            "-q:v",
            "3",
            &path.display().to_string(),
        ]));
    }
    path
}

fn main() {
    let dir = std::env::temp_dir().join("aigc-mark-bench-explicit");
    std::fs::create_dir_all(&dir).expect("bench dir");
    let spec = LabelSpec::default_label();

    println!("per-frame overlay (plan once, draw per frame), RGB:");
    for (w, h) in [(1280u32, 720u32), (1920, 1080), (3840, 2160)] {
        let mut frame: Vec<u8> = (0..w * h * 3).map(|i| (i % 251) as u8).collect();
        let stride = w as usize * 3;
        let layout = {
            let view = aigc_explicit::FrameMut::new(&mut frame, w, h, stride, PixelLayout::Rgb)
                .expect("frame");
            LabelLayout::plan(&spec, &view).expect("plan")
        };
        let plan = median(|| {
            let view = aigc_explicit::FrameMut::new(&mut frame, w, h, stride, PixelLayout::Rgb)
                .expect("frame");
            LabelLayout::plan(&spec, &view).expect("plan");
        });
        let draw = median(|| {
            let mut view = aigc_explicit::FrameMut::new(&mut frame, w, h, stride, PixelLayout::Rgb)
                .expect("frame");
            layout.draw(&mut view).expect("draw");
        });
        println!("  {w}x{h}: plan {plan:?}, draw {draw:?}");
    }

    println!("aigc-mark label (median of {RUNS}), explicit+metadata vs --metadata-only:");
    let bin = env!("CARGO_BIN_EXE_aigc-mark");
    for (w, h, ext) in [
        (1920, 1080, "jpg"),
        (4000, 3000, "jpg"),
        (8000, 6000, "jpg"),
        (1920, 1080, "png"),
    ] {
        let src = fixture(&dir, w, h, ext);
        let out = dir.join(format!("out.{ext}"));
        let label = |extra: &[&str]| {
            let mut args = vec![
                "label".to_string(),
                src.display().to_string(),
                "-o".into(),
                out.display().to_string(),
                "--producer".into(),
                CODE.into(),
                "--no-ledger".into(),
                "-q".into(),
            ];
            args.extend(extra.iter().map(|s| s.to_string()));
            run(Command::new(bin).args(&args).env("AIGC_MARK_HOME", &dir));
        };
        let explicit = median(|| label(&[]));
        let meta = median(|| label(&["--metadata-only"]));
        let size = std::fs::metadata(&src).map(|m| m.len()).unwrap_or(0);
        label(&[]);
        let out_size = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
        println!(
            "  {ext} {w}x{h} ({} KB -> {} KB): explicit {explicit:?}, metadata-only {meta:?}",
            size / 1024,
            out_size / 1024
        );
    }
}
