//! Metadata-only labelling speed on large files, against the baselines issue #2 names:
//! a plain copy, exiftool writing the same XMP, and `ffmpeg -c copy -movflags use_metadata_tags`.
//! Run with `cargo bench --bench metadata_label` (needs ffmpeg and exiftool). Prints a table of
//! median wall times over several runs and the ratios against the targets (≤ 2× a copy, ≥ 10×
//! faster than each tool).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const CODE: &str = "001191440300708461136T1XGW3";
const RUNS: usize = 7;

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

fn median(mut f: impl FnMut()) -> Duration {
    f(); // warm the page cache and the binaries
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

fn make_fixtures(dir: &Path) -> (PathBuf, PathBuf) {
    let mp4 = dir.join("big.mp4");
    if !mp4.exists() {
        // ~24 MB: 12 s of 1280x720 testsrc2 at 16 Mb/s, moov first so every chunk offset must move.
        run(Command::new("ffmpeg")
            .args([
                "-v",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=1280x720:rate=30",
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=440:sample_rate=48000",
                "-t",
                "12",
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-b:v",
                "16M",
                "-c:a",
                "aac",
                "-movflags",
                "+faststart",
            ])
            .arg(&mp4));
    }
    let jpg = dir.join("big.jpg");
    if !jpg.exists() {
        // ~12 MB: a 6000x4000 noisy gradient at high quality.
        run(Command::new("ffmpeg")
            .args([
                "-v",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
                "nullsrc=size=6000x4000,geq=lum='X/24+random(1)*60':cb=128+Y/40:cr=128",
                "-frames:v",
                "1",
                "-q:v",
                "1",
            ])
            .arg(&jpg));
    }
    (mp4, jpg)
}

fn main() {
    let bin = env!("CARGO_BIN_EXE_aigc-mark");
    let dir = std::env::temp_dir().join("aigc-mark-bench");
    std::fs::create_dir_all(&dir).expect("bench dir");
    let (mp4, jpg) = make_fixtures(&dir);
    let cfg = dir.join("tc260.config");
    std::fs::write(
        &cfg,
        "%Image::ExifTool::UserDefined = ('Image::ExifTool::XMP::Main' => { TC260 => { SubDirectory => \
         { TagTable => 'Image::ExifTool::UserDefined::TC260' } } });\n\
         %Image::ExifTool::UserDefined::TC260 = (GROUPS => { 0 => 'XMP', 1 => 'XMP-TC260', 2 => 'Image' }, \
         NAMESPACE => { 'TC260' => 'http://www.tc260.org.cn/ns/AIGC/1.0/' }, WRITABLE => 'string', AIGC => { });\n1;\n",
    )
    .expect("config");
    let value = format!(
        r#"{{"Label":"1","ContentProducer":"{CODE}","ProduceID":"bench","ReservedCode1":"","ContentPropagator":"{CODE}","PropagateID":"bench","ReservedCode2":""}}"#
    );
    let home = dir.join("home");
    println!(
        "| file | size | copy | aigc-mark --no-ledger | aigc-mark (ledger) | exiftool | ffmpeg -c copy | ours/copy | exiftool/ours | ffmpeg/ours |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for input in [&mp4, &jpg] {
        let size = std::fs::metadata(input)
            .map(|m| m.len())
            .unwrap_or_default();
        let out = dir.join(format!(
            "out.{}",
            input.extension().and_then(|e| e.to_str()).unwrap_or("bin")
        ));
        let copy = median(|| {
            std::fs::copy(input, &out).expect("copy");
        });
        let ours_fast = median(|| {
            let _ = std::fs::remove_file(&out);
            run(Command::new(bin)
                .env("AIGC_MARK_HOME", &home)
                .args([
                    "label",
                    "--metadata-only",
                    "--no-ledger",
                    "-q",
                    "--producer",
                    CODE,
                    "--produce-id",
                    "bench",
                    "-o",
                ])
                .arg(&out)
                .arg(input));
        });
        let ours = median(|| {
            let _ = std::fs::remove_file(&out);
            run(Command::new(bin)
                .env("AIGC_MARK_HOME", &home)
                .args([
                    "label",
                    "--metadata-only",
                    "-q",
                    "--producer",
                    CODE,
                    "--produce-id",
                    "bench",
                    "-o",
                ])
                .arg(&out)
                .arg(input));
        });
        let exiftool = median(|| {
            let _ = std::fs::remove_file(&out);
            run(Command::new("exiftool")
                .arg("-config")
                .arg(&cfg)
                .args(["-q", &format!("-XMP-TC260:AIGC={value}"), "-o"])
                .arg(&out)
                .arg(input));
        });
        let ffmpeg = if input == &mp4 {
            Some(median(|| {
                run(Command::new("ffmpeg")
                    .args(["-v", "error", "-y", "-i"])
                    .arg(input)
                    .args([
                        "-map",
                        "0",
                        "-c",
                        "copy",
                        "-metadata",
                        &format!("AIGC={value}"),
                        "-movflags",
                        "use_metadata_tags",
                    ])
                    .arg(&out));
            }))
        } else {
            None
        };
        let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1e3);
        let ratio = |a: Duration, b: Duration| format!("{:.2}", a.as_secs_f64() / b.as_secs_f64());
        println!(
            "| {} | {:.1} MB | {} | {} | {} | {} | {} | {} | {} | {} |",
            input.file_name().and_then(|n| n.to_str()).unwrap_or("?"),
            size as f64 / 1e6,
            ms(copy),
            ms(ours_fast),
            ms(ours),
            ms(exiftool),
            ffmpeg.map(ms).unwrap_or_else(|| "-".into()),
            ratio(ours_fast, copy),
            ratio(exiftool, ours_fast),
            ffmpeg
                .map(|f| ratio(f, ours_fast))
                .unwrap_or_else(|| "-".into()),
        );
    }
}
