#!/usr/bin/env bash
# Training throughput of PROCS `vitlab bench` processes sharing one GPU, summed (issue 21: is it
# worth training the seeds of one variant as one batched model instead of one process each?).
# A model that holds k seeds' weights does the work of k models at batch B in each step, so it
# runs no faster than one model at batch k*B: PROCS processes at batch B against PROCS/k processes
# at batch k*B bounds what that lever could gain over separate processes.
#
#   scripts/bench_concurrent.sh MODEL BATCH PROCS STEPS
#
# Run it under CUDA MPS (start the daemon first, `nvidia-cuda-mps-control -d`, as gpu_sweep.sh's
# MPS=1 does), or the processes take turns on the GPU. Each process times 5 windows of STEPS steps
# after 10 warm-up steps and reports its median; choose STEPS so that the windows last several
# seconds, well beyond the processes' staggered starts. Prints one JSON line: each process's
# img/s, their sum, and the wall time of the whole group. Needs build-gpu/vitlab.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 4 ] || { echo "usage: $0 MODEL BATCH PROCS STEPS" >&2; exit 2; }
model=$1 batch=$2 procs=$3 steps=$4
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
start=$(date +%s%N)
pids=()
for i in $(seq 1 "$procs"); do
  build-gpu/vitlab bench --model "$model" --batch "$batch" --steps "$steps" --windows 5 --warmup 10 \
    --json "$tmp/$i.json" > "$tmp/$i.log" 2>&1 &
  pids+=($!)
done
failed=0
for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
wall_ms=$(( ($(date +%s%N) - start) / 1000000 ))
if [ "$failed" = 1 ]; then cat "$tmp"/*.log >&2; exit 1; fi
python3 - "$tmp" "$model" "$batch" "$procs" "$steps" "$wall_ms" <<'EOF'
import glob, json, sys
folder, model, batch, procs, steps, wall_ms = sys.argv[1:]
rates = [json.load(open(f))["images_per_second"] for f in sorted(glob.glob(folder + "/*.json"))]
print(json.dumps({"model": model, "batch": int(batch), "processes": int(procs), "steps": int(steps),
                  "img_s_each": [round(r) for r in rates], "img_s_sum": round(sum(rates)),
                  "wall_s": round(int(wall_ms) / 1000, 1)}))
EOF
