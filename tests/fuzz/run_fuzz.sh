#!/usr/bin/env bash
# Fuzzes each target for a bounded time (what `make fuzz` runs).
#
#   tests/fuzz/run_fuzz.sh BUILD_DIR SECONDS [TARGET...]     (default: every target with a corpus)
#
# Each target starts from its committed seeds, tests/fuzz/corpus/<target>/, which are only read:
# new inputs go to BUILD_DIR/fuzz-work/<target>/corpus and findings (crash-*, leak-*, timeout-*,
# oom-*) to BUILD_DIR/fuzz-work/<target>/. A finding is fixed in the library and its input then
# copied into the committed corpus as a regression input. One line per target is appended to
# BUILD_DIR/fuzz-work/stats.tsv (date, target, seconds it ran, execs, result). Exits 1 if any target
# found something.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/fuzz_options.sh"
build=${1:?usage: run_fuzz.sh BUILD_DIR SECONDS [TARGET...]}
seconds=${2:?usage: run_fuzz.sh BUILD_DIR SECONDS [TARGET...]}
shift 2
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=($(ls "$here/corpus"))
work="$build/fuzz-work"
failed=()
for t in "${targets[@]}"; do
  mkdir -p "$work/$t/corpus"
  log="$work/$t/fuzz.log"
  echo "fuzz_$t: ${seconds}s (log: $log)"
  start=$SECONDS
  "$build/fuzz_$t" "${FUZZ_FLAGS[@]}" $(max_len_flag "$t") -max_total_time="$seconds" \
    -print_final_stats=1 -artifact_prefix="$work/$t/" "$work/$t/corpus" "$here/corpus/$t" \
    >"$log" 2>&1
  rc=$?
  took=$((SECONDS - start))
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  result=ok
  if [ $rc -ne 0 ]; then
    result="FOUND: $(ls -t "$work/$t" | grep -E '^(crash|leak|timeout|oom|slow-unit)-' | head -1)"
    failed+=("$t")
    grep -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error)' "$log" | head -3
  fi
  printf '%s\t%s\t%s\t%s\t%s\n' "$(date +%F)" "$t" "$took" "${execs:-?}" "$result" \
    | tee -a "$work/stats.tsv"
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzzing found problems in: ${failed[*]} (inputs and logs under $work/)" >&2
  exit 1
fi
