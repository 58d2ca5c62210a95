#!/bin/sh
# tests/fmt/check.sh BUILD_DIR — the formatter, `keep fmt` (fmt/fmt.c):
#  1. each tests/fmt/cases/NAME.in formats to NAME.want, and NAME.want is a
#     fixed point;
#  2. on every .kp file of the repository (examples/, tests/, bench/):
#     formatting is idempotent (fmt(fmt(x)) = fmt(x)), keeps every comment
#     (the same comment texts in the same order), and the same holds for the
#     file with all its indentation removed (a badly laid out input);
#  3. the formatted dedented file behaves as the original: same stdout, same
#     exit code, and the same diagnostics once positions (file:line:col) and
#     the echoed source lines are taken out — for every file outside
#     tests/robustness (hostile inputs, deep recursion: formatted, not run)
#     and bench/ (benchmarks run for seconds, minutes under the sanitizers:
#     formatted, not run);
#  4. the repository's own files are formatted (as .ci/run checks);
#  5. the command: --check, -w, a file that does not parse.
# Files that do not parse are not formatted (keep fmt exits 2) and skipped.
# Prints "N passed, M failed".
B=${1:-build}
KEEP=$B/keep
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
export LC_ALL=C

# 1. the cases
for c in tests/fmt/cases/*.in; do
  want=${c%.in}.want
  if "$KEEP" fmt "$c" >"$tmp/out" 2>"$tmp/err" && cmp -s "$tmp/out" "$want"; then ok; else
    bad "fmt $c differs from $want"; diff "$want" "$tmp/out" | head -10
  fi
  if "$KEEP" fmt "$want" | cmp -s - "$want"; then ok; else bad "$want is not a fixed point"; fi
done

# the comment texts of a file, one per line, from the lexer's token list
comments() {
  "$KEEP" fmt --tokens "$1" | awk -v f="$1" '
    BEGIN { n = 0; while ((getline l < f) > 0) line[++n] = l }
    $4 == "comment" { print substr(line[$1], $2, $3) }'
}

# what a run printed on stderr, without positions and echoed source lines
normalize_err() {
  sed -e "s|$2|FILE|g" -e 's/:[0-9][0-9]*:[0-9][0-9]*/:L:C/g' -e 's/\.kp:[0-9][0-9]*/.kp:L/g' \
      -e 's/line [0-9][0-9]*/line L/g' -e 's/ [0-9][0-9]*:[0-9][0-9]*/ L:C/g' "$1" | grep -v '^    ' | grep -v '^ *\^'
}

run() { # run FILE FLAGS -> $tmp/r.out $tmp/r.err $tmp/r.rc
  # shellcheck disable=SC2086
  timeout 60 "$KEEP" --check-leaks $2 "$1" >"$tmp/r.out" 2>"$tmp/r.err" </dev/null
  echo $? >"$tmp/r.rc"
}

