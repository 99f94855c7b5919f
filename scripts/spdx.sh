#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Puts the SPDX licence line at the top of every source file that lacks it (idempotent).
#
#   scripts/spdx.sh           add the line where it is missing; prints each file it changed
#   scripts/spdx.sh --check   change nothing; list the files that lack it, exit 1 if any
#   scripts/spdx.sh --list    print the files this script looks after (one per line)
#
# Which files: the ones git tracks (or, outside a git checkout, the ones find sees) that are
# C, Swift, shell, Python or make: *.swift *.c *.h -> "// SPDX-...", *.sh *.py Makefile and
# debian's rules, config and maintainer scripts -> "# SPDX-...". The line goes first, or
# right after a "#!" line, or after Package.swift's "// swift-tools-version" line (both must
# stay first). Build metadata (module maps, the linker's export map) and data are left out.
# tests/test_license.py fails when a file in --list lacks the line.
set -eu
LICENSE_ID=Apache-2.0
cd "$(dirname "$0")/.."

mode=add
case "${1:-}" in
    --check) mode=check ;;
    --list) mode=list ;;
    "") ;;
    *) echo "usage: scripts/spdx.sh [--check|--list]" >&2; exit 2 ;;
esac

all_files() {
    if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        git ls-files
    else
        find . -path ./.git -prune -o -path './.build*' -prune -o -path ./build -prune \
            -o -type f -print | sed 's|^\./||'
    fi
}

# Prints "PREFIX<TAB>FILE" for each file looked after.
classify() {
    all_files | while IFS= read -r f; do
        case "$f" in
            *.swift|*.c|*.h) printf '//\t%s\n' "$f" ;;
            *.sh|*.py|Makefile|*/Makefile) printf '#\t%s\n' "$f" ;;
            debian/rules|debian/config|debian/*.postinst|debian/*.postrm|debian/*.prerm|debian/*.preinst)
                printf '#\t%s\n' "$f" ;;
        esac
    done
}

# Whether the licence line is in the file's first three lines.
has_line() {
    head -n 3 "$1" | grep -q "SPDX-License-Identifier: $LICENSE_ID"
}

process() {
    classify | while IFS="$(printf '\t')" read -r prefix f; do
        [ -f "$f" ] || continue
        case "$mode" in
            list) printf '%s\n' "$f"; continue ;;
            check) has_line "$f" || printf '%s\n' "$f"; continue ;;
        esac
        has_line "$f" && continue
        tmp="$f.spdx.$$"
        awk -v line="$prefix SPDX-License-Identifier: $LICENSE_ID" '
            NR == 1 && (/^#!/ || /^\/\/ *swift-tools-version/) { print; print line; done = 1; next }
            NR == 1 { print line; done = 1 }
            { print }
            END { if (!done) print line }
        ' "$f" >"$tmp"
        # Keep the file's mode (executable scripts stay executable).
        chmod "$(stat -c %a "$f")" "$tmp"
        mv "$tmp" "$f"
        printf '%s\n' "$f"
    done
}

out=$(process)
[ -n "$out" ] && printf '%s\n' "$out"
if [ "$mode" = check ] && [ -n "$out" ]; then
    echo "spdx: the files above lack \"SPDX-License-Identifier: $LICENSE_ID\"; run scripts/spdx.sh" >&2
    exit 1
fi
exit 0
