#!/bin/sh
# tests/fuzz/run.sh T SECONDS — runs the libFuzzer target build/fuzz/fuzz_T
# (made by `make fuzz T=...`) for SECONDS seconds over its corpus
# build/fuzz/corpus/T, seeded with every script of tests/ and examples/
# under 64 KiB (the big machine-made ones of tests/robustness are left
# out), with the dictionary build/fuzz/keep.dict.  A crash, a leak, a
# sanitizer report or a timeout fails the run; the input is kept as
# build/fuzz/crash-T-*.  The last line gives executions and coverage.
set -e
t=${1:?target}
secs=${2:-60}
bin=build/fuzz/fuzz_$t
corpus=build/fuzz/corpus/$t
seeds=build/fuzz/seeds
mkdir -p "$corpus" "$seeds"
if [ ! -f "$seeds/.made" ]; then
  find tests examples -name '*.kp' -size -64k -not -path 'tests/robustness/*' -not -path 'tests/todo/*' |
    while read -r f; do cp "$f" "$seeds/$(echo "$f" | tr '/' '_')"; done
  touch "$seeds/.made"
fi
log=build/fuzz/$t.log
# detect_leaks: the harness checks its own host allocator; LeakSanitizer
# would also see libFuzzer's own allocations
set +e
ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1 "$bin" -dict=build/fuzz/keep.dict \
  -max_total_time="$secs" -timeout=20 -rss_limit_mb=2560 -max_len=16384 -print_final_stats=1 \
  -artifact_prefix="build/fuzz/crash-$t-" "$corpus" "$seeds" >"$log" 2>&1
rc=$?
set -e
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
cov=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -1 | sed -n 's/.*\(cov: [0-9]*\) \(ft: [0-9]*\).*/\1 \2/p')
if [ "$rc" != 0 ]; then
  tail -60 "$log" >&2
  echo "fuzz $t: FAILED (exit $rc) after ${execs:-?} runs, $cov; input in build/fuzz/crash-$t-*" >&2
  exit 1
fi
echo "fuzz $t: ${execs:-?} runs in ${secs} s, $cov, corpus $(ls "$corpus" | wc -l) inputs, no failure"
