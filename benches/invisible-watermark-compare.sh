#!/usr/bin/env bash
# Side-by-side robustness of our image mark and the open `invisible-watermark` package (PyPI,
# methods dwtDct and dwtDctSvd) under the same ImageMagick attacks as
# `aigc-mark robustness --modality image` (crates/aigc-pipeline/src/robustness.rs, image_attacks).
# Not run in CI: it pulls numpy, PyWavelets and OpenCV from PyPI into a private venv.
#
# Usage: bash benches/invisible-watermark-compare.sh CORPUS_DIR [WORK_DIR]
#   CORPUS_DIR  images (PNG/JPEG/WebP), e.g. from benches/make-image-corpus.sh
#   WORK_DIR    scratch space and venv (default: /tmp/iwm-compare)
# Environment: AIGC_MARK = our binary (default: target/release/aigc-mark, or
#   $CARGO_TARGET_DIR/release/aigc-mark); OURS_JSON = an existing `robustness --json` report of
#   the same PNG corpus (skips our run), or "skip" for the peers' columns alone; LIMIT = use only
#   the first N images.
#
# Every image is first converted to PNG so both sides start from the same lossless pixels. Each
# peer carries 64 bits (8 random bytes per image, as many data bits as our payload); a pass is
# all 64 bits back. invisible-watermark has no presence test or check code, so its "pass" is
# the best case: a decoder that must also say whether a mark is there would do worse.
set -euo pipefail
corpus="${1:?usage: invisible-watermark-compare.sh CORPUS_DIR [WORK_DIR]}"
work="${2:-/tmp/iwm-compare}"
here="$(cd "$(dirname "$0")/.." && pwd)"
mkdir -p "$work/png"
command -v convert >/dev/null || { echo "ImageMagick is missing: bash .ci/install-deps" >&2; exit 2; }

venv="$work/venv"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  # --no-deps: the package declares torch and onnxruntime for its rivaGan method, which the
  # two classical methods measured here do not use.
  "$venv/bin/pip" install -q --no-deps invisible-watermark
  "$venv/bin/pip" install -q numpy PyWavelets opencv-python-headless Pillow
fi

