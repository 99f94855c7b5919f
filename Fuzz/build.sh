#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Builds the libFuzzer targets with plain swiftc/clang, one Swift module at a time, into
# $FUZZ_OUT (default .build-fuzz/ at the repository root; never the main .build).
# Usage: Fuzz/build.sh [target ...]   (default: every Fuzz/Targets/*.swift)
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${FUZZ_OUT:-$ROOT/.build-fuzz}
SWIFTC=${SWIFTC:-swiftc}
CLANG=${CLANG:-$(dirname "$(command -v "$SWIFTC")")/clang}
SRC=$ROOT/Sources
mkdir -p "$OUT/obj" "$OUT/mod"
cd "$ROOT"

# -sanitize=fuzzer on a compile-only step instruments for coverage (no libFuzzer main).
# -O keeps Swift's bounds and overflow checks (only -Ounchecked drops them): a trap is a finding.
SAN="-sanitize=fuzzer,address"
SWIFTFLAGS="$SAN -O -g -parse-as-library -I $OUT/mod -I $SRC/COpenSSL -I $SRC/CZlib -I $ROOT/Fuzz/modulemaps/PAMShim -I $ROOT/Fuzz/modulemaps/CTwoStepSys"

rebuilt=""
# module NAME [extra flags] -- sources...
module() {
    name=$1; shift
    flags=""
    while [ "$1" != "--" ]; do flags="$flags $1"; shift; done
    shift
    obj=$OUT/obj/$name.o
    # Rebuild when a source is newer than the object, or a module built before it was rebuilt.
    if [ -z "$rebuilt" ] && [ -f "$obj" ] && [ -z "$(find "$@" -newer "$obj" 2>/dev/null)" ]; then return 0; fi
    rebuilt=1
    echo "swiftc $name"
    # shellcheck disable=SC2086
    "$SWIFTC" $SWIFTFLAGS $flags -module-name "$name" -wmo -c "$@" \
        -emit-module -emit-module-path "$OUT/mod/$name.swiftmodule" -o "$obj"
}

module TwoStepProtocol -- "$SRC"/TwoStepProtocol/*.swift
module TwoStepCrypto -- "$SRC"/TwoStepCrypto/*.swift
module TwoStepCore -- "$SRC"/TwoStepCore/*.swift
module TwoStepSystem -- "$SRC"/TwoStepSystem/*.swift
module TwoStepStore -- "$SRC"/TwoStepStore/*.swift
# The store reaches the syscall seam, whose C part is CTwoStepSys: every one of its C files.
CSYS=""
for c in "$SRC"/CTwoStepSys/*.c; do
    o=$OUT/obj/CTwoStepSys-$(basename "$c" .c).o
    CSYS="$CSYS $o"
    if [ ! -f "$o" ] || [ -n "$(find "$c" "$SRC"/CTwoStepSys/include "$SRC"/CTwoStepSys/*.h -newer "$o" 2>/dev/null)" ]; then
        echo "clang CTwoStepSys/$(basename "$c")"
        "$CLANG" -fsanitize=fuzzer-no-link,address -O1 -g -I "$SRC/CTwoStepSys/include" -c "$c" -o "$o"
    fi
done

targets=${*:-$(cd Fuzz/Targets && ls *.swift | sed 's/\.swift$//')}
for t in $targets; do
    exe=$OUT/fuzz-$t
    case $t in
        frames) extra=""; objs="$OUT/obj/TwoStepProtocol.o"; libs="" ;;
        *) extra=""; objs="$OUT/obj/TwoStepProtocol.o $OUT/obj/TwoStepCrypto.o $OUT/obj/TwoStepCore.o $OUT/obj/TwoStepSystem.o$CSYS $OUT/obj/TwoStepStore.o"; libs="-lcrypto -lz" ;;
    esac
    if [ -f "$exe" ] && [ -z "$(find Fuzz/Targets/$t.swift $objs $extra -newer "$exe" 2>/dev/null)" ]; then continue; fi
    echo "swiftc fuzz-$t"
    rm -f "$exe"
    # shellcheck disable=SC2086
    "$SWIFTC" $SWIFTFLAGS -module-name "Fuzz_$t" "Fuzz/Targets/$t.swift" $extra $objs $libs \
        -o "$exe" 2>&1 | grep -v "Cannot export local symbol '__asan" >&2 || true
    [ -x "$exe" ] || { echo "build of fuzz-$t failed" >&2; exit 1; }
done
