#!/bin/sh
# Keep vs Lua 5.4 benchmarks.
#   usage: sh bench/run.sh KEEP_BINARY [LUA_BINARY [EMBED_DIR]]
# For every bench/NAME.kp with a twin bench/NAME.lua, then every
# bench/awfy/NAME.kp with its twin bench/awfy/NAME.lua (the Are We Fast Yet
# suite, rows awfy/NAME, summarized by the geometric mean of their ratios
# at the end): run each version three
# times, keep the best wall-clock time, check both print the same output, and
# print a table  name  keep_s  lua_s  ratio  (ratio = keep_s / lua_s; lower is
# better for Keep).  Always exits 0: a Keep failure is reported as FAILED.
# EMBED_DIR (default: the Keep binary's directory/bench) holds the two C
# hosts of bench/embed/ (built by `make bench`): embed_keep and embed_lua,
# each run as `call` (the host calls a script function 1M times: kp_call vs
# lua_pcall) and `native` (a script calls a C function 10M times).
# Then every bench/parallel/NAME.kp runs with --threads 1 and --threads 2:
# the speed-up of its parallel calls on two cores (no Lua twin: Lua has no
# threads inside one interpreter).
# BENCH_ONLY, if set, is a shell pattern of the rows to run ('awfy/*',
# 'awfy/nbody'); the embedding rows run only when it is unset.

KEEP=${1:-build/keep}
LUA=${2:-lua5.4}
DIR=$(cd "$(dirname "$0")" && pwd)
TMP=${TMPDIR:-/tmp}/keep-bench.$$
mkdir -p "$TMP"
trap 'rm -rf "$TMP"' EXIT INT TERM

now() { date +%s.%N; }

# best_of3 OUTFILE CMD... : runs CMD three times, stdout to OUTFILE;
# prints the best wall time in seconds, or FAILED if any run fails.
best_of3() {
    out=$1; shift
    best=""
    n=0
    while [ $n -lt 3 ]; do
        t0=$(now)
        if ! "$@" >"$out" 2>"$out.err"; then
            echo FAILED
            return 1
        fi
        t1=$(now)
        best=$(awk -v a="$t0" -v b="$t1" -v best="$best" \
            'BEGIN { d = b - a; if (best == "" || d < best) best = d; printf "%.3f", best }')
        n=$((n + 1))
    done
    echo "$best"
}

# row NAME KEEP_OUT LUA_OUT KEEP_T LUA_T: prints the table row of one
# benchmark and appends its ratio line to RATIOS (FAILED, with the reason,
# when a side failed or the outputs differ).
row() {
    name=$1 kout=$2 lout=$3 keep_t=$4 lua_t=$5
    note=""
    if [ "$keep_t" = FAILED ]; then
        ratio=FAILED
        note="keep failed: $(head -n 3 "$kout.err" 2>/dev/null | tr '\n' ' ')"
    elif [ "$lua_t" = FAILED ]; then
        ratio=FAILED
        note="lua failed"
    elif ! cmp -s "$kout" "$lout"; then
        ratio=FAILED
        note="outputs differ"
    else
        ratio=$(awk -v k="$keep_t" -v l="$lua_t" \
            'BEGIN { if (l > 0) printf "%.2f", k / l; else print "inf" }')
    fi
    printf '%-16s %10s %10s %10s\n' "$name" "$keep_t" "$lua_t" "$ratio"
    RATIOS="$RATIOS$name: keep/lua = $ratio${note:+ ($note)}
"
}

if ! command -v "$LUA" >/dev/null 2>&1; then
    echo "bench: $LUA not found (apt-get install lua5.4)"
    exit 0
fi
if [ ! -x "$KEEP" ]; then
    echo "bench: warning: Keep binary '$KEEP' is missing or not executable"
fi

