#!/bin/sh
# tests/editors/check.sh BUILD_DIR — the editor grammars of editors/:
#  1. they are what editors/gen.js makes from lexer/lexer.re (no drift);
#  2. the TextMate grammar, run headless by vscode-textmate and
#     vscode-oniguruma (installed under build/npm by make), gives every
#     token of every .kp file the scope of its lexer class (editors/test.js);
#  3. the Vim syntax gives every token the group of its class (Vim run
#     headless over the same files, editors/vim/synnames.vim).
# Prints "N passed, M failed".
B=${1:-build}
KEEP=$B/keep
MODULES=${KEEP_NPM_MODULES:-build/npm/node_modules}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0
files=$(find examples tests bench -name '*.kp' -not -path 'tests/robustness/*' -not -path 'tests/fuzz/*' | sort)

add() { # add OUTPUT: counts its "N passed, M failed" line, shows its failures
  line=$(printf '%s\n' "$1" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -1)
  p=$(echo "$line" | sed -n 's/^\([0-9]*\) passed.*/\1/p')
  f=$(echo "$line" | sed -n 's/.* \([0-9]*\) failed.*/\1/p')
  pass=$((pass + ${p:-0}))
  fail=$((fail + ${f:-1}))
  printf '%s\n' "$1" | grep '^FAIL' | head -20
}

add "$(node editors/gen.js --check 2>&1)"
# shellcheck disable=SC2086
add "$(node editors/test.js "$KEEP" "$MODULES" $files 2>&1)"

# Vim
if command -v vim >/dev/null 2>&1; then
  : >"$tmp/list"
  n=0
  for f in $files; do
    n=$((n + 1))
    "$KEEP" fmt --tokens "$f" >"$tmp/t$n" 2>/dev/null || continue
    echo "$f $tmp/t$n" >>"$tmp/list"
  done
  vim -es -u NONE -N -i NONE -c 'set rtp^=editors/vim' -c 'filetype on' -c 'syntax on' \
    -c "let g:list='$tmp/list'" -c "let g:out='$tmp/syn'" -S editors/vim/synnames.vim </dev/null >/dev/null 2>&1
  if [ -s "$tmp/syn" ]; then
    add "$(awk '
      { want = "" }
      $2 == "keyword"   { ok = $3 ~ /^keep(Conditional|Repeat|Statement|Exception|OperatorWord|Ownership)$/ }
      $2 == "constant"  { ok = $3 == "keepBoolean" }
      $2 == "directive" { ok = $3 == "keepDirective" }
      $2 == "string"    { ok = $3 == "keepString" }
      $2 == "number"    { ok = $3 ~ /^keep(Number|Float)$/ }
      $2 == "comment"   { ok = $3 == "keepComment" }
      $2 == "operator"  { ok = $3 == "keepOperator" }
      $2 == "name"      { ok = $3 == "-" || $3 == "keepType" }
      { seen[$2] = 1; if (ok) p++; else { f++; if (f <= 20) print "FAIL: vim: " $1 " " $2 " has group " $3 } }
      END { for (c in seen) n++; if (n < 8) { f++; print "FAIL: vim: only " n " token classes seen" }
            print p + 0 " passed, " f + 0 " failed" }' "$tmp/syn")"
  else
    fail=$((fail + 1)); echo "FAIL: vim wrote no syntax groups"
  fi
else
  fail=$((fail + 1)); echo "FAIL: vim is not installed (make installs it)"
fi

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
