#!/usr/bin/env bash
# Checks (default) or fixes (--fix) the clang-format style of every *.h / *.cpp under
# include/ src/ tests/ apps/ examples/ bench/, using the repo's .clang-format.
#   scripts/check-format.sh          # exit 1 and list the files that need formatting
#   scripts/check-format.sh --fix    # rewrite them in place (make format)
# CLANG_FORMAT=/path/to/clang-format overrides the binary.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

fix=0
case "${1:-}" in
    --fix) fix=1 ;;
    "") ;;
    *) echo "usage: $0 [--fix]" >&2; exit 2 ;;
esac

clang_format="${CLANG_FORMAT:-clang-format}"
if ! command -v "$clang_format" >/dev/null 2>&1; then
    echo "check-format: '$clang_format' not found (scripts/install-deps.sh installs clang-format)" >&2
    exit 2
fi

dirs=()
for d in include src tests apps examples bench; do
    [[ -d $d ]] && dirs+=("$d")
done
files=()
if ((${#dirs[@]})); then
    mapfile -d '' files < <(find "${dirs[@]}" -type f \( -name '*.h' -o -name '*.cpp' \) -print0 |
                            sort -z)
fi
if ((${#files[@]} == 0)); then
    echo "check-format: no source files"
    exit 0
fi

if ((fix)); then
    "$clang_format" -i --style=file "${files[@]}"
    echo "check-format: formatted ${#files[@]} files"
    exit 0
fi

bad=()
for f in "${files[@]}"; do
    if ! "$clang_format" --dry-run --Werror --style=file "$f" >/dev/null 2>&1; then
        bad+=("$f")
    fi
done
if ((${#bad[@]})); then
    echo "check-format: ${#bad[@]} of ${#files[@]} files are not clang-formatted:" >&2
    printf '  %s\n' "${bad[@]}" >&2
    echo "first differences:" >&2
    "$clang_format" --dry-run --style=file "${bad[0]}" 2>&1 | head -n 20 >&2
    echo "fix with: make format   (or scripts/check-format.sh --fix)" >&2
    exit 1
fi
echo "check-format: ${#files[@]} files OK"
