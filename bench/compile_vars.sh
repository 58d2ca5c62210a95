#!/bin/sh
# Compile time against program size: a generated program with 175,000
# variables — 100,000 top-level ones (past main's first 16,384 registers
# they live in the far region, vm/vm.h KpVM.globals) and three functions
# of 25,000 locals each — compiled and run once.  Compile time must grow
# linearly with variables and statements (name lookups are hashed:
# compiler/resolve.c, vm/state.c, compiler/summary.c); the target is well
# under one second.
#   usage: sh bench/compile_vars.sh [KEEP_BINARY]
KEEP=${1:-build/keep}
TMP=${TMPDIR:-/tmp}/keep-compile-vars.$$
trap 'rm -f "$TMP.kp"' EXIT INT TERM
awk 'BEGIN {
    for (i = 0; i < 100000; i++) printf "v%d := %d\n", i, i
    for (f = 0; f < 3; f++) {
        printf "f%d () -> Int := {\n", f
        for (i = 0; i < 25000; i++) printf "    l%d := %d\n", i, i
        printf "    return l0 + l24999\n}\n"
    }
    print "print(v0 + v99999 + f0() + f1() + f2())"
}' >"$TMP.kp"
t0=$(date +%s.%N)
out=$("$KEEP" "$TMP.kp") || exit 1
t1=$(date +%s.%N)
[ "$out" = 174996 ] || { echo "compile_vars: wrong result '$out'" >&2; exit 1; }
awk -v a="$t0" -v b="$t1" 'BEGIN { printf "compile_vars: 175000 variables (100000 top-level) in %.3f s\n", b - a }'
