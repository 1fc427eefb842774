#!/usr/bin/env bash
# Writes one fuzz target per format that has a carrier (re-run after adding a carrier).
set -euo pipefail
cd "$(dirname "$0")"
formats=(Jpeg Png WebP Gif Tiff Mp4 Mkv Avi Flv Wav Mp3 Flac OggVorbis Pdf Docx Markdown)
rm -f fuzz_targets/*.rs
{
  echo '[package]'
  echo 'name = "aigc-meta-fuzz"'
  echo 'version = "0.0.0"'
  echo 'publish = false'
  echo 'edition = "2024"'
  echo 'license = "Apache-2.0 OR MIT"'
  echo
  echo '[package.metadata]'
  echo 'cargo-fuzz = true'
  echo
  echo '[dependencies]'
  echo 'libfuzzer-sys = "0.4"'
  echo 'aigc-core = { path = "../../aigc-core" }'
  echo 'aigc-meta = { path = ".." }'
  echo
  echo '[workspace]'
} > Cargo.toml
for f in "${formats[@]}"; do
  name="carrier_$(echo "$f" | tr 'A-Z' 'a-z')"
  cat > "fuzz_targets/$name.rs" <<RS
#![no_main]
//! Fuzzes the ${f} carrier: read, write, read back.
#[path = "../common.rs"]
mod common;
libfuzzer_sys::fuzz_target!(|data: &[u8]| common::exercise(aigc_core::Format::${f}, data));
RS
  printf '\n[[bin]]\nname = "%s"\npath = "fuzz_targets/%s.rs"\ntest = false\ndoc = false\nbench = false\n' "$name" "$name" >> Cargo.toml
done
