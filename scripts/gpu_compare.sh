#!/usr/bin/env bash
# The whole speed comparison in one run on the GPU machine (after gpu_build.sh): vitlab bench for
# every workload, the same models in timm (eager and torch.compile), then the ratio table, then one
# record appended to benchmarks/records.jsonl (raw files: benchmarks/raw/<id>.tar.gz).
# Usage: scripts/gpu_compare.sh OUT
# A tree copied to another machine records there; with OUT brought back, record it in the
# repository with `python3 scripts/benchmarks.py add compare OUT` (VITLAB_RECORD=0 skips it here).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:?OUT}
mkdir -p "$out"
VITLAB_RECORD=0 bash scripts/gpu_bench.sh "$out"
python3 scripts/bench_timm.py > "$out/timm.jsonl" 2> "$out/timm.err" || echo "timm bench failed: see $out/timm.err"
python3 scripts/compare_bench.py "$out" | tee "$out/comparison.md"
if [ "${VITLAB_RECORD:-1}" != 0 ]; then
  python3 scripts/benchmarks.py add compare "$out" && python3 scripts/benchmarks.py table
fi
