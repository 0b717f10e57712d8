#!/usr/bin/env bash
# Fails when C code calls a banned function: atoi atol sprintf vsprintf strcpy strcat strtok gets
# system. Comments are stripped first (gcc -fpreprocessed), so prose may name them.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

banned='atoi|atol|sprintf|vsprintf|strcpy|strcat|strtok|gets|system'
status=0
while IFS= read -r -d '' f; do
    # -fpreprocessed -dD: remove comments, keep macros, expand nothing; line markers map back.
    if ! out="$(gcc -fpreprocessed -dD -E -x c "$f" 2>/dev/null)"; then
        echo "$f: cannot preprocess" >&2
        status=1
        continue
    fi
    hits="$(printf '%s\n' "$out" | awk -v f="$f" -v re="(^|[^A-Za-z0-9_])($banned)[ \t]*\\\\(" '
        /^# [0-9]+ "/ { line = $2 - 1; next }
        { line++ }
        $0 ~ re { printf "%s:%d: %s\n", f, line, $0 }')"
    if [[ -n "$hits" ]]; then
        printf '%s\n' "$hits"
        status=1
    fi
done < <(find src include tests tools \( -name '*.c' -o -name '*.h' \) \
    -not -path 'tests/fuzz/corpus*' -type f -print0 | sort -z)

if ((status)); then
    echo "banned functions used (see above): use the helpers in include/steerd/util.h" >&2
else
    echo "banned: none used"
fi
exit "$status"
