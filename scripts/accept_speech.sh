#!/usr/bin/env bash
# Acceptance run for issue 5 (speech): trains speech-digits for each seed in $SEEDS (default
# "0 1 2"), re-evaluates the first checkpoint with `soma eval`, and prints the figures. The first
# run synthesises the espeak-ng / flite corpora into the cache (a few minutes); later runs reuse
# it. Minutes per seed on one core.
#   scripts/accept_speech.sh                      # SOMA=build/release/soma THREADS=1
#   SOMA=build/speech/soma SEEDS="0" EPOCHS=15 scripts/accept_speech.sh
# Checks (exit 1 when one fails): for every seed, held-out espeak-ng voices >= 0.90 and flite
# voices >= 0.60 (chance is 0.10); real recordings (10 words, one speaker) are reported only,
# with their mean over the seeds checked >= 0.50.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SOMA="${SOMA:-build/release/soma}"
THREADS="${THREADS:-1}"
RUNS="${RUNS:-runs}"
SEEDS="${SEEDS:-0 1 2}"
EPOCHS="${EPOCHS:-15}"
[ -x "$SOMA" ] || { echo "accept_speech: $SOMA not found (build it or set SOMA=...)" >&2; exit 2; }
command -v espeak-ng >/dev/null || { echo "accept_speech: espeak-ng is not installed" >&2; exit 2; }

mkdir -p "$RUNS"
first=""
for seed in $SEEDS; do
    out="$RUNS/speech-digits-s$seed"
    t0=$SECONDS
    json=$("$SOMA" train speech-digits --threads "$THREADS" --epochs "$EPOCHS" --seed "$seed" \
        --out "$out" | tail -n 1)
    echo "seed $seed ($((SECONDS - t0)) s): $json"
    printf '%s\n' "$json" > "$out.json"
    [ -n "$first" ] || first="$out"
done
echo "soma eval $first/checkpoint.safetensors:"
"$SOMA" eval "$first/checkpoint.safetensors" --threads "$THREADS" | tail -n 1

/usr/bin/env python3 - "$RUNS" $SEEDS <<'PY'
import json, sys
runs, seeds = sys.argv[1], sys.argv[2:]
rows = [json.load(open(f"{runs}/speech-digits-s{s}.json")) for s in seeds]
ok = True
for s, r in zip(seeds, rows):
    print(f"seed {s}: val {r['val_accuracy']:.3f} flite {r['flite_accuracy']:.3f} "
          f"real {r['real_accuracy']:.3f} ({r['seconds']:.0f} s)")
    ok &= r["val_accuracy"] >= 0.90 and r["flite_accuracy"] >= 0.60
mean = lambda k: sum(r[k] for r in rows) / len(rows)
print(f"mean: val {mean('val_accuracy'):.3f} flite {mean('flite_accuracy'):.3f} "
      f"real {mean('real_accuracy'):.3f}")
ok &= mean("real_accuracy") >= 0.50
print("PASS" if ok else "FAIL")
sys.exit(0 if ok else 1)
PY
