#!/usr/bin/env bash
# Runs every committed corpus input once through its fuzz target, without fuzzing: the seeds and
# the regression inputs of every bug found so far (`make fuzz-regress`; CI's sanitizer job).
#
#   tests/fuzz/run_corpus.sh BUILD_DIR [TARGET...]     (default: every target with a corpus)
#
# Exits 1 naming the targets where any input crashed, leaked, hung or allocated too much.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/fuzz_options.sh"
build=${1:?usage: run_corpus.sh BUILD_DIR [TARGET...]}
shift
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=($(ls "$here/corpus"))
failed=()
for t in "${targets[@]}"; do
  files=("$here/corpus/$t"/*)
  log="$build/fuzz-regress-$t.log"
  # Given files, libFuzzer runs each once, with the same limits as when fuzzing.
  if "$build/fuzz_$t" "${FUZZ_FLAGS[@]}" "${files[@]}" >"$log" 2>&1; then
    echo "fuzz_$t: ${#files[@]} inputs ok"
  else
    echo "fuzz_$t: FAILED (log: $log)"
    grep -E '^(Running:|==[0-9]+==ERROR|SUMMARY|.*runtime error)' "$log" | tail -4
    failed+=("$t")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "corpus regressions in: ${failed[*]}" >&2
  exit 1
fi
