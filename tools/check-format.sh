#!/usr/bin/env bash
# Fails when a C source or header is not formatted as .clang-format says.
# Checks every *.c/*.h under src include tests tools (seed corpora excluded).
# Fix with: clang-format -i FILE...
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

want=14 # the clang-format major version the tree is formatted with (Debian 12)
have="$(clang-format --version | sed -n 's/.*version \([0-9]*\).*/\1/p')"
if [[ "$have" != "$want" ]]; then
    echo "warning: clang-format $have, the tree is formatted with $want: results may differ" >&2
fi

mapfile -d '' files < <(find src include tests tools \( -name '*.c' -o -name '*.h' \) \
    -not -path 'tests/fuzz/corpus*' -type f -print0 | sort -z)
if ((${#files[@]} == 0)); then
    echo "no C files found" >&2
    exit 1
fi
if clang-format --dry-run -Werror "${files[@]}"; then
    echo "format: ${#files[@]} files ok"
else
    echo "format: run clang-format -i on the files above" >&2
    exit 1
fi
