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
