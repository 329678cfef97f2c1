#!/usr/bin/env bash
# Acceptance runs for issue 7 (reinforcement learning): trains each RL recipe with several seeds
# (until its target or its step budget), evaluates every run over 100 greedy episodes (the
# recipe's final JSON line), renders one episode per recipe as a GIF, and prints a table with
# the env steps, wall time and mean return of each run. Minutes to hours on one core.
#   scripts/accept_rl.sh                                   # SOMA=build/release/soma, 3 seeds
#   SOMA=build/rl/soma SEEDS="0 1 2" RECIPES="dqn-cartpole ppo-cartpole" scripts/accept_rl.sh
# Also measures vectorised CartPole env steps/s with the rl_cartpole example when $EXAMPLES
# (default: the examples folder next to $SOMA) has it.
# Exit 1 when a run misses its target: CartPole >= 475, Acrobot >= -100, Pendulum >= -250.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SOMA="${SOMA:-build/release/soma}"
THREADS="${THREADS:-1}"
RUNS="${RUNS:-runs/accept_rl}"
SEEDS="${SEEDS:-0 1 2}"
RECIPES="${RECIPES:-dqn-cartpole ppo-cartpole ppo-acrobot ppo-pendulum a2c-cartpole reinforce-cartpole}"
[ -x "$SOMA" ] || { echo "accept_rl: $SOMA not found (build it or set SOMA=...)" >&2; exit 2; }
mkdir -p "$RUNS"

for recipe in $RECIPES; do
    for seed in $SEEDS; do
        out="$RUNS/$recipe-s$seed"
        if [ -s "$out.json" ]; then continue; fi  # done already (rerun: delete the .json)
        resume=()
        [ -f "$out/checkpoint.safetensors" ] && resume=(--resume)
        echo "== $recipe seed $seed" >&2
        "$SOMA" train "$recipe" --seed "$seed" --threads "$THREADS" --quiet --out "$out" \
            "${resume[@]}" | tail -n 1 > "$out.json.tmp"
        mv "$out.json.tmp" "$out.json"
    done
    first=$(echo $SEEDS | cut -d' ' -f1)
    "$SOMA" play "$RUNS/$recipe-s$first/checkpoint.safetensors" --episodes 10 \
        --render "$RUNS/$recipe.gif" > /dev/null
done

EXAMPLES="${EXAMPLES:-$(dirname "$SOMA")/examples}"
if [ -x "$EXAMPLES/rl_cartpole" ]; then
    "$EXAMPLES/rl_cartpole" venv > "$RUNS/venv.json" || true
fi

/usr/bin/env python3 - "$RUNS" "$RECIPES" "$SEEDS" <<'PY'
import json, os, sys
runs, recipes, seeds = sys.argv[1], sys.argv[2].split(), sys.argv[3].split()
target = {"CartPole-v1": 475, "Acrobot-v1": -100, "Pendulum-v1": -250}
print(f"{'recipe':20} {'seed':>4} {'env steps':>10} {'wall s':>8} {'steps/s':>8} {'mean return':>12} {'target':>7}")
failed = 0
for r in recipes:
    for s in seeds:
        p = os.path.join(runs, f"{r}-s{s}.json")
        if not os.path.exists(p):
            print(f"{r:20} {s:>4} {'(missing)':>10}")
            failed += 1
            continue
        j = json.load(open(p))
        t = target.get(j["env"])
        ok = t is None or j["mean_return"] >= t
        failed += not ok
        sps = j["env_steps"] / j["seconds"] if j["seconds"] else 0
        print(f"{r:20} {s:>4} {j['env_steps']:>10} {j['seconds']:>8.1f} {sps:>8.0f} "
              f"{j['mean_return']:>12.1f} {('ok' if ok else 'MISS') + ' ' + str(t):>7}")
v = os.path.join(runs, "venv.json")
if os.path.exists(v):
    print(open(v).read().strip())
sys.exit(1 if failed else 0)
PY
