#!/usr/bin/env bash
# Generates a small varied image corpus for `aigc-mark robustness --modality image DIR` (no image
# is committed): photo-like cloud textures (ImageMagick plasma:fractal) at 384² to 2048 px in
# JPEG, PNG and WebP, noise textures, flat graphics with shapes and text, and, when present on
# the machine, the photographs and screenshots shipped in the Rust toolchain's HTML docs.
# Usage: bash benches/make-image-corpus.sh OUT_DIR
set -euo pipefail
out="${1:?usage: make-image-corpus.sh OUT_DIR}"
mkdir -p "$out"
command -v convert >/dev/null || { echo "ImageMagick is missing: bash .ci/install-deps" >&2; exit 2; }
font="$(dirname "$0")/../assets/fonts/NotoSansSC-Bold-subset.otf"
i=0
for spec in 384x384:jpg 512x512:png 640x480:jpg 800x600:webp 1024x768:jpg 1280x720:png \
            1920x1080:jpg 1080x1350:jpg 1600x1200:png 2048x1365:jpg; do
  size=${spec%%:*} ext=${spec##*:}; i=$((i + 1))
  convert -seed "$i" -size "$size" plasma:fractal -depth 8 -quality 90 "$out/plasma-$i-$size.$ext"
done
convert -seed 21 -size 800x800 xc:gray +noise Random -blur 0x2 -quality 92 "$out/noise-blur-800.jpg"
convert -seed 22 -size 1200x800 xc:gray50 +noise Gaussian -blur 0x1 -depth 8 "$out/noise-fine-1200x800.png"
convert -size 1024x768 gradient:navy-orange -fill white -draw "circle 300,300 300,450" \
  -fill '#2a7' -draw "rectangle 600,100 950,500" -font "$font" -pointsize 60 -fill black \
  -annotate +80+700 "Graphics sample 示例" "$out/graphics-gradient-1024x768.png"
convert -size 640x640 xc:white -fill '#c33' -draw "polygon 320,40 600,600 40,600" \
  -font "$font" -pointsize 40 -fill black -annotate +150+340 "flat logo" "$out/graphics-flat-640.png"
docs=$(rustc --print sysroot 2>/dev/null)/share/doc/rust/html
for f in embedded-book/assets/f3.jpg embedded-book/assets/verify.jpeg book/2018-edition/img/trpl14-02.png \
         cargo/images/auth-level-acl.png cargo/images/build-unit-time.png \
         embedded-book/assets/nrf52-memory-map.png rustc/images/image1.png rustc/images/llvm-cov-show-01.png; do
  [ -f "$docs/$f" ] && cp "$docs/$f" "$out/doc-$(basename "$f")"
done
ls "$out" | wc -l
