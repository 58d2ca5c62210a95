#!/bin/sh
# tests/robustness/hostile.sh BUILD_DIR — hostile inputs too big to keep in
# the repository, made here at test time (awk, no stored data) in a
# scratch directory and run with BUILD_DIR/keep --check-leaks.  Each must
# end as expected: its exit code, and its clean error — "file:line:col:"
# and the message — on stderr (a crash, a sanitizer report, a timeout or
# a leak fails it).  Prints "N passed, M failed" (tests/run.sh runs it).
#
#   vars_1e5      100,000 top-level variables, then 100,000 statements
#                 adding each to a total: they compile and run (those past
#                 main's first 16,384 registers live in the far region,
#                 vm/vm.h KpVM.globals) and print the right sum
#   far_globals   16,400 top-level Ints fill main's registers; the
#                 variables declared after them are far globals, used in
#                 every way a top-level variable can be (records with a
#                 deinit, strings, references, moves, keep, defer, loops,
#                 pipes, functions reading and writing them): the output
#                 is that of the same program without the filler, and
#                 --emit=ownership agrees with --trace-ownership on it
#   vars_29k      29,000 top-level variables: they compile and run
#   list_3m       a 3 MB list literal (600,000 elements): it runs
#   list_30m      a 30 MB list literal (`xs := [0, 1, 2, ...]`, 3.4 million
#                 Int literals) runs within 10 times its size of memory:
#                 under `ulimit -v` of ten times the file (address space,
#                 so a bound on the peak RSS too; not under ASan, whose
#                 shadow memory is address space); its literals are packed
#                 by the parser, one constant for the compiler (ast.h)
#   devzero       /dev/zero as the script: refused, not a regular file
#   fifo          a named pipe as the script: refused the same way
#   parens_1e6    a million nested parentheses: "nested too deeply"
#   lists_1e6     a million nested list brackets, never closed
#   eq_chain      `==` chained a hundred thousand times deep in parentheses
#   keeps_1e6     a chain of a million keeps made by a loop: released
#                 without C recursion (see also keep_chain_million.kp)
#   eq_deep       `==` on lists nested 20,001 deep: an error, not `false`
#   string_64m    a 64 MB string literal: it runs
#   line_16m      one 16 MB line of `1 + 1 + ...`: "nested too deeply"
#   garbage_1m    a megabyte of pseudo-random bytes: a compile error
B=${1:-build}
KEEP=$B/keep
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0

# check NAME WANT_EXIT WANT_TEXT FILE [flags...]: WANT_TEXT is a fixed
# string that stderr must contain ("" for none: then stderr must be empty)
check() {
  name=$1 want=$2 text=$3 file=$4
  shift 4
  timeout 120 "$KEEP" --check-leaks "$@" "$file" >"$tmp/out" 2>"$tmp/err" </dev/null
  rc=$?
  ok=1
  [ "$rc" = "$want" ] || ok=0
  if [ -n "$text" ]; then grep -qF -- "$text" "$tmp/err" || ok=0
  elif [ -s "$tmp/err" ]; then ok=0; fi
  if [ $ok = 1 ]; then
    pass=$((pass + 1))
  else
    fail=$((fail + 1))
    echo "FAIL: hostile $name: exit $rc (want $want), want \"$text\"" >&2
    head -c 600 "$tmp/err" | sed 's/^/    /' >&2
  fi
}

# and the output, when it matters
check_out() {
  if ! grep -qxF -- "$1" "$tmp/out"; then
    fail=$((fail + 1))
    echo "FAIL: hostile $2: stdout lacks \"$1\"" >&2
  fi
}

awk 'BEGIN { for (i = 0; i < 100000; i++) printf "v%d := %d\n", i, i
  print "total := 0"; for (i = 0; i < 100000; i++) printf "total += v%d\n", i
  print "print(total, v99999 + v0)" }' >"$tmp/vars_1e5.kp"
check vars_1e5 0 "" "$tmp/vars_1e5.kp"
check_out "4999950000 99999" vars_1e5

cat >"$tmp/far_tail.kp" <<'EOF_KP'
P : Type = (.n : Int)
deinit (.p: $&P) -> () := { print("bye", p.n) }
a := P(.n = 1)
b := P(.n = 2)
s := "hello"
s = s + " world"
n := 5
n += 3
r := &n
print(s, n, r)
m := $&b
m.n = 20
c := b
print(c.n)
bump () := { n = n + 100 }
rename (.to: Int) := { a.n = to }
bump()
rename(.to = 10)
print(n, a.n)
xs := [1, 2, 3]
xs[1] = 9
push($&xs, 4)
total := 0
for x in xs { total += x }
print(xs, len(xs), total, xs | sum(_))
defer print("deferred")
k := P(.n = 7)
keep k
print(k.n)
deinit(k)
{ inner := P(.n = 30) }
print("end")
EOF_KP
awk 'BEGIN { for (i = 0; i < 16400; i++) printf "f%d := %d\n", i, i }' >"$tmp/far_globals.kp"
cat "$tmp/far_tail.kp" >>"$tmp/far_globals.kp"
check far_globals 0 "" "$tmp/far_globals.kp"
"$KEEP" "$tmp/far_tail.kp" >"$tmp/far_want" 2>&1
if ! cmp -s "$tmp/out" "$tmp/far_want"; then
  fail=$((fail + 1))
  echo "FAIL: hostile far_globals: the output differs from the program's without the filler" >&2
  diff "$tmp/far_want" "$tmp/out" | head -20 | sed 's/^/    /' >&2
