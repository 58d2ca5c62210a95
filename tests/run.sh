#!/bin/sh
# tests/run.sh BUILD_DIR — the whole suite: every tests/**/*.kp and
# examples/*.kp script against its expectations, the embedding examples,
# every C test binary and the tool checks.
#
# A script's expectations are comments:
#   -- expect: TEXT          the next line of stdout is TEXT
#   -- expect-error: TEXT    stderr contains TEXT (the run must fail)
#   -- expect-exit: N        the exit code is N (default 0, or 1/2 with errors)
#   -- flags: ...            extra flags for keep
#   -- args: ...             the script's arguments (@TMP@: a scratch dir
#                            of this script's own)
#   -- stdin: TEXT           a line of the script's standard input (each
#                            such comment one line, in order; none: empty)
# examples/X.kp is checked against examples/X.out.  Every script runs with
# --check-leaks (plus $KEEP_TEST_FLAGS, e.g. --debug-alloc).
#
# The checks run $KEEP_TEST_JOBS at a time (default: the machine's cores),
# each in a scratch directory of its own; the failures are reported in the
# order of the list, then "N passed, M failed".  KP_TESTS, if set, is the
# list of scripts to run instead of every tests/**/*.kp (tests/modules/lib/
# holds the modules those tests import: not scripts of their own).
B=${1:-build}
KEEP=$B/keep

# ---------------------------------------------------------- one check
# Each check_* sets ok (1 or 0) and msg (what went wrong), working in $w.

run_script() {
  f=$1
  flags=$(sed -n 's/^.*-- flags: //p' "$f" | head -1)
  # `-- args: ...` are the script's system.args; @TMP@ is a scratch
  # directory of this check (for files a test makes: never in the tree)
  mkdir -p "$w/scratch"
  args=$(sed -n 's/^.*-- args: //p' "$f" | head -1 | sed "s|@TMP@|$w/scratch|g")
  # `-- stdin: TEXT` lines are the standard input, one line each
  sed -n 's/^.*-- stdin: \{0,1\}//p' "$f" >"$w/in"
  # shellcheck disable=SC2086
  timeout 60 "$KEEP" --check-leaks $KEEP_TEST_FLAGS $flags "$f" $args >"$w/out" 2>"$w/err" <"$w/in"
  rc=$?
}

check_script() {
  f=$1
  run_script "$f"
  sed -n 's/^.*-- expect: \{0,1\}//p' "$f" >"$w/want"
  want_exit=$(sed -n 's/^.*-- expect-exit: //p' "$f" | head -1)
  errs=$(sed -n 's/^.*-- expect-error: //p' "$f")
  if [ -z "$want_exit" ]; then
    if [ -n "$errs" ]; then want_exit=any-error; else want_exit=0; fi
  fi
  ok=1
  msg=""
  if ! cmp -s "$w/want" "$w/out"; then
    ok=0
    msg="stdout differs:
$(diff "$w/want" "$w/out" | head -20)"
  fi
  if [ "$want_exit" = any-error ]; then
    if [ "$rc" = 0 ] || [ "$rc" -ge 124 ]; then ok=0; msg="$msg
expected an error exit, got $rc"; fi
  elif [ "$rc" != "$want_exit" ]; then
    ok=0
    msg="$msg
exit code $rc, expected $want_exit
$(head -c 2000 "$w/err")"
  fi
  if [ -n "$errs" ]; then
    # match against stderr without the echoed source lines (the line after
    # each "file:line:col: error:" header), so that a test whose expected
    # text merely appears in its own source cannot pass; an expectation
    # that is itself an indented echo line (format tests) sees everything
    awk '{ if (skip) { skip = 0; next } print } /^[^ ].*:[0-9]+:[0-9]+: (error|runtime error): /{ skip = 1 }' \
      "$w/err" >"$w/err_msgs"
    echo "$errs" | while IFS= read -r e; do
      case "$e" in
        "    "*) grep -qF -- "$e" "$w/err" ;;
        *) grep -qF -- "$e" "$w/err_msgs" ;;
      esac || echo "missing error text: $e"
    done >"$w/miss"
    if [ -s "$w/miss" ]; then ok=0; msg="$msg
$(cat "$w/miss")
stderr was:
$(head -c 1500 "$w/err")"; fi
  elif [ "$want_exit" = 0 ] && [ -s "$w/err" ]; then
    ok=0
    msg="$msg
unexpected stderr:
$(head -c 1500 "$w/err")"
  fi
}

check_example() {
  f=$1
  run_script "$f"
  exp="${f%.kp}.out"
  ok=0
  msg=""
  if [ "$rc" = 0 ] && [ -f "$exp" ] && cmp -s "$exp" "$w/out" && [ ! -s "$w/err" ]; then
    ok=1
  else
    msg="exit $rc
$(diff "$exp" "$w/out" | head -20)
$(head -c 1500 "$w/err")"
  fi
}

