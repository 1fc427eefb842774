#!/usr/bin/env bash
# Audible label robustness: labels every clip of a corpus with the Morse rhythm (and the spoken
# prompt), re-encodes the labelled and the unlabelled clip, and counts how often `aigc-mark
# inspect` finds the rhythm where it was inserted (and finds one where none was inserted).
# Positions and tones vary by clip (start / middle / end; 1000 / 700 / 1500 Hz).
# Needs ffmpeg, sox, jq and a corpus: bash benches/make-audio-corpus.sh DIR
# Usage: bash benches/explicit-audio-robustness.sh CORPUS_DIR [AIGC_MARK_BINARY]
# ATTACKS="mp3 64k;aac 64k" limits the re-encodings (default: all five below).
set -euo pipefail
corpus="${1:?usage: explicit-audio-robustness.sh CORPUS_DIR [BINARY]}"
bin="${2:-${CARGO_TARGET_DIR:-target}/release/aigc-mark}"
for t in ffmpeg sox jq; do command -v $t >/dev/null || { echo "$t is missing" >&2; exit 2; }; done
[ -x "$bin" ] || { echo "no binary at $bin (cargo build --release)" >&2; exit 2; }
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
export AIGC_MARK_HOME="$work/home"
code=001191440300708461136T1XGW3
positions=(start middle end); tones=(1000 700 1500); langs=(zh en zh)
IFS=';' read -r -a attacks <<< "${ATTACKS:-none;mp3 64k;mp3 32k;aac 64k;opus 32k}"

# attack NAME IN OUT_BASE -> prints the attacked file's path
attack() {
  local in=$2 base=$3
  case "$1" in
    "none") echo "$in" ;;
    "mp3 64k") ffmpeg -v error -y -i "$in" -b:a 64k "$base.mp3"; echo "$base.mp3" ;;
    "mp3 32k") ffmpeg -v error -y -i "$in" -b:a 32k "$base.mp3"; echo "$base.mp3" ;;
    "aac 64k") ffmpeg -v error -y -i "$in" -c:a aac -b:a 64k "$base.m4a"; echo "$base.m4a" ;;
    # aigc-mark does not decode Opus yet: decode back to WAV with ffmpeg.
    "opus 32k") ffmpeg -v error -y -i "$in" -c:a libopus -b:a 32k "$base.opus"
                ffmpeg -v error -y -i "$base.opus" "$base.wav"; echo "$base.wav" ;;
  esac
}

declare -A hit total false_det errs
clips=0; label_s=0
for f in "$corpus"/*.wav; do
  name=$(basename "$f" .wav); i=$clips; clips=$((clips + 1))
  pos=${positions[$((i % 3))]}; tone=${tones[$(((i / 3) % 3))]}; lang=${langs[$((i % 3))]}
  out="$work/$name-labelled.wav"
  t0=$(date +%s.%N)
  "$bin" label "$f" -o "$out" --producer $code --no-ledger --json --audio-position "$pos" \
    --tone-hz "$tone" --speech-lang "$lang" > "$work/label.json"
  label_s=$(echo "$label_s + $(date +%s.%N) - $t0" | bc)
  expect=$(jq '.labelled[0].explicit_label.inserted[0].rhythm_s' "$work/label.json")
  for a in "${attacks[@]}"; do
    key="$a"
    total[$key]=$(( ${total[$key]:-0} + 1 ))
    got=$(attack "$a" "$out" "$work/$name-l")
    found=$("$bin" inspect --json "$got" | jq -c '[.files[0].explicit_rhythms[]? | {start_s, max_timing_error_ms, meets_rules, tone_hz}]')
    # A hit: a rhythm that meets the rules within 0.15 s of where it was inserted.
    ok=$(echo "$found" | jq --argjson e "$expect" '[.[] | select(.meets_rules and ((.start_s - $e) | fabs) < 0.15)] | length')
    if [ "$ok" -ge 1 ]; then
      hit[$key]=$(( ${hit[$key]:-0} + 1 ))
      errs[$key]="${errs[$key]:-} $(echo "$found" | jq --argjson e "$expect" '[.[] | select(((.start_s - $e) | fabs) < 0.15)][0].max_timing_error_ms')"
    else
      echo "miss: $name ($pos, $tone Hz) after $a: $found" >&2
    fi
    plain=$(attack "$a" "$f" "$work/$name-u")
    n=$("$bin" inspect --json "$plain" | jq '[.files[0].explicit_rhythms[]?] | length')
    false_det[$key]=$(( ${false_det[$key]:-0} + n ))
    [ "$n" -eq 0 ] || echo "false detection: $name after $a" >&2
    echo "$name ($pos, $tone Hz, $lang) after $a: found $ok, false $n" >&2
  done
done
echo "corpus: $clips clips from $corpus; labelling took $(printf %.1f "$label_s") s in total"
echo
echo "| re-encoding | rhythm found (labelled clips) | timing error after it, median / max (ms) | false detections (unlabelled clips) |"
echo "|---|---|---|---|"
for a in "${attacks[@]}"; do
  sorted=$(echo ${errs[$a]:-} | tr ' ' '\n' | grep -v '^$' | sort -g || true)
  n=$(echo "$sorted" | grep -c . || true)
  if [ "$n" -gt 0 ]; then
    med=$(echo "$sorted" | sed -n "$(( (n + 1) / 2 ))p"); max=$(echo "$sorted" | tail -1)
    timing=$(printf "%.2f / %.2f" "$med" "$max")
  else
    timing="-"
  fi
  echo "| $a | ${hit[$a]:-0}/${total[$a]} | $timing | ${false_det[$a]:-0}/$clips |"
done
