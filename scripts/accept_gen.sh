#!/usr/bin/env bash
# Acceptance run for issue 6 (generative and unsupervised learning): trains the four recipes on
# Fashion-MNIST in full and prints their figures. Minutes to hours on one core; run it on a quiet
# machine. Outputs under $RUNS (default runs/): dcgan-fashion/, vae-fashion/,
# autoencoder-fashion/, cluster-fashion/ and the FID classifier under fid-classifier/ (trained
# on first use unless runs/cnn-fashion/model.safetensors exists).
#   scripts/accept_gen.sh                  # SOMA=build/release/soma THREADS=1
#   SOMA=build/gen/soma THREADS=2 scripts/accept_gen.sh
#   GAN_ARGS="--max-batches 700 --batch-size 32" scripts/accept_gen.sh   # a shorter GAN run
# Checks (exit 1 when one fails): GAN and VAE FID well below the noise ceiling (< 1/4 of it),
# autoencoder codes beat raw pixels on clustering accuracy and NMI.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SOMA="${SOMA:-build/release/soma}"
THREADS="${THREADS:-1}"
RUNS="${RUNS:-runs}"
GAN_EPOCHS="${GAN_EPOCHS:-5}"
VAE_EPOCHS="${VAE_EPOCHS:-10}"
AE_EPOCHS="${AE_EPOCHS:-5}"
GAN_ARGS="${GAN_ARGS:-}"  # extra `soma train` arguments, word-split
VAE_ARGS="${VAE_ARGS:-}"
AE_ARGS="${AE_ARGS:-}"
[ -x "$SOMA" ] || { echo "accept_gen: $SOMA not found (build it or set SOMA=...)" >&2; exit 2; }

run() {  # name, extra args...; prints the JSON line and the wall time
    local name=$1; shift
    local t0=$SECONDS
    local json
    json=$("$SOMA" train "$name" --threads "$THREADS" --out "$RUNS/$name" "$@" | tail -n 1)
    echo "$name ($((SECONDS - t0)) s): $json"
    printf '%s\n' "$json" > "$RUNS/$name.json"
}

mkdir -p "$RUNS"
run autoencoder-fashion --epochs "$AE_EPOCHS" $AE_ARGS
run cluster-fashion --set "autoencoder=$RUNS/autoencoder-fashion/checkpoint.safetensors"
run dcgan-fashion --epochs "$GAN_EPOCHS" $GAN_ARGS
run vae-fashion --epochs "$VAE_EPOCHS" $VAE_ARGS
"$SOMA" generate "$RUNS/dcgan-fashion/checkpoint.safetensors" --n 64 --out "$RUNS/dcgan-fashion/generated.png"
"$SOMA" generate "$RUNS/vae-fashion/checkpoint.safetensors" --n 64 --out "$RUNS/vae-fashion/generated.png"

/usr/bin/env python3 - "$RUNS" <<'PY'
import json, sys
runs = sys.argv[1]
j = {n: json.load(open(f"{runs}/{n}.json")) for n in
     ["dcgan-fashion", "vae-fashion", "autoencoder-fashion", "cluster-fashion"]}
ok = True
for n in ["dcgan-fashion", "vae-fashion"]:
    r = j[n]
    good = r["fid"] < r["fid_noise_ceiling"] / 4
    ok &= good
    print(f"{n}: fid {r['fid']:.2f} (real floor {r['fid_real_floor']:.2f}, noise ceiling "
          f"{r['fid_noise_ceiling']:.2f}) {'ok' if good else 'FAIL'}")
print(f"autoencoder-fashion: test_mse {j['autoencoder-fashion']['test_mse']:.5f}")
c = j["cluster-fashion"]
good = c["code_accuracy"] > c["pixel_accuracy"] and c["code_nmi"] > c["pixel_nmi"]
ok &= good
print(f"cluster-fashion: accuracy codes {c['code_accuracy']:.4f} vs pixels "
      f"{c['pixel_accuracy']:.4f}, NMI codes {c['code_nmi']:.4f} vs pixels "
      f"{c['pixel_nmi']:.4f} {'ok' if good else 'FAIL'}")
sys.exit(0 if ok else 1)
PY