# embedding hosts: examples/embed/X.c is built as $B/embed/X and must print
# examples/embed/X.out (run from the repository root)
check_host() {
  h=$1
  exp="examples/embed/$(basename "$h").out"
  timeout 60 "$h" >"$w/out" 2>"$w/err" </dev/null
  rc=$?
  ok=0
  msg=""
  if [ "$rc" = 0 ] && [ -f "$exp" ] && cmp -s "$exp" "$w/out"; then
    ok=1
  else
    msg="exit $rc
$(diff "$exp" "$w/out" 2>&1 | head -20)
$(head -c 1500 "$w/err")"
  fi
}

# a C test binary prints "N passed, M failed" last
check_ctest() {
  t=$1
  out=$("$t" 2>"$w/cerr")
  rc=$?
  line=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -1)
  p=$(echo "$line" | sed -n 's/^\([0-9]*\) passed.*/\1/p')
  fl=$(echo "$line" | sed -n 's/.* \([0-9]*\) failed.*/\1/p')
  ok=0
  msg=""
  if [ "$rc" = 0 ] && [ -n "$p" ] && [ "$fl" = 0 ]; then
    ok=1
  else
    msg="exit $rc: $line
$(head -c 1500 "$w/cerr")"
  fi
}

# tool checks that print their own "N passed, M failed": the formatter
# over every .kp file (tests/fmt/check.sh), the editor grammars against the
# lexer (tests/editors/check.sh), the programs of docs/tutorial.md
# (tests/docs/check.sh), --emit=ownership against --trace-ownership on
# every script (tests/ownership/agree.sh), the hostile inputs made at test
# time (tests/robustness/hostile.sh), one iteration of each Are We Fast Yet
# port of bench/awfy/ (tests/bench/awfy_smoke.sh)
check_tool() {
  t=$1
  out=$(sh "$t" "$B" 2>&1)
  line=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -1)
  ok=0
  msg=""
  if [ -n "$line" ] && [ "$(echo "$line" | sed -n 's/.* \([0-9]*\) failed.*/\1/p')" = 0 ]; then
    ok=1
  else
    msg="$line
$(printf '%s\n' "$out" | grep -v '^[0-9]* passed' | head -20)"
  fi
}

# `tests/run.sh --one B DIR N KIND PATH`: one check, its result in DIR/r.N
# (first line pass or fail, then the message)
if [ "$1" = --one ]; then
  B=$2 KEEP=$2/keep
  dir=$3 n=$4 kind=$5 path=$6
  w=$dir/w.$n
  mkdir -p "$w"
  "check_$kind" "$path"
  if [ "$ok" = 1 ]; then echo pass >"$dir/r.$n"; else printf 'fail\n%s\n' "$msg" >"$dir/r.$n"; fi
  rm -rf "$w"
  exit 0
fi

# ---------------------------------------------------------- the list
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
{
  for f in ${KP_TESTS:-$(find tests -name '*.kp' -not -path 'tests/todo/*' -not -path 'tests/modules/lib/*' | sort)}; do echo "script $f"; done
  for f in examples/*.kp; do [ -f "$f" ] && echo "example $f"; done
  for h in "$B"/embed/*; do [ -x "$h" ] && echo "host $h"; done
  for t in "$B"/tests/test_*; do [ -x "$t" ] && echo "ctest $t"; done
  for t in tests/fmt/check.sh tests/editors/check.sh tests/docs/check.sh tests/ownership/agree.sh tests/robustness/hostile.sh tests/bench/awfy_smoke.sh; do
    [ -f "$t" ] && echo "tool $t"
  done
} | awk '{ print NR, $0 }' >"$tmp/list"

jobs=${KEEP_TEST_JOBS:-$(nproc 2>/dev/null || echo 1)}
# the longest checks (the tool checks run the whole suite again) start first
{ grep ' tool ' "$tmp/list"; grep -v ' tool ' "$tmp/list"; } |
  while read -r n kind path; do printf '%s\n%s\n%s\n' "$n" "$kind" "$path"; done |
  xargs -n 3 -P "$jobs" sh "$0" --one "$B" "$tmp" 2>/dev/null ||
  true

pass=0
fail=0
while read -r n kind path; do
  r="$tmp/r.$n"
  if [ -f "$r" ] && [ "$(head -1 "$r")" = pass ]; then
    pass=$((pass + 1))
  else
    fail=$((fail + 1))
    echo "FAIL: $path" >&2
    if [ -f "$r" ]; then tail -n +2 "$r" | head -20 | sed 's/^/    /' >&2; else echo "    (no result)" >&2; fi
  fi
done <"$tmp/list"

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
