#!/usr/bin/env bash
# Kernel profiles of one workload in vitlab (fast and plain path) and timm eager, on the GPU machine
# after gpu_build.sh, then one record in benchmarks/records.jsonl with the kernel tables (not the
# Chrome traces) in benchmarks/raw/<id>.tar.gz; VITLAB_RECORD=0 skips the record.
# Usage: scripts/gpu_profile.sh OUT_DIR MODEL [TIMM_WORKLOAD] [vitlab bench args...]
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:?OUT_DIR}; model=${2:?MODEL}; workload=${3:-$2}; shift 3 || shift $#
mkdir -p "$out"
v=build-gpu/vitlab
$v bench --model "$model" --batch 256 --steps 10 --windows 3 "$@" --profile "$out/vitlab_${model}_fast.trace.json" \
  --json "$out/vitlab_${model}_fast.json" > "$out/vitlab_${model}_fast.txt" 2>&1
$v bench --model "$model" --batch 256 --steps 10 --windows 3 --plain "$@" --profile "$out/vitlab_${model}_plain.trace.json" \
  --json "$out/vitlab_${model}_plain.json" > "$out/vitlab_${model}_plain.txt" 2>&1
python3 scripts/bench_timm.py --workloads "$workload" --modes eager --steps 10 --windows 3 --profile "$out" > "$out/timm_${workload}.jsonl" 2>&1
gzip -f "$out"/*.trace.json "$out"/timm_*.json 2>/dev/null
head -c 2500 "$out/vitlab_${model}_fast.txt"; echo; head -c 2500 "$out/vitlab_${model}_plain.txt"; echo
head -c 4000 "$out/timm_${workload}_eager.txt"
if [ "${VITLAB_RECORD:-1}" != 0 ]; then
  python3 scripts/benchmarks.py add profile "$out" --command "scripts/gpu_profile.sh OUT $model $workload $*"
fi
