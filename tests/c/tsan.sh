#!/bin/sh
# Builds tests/c/test_alloc_threads.c and the allocators with ThreadSanitizer
# and runs it; prints the test's "N passed, M failed" line.  Exit status is
# nonzero when a check fails or TSan reports a race.
# Usage: sh tests/c/tsan.sh [build-dir]   (run from the repository root)
set -e
B=${1:-build/tsan}
CC=${TSAN_CC:-clang}
mkdir -p "$B"
$CC -std=c11 -D_GNU_SOURCE -Wall -Wextra -O1 -g -fsanitize=thread \
    -fno-omit-frame-pointer -I. -Iinclude \
    -o "$B/test_alloc_threads" tests/c/test_alloc_threads.c alloc/*.c -lpthread
TSAN_OPTIONS="halt_on_error=1 exitcode=66 ${TSAN_OPTIONS:-}" "$B/test_alloc_threads"
