#!/usr/bin/env bash
# vitlab's side of the speed comparison on the GPU machine (after gpu_build.sh). Writes one JSON
# record per workload to $1 (a folder), then appends one record for the call to
# benchmarks/records.jsonl (VITLAB_RECORD=0 skips that: gpu_compare.sh records the whole
# comparison instead). The timm side: scripts/bench_timm.py.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-bench-out}
mkdir -p "$out"
v=build-gpu/vitlab
run() {  # name, args...
  local name=$1; shift
  echo "== $name: vitlab bench $*"
  $v bench "$@" --json "$out/$name.json" || echo "FAILED: $name"
}
run small_fast --model vit_tiny_p4_28 --set depth=12 --optimizer sgd --batch 256
run small_nofused --model vit_tiny_p4_28 --set depth=12 --optimizer sgd --batch 256 --no-fused-kernels
run small_plain --model vit_tiny_p4_28 --set depth=12 --optimizer sgd --batch 256 --plain
run vit_s16_fast --model vit_s16 --batch 256
run vit_b16_fast --model vit_b16 --batch 256
run vit_b16_nofused --model vit_b16 --batch 256 --no-fused-kernels
run vit_b16_plain --model vit_b16 --batch 256 --plain
run bit_r50x1_fast --model bit_r50x1 --batch 256
run bit_r50x1_nofused --model bit_r50x1 --batch 256 --no-fused-kernels
run bit_r26_28_fast --model bit_r26_28 --batch 256
run bit_r26_28_nofused --model bit_r26_28 --batch 256 --no-fused-kernels
if [ "${VITLAB_RECORD:-1}" != 0 ]; then
  python3 scripts/benchmarks.py add bench "$out" && python3 scripts/benchmarks.py table
fi
