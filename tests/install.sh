#!/bin/sh
# tests/install.sh: `make install` into a temporary prefix, then every
# example host (examples/embed/*.c) built from the installed files only,
# both ways the README shows:
#   dynamic: cc host.c $(pkg-config --cflags --libs keep) -Wl,-rpath,LIBDIR
#   static:  cc host.c $(pkg-config --cflags --libs keep-static)
# must run and print its examples/embed/X.out; the static one must not
# need libkeep.so at run time, and `pkg-config --static --libs keep` must
# carry libkeep's own dependencies (Libs.private).
set -e
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
make --no-print-directory install PREFIX="$tmp/prefix" >/dev/null
export PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig"
pass=0
fail=0
check() { if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $*" >&2; fi; }
for f in bin/keep lib/libkeep.a lib/libkeep.so include/keep.h lib/pkgconfig/keep.pc lib/pkgconfig/keep-static.pc \
         share/man/man1/keep.1; do
  check test -e "$tmp/prefix/$f"
done
check sh -c "readelf -d '$tmp/prefix/lib/libkeep.so' | grep -q 'SONAME.*libkeep.so.0'"
check sh -c "pkg-config --static --libs keep | grep -q -- '-lpthread'"
libdir=$(pkg-config --variable=libdir keep)
for src in examples/embed/*.c; do
  name=$(basename "$src" .c)
  exp="examples/embed/$name.out"
  # dynamic, found at run time through the rpath
  check sh -c "cc -std=c11 '$src' \$(pkg-config --cflags --libs keep) -Wl,-rpath,'$libdir' -o '$tmp/${name}_so'"
  check sh -c "'$tmp/${name}_so' > '$tmp/${name}_so.out' 2>/dev/null </dev/null; cmp -s '$tmp/${name}_so.out' '$exp'"
  check sh -c "readelf -d '$tmp/${name}_so' | grep -q 'NEEDED.*libkeep.so.0'"
  # dynamic without an rpath: LD_LIBRARY_PATH finds it
  check sh -c "cc -std=c11 '$src' \$(pkg-config --cflags --libs keep) -o '$tmp/${name}_ld'"
  check sh -c "LD_LIBRARY_PATH='$libdir' '$tmp/${name}_ld' > '$tmp/${name}_ld.out' 2>/dev/null </dev/null; cmp -s '$tmp/${name}_ld.out' '$exp'"
  # static: libkeep.a and its dependencies, no libkeep.so at run time
  check sh -c "cc -std=c11 '$src' \$(pkg-config --cflags --libs keep-static) -o '$tmp/${name}_a'"
  check sh -c "'$tmp/${name}_a' > '$tmp/${name}_a.out' 2>/dev/null </dev/null; cmp -s '$tmp/${name}_a.out' '$exp'"
  check sh -c "! readelf -d '$tmp/${name}_a' | grep -q 'libkeep'"
done
check sh -c "'$tmp/prefix/bin/keep' examples/sieve.kp | cmp -s - examples/sieve.out"
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
