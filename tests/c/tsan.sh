#!/bin/sh
# ThreadSanitizer runs of the thread tests:
#  1. tests/c/test_alloc_threads.c with the allocators (alloc/);
#  2. tests/c/test_embed_threads.c with the whole library (every library
#     source — the Makefile's list, `make print-lib-src`, so a new module
#     folder is included — plus the generated lexer and parser from
#     build/gen, made with `make` if missing), all built with clang
#     -fsanitize=thread.  It runs VMs on 8 threads, including the embedding
#     features (host types, globals from C, on_diagnostic, re-entrant runs,
#     kp_pin_bytes).
# Prints each test's "N passed, M failed" line.  Exit status is nonzero when
# a check fails or TSan reports a race.
# Usage: sh tests/c/tsan.sh [build-dir]   (run from the repository root)
set -e
B=${1:-build/tsan}
CC=${TSAN_CC:-clang}
GEN=${KEEP_GEN:-build/gen}
TSAN="-O1 -g -fsanitize=thread -fno-omit-frame-pointer"
export TSAN_OPTIONS="halt_on_error=1 exitcode=66 ${TSAN_OPTIONS:-}"
mkdir -p "$B"

# 1. the allocators
$CC -std=c11 -D_GNU_SOURCE -Wall -Wextra $TSAN -I. -Iinclude \
    -o "$B/test_alloc_threads" tests/c/test_alloc_threads.c alloc/*.c -lpthread
"$B/test_alloc_threads"

# 2. the whole library under many VMs in many threads
if [ ! -f "$GEN/lexer.c" ] || [ ! -f "$GEN/grammar.c" ]; then
    make --no-print-directory "$GEN/lexer.c" "$GEN/grammar.c" >/dev/null
fi
mkdir -p "$B/obj"
objs=""
pids=""
jobs=$(nproc 2>/dev/null || echo 2)
n=0
# the library's sources as the Makefile lists them (every module folder)
lib_src=$(make --no-print-directory -s print-lib-src)
[ -n "$lib_src" ] || { echo "tsan.sh: make print-lib-src listed no sources" >&2; exit 1; }
# shellcheck disable=SC2086
for src in $lib_src "$GEN/lexer.c" "$GEN/grammar.c"; do
    obj="$B/obj/$(echo "$src" | tr '/' '_' | sed 's/\.c$/.o/')"
    case "$src" in
    "$GEN"/*) flags="-Wno-unused-variable -Wno-unused-parameter -I. -I$GEN -Ilexer -Iparser" ;;
    *) flags="-Wall -Wextra -Wno-unused-parameter -I. -I$GEN -Iinclude" ;;
    esac
    # shellcheck disable=SC2086
    $CC -std=c11 -D_GNU_SOURCE $TSAN $flags -c "$src" -o "$obj" &
    pids="$pids $!"
    objs="$objs $obj"
    n=$((n + 1))
    if [ $((n % jobs)) = 0 ]; then
        for p in $pids; do wait "$p"; done
        pids=""
    fi
done
for p in $pids; do wait "$p"; done
# shellcheck disable=SC2086
$CC -std=c11 -D_GNU_SOURCE -Wall -Wextra $TSAN -Iinclude \
    -o "$B/test_embed_threads" tests/c/test_embed_threads.c $objs -lm -lpthread
"$B/test_embed_threads"