printf '%-16s %10s %10s %10s\n' name keep_s lua_s ratio
RATIOS=""
AWFY_RATIOS=""
# run_dir SUBDIR PREFIX: a row for every SUBDIR/NAME.kp with its Lua twin,
# named PREFIX/NAME; bench/awfy/ is the Are We Fast Yet suite, whose ratios
# also go to AWFY_RATIOS for their geometric mean
run_dir() {
    sub=$1 prefix=$2
    for kp in "$sub"/*.kp; do
        [ -f "$kp" ] || continue
        name=$(basename "$kp" .kp)
        lua_src="$sub/$name.lua"
        # a Keep variant may name its Lua twin: `-- lua-twin: binary_trees.lua`
        twin=$(sed -n 's/^-- lua-twin: *//p' "$kp" | head -1)
        [ -n "$twin" ] && lua_src="$sub/$twin"
        [ -f "$lua_src" ] || continue
        # BENCH_ONLY (a shell pattern, e.g. 'awfy/*') picks the rows to run
        case "$prefix$name" in ${BENCH_ONLY:-*}) ;; *) continue ;; esac
        lua_name=$(basename "$lua_src" .lua)

        if [ -f "$TMP/$prefix$lua_name.lua.time" ]; then
            lua_t=$(cat "$TMP/$prefix$lua_name.lua.time")
        else
            lua_t=$(best_of3 "$TMP/$prefix$lua_name.lua.out" "$LUA" "$lua_src")
            echo "$lua_t" >"$TMP/$prefix$lua_name.lua.time"
        fi
        keep_t=$(best_of3 "$TMP/$prefix$name.keep.out" "$KEEP" "$kp")
        row "$prefix$name" "$TMP/$prefix$name.keep.out" "$TMP/$prefix$lua_name.lua.out" "$keep_t" "$lua_t"
        [ -n "$prefix" ] && AWFY_RATIOS="$AWFY_RATIOS $ratio"
    done
}
mkdir -p "$TMP/awfy"
run_dir "$DIR" ""
run_dir "$DIR/awfy" "awfy/"
# the embedding API: the same C host work through keep.h and through lua.h
EMBED=${3:-$(dirname "$KEEP")/bench}
if [ -n "$BENCH_ONLY" ]; then
    :
elif [ -x "$EMBED/embed_keep" ] && [ -x "$EMBED/embed_lua" ]; then
    for mode in call native; do
        name="embed_$mode"
        lua_t=$(best_of3 "$TMP/$name.lua.out" "$EMBED/embed_lua" "$mode")
        keep_t=$(best_of3 "$TMP/$name.keep.out" "$EMBED/embed_keep" "$mode")
        row "$name" "$TMP/$name.keep.out" "$TMP/$name.lua.out" "$keep_t" "$lua_t"
    done
else
    echo "bench: no embedding hosts in $EMBED (make bench builds them)"
fi
# parallel calls (bench/parallel/): the same program with one worker and
# with two, its speed-up (t1 / t2; higher is better), the outputs equal
PAR=""
for kp in "$DIR"/parallel/*.kp; do
    [ -f "$kp" ] || continue
    name=parallel/$(basename "$kp" .kp)
    case "$name" in ${BENCH_ONLY:-*}) ;; *) continue ;; esac
    t1=$(best_of3 "$TMP/p1.out" "$KEEP" --threads 1 "$kp")
    t2=$(best_of3 "$TMP/p2.out" "$KEEP" --threads 2 "$kp")
    if [ "$t1" = FAILED ] || [ "$t2" = FAILED ]; then sp=FAILED
    elif ! cmp -s "$TMP/p1.out" "$TMP/p2.out"; then sp="FAILED (outputs differ)"
    else sp=$(awk -v a="$t1" -v b="$t2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "inf" }'); fi
    [ -z "$PAR" ] && PAR=$(printf '%-24s %10s %10s %10s' name threads_1 threads_2 speed-up)
    PAR="$PAR
$(printf '%-24s %10s %10s %10s' "$name" "$t1" "$t2" "$sp")"
done
[ -n "$PAR" ] && printf '\n%s\n' "$PAR"
echo
printf '%s' "$RATIOS"
# the Are We Fast Yet summary: every ratio, and their geometric mean over
# the benchmarks that ran and agreed with Lua
echo "$AWFY_RATIOS" | awk '{
    n = 0; failed = 0; s = 0
    for (i = 1; i <= NF; i++) {
        if ($i == "FAILED" || $i == "inf" || $i + 0 <= 0) failed++
        else { n++; s += log($i) }
    }
    if (NF == 0) exit
    printf "awfy ratios:%s\n", $0
    if (n > 0) printf "awfy geomean keep/lua = %.2f over %d benchmarks", exp(s / n), n
    else printf "awfy geomean: no benchmark ran"
    if (failed > 0) printf " (%d FAILED, not counted)", failed
    printf "\n"
}'
exit 0
