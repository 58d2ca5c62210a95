#!/bin/sh
# tests/docs/check.sh BUILD_DIR — every program of docs/tutorial.md runs and
# prints what the page says.  A ```keep block is saved as example.kp and run
# with keep; a ```c block is compiled against BUILD_DIR/libkeep.a and run.
# The block after it says what must come out: ```output is the exact
# stdout (and nothing on stderr, exit 0); ```error is a line that stderr
# must contain (and the exit must fail).  Prints "N passed, M failed".
B=${1:-build}
KEEP=$(cd "$B" && pwd)/keep
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0
doc=docs/tutorial.md
# split the page into blocks: $tmp/NNN.KIND
awk -v dir="$tmp" '
  /^```/ {
    if (inb) { inb = 0; close(f); next }
    kind = substr($0, 4); if (kind == "") kind = "text"
    n++; f = sprintf("%s/%03d.%s", dir, n, kind); printf "" > f; inb = 1; next
  }
  inb { print > f }' "$doc"
programs=0
# a sanitizer build of the library (make test-asan) needs the same flags
HOSTCC=${CC:-cc}
SAN=
if nm "$B/libkeep.a" 2>/dev/null | grep -q __asan_; then HOSTCC=clang; SAN="-fsanitize=address,undefined"; fi
for b in "$tmp"/*.keep "$tmp"/*.c; do
  [ -f "$b" ] || continue
  programs=$((programs + 1))
  num=$(basename "$b" | cut -d. -f1)
  next=$(printf "%03d" "$(expr "$num" + 1)")
  mkdir -p "$tmp/run$num"
  case "$b" in
    *.keep)
      cp "$b" "$tmp/run$num/example.kp"
      (cd "$tmp/run$num" && timeout 30 "$KEEP" example.kp >out 2>err); rc=$? ;;
    *.c)
      if ! $HOSTCC -std=c11 -Iinclude $SAN -o "$tmp/run$num/host" "$b" "$B/libkeep.a" -lm -lpthread 2>"$tmp/run$num/err"; then
        fail=$((fail + 1)); echo "FAIL: $doc block $num does not compile: $(head -5 "$tmp/run$num/err")"; continue
      fi
      (cd "$tmp/run$num" && timeout 30 ./host >out 2>err); rc=$? ;;
  esac
  if [ -f "$tmp/$next.output" ]; then
    if [ $rc = 0 ] && cmp -s "$tmp/$next.output" "$tmp/run$num/out" && [ ! -s "$tmp/run$num/err" ]; then
      pass=$((pass + 1))
    else
      fail=$((fail + 1)); echo "FAIL: $doc block $num (exit $rc):"
      diff "$tmp/$next.output" "$tmp/run$num/out" | head -10; head -5 "$tmp/run$num/err"
    fi
  elif [ -f "$tmp/$next.error" ]; then
    if [ $rc != 0 ] && grep -qF -- "$(head -1 "$tmp/$next.error")" "$tmp/run$num/err"; then
      pass=$((pass + 1))
    else
      fail=$((fail + 1)); echo "FAIL: $doc block $num: expected the error $(head -1 "$tmp/$next.error") (exit $rc):"
      head -5 "$tmp/run$num/err"
    fi
  else
    fail=$((fail + 1)); echo "FAIL: $doc block $num has no output block after it"
  fi
done
[ $programs -ge 10 ] && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: only $programs programs found in $doc"; }
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
