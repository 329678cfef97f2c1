#!/usr/bin/env bash
# Acceptance runs of the text workflows (issue 5). Usage:
#   scripts/accept_text.sh [BUILD_DIR=build/release] [quick|full]
# quick: a few batches of each workflow (checks the CLI end to end: JSON line, files, resume,
#        generate, usage errors); full: charlm-kjv for 600 s on 2 threads next to the PyTorch
#        peer (bench/peers/charlm_kjv.py) with the same budget, and topic-fortunes.
set -euo pipefail
BUILD=${1:-build/release}
MODE=${2:-quick}
SOMA=$BUILD/soma
OUT=${OUT:-/tmp/soma_accept_text}
rm -rf "$OUT"
mkdir -p "$OUT"
fail() { echo "FAIL: $*" >&2; exit 1; }

if [ "$MODE" = quick ]; then
    $SOMA train charlm-kjv --max-batches 3 --seconds 60 --set hidden=32 --set embed=8 \
        --set val_fraction=0.01 --set eval_chars=2000 --out "$OUT/lm" --quiet > "$OUT/lm.json"
    grep -q '"val_bpc":' "$OUT/lm.json" || fail "charlm-kjv: no val_bpc"
    for f in checkpoint.safetensors model.safetensors metrics.csv curves.png; do
        [ -s "$OUT/lm/$f" ] || fail "charlm-kjv: $f missing"
    done
    $SOMA train charlm-kjv --max-batches 2 --seconds 60 --set hidden=32 --set embed=8 \
        --set val_fraction=0.01 --set eval_chars=2000 --out "$OUT/lm" --resume --quiet \
        > "$OUT/lm2.json"
    grep -q '"steps":5' "$OUT/lm2.json" || fail "charlm-kjv --resume: expected 5 steps in all"
    $SOMA generate "$OUT/lm/model.safetensors" --prompt "In the beginning" --length 50 \
        > "$OUT/gen.txt"
    head -c 16 "$OUT/gen.txt" | grep -q "In the beginning" || fail "generate: no prompt"
    tail -1 "$OUT/gen.txt" | grep -q '"recipe":"charlm-kjv"' || fail "generate: no JSON"
    set +e
    $SOMA train charlm-kjv --set nonsense=1 --out "$OUT/bad" 2> /dev/null
    [ $? -eq 2 ] || fail "unknown --set key: expected exit 2"
    $SOMA generate "$OUT/lm/model.safetensors" --prompt "日本" --length 5 2> /dev/null
    [ $? -eq 2 ] || fail "prompt outside the vocabulary: expected exit 2"
    set -e
    $SOMA train topic-fortunes --epochs 1 --max-batches 3 --set baseline_epochs=1 \
        --out "$OUT/topic" --quiet > "$OUT/topic.json"
    grep -q '"test_accuracy":' "$OUT/topic.json" || fail "topic-fortunes: no test_accuracy"
    grep -q '"baseline_accuracy":' "$OUT/topic.json" || fail "topic-fortunes: no baseline"
    $SOMA train topic-fortunes --epochs 2 --max-batches 3 --set baseline_epochs=1 \
        --out "$OUT/topic" --resume --quiet > "$OUT/topic2.json"
    [ "$(wc -l < "$OUT/topic/metrics.csv")" -eq 3 ] || fail "topic-fortunes --resume: 2 rows"
    $SOMA eval "$OUT/topic/checkpoint.safetensors" > /dev/null || fail "eval topic"
    echo "text workflows: quick acceptance passed ($OUT)"
else
    SECS=${SECS:-600}
    env -u OPENBLAS_CORETYPE /usr/bin/python3 bench/peers/charlm_kjv.py --seconds "$SECS" \
        --threads 2 > "$OUT/peer.json" 2> "$OUT/peer.log" &
    PEER=$!
    $SOMA train charlm-kjv --seconds "$SECS" --threads 2 --out "$OUT/lm" \
        > "$OUT/lm.json" 2> "$OUT/lm.log"
    wait $PEER
    $SOMA generate "$OUT/lm/model.safetensors" --prompt "In the beginning" --length 300 \
        --temperature 0.8 > "$OUT/sample.txt"
    $SOMA train topic-fortunes --threads 2 --out "$OUT/topic" > "$OUT/topic.json" \
        2> "$OUT/topic.log"
    echo "soma:    $(tail -1 "$OUT/lm.json")"
    echo "pytorch: $(tail -1 "$OUT/peer.json")"
    echo "topic:   $(tail -1 "$OUT/topic.json")"
    cat "$OUT/sample.txt"
fi