n=0
for f in "$corpus"/*; do
  case "${f,,}" in *.png|*.jpg|*.jpeg|*.webp) ;; *) continue ;; esac
  n=$((n + 1))
  [ -n "${LIMIT:-}" ] && [ "$n" -gt "$LIMIT" ] && break
  out="$work/png/$(printf '%03d' "$n")-$(basename "${f%.*}").png"
  [ -f "$out" ] || convert "$f" -auto-orient -depth 8 "$out"
done

ours="${OURS_JSON:-}"
if [ "$ours" = skip ]; then
  ours="$work/no-ours.json"
  echo '{}' > "$ours"
elif [ -z "$ours" ]; then
  bin="${AIGC_MARK:-${CARGO_TARGET_DIR:-$here/target}/release/aigc-mark}"
  [ -x "$bin" ] || { echo "build it first: cargo build --release (or set AIGC_MARK)" >&2; exit 2; }
  ours="$work/ours.json"
  "$bin" robustness --modality image "$work/png" --json > "$ours"
fi

font="$here/assets/fonts/NotoSansSC-Bold-subset.otf"
exec "$venv/bin/python" - "$work" "$ours" "$font" <<'PY'
import json, os, subprocess, sys, time, types, glob
# imwatermark imports torch at module level for rivaGan only; dwtDct/dwtDctSvd never touch it.
sys.modules.setdefault("torch", types.ModuleType("torch"))
import cv2
import numpy as np
from imwatermark import WatermarkDecoder, WatermarkEncoder

work, ours_path, font = sys.argv[1], sys.argv[2], sys.argv[3]
pngs = sorted(glob.glob(os.path.join(work, "png", "*.png")))
scratch = os.path.join(work, "scratch")
os.makedirs(scratch, exist_ok=True)

def jpeg(q, s):
    return ["-quality", str(q), "-sampling-factor", s]

def crop(side):
    return ["-gravity", "center", "-crop", f"{side}%x{side}%+0+0", "+repage"]

def rotate(deg, keep):
    return ["-virtual-pixel", "black", "-distort", "SRT", str(deg)] + crop(keep)

# Same names, order and ImageMagick arguments as image_attacks() in robustness.rs.
# Each entry: name, target, [(args(w, h), ext), ...] applied in sequence.
A = []
A.append(("none", "100 %", []))
for q, t in [(90, "≥ 99 %"), (75, "≥ 99 %"), (50, "≥ 97 %"), (30, "≥ 85 %")]:
    A.append((f"JPEG q{q} (4:2:0)", t, [(lambda w, h, q=q: jpeg(q, "2x2,1x1,1x1"), "jpg")]))
A.append(("JPEG q75 4:4:4", "≥ 99 %", [(lambda w, h: jpeg(75, "1x1,1x1,1x1"), "jpg")]))
A.append(("double JPEG 85 → 70", "≥ 99 %", [(lambda w, h: jpeg(85, "2x2,1x1,1x1"), "jpg"),
                                           (lambda w, h: jpeg(70, "2x2,1x1,1x1"), "jpg")]))
A.append(("WebP q75", "≥ 99 %", [(lambda w, h: ["-quality", "75"], "webp")]))
for p, t in [(75, "≥ 97 %"), (50, "≥ 97 %"), (33, "≥ 80 %"), (150, "≥ 97 %"), (200, "≥ 97 %")]:
    name = f"upscale {p} %" if p > 100 else f"resize {p} %"
    A.append((name, t, [(lambda w, h, p=p: ["-resize", f"{p}%"], "png")]))
A.append(("social: ≤ 1080 px + JPEG 85", "≥ 97 %",
          [(lambda w, h: ["-resize", "1080x1080>", "-quality", "85"], "jpg")]))
A.append(("centre crop 81 % area", "≥ 95 %", [(lambda w, h: crop(90.0), "png")]))
A.append(("centre crop 50 % area", "≥ 95 %", [(lambda w, h: crop(70.71), "png")]))
def odd_crop(w, h):
    cw, ch = w * 4 // 5, h * 4 // 5
    return ["-crop", f"{cw}x{ch}+{min(37, w - cw)}+{min(53, h - ch)}", "+repage"]
A.append(("crop 64 % area at odd offset (37, 53)", "≥ 95 %", [(odd_crop, "png")]))
A.append(("centre crop 64 % area + resize back", "≥ 95 %",
          [(lambda w, h: crop(80.0) + ["-resize", f"{w}x{h}!"], "png")]))
for d, keep, t in [(2.0, 92.0, "≥ 95 %"), (-2.0, 92.0, "≥ 95 %"), (5.0, 82.0, "≥ 85 %"), (-5.0, 82.0, "≥ 85 %")]:
    A.append((f"rotate {d:+g}° (borders cropped)", t,
              [(lambda w, h, d=d, keep=keep: rotate(d, keep), "png")]))
for name, t, ops in [
    ("brightness +20", "≥ 97 %", ["-evaluate", "Add", "7.843%"]),
    ("contrast +30", "≥ 97 %", ["-brightness-contrast", "0x30"]),
    ("gamma 1.4", "≥ 97 %", ["-gamma", "1.4"]),
    ("saturation ×1.5", "≥ 97 %", ["-modulate", "100,150,100"]),
    ("grayscale", "≥ 97 %", ["-colorspace", "Gray"]),
    ("gaussian blur σ=1", "≥ 95 %", ["-gaussian-blur", "0x1"]),
    ("sharpen", "≥ 95 %", ["-sharpen", "0x1"]),
    ("median 3×3", "≥ 95 %", ["-statistic", "Median", "3x3"]),
    ("gaussian noise", "≥ 95 %", ["-attenuate", "0.5", "+noise", "Gaussian"]),
    ("10 % border", "≥ 95 %", ["-bordercolor", "white", "-border", "10%"]),
]:
    A.append((name, t, [(lambda w, h, ops=ops: ops, "png")]))
A.append(("text overlay", "≥ 95 %", [(lambda w, h: [
    "-font", font, "-pointsize", str(max(min(w, h) // 8, 12)), "-fill", "white", "-stroke", "black",
    "-gravity", "center", "-annotate", "+0+0", "AI生成 sample caption\nsecond line of text"], "png")]))
A.append(("downscale 50 % + JPEG q50", "≥ 90 % (stretch 97 %)",
          [(lambda w, h: ["-resize", "50%"] + jpeg(50, "2x2,1x1,1x1"), "jpg")]))
A.append(("crop 71 % side + brightness + JPEG 60", "≥ 80 %",
          [(lambda w, h: crop(71.0) + ["-evaluate", "Add", "5%"] + jpeg(60, "2x2,1x1,1x1"), "jpg")]))

def attack(src, w, h, steps):
    cur = src
    for i, (args, ext) in enumerate(steps):
        out = os.path.join(scratch, f"step{i}.{ext}")
        subprocess.run(["convert", cur] + args(w, h) + ["-depth", "8", out], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cur = out
    return cur

def luma(img):
    b, g, r = [img[..., i].astype(np.float64) for i in range(3)]
    return 0.299 * r + 0.587 * g + 0.114 * b

methods = ["dwtDct", "dwtDctSvd"]
passed = {m: [0] * len(A) for m in methods}
ber = {m: [0.0] * len(A) for m in methods}
tried = {m: [0] * len(A) for m in methods}
psnr = {m: [] for m in methods}
embed_ms = {m: [] for m in methods}
detect_ms = {m: [] for m in methods}
with open(ours_path) as f:
    ours = json.load(f)
rows = {r["attack"]: r for r in ours.get("attacks", [])}
def cell(p, t):
    return f"{p}/{t} ({100 * p / t:.0f} %)" if t else "–"
def report(images, out):
    def say(*a):
        print(*a, file=out)
    say(f"Images: {images} (PNG copies of the corpus); pass = all 64 data bits back.\n")
    say("| attack | target | ours (aigc-mark) | dwtDct | dwtDctSvd | raw BER dwtDct / dwtDctSvd |")
    say("|---|---|---|---|---|---|")
    for k, (name, target, _) in enumerate(A):
        r = rows.get(name)
        o = cell(r["passed"], r["tried"]) if r else "–"
        b = " / ".join(f"{ber[m][k] / tried[m][k]:.3f}" if tried[m][k] else "–" for m in methods)
        say(f"| {name} | {target} | {o} | {cell(passed['dwtDct'][k], tried['dwtDct'][k])} | "
              f"{cell(passed['dwtDctSvd'][k], tried['dwtDctSvd'][k])} | {b} |")
    def med(v):
        return f"{sorted(v)[len(v) // 2]:.1f}" if v else "–"
    ours_psnr = [f["quality_db"] for f in ours.get("files", []) if f.get("quality_db")]
    ours_embed = [f["embed_ms"] for f in ours.get("files", []) if f.get("quality_db")]
    say()
    say("| | ours | dwtDct | dwtDctSvd |")
    say("|---|---|---|---|")
    say(f"| median PSNR(Y) dB | {med(ours_psnr)} | {med(psnr['dwtDct'])} | {med(psnr['dwtDctSvd'])} |")
    say(f"| median embed ms (ours: decode+encode included) | {med(ours_embed)} | {med(embed_ms['dwtDct'])} | {med(embed_ms['dwtDctSvd'])} |")
    say(f"| median detect ms | – | {med(detect_ms['dwtDct'])} | {med(detect_ms['dwtDctSvd'])} |")
    say(f"| false positives on unmarked | {ours.get('unmarked_false')}/{ours.get('unmarked_runs')} | no presence test | no presence test |")


# Marked images done so far: WORK/table.md holds the table after each one (a partial
# result if the run is stopped).
done = 0
rng = np.random.default_rng(2026)
for path in pngs:
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        continue
    h, w = img.shape[:2]
    bits = rng.integers(0, 2, 64)
    payload = bytes(np.packbits(bits))
    for m in methods:
        enc = WatermarkEncoder()
        enc.set_watermark("bytes", payload)
        t = time.perf_counter()
        try:
            marked = enc.encode(img, m)
        except Exception as e:  # tiny or odd sizes
            print(f"{os.path.basename(path)} {m}: embed failed: {e}", file=sys.stderr)
            continue
        embed_ms[m].append((time.perf_counter() - t) * 1e3)
        mse = np.mean((luma(marked) - luma(img)) ** 2)
        psnr[m].append(10 * np.log10(255.0 ** 2 / max(mse, 1e-12)))
        mpath = os.path.join(scratch, f"marked-{m}.png")
        cv2.imwrite(mpath, marked)
        for k, (name, _, steps) in enumerate(A):
            out = attack(mpath, w, h, steps)
            got = cv2.imread(out, cv2.IMREAD_COLOR)
            tried[m][k] += 1
            if got is None:
                continue
            t = time.perf_counter()
            try:
                dec = WatermarkDecoder("bytes", 64).decode(got, m)
                gbits = np.unpackbits(np.frombuffer(dec, dtype=np.uint8))[:64]
                errors = int(np.sum(gbits != bits))
            except Exception:
                errors = 64
            detect_ms[m].append((time.perf_counter() - t) * 1e3)
            ber[m][k] += errors / 64
            passed[m][k] += errors == 0
    print(f"{os.path.basename(path)} {w}×{h} done", file=sys.stderr)
    done += 1
    with open(os.path.join(work, "table.md"), "w") as partial:
        report(done, partial)

report(done, sys.stdout)
PY