fi
if ! KP_TESTS="$tmp/far_globals.kp" sh tests/ownership/agree.sh "$B" >"$tmp/agree" 2>&1; then
  fail=$((fail + 1))
  echo "FAIL: hostile far_globals: --emit=ownership disagrees with --trace-ownership" >&2
  tail -5 "$tmp/agree" | sed 's/^/    /' >&2
fi

awk 'BEGIN { for (i = 0; i < 29000; i++) printf "v%d := %d\n", i, i; print "print(v28999 + v1)" }' >"$tmp/vars_29k.kp"
check vars_29k 0 "" "$tmp/vars_29k.kp"
check_out 29000 vars_29k

awk 'BEGIN { printf "xs := ["; for (i = 0; i < 600000; i++) printf "%d, ", i % 1000; print "7]"; print "print(len(xs), xs[600000])" }' >"$tmp/list_3m.kp"
check list_3m 0 "" "$tmp/list_3m.kp"
check_out "600001 7" list_3m

check devzero 64 "cannot run '/dev/zero': not a regular file" /dev/zero
if mkfifo "$tmp/fifo.kp" 2>/dev/null; then
  check fifo 64 "fifo.kp': not a regular file" "$tmp/fifo.kp"
fi

awk 'BEGIN { printf "x := "; for (i = 0; i < 1000000; i++) printf "("; printf "1"; for (i = 0; i < 1000000; i++) printf ")"; print "" }' >"$tmp/parens_1e6.kp"
check parens_1e6 2 "parens_1e6.kp:1:" "$tmp/parens_1e6.kp"
grep -qF "nested too deeply" "$tmp/err" || { fail=$((fail + 1)); echo "FAIL: hostile parens_1e6: no 'nested too deeply'" >&2; }

awk 'BEGIN { printf "x := "; for (i = 0; i < 1000000; i++) printf "["; print "" }' >"$tmp/lists_1e6.kp"
check lists_1e6 2 "nested too deeply" "$tmp/lists_1e6.kp"

awk 'BEGIN { printf "x := "; for (i = 0; i < 100000; i++) printf "(1 == "; printf "1"; for (i = 0; i < 100000; i++) printf ")"; print "" }' >"$tmp/eq_chain.kp"
check eq_chain 2 "eq_chain.kp:1:" "$tmp/eq_chain.kp"

cat >"$tmp/keeps_1e6.kp" <<'KP'
V : Type = ( .n : Int )
g (n: Int) -> () := {
    h := V(.n = -1)
    p := &h
    i := 0
    while i < n {
        w := V(.n = i)
        keep w with p
        p = &w
        i += 1
    }
}
g(1000000)
print("released")
KP
check keeps_1e6 0 "" "$tmp/keeps_1e6.kp"
check_out released keeps_1e6

cat >"$tmp/eq_deep.kp" <<'KP'
a := [0]
b := [0]
i := 0
while i < 20000 {
    a = [a]
    b = [b]
    i += 1
}
print(a == b)
KP
check eq_deep 1 "eq_deep.kp:9:" "$tmp/eq_deep.kp"
grep -qF "nested" "$tmp/err" || { fail=$((fail + 1)); echo "FAIL: hostile eq_deep: no depth error" >&2; }

awk 'BEGIN { s = "abcdefghijklmnop"; for (i = 0; i < 12; i++) s = s s; printf "s := \""; for (i = 0; i < 1024; i++) printf "%s", s; print "\""; print "print(len(s))" }' >"$tmp/string_64m.kp"
check string_64m 0 "" "$tmp/string_64m.kp"
check_out 67108864 string_64m

awk 'BEGIN { s = "1 + 1 + 1 + 1 + "; for (i = 0; i < 20; i++) s = s s; printf "x := %s1\n", s }' >"$tmp/line_16m.kp"
check line_16m 2 "line_16m.kp:1:" "$tmp/line_16m.kp"

awk 'BEGIN { printf "xs := ["; n = 7; i = 0
  while (n < 30000000) { s = i ", "; printf "%s", s; n += length(s); i++ }
  print i "]"; print "print(len(xs), xs[" i "], xs[1234567])" }' >"$tmp/list_30m.kp"
size_kb=$(( $(wc -c <"$tmp/list_30m.kp") / 1024 ))
if [ -z "$ASAN_OPTIONS" ]; then
  (ulimit -v $((10 * size_kb)) && timeout 120 "$KEEP" "$tmp/list_30m.kp") >"$tmp/out" 2>"$tmp/err" </dev/null
else
  timeout 300 "$KEEP" "$tmp/list_30m.kp" >"$tmp/out" 2>"$tmp/err" </dev/null
fi
rc=$?
if [ "$rc" = 0 ] && [ ! -s "$tmp/err" ]; then pass=$((pass + 1)); else
  fail=$((fail + 1))
  echo "FAIL: hostile list_30m: exit $rc within $((10 * size_kb)) KB of address space" >&2
  head -c 300 "$tmp/err" | sed 's/^/    /' >&2
fi
check_out "3456791 3456790 1234567" list_30m
rm -f "$tmp/list_30m.kp"

awk 'BEGIN { srand(16); for (i = 0; i < 1048576; i++) printf "%c", int(rand() * 255) + 1 }' >"$tmp/garbage_1m.kp"
check garbage_1m 2 "garbage_1m.kp:1:" "$tmp/garbage_1m.kp"

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
