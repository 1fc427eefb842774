#!/usr/bin/env bash
# Generates the audio watermark robustness corpus (no audio is committed): 34 stereo 44.1 kHz
# 16-bit WAV clips of 30 s. Needs sox; espeak-ng adds speech in six languages (skipped with a
# note when missing). Usage: bash benches/make-audio-corpus.sh OUT_DIR
set -euo pipefail
out="${1:?usage: make-audio-corpus.sh OUT_DIR}"
mkdir -p "$out"
command -v sox >/dev/null || { echo "sox is missing: bash .ci/install-deps" >&2; exit 2; }
D=30
synth() { sox -q -n -r 44100 -b 16 -c 2 "$out/$1.wav" synth $D "${@:2}" norm -3; }
# Tones and chords (tonal material: the hardest for magnitude marking).
synth tone-440 sine 440
synth tone-1k sine 1000
synth tone-3k sine 3000 gain -6
synth chord-cmaj sine 261.63 sine 329.63 sine 392 remix -
synth chord-am sine 220 sine 261.63 sine 329.63 remix -
synth sweep-100-8k sine 100-8000
synth square-220 square 220 gain -12
synth saw-110 sawtooth 110 gain -12
# Noise-heavy material.
synth noise-white whitenoise gain -12
synth noise-pink pinknoise gain -6
synth noise-brown brownnoise
synth noise-tpdf tpdfnoise gain -20
synth pluck-a pluck A3 tremolo 3 60
# Music-like synth: notes with envelopes over pads (sox fade per note, concatenated).
music() { # name seed
  local name=$1 seed=$2 tmp; tmp=$(mktemp -d)
  local notes=(C3 D3 E3 G3 A3 C4 D4 E4 G4 A4)
  local i=0 files=()
  RANDOM=$seed
  while (( i < D * 4 )); do
    local n=${notes[$((RANDOM % 10))]} m=${notes[$((RANDOM % 10))]}
    sox -q -n -r 44100 -b 16 -c 2 "$tmp/$i.wav" synth 0.25 pluck "$n" pluck "$m" fade 0 0.25 0.2
    files+=("$tmp/$i.wav"); i=$((i + 1))
  done
  sox -q "${files[@]}" "$tmp/notes.wav"
  sox -q -n -r 44100 -b 16 -c 2 "$tmp/pad.wav" synth $D sine C2 sine G2 gain -14
  sox -q -n -r 44100 -b 16 -c 2 "$tmp/noise.wav" synth $D pinknoise gain -36
  sox -q -m "$tmp/notes.wav" "$tmp/pad.wav" "$tmp/noise.wav" "$out/$name.wav" trim 0 $D norm -1
  rm -rf "$tmp"
}
for s in 1 2 3 4 5 6 7 8 9 10 11; do music "music-$s" "$s"; done
# Music with silence gaps (silence-heavy material).
sox -q "$out/music-1.wav" "$out/music-gaps.wav" trim 0 5 pad 0 3 repeat 3 trim 0 $D
# Speech (espeak-ng), padded/looped to 30 s, several languages.
if command -v espeak-ng >/dev/null; then
  speak() { # name voice text
    local tmp; tmp=$(mktemp -d)
    espeak-ng -v "$2" -s 150 -w "$tmp/s.wav" "$3"
    sox -q "$tmp/s.wav" -r 44100 -c 2 -b 16 "$tmp/s2.wav" pad 0 0.4 repeat 12
    sox -q "$tmp/s2.wav" "$out/$1.wav" trim 0 $D norm -3
    rm -rf "$tmp"
  }
  speak speech-en en "Artificial intelligence generated content must carry an implicit label. The watermark is invisible and survives compression, resampling and clipping."
  speak speech-de de "Künstlich erzeugte Inhalte müssen gekennzeichnet werden. Das Wasserzeichen ist unhörbar und übersteht Kompression."
  speak speech-fr fr "Les contenus générés par intelligence artificielle doivent porter une marque invisible qui résiste à la compression."
  speak speech-es es "El contenido generado por inteligencia artificial debe llevar una marca invisible que resista la compresión."
  speak speech-zh cmn "人工智能生成合成内容应当添加隐式标识，水印在压缩和重采样之后仍然可以检测。"
  speak speech-ru ru "Контент, созданный искусственным интеллектом, должен содержать невидимую метку."
  speak speech-ja ja "人工知能で生成されたコンテンツには見えない透かしを入れる必要があります。"
  speak speech-ar ar "يجب أن يحمل المحتوى الذي يولده الذكاء الاصطناعي علامة مائية غير مرئية."
  # Speech over music (podcast-like).
  sox -q -m -v 1 "$out/speech-en.wav" -v 0.3 "$out/music-2.wav" "$out/speech-music.wav" norm -3
else
  echo "espeak-ng is missing: speech clips skipped (bash .ci/install-deps installs it)" >&2
fi
ls "$out" | wc -l
