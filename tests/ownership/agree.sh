#!/bin/sh
# tests/ownership/agree.sh BUILD_DIR — --emit=ownership is what runs.
#
# Every script of the suite that runs without error (tests/**/*.kp,
# examples/*.kp) is run with --trace-ownership, and each move, drop,
# deinit, keep box, keep and box release the VM reports in that script
# must appear, at that line:column and with that kind, in the script's
# --emit=ownership listing (the top-level variables dropped when the
# program ends: by name).  The listing must show nothing for values that
# own nothing (scalars, strings, references; a capture line says how a
# function literal captures a variable, whatever it holds).  Prints one
# line per disagreement (what the VM drops while an error unwinds to a
# catch is not in the listing: the error decided it), then
# "agree: N scripts, M events traced, K failed" and
# "P passed, K failed" (tests/run.sh reads the last line).
B=${1:-build}
KEEP=$B/keep
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
nscripts=0
nevents=0
failed=0
# stress scripts whose million operations would make a trace of millions
# of lines (their patterns are covered by the smaller scripts)
skip=" tests/limits/keep_boxes_over_limit.kp tests/robustness/deep_million_nesting.kp tests/robustness/keep_chain_million.kp tests/robustness/deep_million_compare.kp "
for f in ${KP_TESTS:-$(find tests -name '*.kp' -not -path 'tests/todo/*' | sort) $(ls examples/*.kp 2>/dev/null)}; do
  case "$skip" in *" $f "*) continue ;; esac
  grep -q -- '-- expect-error:' "$f" && continue
  want_exit=$(sed -n 's/^.*-- expect-exit: //p' "$f" | head -1)
  [ -n "$want_exit" ] && [ "$want_exit" != 0 ] && continue
  flags=$(sed -n 's/^.*-- flags: //p' "$f" | head -1)
  case " $flags " in *" -e "* | *" -i "*) continue ;; esac
  args=$(sed -n 's/^.*-- args: //p' "$f" | head -1 | sed "s|@TMP@|$tmp|g")
  # shellcheck disable=SC2086
  timeout 60 "$KEEP" --trace-ownership $flags "$f" $args >/dev/null 2>"$tmp/trace" </dev/null || continue
  # shellcheck disable=SC2086
  if ! "$KEEP" --emit=ownership "$f" >"$tmp/list" 2>"$tmp/err"; then
    echo "agree: $f runs, but --emit=ownership fails: $(head -c 300 "$tmp/err")"
    failed=$((failed + 1))
    continue
  fi
  nscripts=$((nscripts + 1))
  out=$(awk -v file="$f" '
    FNR == NR {
      # the listing: "     |   L:C KIND WHAT: TYPE ..." or "     |   end KIND WHAT: TYPE"
      if ($1 == "|" && $2 ~ /^[0-9]+:[0-9]+$/) {
        have[$2 " " $3] = 1
        t = $0; sub(/^[^:]*:[0-9]+ [a-z]+ [^:]*: /, "", t); sub(/ .*/, "", t)
        if ($3 != "box" && $3 != "keep" && $3 != "release" && $3 != "capture" && t ~ /^(Int|Float|Bool|String|Int8|Int16|Int32|Int64|UInt8|UInt16|UInt32|UInt64|Byte|Float32|Float64|\(\)|&.*|\$&.*)$/)
          print "agree: " file ": the listing shows " $3 " of a value that owns nothing: " $0
      } else if ($1 == "|" && $2 == "end") {
        w = $4; sub(/:$/, "", w); have["end " $3 " " w] = 1
      }
      next
    }
    $1 == "[own]" && /\(unwinding to a catch\)$/ { next }  # a caught error decided it: not in the listing
    $1 == "[own]" {
      pos = $2; kind = $3
      if (index(pos, file ":") != 1) next
      pos = substr(pos, length(file) + 2)
      n++
      if (pos == "end") {
        w = $4; sub(/:$/, "", w)
        if (!(("end " kind " " w) in have)) print "agree: " file ": the VM did `" $0 "`, not listed"
      } else if (!((pos " " kind) in have)) {
        print "agree: " file ": the VM did `" $0 "`, not listed at " pos
      }
    }
    END { print "#events " n + 0 }' "$tmp/list" "$tmp/trace")
  n=$(printf '%s\n' "$out" | sed -n 's/^#events //p')
  nevents=$((nevents + n))
  bad=$(printf '%s\n' "$out" | grep -v '^#events ')
  if [ -n "$bad" ]; then
    printf '%s\n' "$bad" | head -10
    failed=$((failed + 1))
  fi
done
echo "agree: $nscripts scripts, $nevents events traced, $failed failed"
echo "$((nscripts - failed)) passed, $failed failed"
[ "$failed" = 0 ]
