#!/usr/bin/env bash
# CPU speed comparison (issues 3 and 6), all in one run on one machine: the quickstart ViT (D=64,
# depth 4, 4 heads, MLP 128, patch 7, 28x28x1, AdamW, fp32, synthetic data) in `vitlab bench` and
# in a PyTorch eager loop (Debian python3-torch) under several thread settings, alternating, so the
# best PyTorch setting is the reference. Usage: scripts/bench_cpu.sh OUT_DIR [BATCH] [ROUNDS]
set -euo pipefail
out=${1:?usage: scripts/bench_cpu.sh OUT_DIR [BATCH] [ROUNDS]}
batch=${2:-128}
rounds=${3:-3}
vitlab=${VITLAB:-build/vitlab}
mkdir -p "$out"
model=(--model vit_tiny_p4_28 --set width=64 --set depth=4 --set heads=4 --set mlp_dim=128
       --set patch_size=7 --batch "$batch" --precision fp32 --device cpu)
# vitlab's own runtime settings, handed to PyTorch too for the fairest reference.
tuned=(GOMP_SPINCOUNT=10000
       GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824)
rate() { python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["images_per_second"]))' "$1"; }
{
  echo "| round | vitlab (default) | vitlab, VITLAB_CPU_RUNTIME=off, --threads 2 | PyTorch default threads | PyTorch set_num_threads(2) | PyTorch 2 threads, OPENBLAS_NUM_THREADS=1 | PyTorch 2 threads + vitlab's runtime settings |"
  echo "|---|---|---|---|---|---|---|"
  for r in $(seq "$rounds"); do
    "$vitlab" bench "${model[@]}" --json "$out/vitlab_$r.json" > /dev/null
    VITLAB_CPU_RUNTIME=off "$vitlab" bench "${model[@]}" --threads 2 --json "$out/vitlab_off_$r.json" > /dev/null
    /usr/bin/python3 scripts/bench_cpu_pytorch.py --batch "$batch" --threads 0 > "$out/pytorch_default_$r.json"
    /usr/bin/python3 scripts/bench_cpu_pytorch.py --batch "$batch" --threads 2 > "$out/pytorch_2_$r.json"
    OPENBLAS_NUM_THREADS=1 /usr/bin/python3 scripts/bench_cpu_pytorch.py --batch "$batch" --threads 2 > "$out/pytorch_2_blas1_$r.json"
    env "${tuned[@]}" /usr/bin/python3 scripts/bench_cpu_pytorch.py --batch "$batch" --threads 2 > "$out/pytorch_2_tuned_$r.json"
    echo "| $r | $(rate "$out/vitlab_$r.json") | $(rate "$out/vitlab_off_$r.json") | $(rate "$out/pytorch_default_$r.json") | $(rate "$out/pytorch_2_$r.json") | $(rate "$out/pytorch_2_blas1_$r.json") | $(rate "$out/pytorch_2_tuned_$r.json") |"
  done
} | tee "$out/table.md"
