#!/usr/bin/env bash
# The whole speed comparison in one run on the GPU machine (after gpu_build.sh): vitlab bench for
# every workload, the same models in timm (eager and torch.compile), then the ratio table.
# Usage: scripts/gpu_compare.sh OUT
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:?OUT}
mkdir -p "$out"
bash scripts/gpu_bench.sh "$out"
python3 scripts/bench_timm.py > "$out/timm.jsonl" 2> "$out/timm.err" || echo "timm bench failed: see $out/timm.err"
python3 scripts/compare_bench.py "$out" | tee "$out/comparison.md"
