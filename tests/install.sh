#!/bin/sh
# tests/install.sh: `make install` into a temporary prefix, then a host built
# only with `pkg-config --cflags --libs keep` against the installed files,
# linked both statically and dynamically, must run and print what the
# in-tree build prints.
set -e
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
make --no-print-directory install PREFIX="$tmp/prefix" >/dev/null
export PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig"
pass=0
fail=0
check() { if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $*" >&2; fi; }
for f in bin/keep lib/libkeep.a lib/libkeep.so include/keep.h lib/pkgconfig/keep.pc share/man/man1/keep.1; do
  check test -e "$tmp/prefix/$f"
done
check sh -c "readelf -d '$tmp/prefix/lib/libkeep.so' | grep -q 'SONAME.*libkeep.so.0'"
# dynamic: the shared library through pkg-config
check sh -c "cc -std=c11 examples/embed/config_loader.c \$(pkg-config --cflags --libs keep) -lm -lpthread -o '$tmp/host_so'"
check sh -c "LD_LIBRARY_PATH='$tmp/prefix/lib' '$tmp/host_so' > '$tmp/out_so' && cmp -s '$tmp/out_so' examples/embed/config_loader.out"
# static
check sh -c "cc -std=c11 examples/embed/config_loader.c \$(pkg-config --cflags keep) '$tmp/prefix/lib/libkeep.a' -lm -lpthread -o '$tmp/host_a'"
check sh -c "'$tmp/host_a' > '$tmp/out_a' && cmp -s '$tmp/out_a' examples/embed/config_loader.out"
check sh -c "'$tmp/prefix/bin/keep' examples/sieve.kp | cmp -s - examples/sieve.out"
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
