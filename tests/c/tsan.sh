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
#  3. the parallel calls (parallel_map, parallel_for): tests/c/test_parallel.c
#     and a keep CLI built the same way, running every tests/parallel/*.kp
#     script with 2 and 4 workers (stdout checked against its -- expect:
#     lines, an expected error against -- expect-error:).
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

# 3. parallel calls: the C test, and the scripts through a TSan keep
# shellcheck disable=SC2086
$CC -std=c11 -D_GNU_SOURCE -Wall -Wextra $TSAN -Iinclude -Itests/c \
    -o "$B/test_parallel" tests/c/test_parallel.c $objs -lm -lpthread
"$B/test_parallel"
cli_objs=""
for src in cli/*.c; do
    obj="$B/obj/$(echo "$src" | tr '/' '_' | sed 's/\.c$/.o/')"
    $CC -std=c11 -D_GNU_SOURCE $TSAN -Wall -Wextra -Wno-unused-parameter -I. -I$GEN -Iinclude -c "$src" -o "$obj"
    cli_objs="$cli_objs $obj"
done
# shellcheck disable=SC2086
$CC $TSAN -o "$B/keep" $cli_objs $objs -ledit -lm -lpthread
set +e
np=0
nf=0
for f in tests/parallel/*.kp; do
    want=$(sed -n 's/^.*-- expect: \{0,1\}//p' "$f")
    errs=$(sed -n 's/^.*-- expect-error: //p' "$f")
    flags=$(sed -n 's/^.*-- flags: //p' "$f" | head -1)
    for t in 2 4; do
        # shellcheck disable=SC2086
        out=$("$B/keep" --threads $t $flags "$f" 2>"$B/err")
        rc=$?
        ok=1
        [ "$out" = "$want" ] || ok=0
        if [ "$rc" = 66 ] || grep -q "ThreadSanitizer" "$B/err"; then ok=0; fi
        want_exit=$(sed -n 's/^.*-- expect-exit: //p' "$f" | head -1)
        if [ -n "$want_exit" ]; then
            [ "$rc" = "$want_exit" ] || ok=0
        elif [ -n "$errs" ]; then
            [ "$rc" != 0 ] || ok=0
            echo "$errs" | while IFS= read -r e; do grep -qF -- "$e" "$B/err" || exit 1; done || ok=0
        elif [ "$rc" != 0 ]; then ok=0; fi
        if [ $ok = 1 ]; then np=$((np + 1)); else
            nf=$((nf + 1))
            echo "FAIL: $f (--threads $t), exit $rc"
            head -30 "$B/err"
        fi
    done
done
echo "$np passed, $nf failed (tests/parallel under ThreadSanitizer)"
[ "$nf" = 0 ]