# 2 and 3: every .kp file
files=$(find examples tests bench -name '*.kp' 2>/dev/null | sort)
nfiles=0
for f in $files; do
  "$KEEP" fmt "$f" >"$tmp/f1" 2>/dev/null
  rc=$?
  [ $rc = 2 ] && continue # does not parse: not formatted
  nfiles=$((nfiles + 1))
  if [ $rc != 0 ]; then bad "keep fmt $f exited $rc"; continue; fi
  "$KEEP" fmt "$tmp/f1" >"$tmp/f2" 2>&1
  if cmp -s "$tmp/f1" "$tmp/f2"; then ok; else bad "fmt is not idempotent on $f"; diff "$tmp/f1" "$tmp/f2" | head -6; fi
  comments "$f" >"$tmp/c0"
  cp "$tmp/f1" "$tmp/f1.kp"
  comments "$tmp/f1.kp" >"$tmp/c1"
  if cmp -s "$tmp/c0" "$tmp/c1"; then ok; else bad "fmt changed the comments of $f"; diff "$tmp/c0" "$tmp/c1" | head -6; fi
  # the same file with its indentation removed
  d="$tmp/d/$(basename "$f")"
  mkdir -p "$tmp/d"
  sed 's/^[ 	]*//' "$f" >"$d"
  "$KEEP" fmt "$d" >"$tmp/fd" 2>"$tmp/fd.err"
  drc=$?
  [ $drc = 2 ] && continue # dedented, it may not parse (a `-- fmt: off` moved)
  if [ $drc != 0 ]; then bad "keep fmt failed on dedented $f: $(head -c 300 "$tmp/fd.err")"; continue; fi
  cp "$tmp/fd" "$tmp/fd.kp"
  "$KEEP" fmt "$tmp/fd.kp" | cmp -s - "$tmp/fd.kp" && ok || bad "fmt is not idempotent on dedented $f"
  comments "$tmp/fd.kp" >"$tmp/c2"
  cmp -s "$tmp/c0" "$tmp/c2" && ok || bad "fmt changed the comments of dedented $f"
  case "$f" in tests/robustness/* | bench/*) continue ;; esac
  cmp -s "$tmp/fd" "$f" && continue # nothing changed: nothing to run
  # behaviour: the original and the formatted dedented copy, same name
  flags=$(sed -n 's/^.*-- flags: //p' "$f" | head -1)
  run "$f" "$flags"
  mv "$tmp/r.out" "$tmp/o.out"; mv "$tmp/r.err" "$tmp/o.err"; mv "$tmp/r.rc" "$tmp/o.rc"
  mkdir -p "$tmp/run/$(dirname "$f")"
  cp "$tmp/fd" "$tmp/run/$f"
  run "$tmp/run/$f" "$flags"
  sed "s|$tmp/run/||g" "$tmp/r.out" >"$tmp/r.out2"
  normalize_err "$tmp/o.err" "$f" >"$tmp/o.errn"
  normalize_err "$tmp/r.err" "$tmp/run/$f" >"$tmp/r.errn"
  if cmp -s "$tmp/o.out" "$tmp/r.out2" && cmp -s "$tmp/o.rc" "$tmp/r.rc" && cmp -s "$tmp/o.errn" "$tmp/r.errn"; then ok; else
    bad "the formatted $f behaves otherwise (exit $(cat "$tmp/o.rc") vs $(cat "$tmp/r.rc"))"
    diff "$tmp/o.out" "$tmp/r.out2" | head -5
    diff "$tmp/o.errn" "$tmp/r.errn" | head -5
  fi
done
[ "$nfiles" -gt 100 ] && ok || bad "only $nfiles files were formatted"

# 4. the repository's files are formatted (what .ci/run checks): every .kp
# under examples/, tests/ and bench/ but the machine-made inputs of
# tests/robustness and tests/fuzz and the pending tests/todo
# shellcheck disable=SC2046
unformatted=$("$KEEP" fmt --check $(find examples tests bench -name '*.kp' -not -path 'tests/robustness/*' \
  -not -path 'tests/fuzz/*' -not -path 'tests/todo/*' | sort) 2>/dev/null)
if [ -z "$unformatted" ]; then ok; else
  for u in $unformatted; do bad "$u is not formatted: run  $KEEP fmt -w $u"; done
fi

# 5. the command
printf 'x:=1\nprint(x)\n' >"$tmp/u.kp"
printf 'x := 1\nprint(x)\n' >"$tmp/g.kp"
out=$("$KEEP" fmt --check "$tmp/g.kp" "$tmp/u.kp" 2>/dev/null); rc=$?
[ $rc = 1 ] && [ "$out" = "$tmp/u.kp" ] && ok || bad "--check lists the unformatted file and exits 1 (got $rc: $out)"
"$KEEP" fmt --check "$tmp/g.kp" >/dev/null 2>&1 && ok || bad "--check of a formatted file exits 0"
"$KEEP" fmt -w "$tmp/u.kp" && cmp -s "$tmp/u.kp" "$tmp/g.kp" && ok || bad "-w rewrites the file"
printf 'x := (1 +\n' >"$tmp/bad.kp"
"$KEEP" fmt "$tmp/bad.kp" >"$tmp/out" 2>"$tmp/err"; rc=$?
[ $rc = 2 ] && [ ! -s "$tmp/out" ] && grep -q "bad.kp:2:1" "$tmp/err" && ok || bad "a file that does not parse: exit 2, its error, no output (got $rc)"
"$KEEP" fmt --check "$tmp/bad.kp" >/dev/null 2>"$tmp/err"; rc=$?
[ $rc = 0 ] && grep -q "skipped" "$tmp/err" && ok || bad "--check skips a file that does not parse (got $rc)"
printf 'x:=1\n' | "$KEEP" fmt | grep -qx 'x := 1' && ok || bad "keep fmt reads standard input"

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
