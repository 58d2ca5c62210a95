#!/bin/sh
# tests/run.sh BUILD_DIR — the whole suite: every tests/**/*.kp and
# examples/*.kp script against its expectations, then every C test binary.
#
# A script's expectations are comments:
#   -- expect: TEXT          the next line of stdout is TEXT
#   -- expect-error: TEXT    stderr contains TEXT (the run must fail)
#   -- expect-exit: N        the exit code is N (default 0, or 1/2 with errors)
#   -- flags: ...            extra flags for keep
#   -- args: ...             the script's arguments (@TMP@: a scratch dir)
#   -- stdin: TEXT           a line of the script's standard input (each
#                            such comment one line, in order; none: empty)
# examples/X.kp is checked against examples/X.out.  Every script runs with
# --check-leaks (plus $KEEP_TEST_FLAGS, e.g. --debug-alloc).
B=${1:-build}
KEEP=$B/keep
pass=0
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

report_fail() {
  fail=$((fail + 1))
  echo "FAIL: $1" >&2
  [ -n "$2" ] && printf '%s\n' "$2" | head -20 | sed 's/^/    /' >&2
}

run_script() {
  f=$1
  flags=$(sed -n 's/^.*-- flags: //p' "$f" | head -1)
  # `-- args: ...` are the script's system.args; @TMP@ is a scratch
  # directory of this run (for files a test makes: never in the tree)
  args=$(sed -n 's/^.*-- args: //p' "$f" | head -1 | sed "s|@TMP@|$tmp|g")
  # `-- stdin: TEXT` lines are the standard input, one line each
  sed -n 's/^.*-- stdin: \{0,1\}//p' "$f" >"$tmp/in"
  # shellcheck disable=SC2086
  timeout 60 "$KEEP" --check-leaks $KEEP_TEST_FLAGS $flags "$f" $args >"$tmp/out" 2>"$tmp/err" <"$tmp/in"
  echo $? >"$tmp/rc"
}

for f in ${KP_TESTS:-$(find tests -name '*.kp' -not -path 'tests/todo/*' | sort)}; do
  run_script "$f"
  rc=$(cat "$tmp/rc")
  sed -n 's/^.*-- expect: \{0,1\}//p' "$f" >"$tmp/want"
  want_exit=$(sed -n 's/^.*-- expect-exit: //p' "$f" | head -1)
  errs=$(sed -n 's/^.*-- expect-error: //p' "$f")
  if [ -z "$want_exit" ]; then
    if [ -n "$errs" ]; then want_exit=any-error; else want_exit=0; fi
  fi
  ok=1
  msg=""
  if ! cmp -s "$tmp/want" "$tmp/out"; then
    ok=0
    msg="stdout differs:
$(diff "$tmp/want" "$tmp/out" | head -20)"
  fi
  if [ "$want_exit" = any-error ]; then
    if [ "$rc" = 0 ] || [ "$rc" -ge 124 ]; then ok=0; msg="$msg
expected an error exit, got $rc"; fi
  elif [ "$rc" != "$want_exit" ]; then
    ok=0
    msg="$msg
exit code $rc, expected $want_exit
$(head -c 2000 "$tmp/err")"
  fi
  if [ -n "$errs" ]; then
    # match against stderr without the echoed source lines (the line after
    # each "file:line:col: error:" header), so that a test whose expected
    # text merely appears in its own source cannot pass; an expectation
    # that is itself an indented echo line (format tests) sees everything
    awk '{ if (skip) { skip = 0; next } print } /^[^ ].*:[0-9]+:[0-9]+: (error|runtime error): /{ skip = 1 }' \
      "$tmp/err" >"$tmp/err_msgs"
    echo "$errs" | while IFS= read -r e; do
      case "$e" in
        "    "*) grep -qF -- "$e" "$tmp/err" ;;
        *) grep -qF -- "$e" "$tmp/err_msgs" ;;
      esac || echo "missing error text: $e"
    done >"$tmp/miss"
    if [ -s "$tmp/miss" ]; then ok=0; msg="$msg
$(cat "$tmp/miss")
stderr was:
$(head -c 1500 "$tmp/err")"; fi
  elif [ "$want_exit" = 0 ] && [ -s "$tmp/err" ]; then
    ok=0
    msg="$msg
unexpected stderr:
$(head -c 1500 "$tmp/err")"
  fi
  if [ $ok = 1 ]; then pass=$((pass + 1)); else report_fail "$f" "$msg"; fi
done

for f in examples/*.kp; do
  [ -f "$f" ] || continue
  run_script "$f"
  rc=$(cat "$tmp/rc")
  exp="${f%.kp}.out"
  if [ "$rc" = 0 ] && [ -f "$exp" ] && cmp -s "$exp" "$tmp/out" && [ ! -s "$tmp/err" ]; then
    pass=$((pass + 1))
  else
    report_fail "$f" "exit $rc
$(diff "$exp" "$tmp/out" | head -20)
$(head -c 1500 "$tmp/err")"
  fi
done

# embedding hosts: examples/embed/X.c is built as $B/embed/X and must print
# examples/embed/X.out (run from the repository root)
for h in "$B"/embed/*; do
  [ -x "$h" ] || continue
  name=$(basename "$h")
  exp="examples/embed/$name.out"
  timeout 60 "$h" >"$tmp/out" 2>"$tmp/err" </dev/null
  rc=$?
  if [ "$rc" = 0 ] && [ -f "$exp" ] && cmp -s "$exp" "$tmp/out"; then
    pass=$((pass + 1))
  else
    report_fail "$h" "exit $rc
$(diff "$exp" "$tmp/out" 2>&1 | head -20)
$(head -c 1500 "$tmp/err")"
  fi
done

for t in "$B"/tests/test_*; do
  [ -x "$t" ] || continue
  out=$("$t" 2>"$tmp/cerr")
  rc=$?
  line=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -1)
  p=$(echo "$line" | sed -n 's/^\([0-9]*\) passed.*/\1/p')
  fl=$(echo "$line" | sed -n 's/.* \([0-9]*\) failed.*/\1/p')
  if [ "$rc" = 0 ] && [ -n "$p" ] && [ "$fl" = 0 ]; then
    pass=$((pass + 1))
  else
    report_fail "$t" "exit $rc: $line
$(head -c 1500 "$tmp/cerr")"
  fi
done

# tool checks that print their own "N passed, M failed": the formatter
# over every .kp file (tests/fmt/check.sh), the editor grammars against the
# lexer (tests/editors/check.sh), the programs of docs/tutorial.md
# (tests/docs/check.sh), --emit=ownership against --trace-ownership on
# every script (tests/ownership/agree.sh), the hostile inputs made at test
# time (tests/robustness/hostile.sh)
for t in tests/fmt/check.sh tests/editors/check.sh tests/docs/check.sh tests/ownership/agree.sh tests/robustness/hostile.sh; do
  [ -f "$t" ] || continue
  out=$(sh "$t" "$B" 2>&1)
  line=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -1)
  if [ -n "$line" ] && [ "$(echo "$line" | sed -n 's/.* \([0-9]*\) failed.*/\1/p')" = 0 ]; then
    pass=$((pass + 1))
  else
    report_fail "$t" "$line
$(printf '%s\n' "$out" | grep -v '^[0-9]* passed' | head -20)"
  fi
done

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
