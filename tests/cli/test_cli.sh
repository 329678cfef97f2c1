#!/usr/bin/env bash
# End-to-end checks of the `soma` command line: exit codes, one-line errors, the JSON last line.
# Usage: test_cli.sh path/to/soma
set -u
SOMA="$1"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0
check() {  # check NAME CONDITION...
    local name="$1"
    shift
    if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $name" >&2; fi
}
last_json() { tail -n 1 "$1" | grep -q "$2"; }

"$SOMA" recipes >"$tmp/recipes" 2>&1
check "recipes lists the built-ins" grep -q "^cnn-fashion" "$tmp/recipes"
check "recipes lists mlp-diabetes" grep -q "^mlp-diabetes" "$tmp/recipes"

"$SOMA" train logreg-iris --epochs 5 --out "$tmp/iris" --quiet >"$tmp/train.out" 2>"$tmp/train.err"
rc=$?
check "train exits 0" test "$rc" -eq 0
check "train last line is JSON with test_accuracy" last_json "$tmp/train.out" '^{"recipe":"logreg-iris","epochs":5,"test_accuracy":'
check "train wrote a checkpoint" test -s "$tmp/iris/checkpoint.safetensors"
check "train wrote metrics.csv" test "$(wc -l <"$tmp/iris/metrics.csv")" -eq 6
check "train wrote curves.png" test -s "$tmp/iris/curves.png"

"$SOMA" eval "$tmp/iris/checkpoint.safetensors" >"$tmp/eval.out" 2>/dev/null
check "eval exits 0 with JSON" last_json "$tmp/eval.out" '"test_accuracy":'
"$SOMA" predict "$tmp/iris/checkpoint.safetensors" 3 >"$tmp/pred.out" 2>/dev/null
check "predict an index" last_json "$tmp/pred.out" '"prediction":'
"$SOMA" summary logreg-iris >"$tmp/summary.out" 2>&1
check "summary shows parameter count" grep -q "Total params: 15" "$tmp/summary.out"
"$SOMA" info >"$tmp/info.out" 2>&1
check "info shows backends" grep -q "backends:" "$tmp/info.out"

# --- reinforcement learning (issue 7): needs no data package ---
"$SOMA" train ppo-cartpole --steps 2048 --set eval_interval=0 --out "$tmp/rl" --quiet >"$tmp/rl.out" 2>/dev/null
check "ppo-cartpole trains" test $? -eq 0
check "ppo-cartpole JSON has mean_return over 100 episodes" last_json "$tmp/rl.out" '"mean_return":.*"episodes":100\|"episodes":100.*"mean_return":'
check "ppo-cartpole wrote checkpoint, metrics.csv and curve.png" test -s "$tmp/rl/checkpoint.safetensors" -a -s "$tmp/rl/metrics.csv" -a -s "$tmp/rl/curve.png"
"$SOMA" play "$tmp/rl/checkpoint.safetensors" --episodes 3 --render "$tmp/rl/ep.gif" >"$tmp/play.out" 2>/dev/null
check "play runs 3 episodes" last_json "$tmp/play.out" '"episodes":3'
check "play --render writes a GIF" test -s "$tmp/rl/ep.gif"
check "the GIF starts with its magic" grep -q "^GIF89a" <(head -c 6 "$tmp/rl/ep.gif")
"$SOMA" eval "$tmp/rl/checkpoint.safetensors" >/dev/null 2>&1
check "eval of an agent checkpoint exits 0" test $? -eq 0
"$SOMA" train ppo-cartpole --set bogus=1 >/dev/null 2>&1
check "RL: unknown --set key exits 2" test $? -eq 2
"$SOMA" play "$tmp/rl/checkpoint.safetensors" --episodes 0 >/dev/null 2>&1
check "play --episodes 0 exits 2" test $? -eq 2
"$SOMA" train dqn-cartpole --resume --out "$tmp/rl" >/dev/null 2>&1
check "resume with another recipe's checkpoint exits 2" test $? -eq 2
"$SOMA" play "$tmp/iris/checkpoint.safetensors" >/dev/null 2>&1
check "play on a classifier checkpoint exits 2" test $? -eq 2

