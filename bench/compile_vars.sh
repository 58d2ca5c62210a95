#!/bin/sh
# Compile time against program size: a generated program with 100,000
# variables — 25,000 top-level ones (main's register limit is 30,000) and
# three functions of 25,000 locals each — compiled and run once.  Compile
# time must grow linearly with variables and statements (name lookups are
# hashed: compiler/resolve.c); the target is well under one second.
#   usage: sh bench/compile_vars.sh [KEEP_BINARY]
KEEP=${1:-build/keep}
TMP=${TMPDIR:-/tmp}/keep-compile-vars.$$
trap 'rm -f "$TMP.kp"' EXIT INT TERM
awk 'BEGIN {
    for (i = 0; i < 25000; i++) printf "v%d := %d\n", i, i
    for (f = 0; f < 3; f++) {
        printf "f%d () -> Int := {\n", f
        for (i = 0; i < 25000; i++) printf "    l%d := %d\n", i, i
        printf "    return l0 + l24999\n}\n"
    }
    print "print(v0 + v24999 + f0() + f1() + f2())"
}' >"$TMP.kp"
t0=$(date +%s.%N)
"$KEEP" "$TMP.kp" || exit 1
t1=$(date +%s.%N)
awk -v a="$t0" -v b="$t1" 'BEGIN { printf "compile_vars: 100000 variables in %.3f s\n", b - a }'
