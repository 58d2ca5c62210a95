#!/bin/sh
# tests/bench/awfy_smoke.sh BUILD_DIR — each Are We Fast Yet port of
# bench/awfy/ runs one iteration (its first argument) under --check-leaks
# and must print its verification line ending in "true"; where lua5.4 is
# installed, its Lua twin must print the same line.  No timing here: the
# timings are `make bench`'s (bench/run.sh).
B=${1:-build}
KEEP=$B/keep
pass=0
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for kp in bench/awfy/*.kp; do
    [ -f "$kp" ] || continue
    name=$(basename "$kp" .kp)
    if ! timeout 60 "$KEEP" --check-leaks "$kp" 1 >"$tmp/out" 2>"$tmp/err"; then
        echo "FAIL $kp: exit $? $(head -c 500 "$tmp/err")"
        fail=$((fail + 1))
        continue
    fi
    if [ -s "$tmp/err" ] || ! tail -n 1 "$tmp/out" | grep -q ' true$'; then
        echo "FAIL $kp: $(tail -n 1 "$tmp/out") $(head -c 500 "$tmp/err")"
        fail=$((fail + 1))
        continue
    fi
    lua_src=bench/awfy/$name.lua
    if command -v lua5.4 >/dev/null 2>&1 && [ -f "$lua_src" ]; then
        if ! timeout 60 lua5.4 "$lua_src" 1 >"$tmp/lua" 2>&1 || ! cmp -s "$tmp/out" "$tmp/lua"; then
            echo "FAIL $lua_src: prints $(head -n 1 "$tmp/lua"), Keep $(head -n 1 "$tmp/out")"
            fail=$((fail + 1))
            continue
        fi
    fi
    pass=$((pass + 1))
done
# the parallel benchmarks (bench/parallel/): a small size with one worker
# and with two, the same output, no leak
for kp in bench/parallel/*.kp; do
    [ -f "$kp" ] || continue
    case $(basename "$kp") in mandelbrot.kp) arg=500 ;; *) arg=2000 ;; esac
    if ! timeout 60 "$KEEP" --check-leaks --threads 1 "$kp" $arg >"$tmp/t1" 2>"$tmp/err" ||
        ! timeout 60 "$KEEP" --check-leaks --threads 2 "$kp" $arg >"$tmp/t2" 2>>"$tmp/err" ||
        [ -s "$tmp/err" ] || ! cmp -s "$tmp/t1" "$tmp/t2" || ! [ -s "$tmp/t1" ]; then
        echo "FAIL $kp: $(head -c 300 "$tmp/t1") / $(head -c 300 "$tmp/t2") $(head -c 500 "$tmp/err")"
        fail=$((fail + 1))
        continue
    fi
    pass=$((pass + 1))
done
echo "$pass passed, $fail failed"
