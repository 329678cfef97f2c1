#!/usr/bin/env bash
# Installs the Debian 12 packages Soma needs, with apt-get (through sudo when not root).
# Idempotent: asks dpkg first and runs `apt-get update` + `apt-get install` only for what is
# missing, so it is quiet and takes well under a second when everything is present.
#
#   scripts/install-deps.sh                # everything: build, tests, demo, bench, torch, datasets
#   scripts/install-deps.sh --set test     # only what building and testing needs (never torch)
#   SOMA_DEPS=test scripts/install-deps.sh # same, via the environment
#   scripts/install-deps.sh --print        # list the packages of the set and exit
#   scripts/install-deps.sh --check        # exit 1 (listing them) if any is missing; installs nothing
set -euo pipefail

# Build + test: compilers, CMake/Ninja, GoogleTest, BLAS, oneDNN, JSON, CLI11, zlib, libpng,
# clang-format (ctest 'format'), python3-sklearn (ships iris.csv, used by tests and the demo).
TEST_PACKAGES=(
    build-essential cmake ninja-build g++
    libgtest-dev libgmock-dev
    libopenblas-dev libdnnl-dev
    nlohmann-json3-dev libcli11-dev zlib1g-dev libpng-dev libgif-dev libfftw3-dev
    clang-format
    python3-sklearn
)
# Demo + bench on top: Google Benchmark, the PyTorch peer (big: never needed by tests), data.
ALL_EXTRA_PACKAGES=(
    libbenchmark-dev
    python3-numpy python3-torch
    dataset-fashion-mnist
    bible-kjv bible-kjv-text
    fortunes espeak-ng flite asterisk-core-sounds-en-wav
)

set_name="${SOMA_DEPS:-all}"
mode=install
while (($#)); do
    case "$1" in
        --set) set_name="${2:?--set needs test or all}"; shift 2 ;;
        --set=*) set_name="${1#--set=}"; shift ;;
        --test) set_name=test; shift ;;
        --all) set_name=all; shift ;;
        --print) mode=print; shift ;;
        --check) mode=check; shift ;;
        -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "install-deps: unknown argument '$1' (try --help)" >&2; exit 2 ;;
    esac
done

case "$set_name" in
    test) packages=("${TEST_PACKAGES[@]}") ;;
    all) packages=("${TEST_PACKAGES[@]}" "${ALL_EXTRA_PACKAGES[@]}") ;;
    *) echo "install-deps: unknown set '$set_name' (expected test or all)" >&2; exit 2 ;;
esac

if [[ $mode == print ]]; then
    printf '%s\n' "${packages[@]}"
    exit 0
fi

if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "install-deps: dpkg-query not found; this script supports Debian/Ubuntu only." >&2
    echo "install-deps: please install the equivalents of: ${packages[*]}" >&2
    exit 1
fi

# One dpkg-query call for all packages; "ii" = wanted install, installed OK.
missing=()
declare -A installed=()
while read -r name status; do
    [[ $status == ii ]] && installed[$name]=1
done < <(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' "${packages[@]}" 2>/dev/null || true)
for p in "${packages[@]}"; do
    [[ -n ${installed[$p]:-} ]] || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
    exit 0
fi
if [[ $mode == check ]]; then
    echo "install-deps: missing packages ($set_name set): ${missing[*]}" >&2
    exit 1
fi

sudo=()
if ((EUID != 0)); then
    if ! command -v sudo >/dev/null 2>&1; then
        echo "install-deps: not root and sudo not found; as root run:" >&2
        echo "  apt-get update && apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
    sudo=(sudo)
fi

echo "install-deps: installing (${set_name} set): ${missing[*]}"
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