# --- generative workflows (issue 6): need dataset-fashion-mnist (not in the test set) ---
if test -d /usr/share/datasets/fashion-mnist; then
    "$SOMA" train cnn-fashion --epochs 1 --max-batches 2 --out "$tmp/clf" --quiet >/dev/null 2>&1
    "$SOMA" train dcgan-fashion --epochs 1 --max-batches 2 --batch-size 16 --set "classifier=$tmp/clf/model.safetensors" --out "$tmp/gan" --quiet >"$tmp/gan.out" 2>/dev/null
    check "dcgan-fashion JSON has the FID triple" last_json "$tmp/gan.out" '"fid_noise_ceiling":'
    check "dcgan-fashion wrote the epoch grid" test -s "$tmp/gan/samples_epoch_1.png"
    check "dcgan-fashion wrote metrics.csv" grep -q "g_loss,d_loss" "$tmp/gan/metrics.csv"
    "$SOMA" generate "$tmp/gan/checkpoint.safetensors" --n 16 --out "$tmp/grid.png" >"$tmp/gen.out" 2>/dev/null
    check "generate writes a grid from a GAN checkpoint" test -s "$tmp/grid.png"
    "$SOMA" train autoencoder-fashion --epochs 1 --max-batches 2 --batch-size 16 --out "$tmp/ae" --quiet >"$tmp/ae.out" 2>/dev/null
    check "autoencoder-fashion JSON has test_mse" last_json "$tmp/ae.out" '"test_mse":'
    "$SOMA" train cluster-fashion --max-batches 10 --batch-size 50 --set "autoencoder=$tmp/ae/checkpoint.safetensors" --out "$tmp/cl" --quiet >"$tmp/cl.out" 2>/dev/null
    check "cluster-fashion JSON has accuracies and NMI" last_json "$tmp/cl.out" '"pixel_nmi":'
    check "cluster-fashion wrote the PCA scatter" test -s "$tmp/cl/codes_pca.png"
    "$SOMA" generate "$tmp/ae/checkpoint.safetensors" >/dev/null 2>"$tmp/gen.err"
    check "generate on an autoencoder checkpoint exits 2" test $? -eq 2
    "$SOMA" train vae-fashion --set nope=1 >/dev/null 2>"$tmp/set.err"
    check "unknown --set key exits 2" test $? -eq 2
else
    echo "cli: dataset-fashion-mnist not installed: generative checks skipped" >&2
fi

# --- speech (issue 5): needs espeak-ng and flite (not in the test set) ---
if command -v espeak-ng >/dev/null && command -v flite >/dev/null; then
    "$SOMA" train speech-digits --set accents=1 --set variants=4 --set "cache=$tmp/sdcache" --epochs 1 --batch-size 8 --threads 1 --out "$tmp/sd" --quiet >"$tmp/sd.out" 2>/dev/null
    check "speech-digits JSON has real and flite accuracy" last_json "$tmp/sd.out" '"real_accuracy"'
    "$SOMA" eval "$tmp/sd/checkpoint.safetensors" >"$tmp/sdeval.out" 2>/dev/null
    check "speech-digits eval reports flite accuracy" last_json "$tmp/sdeval.out" '"flite_accuracy"'
    "$SOMA" train speech-digits --set nope=1 >/dev/null 2>&1
    check "speech-digits: unknown --set key exits 2" test $? -eq 2
else
    echo "cli: espeak-ng/flite not installed: speech checks skipped" >&2
fi

"$SOMA" train no-such-recipe >"$tmp/bad.out" 2>"$tmp/bad.err"
rc=$?
check "unknown recipe exits 2" test "$rc" -eq 2
check "unknown recipe says so in one line" test "$(wc -l <"$tmp/bad.err")" -eq 1
check "unknown recipe names the built-ins" grep -q "mlp-fashion" "$tmp/bad.err"

"$SOMA" train logreg-iris --epochs x >/dev/null 2>&1
check "bad option exits 2" test $? -eq 2

head -c 100 "$tmp/iris/checkpoint.safetensors" >"$tmp/corrupt.safetensors"
"$SOMA" eval "$tmp/corrupt.safetensors" >/dev/null 2>"$tmp/corrupt.err"
rc=$?
check "corrupt checkpoint exits 2" test "$rc" -eq 2
check "corrupt checkpoint names the file" grep -q "corrupt.safetensors" "$tmp/corrupt.err"

echo '{"name": "tiny", "model": [{"type": "Linear", "in": 4, "out": 3}], "data": {"dataset": "sklearn:iris", "standardize": true}, "loss": {"type": "cross_entropy"}, "optimizer": {"type": "adam", "lr": 0.05}, "epochs": 3}' >"$tmp/tiny.json"
"$SOMA" train "$tmp/tiny.json" --out "$tmp/tiny" --quiet >"$tmp/tiny.out" 2>/dev/null
check "JSON recipe file trains" last_json "$tmp/tiny.out" '"recipe":"tiny"'

echo '{"name": "broken", "model": [{"type": "Linaer"}], "data": {"dataset": "sklearn:iris"}, "loss": {"type": "cross_entropy"}, "optimizer": {"type": "adam"}}' >"$tmp/broken.json"
"$SOMA" train "$tmp/broken.json" --out "$tmp/broken" >/dev/null 2>"$tmp/broken.err"
check "unknown layer type exits 2" test $? -eq 2
check "unknown layer type is named" grep -q "Linaer" "$tmp/broken.err"

"$SOMA" train mlp-diabetes --epochs 3 --out "$tmp/diab" --quiet >"$tmp/diab.out" 2>/dev/null
check "regression reports rmse and r2" last_json "$tmp/diab.out" '"test_rmse":.*"test_r2":'

echo "cli: $pass passed, $fail failed"
test "$fail" -eq 0
